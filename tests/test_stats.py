"""Summaries on real databases: hand-counted runs, the e-value's entry rule, strict exports, and every
headline number recomputed from the exported CSV by an independent script."""

import dataclasses
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from core.platform import store
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.reports import export, report_format, standings, stat_tests
from core.reports import summary as stats
from core.training import runs, versions
from tests.conftest import publish_generations

REPO = Path(__file__).resolve().parents[1]


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


def test_the_recompute_script_reproduces_the_summary_from_the_csv(rated_db, tmp_path):
    """bench/recompute_from_csv.py, written from docs/statistics.md without studio code, gets every
    headline number back from the exported CSV alone."""
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
    path = tmp_path / "ratings.csv"
    path.write_text(export.ratings_csv(db, rid, "admin"), encoding="utf-8")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "recompute_from_csv.py"), str(path)],
                         capture_output=True, text=True, check=True, timeout=300)
    again = json.loads(out.stdout)
    po = summary.prompt_outcomes
    assert again["prompts"] == {"won": po.wins, "lost": po.losses, "tied": po.ties, "both_bad": po.both_bad}
    assert again["votes"] == summary.outcomes.total - summary.outcomes.automatic_ties
    assert again["win_rate"] == pytest.approx(summary.win_rate)
    assert again["wilson"] == pytest.approx(list(summary.win_rate_ci))
    assert again["sign_test_p"] == pytest.approx(summary.sign_test_p)
    assert again["score"] == pytest.approx(summary.score)
    assert again["score_ci"] == pytest.approx(list(summary.score_ci))
    assert (again["entered"], again["entered_wins"], again["entered_losses"]) == (
        summary.complete_prompts, summary.entered_wins, summary.entered_losses)
    assert again["log10_e_value"] == pytest.approx(summary.log10_e_value)
    assert again["significant"] == summary.significant
    assert again["confidence_sequence"] == pytest.approx(list(summary.win_rate_cs), abs=2e-6)
    assert again["prompts_more_needed"] == summary.prompts_more_needed
    assert again["raters_per_pair"] == summary.raters_per_pair == 2
    tone = next(c for c in summary.per_criterion if c["criterion"] == "tone")
    assert again["per_criterion"]["tone"]["n_prompts"] == tone["n_prompts"] == po.total - po.automatic_ties
    assert again["per_criterion"]["tone"]["difference"] == pytest.approx(tone["difference"])
    assert again["per_criterion"]["tone"]["wilcoxon_p"] == pytest.approx(tone["wilcoxon_p"])
    assert again["per_criterion"]["tone"]["wilcoxon_p_holm"] == pytest.approx(tone["wilcoxon_p_holm"])
    assert again["agreement"]["krippendorff_alpha"] == pytest.approx(summary.agreement["krippendorff_alpha"])
    assert again["agreement"]["cohens_kappa"] == pytest.approx(summary.agreement["cohens_kappa"])
    assert summary.agreement["calibration_pairs_rated_by_all"] == len(sessions.calibration_positions(db, rid))


def test_a_hand_counted_run(rated_db):
    """One rater (k = 1): tuned better on 9 prompts, base on 1, both bad on the rest.
    Wilson 9/10 by hand: centre (9 + 1.9208)/13.8415 = 0.7890, half-width
    1.95996·√(9·1/10 + 0.9604)/13.8415 = 0.1932 -> 0.5958 to 0.9821; sign test 22/1024;
    e-value B(10, 2)·2^10 = 1024/110 = 9.31, not significant."""
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    store.set_setting(db, "raters_per_pair", "1")
    session = sessions.start_session(db, rid, "Dana")
    for i, (position, left) in enumerate(session.order):
        prefer_tuned = i < 9
        verdict = "both_bad" if i >= 10 else ("A" if (left == "tuned") == prefer_tuned else "B")
        sessions.record_rating(db, session, position, verdict)
    summary = stats.summarize(db, rid)
    rest = len(session.order) - 10
    po = summary.prompt_outcomes
    assert (po.wins, po.losses, po.ties - po.automatic_ties, po.both_bad) == (9, 1, 0, rest)
    assert summary.win_rate_ci == pytest.approx((0.5958, 0.9821), abs=1e-4)
    assert summary.sign_test_p == pytest.approx(22 / 1024)
    assert summary.e_value == pytest.approx(1024 / 110) and not summary.significant
    assert f"on {rest} neither model got it right (both bad)" in summary.verdict_text
    assert "includes 50 %" in summary.verdict_text and "9.3" in summary.verdict_text
    markdown = export.render(db, rid, "md", "admin")
    assert f"| prompts | 9 | 1 | {po.ties} ({po.automatic_ties}) | {rest} |" in markdown
    assert f"Prompts neither model got right (both bad): {rest} of {po.total}" in markdown


def test_an_entered_outcome_cannot_change(rated_db):
    """A prompt enters the e-value at its k-th vote (k as when rating started) with the mean of its
    first k votes; a later rater's vote on a calibration prompt and an edit leave it as it was."""
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    store.set_setting(db, "raters_per_pair", "1")
    dana = sessions.start_session(db, rid, "Dana")
    store.set_setting(db, "raters_per_pair", "3")  # changed after rating started: entries keep k = 1
    assert sessions.planned_raters_per_pair(db, rid) == 1
    position = next(iter(sessions.calibration_positions(db, rid)))
    left = dict(dana.order)[position]
    tuned, base = ("A", "B") if left == "tuned" else ("B", "A")
    sessions.record_rating(db, dana, position, tuned)
    assert sessions.evalue_entries(db, rid) == {position: 1.0}
    sam = sessions.start_session(db, rid, "Sam")
    sam_left = dict(sam.order)[position]
    sessions.record_rating(db, sam, position, "A" if sam_left == "base" else "B")  # Sam: base better
    sessions.record_rating(db, dana, position, base)  # Dana changes her mind
    assert sessions.evalue_entries(db, rid) == {position: 1.0}
    summary = stats.summarize(db, rid)
    assert summary.prompt_outcomes.losses == 1  # the prompt as it stands now: both votes say base
    assert (summary.entered_wins, summary.entered_losses) == (1, 0)  # the test: as it entered


def test_json_export_is_strict_at_extreme_counts(rated_db):
    import dataclasses
    import math

    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    session = sessions.start_session(db, rid, "Dana")
    sessions.record_rating(db, session, session.order[0][0], "A")
    huge = stat_tests.log_e_value(1100, 0) / math.log(10)
    summary = dataclasses.replace(stats.summarize(db, rid), e_value=stat_tests.e_value(1100, 0), log10_e_value=huge,
                                  agreement={"calibration_pairs_rated_by_two": 2, "calibration_pairs_rated_by_all": 2,
                                             "raters": ["Dana", "Sam"], "percent_agreement": 1.0,
                                             "krippendorff_alpha": float("nan"), "cohens_kappa": float("nan")})
    text = export.render(db, rid, "json", "admin", summary)

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    data = json.loads(text, parse_constant=refuse)
    # 1100·log10 2 − log10 1101 = 331.13 − 3.04 = 328.09
    assert data["e_value"] is None and data["log10_e_value"] == pytest.approx(328.09, abs=0.01)
    assert "> 10^6" in export.render(db, rid, "md", "admin", summary)


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


def test_each_adapter_is_scored_against_the_shared_base_on_one_scale(rated_db, random_adapter):
    db = store.connect(rated_db)
    first = runs.list_runs(db)[0]
    second = runs.import_adapter(db, random_adapter, first.dataset_version_id)
    db.execute("INSERT INTO generations (run_id, position, prompt_json, reference, side, text, settings_json, created_at) "
               "SELECT ?, position, prompt_json, reference, side, text || (CASE side WHEN 'tuned' THEN ' x' ELSE '' END), "
               "settings_json, created_at FROM generations WHERE run_id = ?", [second.id, first.id])
    publish_generations(db, second.id)
    rate_everything(db, first.id, ["Dana"], lambda r, i, left: "A" if (left == "tuned") == (i % 4 != 0) else "B")
    # Another rater: Dana's revealed answers of the first run label the second's base answers (issue 23).
    rate_everything(db, second.id, ["Riley"], lambda r, i, left: "A" if (left == "tuned") == (i % 4 == 0) else "B")
    dataset_id = versions.version_by_id(db, first.dataset_version_id).dataset_id
    for run_id in (first.id, second.id):  # the multi-run table ranks final votes only
        sessions.close_rating(db, run_id, actor="admin")
    scores = {s["run"]: s for s in standings.scores_against_base(db, dataset_id, "admin")}
    # The score is the run's own summary score (prompt level, identical pairs as ties).
    assert scores[first.id]["score"] == pytest.approx(stats.summarize(db, first.id).score)
    assert scores[first.id]["log_odds"] > 0 > scores[second.id]["log_odds"]
    low, high = scores[first.id]["score_ci"]
    assert low <= scores[first.id]["score"] <= high
    # Reusable on any list of per-prompt outcomes: 3 of 4 prompts won -> 0.75, log((3.5)/(1.5)).
    row = standings.run_score([1.0, 1.0, 1.0, 0.0])
    assert row["score"] == 0.75 and row["log_odds"] == pytest.approx(math.log(3.5 / 1.5))


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
        "<h2>Appendix: how sure we are</h2>") < page.index("Appendix: where this result comes from")
    assert page.index("Anytime-valid test") > page.index("Appendix")
    assert "Rated blind by 1 rater (Dana)" in page and "@media print" in page and "break-before:page" in page
    assert '"run_config"' not in page and "Dataset fingerprint (sha256)" in page
    assert "<title>Evaluation of run" not in page
    markdown = export.render(db, rid, "md", "admin")
    assert "~~~~text\n<img src=x onerror=alert(1)> ~ ~ ~ ~ [link](http://203.0.113.9)\n~~~~" in markdown


def test_automatic_checks_are_explained_in_plain_words():
    rows = report_format.checks_table({"pairs": 20, "convention_base": 0, "convention_tuned": 20, "mean_words_base": 51.2,
                               "mean_words_tuned": 30.9, "mean_words_reference": 31.0, "general_loss_base": 3.1,
                               "general_loss_tuned": 3.4})
    by_check = {r["check"]: r for r in rows}
    assert by_check["Follows the output convention"]["tuned"] == "20/20"
    assert "forgetting" in by_check["Forgetting probe (general-text loss)"]["what it tells you"]
    assert by_check["Mean length (words)"]["what it tells you"] == "the reference answers average 31 words"



def test_closed_labels_are_checked_against_the_reference_answers(rated_db):
    """Content, not only shape: per closed-set label, answers whose value is the reference's."""
    db = store.connect(rated_db)
    run = runs.list_runs(db)[0]
    pairs = answer_pairs.pairs(db, run.id)
    checks = stats.automatic_checks(db, run, pairs)
    agree = checks["labels_agree"]
    assert set(agree) == {"Category", "Priority"}  # the demo's closed sets; Summary and Reply are free text
    assert all(c["of"] == len(pairs) and 0 <= c["tuned"] <= c["of"] and 0 <= c["base"] <= c["of"] for c in agree.values())
    # The reference agrees with itself on every label: a pair whose answers are the references.
    mirrored = [dataclasses.replace(p, tuned_text=p.reference) for p in pairs]
    assert all(c["tuned"] == c["of"] for c in stats.automatic_checks(db, run, mirrored)["labels_agree"].values())
    rows = {r["check"]: r for r in report_format.checks_table(
        {"pairs": 4, "labels_agree": {"Category": {"base": 0, "tuned": 3, "of": 4}}})}
    assert rows["Category matches the reference"]["tuned"] == "3/4"


def test_a_summary_reads_each_table_once_and_is_a_pure_function_of_its_record(rated_db):
    """Issue 22, load once, compute pure: summarize reads the run, its version, its dataset and its
    pairs once each; the loaded record alone then gives the summary, with the database closed."""
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    rate_everything(db, rid, ["Dana"], lambda r_index, i, left: "A" if left == "tuned" else "B")
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    summary = stats.summarize(db, rid)
    db.conn.set_trace_callback(None)
    flat = [" ".join(s.lower().replace("[", "").replace("]", "").replace('"', "").split()) + " " for s in statements]
    reads = {table: sum(f"from {table} " in s for s in flat)
             for table in ("runs", "dataset_versions", "datasets", "generations")}
    assert reads == {"runs": 1, "dataset_versions": 1, "datasets": 1, "generations": 1}, reads
    record = stats.load_record(db, rid)
    db.conn.close()
    again = stats.summarize_record(record)
    assert again.to_dict() == summary.to_dict()


def test_a_hand_built_record_gives_hand_counted_numbers(rated_db):
    """Three prompts, one rater: tuned, tuned, base. Hand-counted: W=2, L=1, win rate 2/3; all three
    entered, so the e-value is B(3, 2)·2^3 = (1/12)·8 = 2/3 and the sign test p = 1."""
    db = store.connect(rated_db)
    record = stats.load_record(db, runs.list_runs(db)[0].id)
    db.conn.close()
    pairs = [dataclasses.replace(p, base_text=f"base {p.position}", tuned_text=f"tuned {p.position}")
             for p in record.pairs[:3]]
    ratings = [sessions.Rating(record.run.id, p.position, "Dana", "A", "A", preferred, {}, "", 3.0,
                               f"2026-12-03T10:0{i}:00+00:00")
               for i, (p, preferred) in enumerate(zip(pairs, ("tuned", "tuned", "base")))]
    summary = stats.summarize_record(dataclasses.replace(
        record, pairs=pairs, ratings=ratings, evalue_entries={p.position: v for p, v in zip(pairs, (1.0, 1.0, 0.0))}))
    assert (summary.prompt_outcomes.wins, summary.prompt_outcomes.losses) == (2, 1)
    assert summary.win_rate == pytest.approx(2 / 3)
    assert summary.e_value == pytest.approx(2 / 3)
    assert summary.sign_test_p == pytest.approx(1.0)
    assert summary.lineage["raters"] == ["Dana"]
    assert summary.lineage["first_rating"] == "2026-12-03T10:00:00+00:00"
    assert summary.lineage["last_rating"] == "2026-12-03T10:02:00+00:00"
