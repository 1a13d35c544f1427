"""After the reveal, a preference round rated against its parent is reported with both runs' names,
never as "base" and "tuned" (issue 28)."""

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from core.models import generation
from core.platform import store
from core.rating import pairs as answer_pairs
from core.rating import sessions
from core.reports import charts, export, standings
from core.reports import summary as stats
from core.training import rounds, runs, versions
from tests.conftest import publish_generations

REPO = Path(__file__).resolve().parent.parent


def round_rated_against_its_parent(db, wins: int = 10) -> tuple[int, int]:
    """A preference round (as if trained: its adapter is the parent's) whose hand-written answers on
    the held-out prompts it never saw were rated blind, then closed: the round preferred on `wins`
    prompts, the parent on 1."""
    parent = runs.list_runs(db)[0]
    learned = [rounds.PreferencePair(p.position, p.prompt, p.tuned_text, p.base_text, "votes")
               for p in answer_pairs.pairs(db, parent.id)[:5]]
    made = rounds.start_round(db, parent.id, learned, rating_run_id=parent.id, votes_sha256="ab" * 32,
                              actor="boss", launch=False)
    runs.finish_run(db, made, {"status": "succeeded", "adapter_path": parent.adapter_path,
                               "adapter_sha256": parent.adapter_sha256}, "")
    unseen = answer_pairs.prompts_to_answer(db, runs.get_run(db, made.id))
    with store.transaction(db):
        for position, messages in unseen:
            for side, text in (("base", f"Parent answer {position}."), ("tuned", f"Round answer {position}.")):
                db.table("generations").insert({
                    "run_id": made.id, "position": position,
                    "prompt_json": json.dumps(generation.prompt_of(messages)[0]),
                    "reference": generation.prompt_of(messages)[1], "side": side, "text": text, "settings_json": "{}",
                    "created_at": store.now()})
    publish_generations(db, made.id)
    session = sessions.start_session(db, made.id, "Sam")
    placed = dict(session.order)
    for i, (position, _) in enumerate(unseen[:wins + 1]):
        choice = "base" if i == wins else "tuned"
        sessions.record_rating(db, session, position, "A" if placed[position] == choice else "B")
    sessions.close_rating(db, made.id, actor="boss")
    return made.id, parent.id


def test_round_vs_parent_reports_name_both_runs(rated_db):
    db = store.connect(rated_db)
    made, parent = round_rated_against_its_parent(db)
    summary = stats.summarize(db, made)
    assert summary.prompt_outcomes.wins == 10 and summary.prompt_outcomes.losses == 1
    assert summary.names == {"tuned": f"run {made}", "base": f"run {parent}",
                             "tuned_model": f"run {made} (the preference round)",
                             "base_model": f"run {parent} (its parent)"}
    # 10 won, 1 lost: e-value B(11, 2)·2^11 = 2048/132 ≈ 15.5 < 20: not conclusive.
    assert summary.verdict_text.startswith(
        f"Of 11 prompts, run {made} (the preference round) was better on 10, run {parent} (its parent) on 1,")
    assert summary.verdict_text.endswith("Whether the preference round helped is not settled yet.")

    md = export.render(db, made, "md", "boss")
    assert f"does run {made} (the preference round) answer better than run {parent} (its parent)?" in md
    assert f"| unit | run {made} better | run {parent} better |" in md
    assert f"| criterion | run {parent} | run {made} |" in md
    assert "base model" not in md.lower() and "tuned" not in md.lower()

    html = export.render(db, made, "html", "boss")
    assert f"run {made} (the preference round)&#x27;s answer was preferred on 10" in html.lower()
    assert f"run {made} better: 10" in html and f"run {parent} better: 1" in html
    # "base model" only where the base model itself is meant: the byline and the lineage row.
    assert html.lower().count("base model") == 2
    assert f"from run {parent}&#x27;s adapter, on the blind votes of run {parent}" in html
    assert "tuned" not in html.replace("class='tuned'", "").replace(".tuned{", "").lower()

    rows = list(csv.DictReader(io.StringIO(export.render(db, made, "csv", "boss"))))
    assert sorted(r["preferred_model"] for r in rows) == [f"run {parent}"] + [f"run {made}"] * 10
    assert {r["shown_as_A_model"] for r in rows} <= {f"run {parent}", f"run {made}"}

    summary_json = json.loads(export.render(db, made, "json", "boss"))
    assert summary_json["names"]["base_model"] == f"run {parent} (its parent)"
    assert summary_json["definitions"]["win_rate"] == (f"decisive prompts won by run {made} (the preference round) "
                                                       "/ all decisive prompts")
    assert list(charts.outcome_bars(summary).data[0].x[:2]) == [f"Run {made} better", f"Run {parent} better"]
    # The CLI summary is the same export.
    out = subprocess.run([sys.executable, "-m", "core", "--db", str(rated_db), "summary", "--run", str(made), "--format", "md"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"run {made} (the preference round) was better on 10" in out.stdout and "tuned" not in out.stdout


def test_a_round_that_won_says_it_helped(rated_db):
    db = store.connect(rated_db)
    made, parent = round_rated_against_its_parent(db, wins=12)
    # 12 won, 1 lost: e-value B(13, 2)·2^13 = 8192/182 ≈ 45 ≥ 20.
    text = stats.summarize(db, made).verdict_text
    assert f"Run {made} (the preference round) is better than run {parent} (its parent)" in text
    assert text.endswith("The preference round helped.")


def test_base_runs_keep_their_familiar_wording(rated_db):
    db = store.connect(rated_db)
    parent = runs.list_runs(db)[0]
    md = export.render(db, parent.id, "md", "boss")
    assert "does the tuned model answer better?" in md and "| unit | tuned better | base better |" in md


def test_bradley_terry_across_base_parent_and_round(rated_db):
    """Base vs run 1 (3 prompts won, 1 lost, plus the identical pairs as ties) and run 2 vs run 1
    (10 won, 1 lost): a chain, so the MLE is each link's log win ratio, ties as half a win each."""
    db = store.connect(rated_db)
    parent = runs.list_runs(db)[0]
    pairs = answer_pairs.pairs(db, parent.id)
    session = sessions.start_session(db, parent.id, "Dana")
    placed = dict(session.order)
    rateable = [p.position for p in pairs if not p.identical and "pii" not in p.flags]
    for position, choice in zip(rateable, ("tuned", "tuned", "tuned", "base")):
        sessions.record_rating(db, session, position, "A" if placed[position] == choice else "B")
    sessions.close_rating(db, parent.id, actor="boss")
    made, _ = round_rated_against_its_parent(db)
    ties = sum(p.identical for p in pairs)
    dataset_id = versions.version_by_id(db, parent.dataset_version_id).dataset_id
    table = {row["model"]: row for row in standings.strengths(db, dataset_id, "boss")}
    base = f"base model ({parent.base_model})"
    first = math.log((3 + ties / 2) / (1 + ties / 2))
    assert table[base]["strength"] == 0.0
    assert table[f"run {parent.id}"]["strength"] == pytest.approx(first, abs=1e-8)
    assert table[f"run {made}"]["strength"] == pytest.approx(first + math.log(10), abs=1e-8)
    assert table[f"run {made}"]["compared_prompts"] == 11


def test_a_rater_of_the_parent_may_rate_the_round_against_it(rated_db):
    """The base-model family rule (issue 23) does not reach a round rated against its parent: Sam
    rated the parent to the end, then rates the round (issue 28's loop, same team)."""
    db = store.connect(rated_db)
    parent = runs.list_runs(db)[0]
    session = sessions.start_session(db, parent.id, "Sam")
    for position, _left in session.order:
        sessions.record_rating(db, session, position, "tie")
    assert sessions.progress(db, session)[0] == sessions.progress(db, session)[1]
    made, _ = round_rated_against_its_parent(db)
    assert stats.summarize(db, made).prompt_outcomes.wins == 10
