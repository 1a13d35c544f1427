"""Held-out behaviour measured during training, and early stopping on it (issue 14).

Every `every` optimizer steps the probe answers a few held-out prompts greedily with the adapter
being trained and checks them against the dataset's output convention, and asks the trainer for
the held-out loss. The points form the run's behaviour curve (format compliance and loss over
training time). With early stopping on, the run ends once the behaviour has held at two checks in
a row and the held-out loss has stopped improving, or, without a convention, once the loss has not
improved for `patience` checks; the run card says which.

Runs inside the worker only (imports transformers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from transformers import TrainerCallback

from core.curation.convention import convention_ok

MIN_IMPROVEMENT = 0.01  # held-out loss must fall by 1 % to count as still improving


@dataclass
class CurvePoint:
    step: int
    seconds: float  # wall-clock seconds since training started, checks included
    compliant: int | None  # probe answers matching the convention (None: no convention)
    probed: int
    eval_loss: float | None = None


def dequantise_base(model: Any) -> Callable[[], None]:
    """Run the 4-bit layers from weights dequantised once, until the returned undo is called.

    Without gradients bitsandbytes' CPU fallback for 4-bit matmuls was ~10x slower than the
    dequantise-then-matmul path a training step takes; the checks (generation and held-out loss)
    use that same path here, on weights dequantised once per check: the same NF4 values, the same
    arithmetic as training, at the cost of the dequantised copy's memory for the check's length.
    """
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnb_functional
    import torch

    patched = []
    for module in model.modules():
        state = getattr(module.weight, "quant_state", None) if isinstance(module, bnb.nn.Linear4bit) else None
        if state is not None:
            dtype = module.compute_dtype or torch.float32
            weight = bnb_functional.dequantize_4bit(module.weight.data, state).to(dtype)
            bias = None if module.bias is None else module.bias.to(dtype)

            def forward(x: Any, weight: Any = weight, bias: Any = bias, dtype: Any = dtype) -> Any:
                return torch.nn.functional.linear(x.to(dtype), weight, bias).to(x.dtype)

            module.forward = forward  # type: ignore[method-assign]
            patched.append(module)

    def undo() -> None:
        for module in patched:
            del module.forward  # the class's own forward again
    return undo


class BehaviourProbe(TrainerCallback):
    def __init__(self, tokenizer: Any, prompts: list[list[dict[str, str]]], pattern: str, *, every: int,
                 early_stopping: bool, patience: int, max_new_tokens: int, on_point: Any = None) -> None:
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.pattern = pattern
        self.every = max(1, every)
        self.early_stopping = early_stopping
        self.patience = max(1, patience)
        self.max_new_tokens = max_new_tokens
        self.on_point = on_point or (lambda point: None)
        self.curve: list[CurvePoint] = []
        self.stopped_early = ""
        self.started = time.time()
        self._pending: CurvePoint | None = None
        self._undo: Callable[[], None] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.started = time.time()

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> Any:
        if state.global_step % self.every and state.global_step != state.max_steps:
            return control
        matched = None
        if model is not None:
            self._undo = dequantise_base(model)  # until the held-out loss is in (on_evaluate)
        if self.pattern and self.prompts and model is not None:
            was_training = model.training
            model.eval()
            answers = self.answers(model)
            model.train(was_training)
            matched = sum(convention_ok(self.pattern, a) for a in answers)
        self._pending = CurvePoint(state.global_step, 0.0, matched, len(self.prompts) if self.pattern else 0)
        control.should_evaluate = True
        return control

    def answers(self, model: Any) -> list[str]:
        """Greedy answers to the probe prompts. An answer stops as soon as no continuation could
        match the convention any more (regex partial matching): an early, off-format answer costs
        a few tokens instead of the whole budget, which made the checks several times cheaper."""
        import regex

        from core.models import generation

        convention = regex.compile(self.pattern)
        return generation.generate(
            model, self.tokenizer, self.prompts,
            generation.GenerationConfig(max_new_tokens=self.max_new_tokens, batch_size=max(1, len(self.prompts))),
            stop_if=lambda text: convention.fullmatch(text.strip(), partial=True) is None)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kw: Any) -> Any:
        self._restore()
        point = self._pending or CurvePoint(state.global_step, 0.0, None, 0)
        self._pending = None
        point.eval_loss = (metrics or {}).get("eval_loss")
        point.seconds = round(time.time() - self.started, 1)
        self.curve.append(point)
        self.on_point(point)
        reason = self._converged()
        if self.early_stopping and reason:
            self.stopped_early = reason
            control.should_training_stop = True
            control.should_save = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None

    def _converged(self) -> str:
        losses = [p.eval_loss for p in self.curve if p.eval_loss is not None]
        best_before = min(losses[:-1], default=None)
        improving = best_before is None or (losses[-1] < best_before * (1 - MIN_IMPROVEMENT))
        if self.pattern and self.prompts:
            last_two = self.curve[-2:]
            held = len(last_two) == 2 and all(p.compliant == p.probed for p in last_two)
            if held and not improving:
                return (f"held-out format held at two checks in a row ({last_two[-1].compliant}/{last_two[-1].probed}) "
                        f"and held-out loss stopped improving (step {self.curve[-1].step})")
            return ""
        stale = 0
        for earlier, later in zip(losses, losses[1:]):
            stale = 0 if later < earlier * (1 - MIN_IMPROVEMENT) else stale + 1
        if stale >= self.patience:
            return f"held-out loss did not improve for {stale} checks (step {self.curve[-1].step})"
        return ""

    def curve_dicts(self) -> list[dict[str, Any]]:
        return [asdict(p) for p in self.curve]
