"""Times a user can plan around: how busy this machine is, and one smoothed time left for a running run.

Issue 25: the estimate said 2 min 30 s and the run took 27 min 51 s on a busy machine; "time left"
grew with every noisy step, and the queue said "~1 min" while the run panel said "measuring…".
So the pre-launch estimate is scaled by what the machine is doing now, and `time_left` is the one
function that both the queue (core.jobs.queue) and the run panel (pages/train.py) call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.training.config import Estimate
    from core.training.runs import RunEvent, TrainingRun

# A share of a core counts as busy from here; below it a process is background noise.
HEAVY_PROCESS_CORES = 0.5
# From this slowdown on the estimate says the machine is busy.
BUSY_SLOWDOWN = 1.3
# Weight of the newest step in the smoothed step time: a noisy step moves the estimate by a third of
# its deviation, while a machine that really slowed down shows within a few steps.
STEP_SMOOTHING = 0.3


@dataclass(frozen=True)
class MachineLoad:
    """What the machine is doing besides us, measured just before launch."""
    cores: int  # cores this process may use (its CPU affinity, not the machine's count)
    busy_cores: float  # cores kept busy by other work (1-minute load, or measured CPU use if higher)
    heavy: tuple[tuple[str, float], ...] = ()  # other heavy processes: (name, cores it uses)

    @property
    def slowdown(self) -> float:
        """Expected factor on a quiet machine's duration. Training wants every core; with `busy`
        cores' worth of other runnable work the scheduler gives it about cores / (cores + busy) of
        the machine, so it takes (cores + busy) / cores as long."""
        return (self.cores + max(0.0, self.busy_cores)) / max(1, self.cores)

    @property
    def busy(self) -> bool:
        return self.slowdown >= BUSY_SLOWDOWN

    def sentence(self) -> str:
        """The machine in one sentence, for the Train page and the CLI."""
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        if not self.busy:
            return f"This machine is quiet ({cores} for training, {self.busy_cores:.1f} busy with other work)."
        heavy = ", ".join(f"{name} ({share:.1f} cores)" for name, share in self.heavy[:3])
        # One decimal below 2×: "about 1× longer" beside "busy" read as a contradiction (bench walk).
        factor = f"{self.slowdown:.1f}".removesuffix(".0") if self.slowdown < 2 else f"{self.slowdown:.0f}"
        return (f"This machine is busy: expect about {factor}× longer "
                f"({self.busy_cores:.1f} of its {cores} are busy with other work"
                + (f": {heavy}" if heavy else "") + ").")


def machine_load(sample_s: float = 1.0, heavy_from: float = HEAVY_PROCESS_CORES) -> MachineLoad:
    """Measure the machine now (psutil): usable cores, load, and the other processes using CPU."""
    import psutil

    me = psutil.Process()
    try:
        cores = len(me.cpu_affinity() or []) or (os.cpu_count() or 1)
    except (AttributeError, psutil.Error):  # macOS and Windows have no affinity
        cores = os.cpu_count() or 1
    others = [p for p in psutil.process_iter(["name"]) if p.pid != me.pid]
    for p in others:
        try:
            p.cpu_percent(None)  # the first call starts the measurement
        except psutil.Error:
            pass
    import time

    time.sleep(sample_s)
    heavy: list[tuple[str, float]] = []
    used = 0.0
    for p in others:
        try:
            share = p.cpu_percent(None) / 100
        except psutil.Error:  # ended meanwhile
            continue
        used += share
        if share >= heavy_from:
            heavy.append((str(p.info.get("name") or p.pid), round(share, 1)))
    # Measured CPU use only, never the load average: it lags a minute both ways, and right after a
    # run ends it still counts that run (docs/BENCHMARKS.md section 0c: a quiet machine read as 1.9× busy and the
    # estimate came out twice the measured time).
    return MachineLoad(cores, round(used, 1), tuple(sorted(heavy, key=lambda h: -h[1])))


def on_this_machine(estimate: Estimate, load: MachineLoad) -> Estimate:
    """The pre-launch estimate scaled by how busy the machine is now, its basis saying so."""
    if not load.busy:
        return replace(estimate, basis=estimate.basis + "; " + load.sentence().rstrip("."))
    return replace(estimate, duration_s=round(estimate.duration_s * load.slowdown),
                   tokens_per_s=round(estimate.tokens_per_s / load.slowdown, 1),
                   basis=estimate.basis + "; " + load.sentence().rstrip("."))


@dataclass(frozen=True)
class TimeLeft:
    elapsed_s: float
    left_s: float | None  # None: nothing to go on yet (no step timed and no estimate)
    basis: str  # "measured" (smoothed step times) or "estimate" (the pre-launch estimate)
    finish_at: datetime | None = None  # local time of day it should finish

    def sentence(self, at_most: bool = False) -> str:
        """"about 4 min 10 s left, finishes around 10:42" — the same words wherever time left is shown."""
        if self.left_s is None:
            return "time left: measuring…"
        left = duration_words(self.left_s)
        finish = f", finishes around {self.finish_at:%H:%M}" if self.finish_at else ""
        if at_most:
            return f"at most {left} left{finish} (early stopping may end it sooner)"
        return f"about {left} left{finish}" + (" (pre-launch estimate)" if self.basis == "estimate" else "")


def duration_words(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def smoothed_step_s(stamps: list[tuple[int, float]]) -> float | None:
    """Seconds per optimizer step, exponentially weighted over (step, time) pairs in order; None
    until two steps have been timed."""
    per_step: float | None = None
    for (step_a, time_a), (step_b, time_b) in zip(stamps, stamps[1:], strict=False):
        if step_b <= step_a:
            continue
        sample = (time_b - time_a) / (step_b - step_a)
        per_step = sample if per_step is None else STEP_SMOOTHING * sample + (1 - STEP_SMOOTHING) * per_step
    return per_step


def time_left(run: TrainingRun, events: list[RunEvent], now_s: float) -> TimeLeft:
    """Seconds since the run started and seconds left: smoothed measured step times once two steps
    are timed, counting down between steps; before that, the pre-launch estimate less the time
    spent. The queue and the run panel both show this, so they never contradict each other."""
    started = datetime.fromisoformat(run.started_at).timestamp() if run.started_at else now_s
    elapsed = max(0.0, now_s - started)
    timed = [(e.step, datetime.fromisoformat(e.created_at).timestamp()) for e in events
             if e.loss is not None and e.created_at]
    per_step = smoothed_step_s(timed)
    left: float | None
    if per_step is not None and run.total_steps:
        last_step, last_time = timed[-1]
        # Count down between steps, but never below the steps that remain after the current one.
        remaining = max(0, run.total_steps - last_step)
        left = max(max(0, remaining - 1) * per_step, remaining * per_step - max(0.0, now_s - last_time))
        basis = "measured"
    elif run.estimated_s:
        left, basis = max(0.0, run.estimated_s - elapsed), "estimate"
    else:
        return TimeLeft(elapsed, None, "")
    return TimeLeft(elapsed, left, basis, datetime.fromtimestamp(now_s + left))
