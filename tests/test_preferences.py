"""Preference data from blind ratings: the per-prompt rule, corrections, lineage hash, trl's layout."""

import json

import pytest

from core.pii import scan
from core.platform import permissions, store
from core.rating import pairs as answer_pairs
from core.rating import preferences, sessions
from core.training import runs, versions


@pytest.mark.parametrize(("votes", "outcome"), [
    ([], "unrated"),
    (["tuned"], "tuned"),
    (["base", "base", "tie"], "base"),          # 2 of 3: a strict majority
    (["tuned", "tie"], "tie"),                  # 1 of 2 is not a majority
    (["tuned", "base"], "disagreement"),
    (["tuned", "tuned", "base"], "disagreement"),  # any vote for the other model
    (["tie", "tie"], "tie"),
    (["both_bad", "both_bad", "tie"], "both_bad"),
    (["both_bad", "tie"], "tie"),               # equal counts: called a tie
    (["tuned", "both_bad", "both_bad"], "both_bad"),
])
def test_prompt_outcome_from_its_votes(votes, outcome):
    assert preferences.decide(votes) == outcome


def vote(db, rater: str, position: int, choice: str) -> None:
    """A rater's vote for a model ('base'/'tuned') or 'tie'/'both_bad', through the blind screen."""
    session = sessions.start_session(db, runs.list_runs(db)[0].id, rater)
    side_a = dict(session.order)[position]
    verdict = choice if choice in ("tie", "both_bad") else ("A" if side_a == choice else "B")
    sessions.record_rating(db, session, position, verdict)


# Position index -> votes of Dana, Riley, Sam (None: no vote).
PLAN = {0: ("tuned", "tuned", "tuned"), 1: ("base", "base", "tie"), 2: ("tuned", "base", None),
        3: ("tie", "tie", "tie"), 4: ("both_bad", "both_bad", "tie"), 5: ("tuned", "tie", None)}


@pytest.fixture
def voted(rated_db):
    db = store.connect(rated_db)
    rid = runs.list_runs(db)[0].id
    # Answers the generation's PII scan flagged never become pairs: vote on the others.
    positions = [p.position for p in answer_pairs.pairs(db, rid) if not p.identical and "pii" not in p.flags]
    for index, choices in PLAN.items():
        for rater, choice in zip(("Dana", "Riley", "Sam"), choices):
            if choice:
                vote(db, rater, positions[index], choice)
    return db, rid, positions


def test_preference_set_from_hand_built_votes(voted):
    db, rid, positions = voted
    pref = preferences.build(db, rid, viewer="boss")
    by_position = {p.position: p for p in answer_pairs.pairs(db, rid)}
    first, second = by_position[positions[0]], by_position[positions[1]]
    assert [(p.position, p.chosen, p.rejected, p.source) for p in pref.pairs] == [
        (positions[0], first.tuned_text, first.base_text, "votes"),
        (positions[1], second.base_text, second.tuned_text, "votes")]
    assert pref.pairs[0].prompt == first.prompt
    flagged = sum(not p.identical and "pii" in p.flags for p in answer_pairs.pairs(db, rid))
    assert pref.left_out == {"tie": 2, "both_bad": 1, "disagreement": 1, "unrated": len(positions) - 6,
                             "pii_flagged": flagged, "correction_not_scanned": 0}
    assert len(pref.votes_sha256) == 64


def test_votes_hash_changes_with_a_vote_and_only_then(voted):
    db, rid, positions = voted
    before = preferences.votes_sha256(db, rid)
    assert preferences.votes_sha256(db, rid) == before
    vote(db, "Sam", positions[2], "tie")
    assert preferences.votes_sha256(db, rid) != before


def test_a_rater_still_rating_cannot_build_it(voted):
    db, rid, _positions = voted
    with pytest.raises(permissions.PermissionDenied, match="You are rating run"):
        preferences.build(db, rid, viewer="Dana")


def test_corrections_are_chosen_once_scanned(voted):
    db, rid, positions = voted
    pairs = {p.position: p for p in answer_pairs.pairs(db, rid)}
    fixed = "Category: Billing\nPriority: P2\nSummary: Refund sent.\nReply: We refunded you."
    sessions.make_training_example(db, rid, positions[0], fixed, author="ana")  # a decided prompt
    sessions.make_training_example(db, rid, positions[3], fixed, author="ana")  # a tie
    unscanned = preferences.build(db, rid, viewer="boss")
    assert unscanned.left_out["correction_not_scanned"] == 2 and unscanned.corrections == 0
    dataset_id = versions.version_by_id(db, runs.get_run(db, rid).dataset_version_id).dataset_id
    scan.scan_dataset(db, dataset_id)
    pref = preferences.build(db, rid, viewer="boss")
    got = {(p.position, p.chosen, p.rejected, p.source) for p in pref.pairs}
    assert got == {(positions[0], fixed, pairs[positions[0]].base_text, "correction"),
                   (positions[1], pairs[positions[1]].base_text, pairs[positions[1]].tuned_text, "votes"),
                   (positions[3], fixed, pairs[positions[3]].base_text, "correction"),
                   (positions[3], fixed, pairs[positions[3]].tuned_text, "correction")}
    assert pref.corrections == 3 and pref.left_out["tie"] == 2  # the tie still counts as left out by votes


def test_flagged_answers_stay_out(voted):
    db, rid, positions = voted
    db.execute("UPDATE generations SET flags_json = '[\"pii\"]' WHERE run_id = ? AND position = ? AND side = 'base'",
               [rid, positions[0]])
    pref = preferences.build(db, rid, viewer="boss")
    flagged = sum(not p.identical and "pii" in p.flags for p in answer_pairs.pairs(db, rid))
    assert [p.position for p in pref.pairs] == [positions[1]] and pref.left_out["pii_flagged"] == flagged


def test_export_is_read_back_by_datasets_and_trl(voted, tmp_path, model_dir):
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    db, rid, positions = voted
    pref = preferences.build(db, rid, viewer="boss")
    lines = [json.loads(line) for line in preferences.to_jsonl(pref).splitlines()]
    assert [row["chosen"] for row in lines] == [[{"role": "assistant", "content": p.chosen}] for p in pref.pairs]
    folder = preferences.export_hf_folder(pref, tmp_path / "prefs")
    assert f"Votes sha256: {pref.votes_sha256}" in (folder / "README.md").read_text()
    loaded = load_dataset(str(folder), split="train")
    assert len(loaded) == 2 and loaded[0]["prompt"] == pref.pairs[0].prompt
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    row = loaded[1]
    assert is_conversational(row)
    text = maybe_apply_chat_template(row, tokenizer)
    assert text["prompt"].endswith("<|im_start|>assistant\n")
    assert text["chosen"].startswith(pref.pairs[1].chosen) and text["rejected"].startswith(pref.pairs[1].rejected)


def test_cli_writes_the_pairs_and_counts(voted, rated_db, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    _db, rid, positions = voted
    target = tmp_path / "prefs.jsonl"
    out = subprocess.run([sys.executable, "-m", "core", "--db", str(rated_db), "preferences", str(rid),
                          "--out", str(target), "--json"], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["pairs"], data["left_out"]["disagreement"], data["left_out"]["tie"]) == (2, 1, 2)
    assert len(target.read_text().splitlines()) == 2
