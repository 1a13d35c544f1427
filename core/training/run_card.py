"""A finished run in words (what was learnt, how long, why it stopped, what next) and a readable log.

Issue 25: the run panel showed raw metrics JSON with nulls and a log tail of tqdm bars and
FutureWarnings. Domain experts read this card; the raw numbers stay behind "technical details".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.training.config import FORMAT_TARGET
from core.training.eta import duration_words
from core.training.runs import RunEvent, TrainingRun

# Progress bars redraw with carriage returns and block characters; warnings come as a
# "...Warning: ..." line followed by the indented source line that raised them.
_BAR = re.compile(r"\d+%\|.*\|")
_WARNING = re.compile(r"\b\w*Warning\b:")


@dataclass(frozen=True)
class RunCard:
    learnt: str
    duration: str
    stopped: str
    next_step: str

    def lines(self) -> list[tuple[str, str]]:
        return [("What it learnt", self.learnt), ("How long", self.duration),
                ("Why it stopped", self.stopped), ("What to do next", self.next_step)]


def _loss_words(events: list[RunEvent], metrics: dict) -> str:
    losses = [e.loss for e in events if e.loss is not None]
    parts = []
    if len(losses) >= 2:
        change = "fell" if losses[-1] < losses[0] else "did not fall"
        parts.append(f"Its training loss {change} from {losses[0]:.2f} to {losses[-1]:.2f} "
                     "(lower means the answers in the training examples became more predictable to it)")
    elif metrics.get("train_loss") is not None:
        parts.append(f"Its average training loss was {metrics['train_loss']:.2f}")
    if metrics.get("eval_loss") is not None:
        parts.append(f"on held-out examples it never trained on, the loss was {metrics['eval_loss']:.2f}")
    curve = metrics.get("behaviour_curve") or []
    last = next((c for c in reversed(curve) if c.get("compliant") is not None), None)
    if last:
        parts.append(f"at the last check {last['compliant']} of {last['probed']} held-out answers kept the "
                     "dataset's output format" + (
                         f", and {last['agreement']:.0%} of their closed-set values (such as a category) were the "
                         "reference answer's" if last.get("agreement") is not None else ""))
    if metrics.get("time_to_format_s") is not None:
        parts.append(f"it first kept the format after {duration_words(metrics['time_to_format_s'])}")
    return ("; ".join(parts) + ".") if parts else "Nothing measured yet."


def _round_words(run: TrainingRun, events: list[RunEvent]) -> str:
    """A preference round learns from votes, not examples: its lineage, then its DPO loss."""
    m = run.metrics
    pairs = "the" if m.get("preference_pairs") is None else str(m["preference_pairs"])
    corrections = f" ({m['corrections']} with a rater's correction as the chosen answer)" if m.get("corrections") else ""
    parts = [f"A preference round: it continues run {run.parent_run_id}'s adapter on {pairs} preference pairs"
             f"{corrections} from the blind votes of run {run.rating_run_id} (votes sha256 {run.votes_sha256[:12]})"]
    losses = [e.loss for e in events if e.loss is not None]
    if len(losses) >= 2:
        change = "fell" if losses[-1] < losses[0] else "did not fall"
        parts.append(f"its preference loss {change} from {losses[0]:.2f} to {losses[-1]:.2f} (lower means it "
                     "prefers the chosen answers over the rejected ones more surely than its parent did)")
    return "; ".join(parts) + "."


def describe(run: TrainingRun, events: list[RunEvent]) -> RunCard:
    """The card for a finished run. Sentences only say what the record holds; missing numbers are
    left out rather than shown as null."""
    m = run.metrics
    if m.get("duration_s") is not None:
        speed = f" at {m['tokens_per_s']:.0f} training tokens a second" if m.get("tokens_per_s") else ""
        # A preference round records the pairs it learnt from, an SFT run its examples (issue 28).
        over = (f" over {m['preference_pairs']} preference pairs" if m.get("preference_pairs") is not None
                else f" over {m['train_examples']} examples" if m.get("train_examples") is not None else "")
        duration = f"{duration_words(m['duration_s'])} of training, {m.get('steps', '?')} steps{over}{speed}."
        if run.estimated_s:
            duration += f" Estimated before launch: {duration_words(run.estimated_s)}."
    else:
        duration = "It did not get to train."
    stopped = {
        "succeeded": ("It stopped early: " + str(m["stopped_early"]) if m.get("stopped_early")
                      else "It completed its planned steps."),
        "cancelled": "It was cancelled; the adapter saved at that point is kept.",
        "failed": "It failed: " + (run.error.split("\n\n")[0] if run.error else "no message was recorded."),
        "interrupted": "Its process ended without recording an end (the studio or the machine stopped).",
    }.get(run.status, f"It is {run.status}.")
    next_step = {
        "succeeded": "Generate answers and rate them blind on the Rate page; Results then says whether it helps.",
        "cancelled": "Resume it to finish training, or start a new run with other settings.",
        "failed": "Read the technical details below, fix the cause, then resume or start a new run.",
        "interrupted": "Resume it: it continues from its last checkpoint.",
    }.get(run.status, "Wait for it to finish.")
    kept = m.get("kept_check") if run.status == "succeeded" else None
    if kept:
        stopped += (f" It kept the adapter of its best check, step {kept['step']} ({kept['compliant']} of "
                    f"{kept['probed']} held-out answers in the format"
                    + (f", {kept['agreement']:.0%} of closed-set values right" if kept.get("agreement") is not None else "")
                    + "): the last step's was worse.")
    short, advice = _format_short(m) if run.status == "succeeded" and not m.get("stopped_early") else ("", "")
    if short:
        stopped += " " + short
        next_step = advice + " " + next_step
    learnt = _round_words(run, events) if run.kind == "dpo" else _loss_words(events, m)
    return RunCard(learnt, duration, stopped, next_step)


def _format_short(metrics: dict) -> tuple[str, str]:
    """For a run that ended by its schedule with the format short of the margin at the check whose
    adapter it kept (the last one unless keep_best_check kept another): what happened, and what to do.
    The insurance bench set (issue 24) ended 3 epochs at 15 of 20, still rising."""
    checked = [c for c in metrics.get("behaviour_curve") or []
               if c.get("compliant") is not None and c.get("probed") and c.get("bound") is not None]
    which = "last"
    if metrics.get("kept_check"):
        checked, which = [c for c in checked if c["step"] <= metrics["kept_check"]["step"]], "kept"
    if not checked or checked[-1]["bound"] >= FORMAT_TARGET:
        return "", ""
    ended = checked[-1]
    held = next((c for c in checked if c["bound"] >= FORMAT_TARGET), None)
    if held is not None:
        return (f"The output format held with margin at step {held['step']} but not at the {which} check "
                f"({ended['compliant']} of {ended['probed']} held-out answers kept it).",
                "Train again with keep_best_check on (the default) to end with the best check's adapter, or rate "
                "this one knowing that part of its answers will not be in the format.")
    if ended["compliant"] == ended["probed"]:
        return (f"All {ended['probed']} probe answers kept the output format, but that many do not show it holds "
                "with margin for the whole held-out split.",
                "Probe more held-out prompts (probe_prompts; 0 answers all of them, up to 32).")
    first = checked[(len(checked) - 1) // 2]
    trend = (f", up from {first['compliant']} of {first['probed']} at step {first['step']}"
             if ended["compliant"] > first["compliant"] else "")
    return (f"Its schedule ended before the output format held with margin: {ended['compliant']} of "
            f"{ended['probed']} held-out answers kept it at the {which} check{trend}.",
            "Add training examples that show what the answers miss, or train longer (a new run with more epochs; "
            "the best check is kept), or rate this one knowing that part of its answers will not be in the format.")


def readable_log(text: str) -> str:
    """The log without progress bars and warnings (and the source line each warning quotes)."""
    kept: list[str] = []
    skip_source = False
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if skip_source and raw.startswith((" ", "\t")):
            skip_source = False
            continue
        skip_source = False
        if _WARNING.search(line):
            skip_source = True
            continue
        if not line or _BAR.search(line) or "it/s]" in line or "s/it]" in line:
            continue
        kept.append(line)
    return "\n".join(kept)
