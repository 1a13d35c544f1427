"""Preference data from a run's blind ratings: chosen and rejected answers per prompt (issues 27, 28).

The rule, one place: a prompt (not a vote) is one observation. Its votes are counted by model
(`preferred`, stored at write time). Votes for both models: a disagreement, left out. Otherwise the
model every decisive vote preferred is chosen when those votes are a strict majority of the prompt's
votes; if not, the prompt is left out as a tie or as both-bad, whichever had more votes (a tie on
that count is called a tie). Answers flagged as possible personal data are left out.
A correction ("Make this a training example", a draft example tagged `from-rating-run-N` whose
prompt is the pair's prompt) is chosen over the rejected answer of a decided prompt, and over both
answers of a prompt the votes did not decide. Corrections not yet PII-scanned clean stay out.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from core.curation import datasets, examples
from core.pii import review, scan
from core.rating import blinding, sessions
from core.rating import pairs as answer_pairs
from core.training import runs, versions
from core.training.rounds import PreferencePair

LEFT_OUT_REASONS = ("tie", "both_bad", "disagreement", "unrated", "pii_flagged", "correction_not_scanned")


@dataclass(frozen=True)
class PreferenceSet:
    run_id: int
    pairs: list[PreferencePair]
    left_out: dict[str, int] = field(default_factory=dict)  # prompts (or corrections) per reason
    votes_sha256: str = ""  # the votes it was built from: lineage on the round's card

    @property
    def corrections(self) -> int:
        return sum(p.source == "correction" for p in self.pairs)


def votes_sha256(db: sqlite_utils.Database, run_id: int) -> str:
    """A hash of every vote of the run (pair, rater, preferred model): changes with any vote."""
    rows = [[r.position, r.rater, r.preferred] for r in sessions.ratings_for_run(db, run_id)]
    return hashlib.sha256(json.dumps(sorted(rows)).encode()).hexdigest()


def decide(preferred: list[str]) -> str:
    """A prompt's outcome from its votes' preferred models: 'base', 'tuned', or a LEFT_OUT reason."""
    if not preferred:
        return "unrated"
    counts = Counter(preferred)
    if counts["base"] and counts["tuned"]:
        return "disagreement"
    model = "tuned" if counts["tuned"] else "base"
    if counts[model] * 2 > len(preferred):
        return model
    return "both_bad" if counts["both_bad"] > counts["tie"] else "tie"


def build(db: sqlite_utils.Database, run_id: int, *, viewer: str = "") -> PreferenceSet:
    """The run's preference set. Who may build it follows the blinding rule (it shows the outcome)."""
    blinding.open_outcome(db, run_id, viewer)
    by_position: dict[int, list[str]] = {}
    for rating in sessions.ratings_for_run(db, run_id):
        by_position.setdefault(rating.position, []).append(rating.preferred)
    left_out: Counter[str] = Counter()
    chosen_by_votes: dict[int, PreferencePair] = {}
    undecided: dict[int, answer_pairs.Pair] = {}
    candidates = {p.position: p for p in answer_pairs.pairs(db, run_id) if not p.identical}
    for position, pair in candidates.items():
        outcome = "pii_flagged" if "pii" in pair.flags else decide(by_position.get(position, []))
        if outcome in ("base", "tuned"):
            texts = {"base": pair.base_text, "tuned": pair.tuned_text}
            other = "base" if outcome == "tuned" else "tuned"
            chosen_by_votes[position] = PreferencePair(position, pair.prompt, texts[outcome], texts[other], "votes")
        else:
            left_out[outcome] += 1
            if outcome != "pii_flagged":
                undecided[position] = pair
    result = dict(chosen_by_votes)
    extra: list[PreferencePair] = []
    for position, answer in _corrections(db, run_id, candidates, left_out).items():
        if position in chosen_by_votes:
            voted = chosen_by_votes[position]
            result[position] = PreferencePair(position, voted.prompt, answer, voted.rejected, "correction")
        elif position in undecided:
            pair = undecided[position]
            extra += [PreferencePair(position, pair.prompt, answer, text, "correction")
                      for text in (pair.base_text, pair.tuned_text)]
    ordered = sorted([*result.values(), *extra], key=lambda p: (p.position, p.rejected))
    return PreferenceSet(run_id, ordered, {r: left_out[r] for r in LEFT_OUT_REASONS},
                         votes_sha256(db, run_id))


def _corrections(db: sqlite_utils.Database, run_id: int, candidates: dict[int, answer_pairs.Pair],
                 left_out: Counter[str]) -> dict[int, str]:
    """Position -> the newest corrected answer written from this run's pairs, if scanned clean."""
    run = runs.get_run(db, run_id)
    dataset = datasets.get_dataset(db, versions.version_by_id(db, run.dataset_version_id).dataset_id)
    by_prompt = {json.dumps(p.prompt, sort_keys=True): pos for pos, p in candidates.items()}
    config_hash = scan.current_config(db).hash
    scanned = {r[0] for r in db.execute("SELECT content_hash FROM pii_scans WHERE config_hash = ?", [config_hash])}
    with_findings = {f.example_id for f in review.open_findings(db, dataset.id)}
    found: dict[int, str] = {}
    for example in examples.all_examples(db, dataset.id):  # oldest first: the newest correction wins
        if f"from-rating-run-{run_id}" not in example.tags or example.messages[-1]["role"] != "assistant":
            continue
        position = by_prompt.get(json.dumps(example.messages[:-1], sort_keys=True))
        if position is None:
            continue  # edited since: its prompt is no longer one of the run's pairs
        if example.content_hash not in scanned or example.id in with_findings:
            left_out["correction_not_scanned"] += 1
            continue
        found[position] = example.messages[-1]["content"]
    return found


def to_jsonl(pref: PreferenceSet) -> str:
    """One JSON object per line in trl's conversational preference layout."""
    return "".join(json.dumps(p.to_trl(), ensure_ascii=False) + "\n" for p in pref.pairs)


def export_hf_folder(pref: PreferenceSet, folder: Path) -> Path:
    """A Hugging Face dataset folder: data/train.parquet and a dataset card with the lineage.
    `datasets.load_dataset(str(folder))` reads it back."""
    from datasets import Dataset

    if not pref.pairs:
        raise ValueError("The preference set is empty: nothing to export.")
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    Dataset.from_list([p.to_trl() for p in pref.pairs]).to_parquet(str(folder / "data" / "train.parquet"))
    left = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in pref.left_out.items() if v) or "none"
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.parquet\n---\n"
        f"# Preference pairs from the blind ratings of run {pref.run_id}\n\n"
        f"- Pairs: {len(pref.pairs)} ({pref.corrections} with a rater's correction as the chosen answer)\n"
        f"- Left out (prompts): {left}\n- Votes sha256: {pref.votes_sha256}\n\n"
        "Layout: trl's conversational preference format (`prompt` as messages, `chosen` and `rejected` "
        "as one assistant message each), as `trl.DPOTrainer` reads it.\n", encoding="utf-8")
    return folder
