"""Times a user can plan around (issue 25): the machine's load in the estimate, one smoothed time left
with a finish time of day, shown alike by the queue and the run panel. Hand-made step timings."""

import os
import subprocess
import sys
from datetime import datetime

from core.jobs import queue as work_queue
from core.pii import scan
from core.platform import processes
from core.training import eta, run_card, runs, versions
from core.training.config import Estimate, TrainingConfig

T0 = datetime.fromisoformat("2026-12-01T10:00:00+00:00").timestamp()


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds).astimezone().isoformat()


def a_run(total_steps: int = 20, estimated_s: float | None = None, **extra) -> runs.TrainingRun:
    return runs.TrainingRun(1, 1, "m", "small-data", TrainingConfig(), "running", 1, total_steps, False, None, None,
                            extra.pop("metrics", {}), "", "", "dana", "", "", stamp(0), stamp(0), None,
                            estimated_s=estimated_s, **extra)


def events_at(times: dict[int, float]) -> list[runs.RunEvent]:
    return [runs.RunEvent(step, None, 1.0, None, 1e-4, None, None, stamp(t)) for step, t in times.items()]


def test_one_slow_step_moves_time_left_by_a_third_of_its_deviation():
    # Steps of 10, 10, 10 s, then one of 30 s (the machine hiccupped), then 10 s again.
    events = events_at({1: 10, 2: 20, 3: 30, 4: 40, 5: 70, 6: 80})
    # Smoothed: 10, 10, 10, 0.3*30 + 0.7*10 = 16, 0.3*10 + 0.7*16 = 14.2 s a step.
    assert abs(eta.smoothed_step_s([(e.step, T0 + t) for e, t in zip(events, (10, 20, 30, 40, 70, 80))]) - 14.2) < 1e-9
    just_after_slow = eta.time_left(a_run(), events[:5], T0 + 70).left_s
    # 15 steps to go: 15 x 16 = 240 s, where the last step alone (30 s) would have said 450 s.
    assert just_after_slow == 240.0
    after = eta.time_left(a_run(), events, T0 + 80)
    assert abs(after.left_s - 14 * 14.2) < 1e-9 and after.left_s < just_after_slow  # shrinks again, no jump


def test_time_left_counts_down_between_steps_and_gives_a_finish_time_of_day():
    events = events_at({1: 10, 2: 20})  # 10 s a step, 18 to go
    at_step = eta.time_left(a_run(), events, T0 + 20)
    later = eta.time_left(a_run(), events, T0 + 26)
    assert (at_step.left_s, later.left_s) == (180.0, 174.0)
    # A step that takes longer than expected holds at the 17 steps after it, never below.
    assert eta.time_left(a_run(), events, T0 + 60).left_s == 170.0
    assert later.finish_at == datetime.fromtimestamp(T0 + 26 + 174)
    assert later.sentence() == f"about 2 min 54 s left, finishes around {later.finish_at:%H:%M}"
    assert later.sentence(at_most=True).startswith("at most 2 min 54 s left")


def test_before_two_steps_are_timed_time_left_is_the_estimate_less_the_time_spent():
    left = eta.time_left(a_run(estimated_s=600), events_at({1: 30}), T0 + 100)
    assert (left.elapsed_s, left.left_s, left.basis) == (100.0, 500.0, "estimate")
    assert "(pre-launch estimate)" in left.sentence()
    nothing = eta.time_left(a_run(), [], T0 + 100)
    assert nothing.left_s is None and nothing.sentence() == "time left: measuring…"


def test_the_queue_and_the_run_panel_show_the_same_time_left(db, demo_dataset):
    scan.scan_dataset(db, demo_dataset.id)
    version = versions.freeze(db, demo_dataset)
    run = runs.start_run(db, version, launch=False, estimated_s=600)
    assert runs.claim_run(db, run.id, processes.ProcessId.of(os.getpid()))
    runs.record_progress(db, run.id, {"step": 1, "loss": 2.0}, {"total_steps": 30})
    # One step timed: the panel used to say "measuring…" while the queue said the estimate.
    now = datetime.now().timestamp() + 5
    panel = eta.time_left(runs.get_run(db, run.id), runs.run_events(db, run.id), now)
    assert panel.basis == "estimate" and 580 < panel.left_s <= 600
    assert work_queue.items(db, now)[0].seconds_left == panel.left_s
    runs.record_progress(db, run.id, {"step": 2, "loss": 1.9}, {})
    panel = eta.time_left(runs.get_run(db, run.id), runs.run_events(db, run.id), now)
    assert panel.basis == "measured"
    assert work_queue.items(db, now)[0].seconds_left == panel.left_s


def test_a_busy_machine_says_so_and_scales_the_estimate():
    busy = eta.MachineLoad(cores=2, busy_cores=4.0, heavy=(("python3", 1.9), ("ffmpeg", 1.2)))
    assert busy.slowdown == 3.0 and busy.busy
    assert busy.sentence().startswith("This machine is busy: expect about 3× longer (4.0 of its 2 cores")
    assert "python3 (1.9 cores)" in busy.sentence()
    slightly = eta.MachineLoad(cores=2, busy_cores=0.7)  # 1.35×: busy, and never "about 1× longer"
    assert slightly.busy and slightly.sentence().startswith("This machine is busy: expect about 1.4× longer")
    quiet = eta.MachineLoad(cores=2, busy_cores=0.2)
    assert not quiet.busy and quiet.sentence().startswith("This machine is quiet")
    base = Estimate(1000, 30, 1500.0, 150, True, 8000.0, {}, 80.0, "measured here")
    scaled = eta.on_this_machine(base, busy)
    assert (scaled.duration_s, scaled.tokens_per_s) == (450, 26.7)
    assert "expect about 3× longer" in scaled.basis
    assert eta.on_this_machine(base, quiet).duration_s == 150


def test_machine_load_sees_another_heavy_process():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        load = eta.machine_load(sample_s=1.0, heavy_from=0.1)  # 2 shared cores: the spinner may get little
    finally:
        spinner.kill()
        spinner.wait()
    assert load.cores >= 1
    assert load.busy_cores >= 0.5
    assert any(name.startswith("python") for name, _share in load.heavy)


def test_a_run_that_just_ended_does_not_make_a_quiet_machine_busy(monkeypatch):
    """The load average still counts a run for a minute after it ended; the estimate must not (bench
    section 0c read a quiet machine as 1.9x busy right after the previous run)."""
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    load = eta.machine_load(sample_s=0.5)
    assert load.busy_cores < 1.0, load


def test_the_run_card_speaks_in_words_and_the_log_drops_bars_and_warnings():
    run = a_run(metrics={"train_loss": 1.2, "eval_loss": 1.5, "duration_s": 312.0, "tokens_per_s": 81.4,
                         "steps": 30, "train_examples": 40, "time_to_format_s": None})
    from dataclasses import replace
    card = run_card.describe(replace(run, status="succeeded", estimated_s=150),
                             events_at({1: 10, 30: 300})[:1] + [runs.RunEvent(30, 3.0, 0.8, None, 0, None, None, stamp(300))])
    assert card.learnt.startswith("Its training loss fell from 1.00 to 0.80")
    assert "held-out examples it never trained on, the loss was 1.50" in card.learnt
    assert card.duration == ("5 min 12 s of training, 30 steps over 40 examples at 81 training tokens a second. "
                             "Estimated before launch: 2 min 30 s.")
    assert card.stopped == "It completed its planned steps." and "Rate page" in card.next_step
    assert "None" not in " ".join(text for _t, text in card.lines())
    log = ("Loading model\n/x/y.py:12: FutureWarning: `foo` is deprecated\n  warnings.warn(msg)\n"
           " 40%|████      | 12/30 [00:10<00:15,  1.2it/s]\r 43%|████▎     | 13/30 [00:11<00:14,  1.2it/s]\n"
           "step 13 loss 0.91\n")
    assert run_card.readable_log(log) == "Loading model\nstep 13 loss 0.91"
    checked = run_card.describe(replace(run, status="succeeded", metrics={**run.metrics, "behaviour_curve": [
        {"step": 15, "compliant": 28, "probed": 30, "agreement": 0.8333}]}), [])
    assert ("at the last check 28 of 30 held-out answers kept the dataset's output format, and 83% of their "
            "closed-set values (such as a category) were the reference answer's") in checked.learnt
    # A run whose schedule ended before the format held with margin says so, and what to do (issue 24's
    # insurance set: 15 of 20 after 3 epochs, still rising).
    curve = [{"step": s, "compliant": c, "probed": 20, "bound": c / 20} for s, c in ((30, 12), (60, 9), (90, 15))]
    short = run_card.describe(replace(run, status="succeeded", metrics={**run.metrics, "behaviour_curve": curve}), [])
    assert short.stopped == ("It completed its planned steps. Its schedule ended before the output format held with "
                             "margin: 15 of 20 held-out answers kept it at the last check, up from 9 of 20 at step 60.")
    assert short.next_step.startswith("Add training examples that show what the answers miss, or train longer")
    # Five epochs on the same set: the best check (step 60, 17 of 20) was kept, and the card judges that one.
    five = [{"step": 30, "compliant": 12, "probed": 20, "bound": 0.6}, {"step": 60, "compliant": 17, "probed": 20, "bound": 0.85},
            {"step": 150, "compliant": 5, "probed": 20, "bound": 0.25}]
    kept = run_card.describe(replace(run, status="succeeded", metrics={**run.metrics, "behaviour_curve": five,
                                                                         "kept_check": {**five[1], "agreement": 0.75}}), [])
    assert ("It kept the adapter of its best check, step 60 (17 of 20 held-out answers in the format, 75% of "
            "closed-set values right): the last step's was worse.") in kept.stopped
    assert "17 of 20 held-out answers kept it at the kept check, up from 12 of 20 at step 30" in kept.stopped
    # A hostile review's cases: held earlier then dipped (keep_best_check off), margin out of reach with every
    # probe answer right, and an old curve without bounds: none of them is told to train longer.
    def card(curve):
        return run_card.describe(replace(run, status="succeeded", metrics={**run.metrics, "behaviour_curve": curve}), [])
    dipped = card([{"step": s, "compliant": c, "probed": 30, "bound": b} for s, c, b in ((15, 30, 1.0), (30, 26, 0.867))])
    assert "held with margin at step 15 but not at the last check (26 of 30" in dipped.stopped
    assert dipped.next_step.startswith("Train again with keep_best_check on")
    narrow = card([{"step": 10, "compliant": 10, "probed": 10, "bound": 0.806}])
    assert narrow.next_step.startswith("Probe more held-out prompts") and "Train longer" not in narrow.next_step
    assert card([{"step": 10, "compliant": 8, "probed": 8}]).stopped == "It completed its planned steps."
    held = [{"step": 90, "compliant": 19, "probed": 20, "bound": 0.95}]
    assert "Train longer" not in run_card.describe(replace(run, status="succeeded", metrics={
        **run.metrics, "behaviour_curve": held}), []).next_step


def test_a_preference_rounds_card_names_its_votes_and_parent_and_counts_pairs():
    """Issue 28: a round's metrics hold preference pairs, not training examples; its card said
    "3 steps over ? examples" and never named the votes or the adapter it learnt from."""
    from dataclasses import replace

    run = a_run(metrics={"train_loss": 0.43, "duration_s": 11.2, "steps": 3, "preference_pairs": 4,
                         "corrections": 1, "reward_margin_last": 1.42},
                kind="dpo", parent_run_id=7, rating_run_id=7, votes_sha256="0123456789abcdef" * 4, reference_run_id=7)
    card = run_card.describe(replace(run, status="succeeded"),
                             [runs.RunEvent(s, None, loss, None, 5e-5, None, None, stamp(s)) for s, loss in
                              ((1, 0.69), (3, 0.31))])
    assert card.duration == "11 s of training, 3 steps over 4 preference pairs."
    assert card.learnt == ("A preference round: it continues run 7's adapter on 4 preference pairs (1 with a rater's "
                           "correction as the chosen answer) from the blind votes of run 7 (votes sha256 "
                           "0123456789ab); its preference loss fell from 0.69 to 0.31 (lower means it prefers the "
                           "chosen answers over the rejected ones more surely than its parent did).")
    assert "?" not in " ".join(text for _t, text in card.lines())
    # An SFT run without a recorded example count leaves the count out instead of a "?".
    sft = run_card.describe(replace(a_run(metrics={"duration_s": 60.0, "steps": 5}), status="succeeded"), [])
    assert sft.duration == "1 min 0 s of training, 5 steps."
