"""Every summary number recomputed from the exported CSV with statsmodels/scipy."""

import csv
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from core.platform import store
from core.rating import sessions
from core.reports import export
from core.reports import summary as stats
from core.training import runs, versions


def external_references(page: str) -> list[str]:
    """src/href attributes of the page's own tags (not strings inside the inlined plotly.js)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(f"{tag} {k}={v}" for k, v in attrs if k in ("src", "href") and v)

    Collector().feed(page)
    return found


def rate_everything(db, rid, raters, verdict_of):
    store.set_setting(db, "raters_per_pair", str(len(raters)))
    for r_index, rater in enumerate(raters):
        session = sessions.start_session(db, rid, rater)
        for i, (position, left) in enumerate(session.order):
            verdict = verdict_of(r_index, i, left)
            sessions.record_rating(db, session, position, verdict, scores={"A": {"tone": 2 + i % 3}, "B": {"tone": 3}},
                                 seconds_spent=2 + i)


def test_summary_matches_recomputation_from_csv(rated_db):
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id

    def verdict_of(r_index, i, left):
        # mostly prefer tuned, some ties/both-bad, rater 1 sometimes disagrees
        if i % 7 == 0:
            return "tie"
        if i % 11 == 0:
            return "both_bad"
        prefer_tuned = not (r_index == 1 and i % 4 == 0) and i % 5 != 0
        return "A" if (left == "tuned") == prefer_tuned else "B"

    rate_everything(db, rid, ["Dana", "Sam"], verdict_of)
    summary = stats.summarize(db, rid)
    rows = list(csv.DictReader(io.StringIO(export.ratings_csv(db, rid, "admin"))))
    counts = Counter(r["preferred"] for r in rows)
    assert summary.outcomes.wins == counts["tuned"]
    assert summary.outcomes.losses == counts["base"]
    assert summary.outcomes.ties == counts["tie"]
    assert summary.outcomes.both_bad == counts["both_bad"]
    # Prompt level, recomputed from the CSV rows: each prompt's mean vote value decides it.
    value = {"tuned": 1.0, "base": 0.0, "tie": 0.5, "both_bad": 0.5}
    by_prompt: dict[str, list[float]] = {}
    for r in rows:
        by_prompt.setdefault(r["position"], []).append(value[r["preferred"]])
    means = [float(np.mean(v)) for v in by_prompt.values()]
    w, lost = sum(m > 0.5 for m in means), sum(m < 0.5 for m in means)
    assert (summary.prompt_outcomes.wins, summary.prompt_outcomes.losses) == (w, lost)
    assert summary.win_rate == pytest.approx(w / (w + lost))
    assert summary.win_rate_ci == pytest.approx(proportion_confint(w, w + lost, method="wilson"))
    assert summary.sign_test_p == pytest.approx(binomtest(w, w + lost, 0.5).pvalue)
    assert summary.score == pytest.approx(np.mean(means))
    low, high = summary.score_ci
    assert low <= summary.score <= high
    tone = next(c for c in summary.per_criterion if c["criterion"] == "tone")
    tuned_scores = [json.loads(r["scores_json"])["tuned"]["tone"] for r in rows if r["scores_json"] != "{}"]
    assert tone["tuned_mean"] == pytest.approx(np.mean(tuned_scores))
    per = {r["rater"]: r for r in summary.per_rater}
    dana = [r for r in rows if r["rater"] == "Dana"]
    left_picks = sum(r["verdict"] == "A" for r in dana)
    sided = sum(r["verdict"] in ("A", "B") for r in dana)
    assert per["Dana"]["left_pick_rate"] == pytest.approx(left_picks / sided)
    assert per["Dana"]["position_bias_p"] == pytest.approx(binomtest(left_picks, sided, 0.5).pvalue)
    calibration = sessions.calibration_positions(db, rid)
    assert summary.agreement["calibration_pairs_rated_by_all"] == len(calibration)
    kappa, (k_low, k_high) = summary.agreement["cohens_kappa"], summary.agreement["cohens_kappa_ci"]
    assert k_low <= kappa <= k_high and kappa < 1
    assert summary.prompts_needed_for_60 > 150


def test_small_sample_is_not_celebrated(rated_db):
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    session = sessions.start_session(db, rid, "Dana")
    for position, left in session.order[:4]:
        sessions.record_rating(db, session, position, "A" if left == "tuned" else "B")
    summary = stats.summarize(db, rid)
    assert summary.prompt_outcomes.wins == 4 and summary.sign_test_p > 0.05 and not summary.significant
    assert "not conclusive yet" in summary.verdict_text and "more decisive prompts" in summary.verdict_text


def test_exports_carry_lineage_and_html_is_self_contained(rated_db):
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    run = runs.get_run(db, rid)
    session = sessions.start_session(db, rid, "Dana")
    sessions.record_rating(db, session, session.order[0][0], "A", comment="<script>alert(1)</script>")
    for fmt in export.FORMATS:
        text = export.render(db, rid, fmt, "admin")
        assert run.adapter_sha256 in text
    html = export.render(db, rid, "html", "admin")
    # Issue 25: no script at all, and a size proportionate to a few tables (plotly.js made it 4.8 MB).
    assert external_references(html) == [] and "<script" not in html and len(html.encode()) < 100_000
    assert "Content-Security-Policy" in html and "script-src" not in html
    assert "<script>alert(1)</script>" not in html
    data = json.loads(export.render(db, rid, "json", "admin"))
    assert data["lineage"]["dataset_version_sha256"] and data["lineage"]["base_model"]


def test_sign_off_requires_admin_and_a_summary(rated_db, team_users):
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    with pytest.raises(ValueError, match="Rate the run"):
        export.approve(db, rid, "approved", "ok", "boss")
    session = sessions.start_session(db, rid, "Dana")
    sessions.record_rating(db, session, session.order[0][0], "A")
    with pytest.raises(PermissionError):
        export.approve(db, rid, "approved", "ok", "Dana")
    with pytest.raises(ValueError, match="decision note"):
        export.approve(db, rid, "approved", "  ", "boss")
    export.approve(db, rid, "approved", "good enough", "boss")
    assert runs.get_run(db, rid).approval == "approved"
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'run_approved'").fetchone()[0] == 1


def test_bradley_terry_orders_adapters(rated_db, random_adapter):
    db = store.connect(rated_db)
    first = runs.list_runs(db)[0]
    second = runs.import_adapter(db, random_adapter, first.dataset_version_id)
    db.execute("INSERT INTO generations (run_id, position, prompt_json, reference, side, text, settings_json, created_at) "
               "SELECT ?, position, prompt_json, reference, side, text || (CASE side WHEN 'tuned' THEN ' x' ELSE '' END), "
               "settings_json, created_at FROM generations WHERE run_id = ?", [second.id, first.id])
    rate_everything(db, first.id, ["Dana"], lambda r, i, left: "A" if (left == "tuned") == (i % 4 != 0) else "B")
    rate_everything(db, second.id, ["Dana"], lambda r, i, left: "A" if (left == "tuned") == (i % 4 == 0) else "B")
    dataset_id = versions.version_by_id(db, first.dataset_version_id).dataset_id
    strengths = {s["run"]: s for s in stats.bradley_terry(db, dataset_id)}
    assert strengths[first.id]["strength"] > 0 > strengths[second.id]["strength"]
    assert strengths[first.id]["ci"][0] <= strengths[first.id]["strength"] <= strengths[first.id]["ci"][1]


def test_the_adapter_downloads_as_a_zip_with_its_model_card(rated_db):
    import zipfile

    from core.models import generation

    db = store.connect(rated_db)
    run = runs.list_runs(db)[0]
    data = export.adapter_zip(db, run.id, "admin")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {name.split("/", 1)[1] for name in archive.namelist()}
        assert {"adapter_config.json", "adapter_model.safetensors"} <= names
        unpacked = Path(rated_db).parent / "unzipped"
        archive.extractall(unpacked)
    assert generation.adapter_sha256(unpacked / f"run-{run.id}-adapter") == run.adapter_sha256


def test_the_html_report_is_a_document_with_example_pairs_shown_as_text(rated_db):
    from html.parser import HTMLParser

    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    session = sessions.start_session(db, rid, "Dana")
    position = session.order[0][0]
    hostile = "<img src=x onerror=alert(1)> ~~~~ [link](http://203.0.113.9)"
    db.execute("UPDATE generations SET text = ? WHERE run_id = ? AND position = ? AND side = 'tuned'",
               [hostile, rid, position])  # as a model might answer
    sessions.record_rating(db, session, position, "A")
    page = export.render(db, rid, "html", "admin")
    tags: list[str] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)

    Tags().feed(page)
    assert "img" not in tags and "script" not in tags and {"table", "h2", "pre", "dl", "section"} <= set(tags)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # Issue 25: a partner reads the finding first, then examples, then numbers; statistics and lineage
    # in an appendix that starts a new printed page, lineage in words rather than a JSON dump.
    finding = page.index("The tuned model&#x27;s answer was preferred on")
    assert finding < page.index("<h2>Examples</h2>") < page.index("<h2>The numbers</h2>") < page.index(
        "<h2>Appendix: how sure we are</h2>") < page.index("Where this result comes from")
    assert page.index("Evidence (e-value)") > page.index("Appendix")
    assert "Rated blind by 1 rater (Dana)" in page and "@media print" in page and "break-before:page" in page
    assert '"run_config"' not in page and "Dataset fingerprint (sha256)" in page
    assert "<title>Evaluation of run" not in page
    markdown = export.render(db, rid, "md", "admin")
    assert "~~~~text\n<img src=x onerror=alert(1)> ~ ~ ~ ~ [link](http://203.0.113.9)\n~~~~" in markdown


def test_automatic_checks_are_explained_in_plain_words():
    rows = stats.checks_table({"pairs": 20, "convention_base": 0, "convention_tuned": 20, "mean_words_base": 51.2,
                               "mean_words_tuned": 30.9, "mean_words_reference": 31.0, "general_loss_base": 3.1,
                               "general_loss_tuned": 3.4})
    by_check = {r["check"]: r for r in rows}
    assert by_check["Follows the output convention"]["tuned"] == "20/20"
    assert "forgetting" in by_check["Forgetting probe (general-text loss)"]["what it tells you"]
    assert by_check["Mean length (words)"]["what it tells you"] == "the reference answers average 31 words"
