"""The training itself (heavy imports: torch, transformers, peft, trl), run inside the worker process.

Kept apart from core.jobs.worker so that the launcher, which only forks, starts in a fraction of a
second and never holds anything while transformers imports (issue 15).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from core.models import generation
from core.platform import processes
from core.training import config as training_config
from core.training import runs, versions
from core.training.config import TrainingConfig


def peak_memory_mb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_for_training(location: str, config: TrainingConfig, cuda: bool) -> Any:
    """The base model as a run trains against it: 4-bit NF4 for QLoRA, in the run's compute dtype.

    A training step is matmul-bound (torch.profiler, docs/BENCHMARKS.md): bf16 compute on a CPU
    with AVX512-BF16/AMX measured 1.36x faster per step; the base weights stay NF4 either way.
    """
    import bitsandbytes as bnb
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute_dtype = torch.bfloat16 if training_config.compute_dtype(config, cuda) == "bf16" else torch.float32
    load_kwargs: dict[str, Any] = {"dtype": compute_dtype, "device_map": {"": 0} if cuda else "cpu"}
    if config.method == "qlora":
        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype)
    model = AutoModelForCausalLM.from_pretrained(location, **load_kwargs)
    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
        # bitsandbytes repacks 4-bit weights for a fast CPU inference kernel the first time a layer
        # runs in eval mode without gradients (our held-out evaluations), and from then on its
        # training forward uses that kernel too, which has no backward: every gradient through the
        # base weights became zero after the first evaluation (tests/test_training_numerics.py).
        # Training never repacks; the NF4 weights and their numerics stay the same.
        for module in model.modules():
            if isinstance(module, bnb.nn.Linear4bit):
                module.support_avx512bf16_for_cpu = False
    return model


def train_adapter(db: Any, run: runs.TrainingRun, directory: Path, log_path: Path) -> dict[str, Any]:
    """QLoRA (or LoRA) training of one run with trl's SFTTrainer; returns the run's final fields.
    A preference round (kind 'dpo') trains with DPOTrainer instead (core.training.preference_trainer)."""
    if run.kind == "dpo":
        from core.training import preference_trainer

        return preference_trainer.train_round(db, run, directory, log_path)
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from core.models import registry, templating

    config = run.config
    cuda = torch.cuda.is_available()
    if not cuda:
        # As many threads as cores this process may really use (a container or taskset may allow
        # fewer than the machine has); more threads than cores makes every matmul wait (issue 14).
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    location = registry.resolve(run.base_model)
    runs.set_phase(db, run.id, "loading the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def tokenised(split: str) -> Dataset | None:
        rows = []
        for messages in versions.version_messages(db, run.dataset_version_id, split):
            t = templating.template_example(tokenizer, messages)
            mask = t.assistant_mask if config.assistant_only_loss else [1] * len(t.input_ids)
            rows.append({"input_ids": t.input_ids[:config.max_length],
                         "assistant_masks": mask[:config.max_length]})
        rows = [r for r in rows if any(r["assistant_masks"])]  # all-prompt after truncation: no signal
        return Dataset.from_list(rows) if rows else None

    runs.set_phase(db, run.id, "tokenising the examples")
    train_set = tokenised("train")
    eval_set = tokenised("heldout") if config.eval_each_epoch or config.behaviour_checks else None
    if train_set is None:
        raise ValueError("no training example has an assistant answer inside max_length")

    use_bf16 = training_config.compute_dtype(config, cuda) == "bf16"
    runs.set_phase(db, run.id, "loading the base model" + (" in 4-bit NF4" if config.method == "qlora" else ""))
    model = load_for_training(location, config, cuda)
    peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                             lora_dropout=config.lora_dropout, target_modules=config.targets,
                             task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(directory), num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        # Evaluation keeps no activations for a backward pass: bigger batches, fewer passes.
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=max(8, config.batch_size),
        gradient_accumulation_steps=config.grad_accumulation, learning_rate=config.learning_rate,
        # A float in [0, 1) is a ratio of the total steps in transformers 5 (warmup_ratio is gone).
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_fraction,
        logging_steps=1, save_strategy="epoch" if not config.max_steps else "steps",
        save_steps=max(1, config.max_steps // 2) if config.max_steps else 500,
        # With behaviour checks the probe asks for evaluations at its own steps.
        eval_strategy="epoch" if eval_set is not None and not config.behaviour_checks else "no", seed=config.seed,
        report_to="none", max_length=config.max_length, use_cpu=not cuda, bf16=use_bf16,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        gradient_checkpointing=config.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding", save_total_limit=2,
        disable_tqdm=True, dataloader_pin_memory=False,
        train_sampling_strategy="group_by_length")
    callback = StudioProgress(db, run.id, log_path)
    probe, check = (_behaviour_probe(db, run, location, len(train_set), callback)
                    if eval_set is not None and config.behaviour_checks else (None, None))
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         processing_class=tokenizer, peft_config=peft_config,
                         callbacks=[callback] + ([probe] if probe else []))
    runs.record_progress(db, run.id, None, {"total_steps": trainer.state.max_steps or None})
    checkpoint = processes.latest_checkpoint(directory)
    runs.set_phase(db, run.id, "training (resuming from a checkpoint)" if checkpoint else "training: first step")
    started = time.time()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    elapsed = time.time() - started
    cancelled = callback.cancelled
    adapter_dir = directory / "adapter"
    runs.set_phase(db, run.id, "saving the adapter")
    trained: Any = trainer.model
    trained.save_pretrained(str(adapter_dir))
    tokens = trainer.state.num_input_tokens_seen or 0
    metrics: dict[str, Any] = {
        "train_loss": round(float(output.training_loss), 4), "steps": trainer.state.global_step,
        "duration_s": round(elapsed, 1), "tokens_seen": int(tokens),
        "tokens_per_s": round(tokens / elapsed, 1) if elapsed else None,
        "peak_memory_mb": round(peak_memory_mb()), "device": "cuda" if cuda else "cpu",
        "train_examples": len(train_set), "heldout_examples": len(eval_set) if eval_set else 0,
        "compute_dtype": "bf16" if use_bf16 else "fp32", "threads": torch.get_num_threads()}
    if probe is not None:
        from core.training.behaviour_probe import TARGET

        metrics["behaviour_curve"] = probe.curve_dicts()
        metrics["stopped_early"] = probe.stopped_early
        # The adapter saved below is this check's when it beat the last one (keep_best_check).
        metrics["kept_check"] = asdict(probe.kept) if probe.kept is not None else None
        # Time to behaviour: the first check whose format held with margin (behaviour_probe.TARGET).
        first = next((p for p in probe.curve if p.bound is not None and p.bound >= TARGET), None)
        metrics["time_to_format_s"] = first.seconds if first else None
        metrics.update(judged_metrics(probe, check, run.base_model, config, metrics["compute_dtype"]))
    if eval_set is not None and not cancelled:
        metrics["eval_loss"] = round(float(trainer.evaluate()["eval_loss"]), 4)
    if metrics["tokens_per_s"] and not cuda and not cancelled:
        # Every run with early stopping counts, also one that used its whole schedule (1.0): counting only
        # the runs that stopped made the next estimate expect a stop that small sets often never reach.
        used = (min(1.0, trainer.state.global_step / trainer.state.max_steps)
                if probe is not None and config.early_stopping and trainer.state.max_steps else None)
        runs.record_throughput(db, run.base_model, config.method, float(metrics["tokens_per_s"]),
                               metrics["compute_dtype"], used, config.batch_size, config)
    sha = generation.adapter_sha256(adapter_dir)
    version = versions.version_by_id(db, run.dataset_version_id)
    processes.write_model_card(adapter_dir, run, version, metrics, sha)
    return {"status": "cancelled" if cancelled else "succeeded", "adapter_path": str(adapter_dir),
            "adapter_sha256": sha, "metrics_json": json.dumps(metrics)}


def judged_metrics(probe: Any, check: Any, base_model: str, config: TrainingConfig, dtype: str) -> dict[str, Any]:
    """What the run card says about the behaviour checks: which model answered, against what."""
    precision = "bf16" if generation.device() == "cuda" else "fp32"
    return {"judged_on": f"the adapter on the full-precision base {base_model} ({precision}), as plain "
                         "PeftModel.from_pretrained loads it; the same model answers for rating and the playground",
            "trained_on": f"{'4-bit NF4' if config.method == 'qlora' else 'full-precision'} base, {dtype} compute",
            "convention": check.description, "convention_source": check.source,
            "probe_prompts": len(probe.prompts), "stop_refused": probe.refused}


def _behaviour_probe(db: Any, run: runs.TrainingRun, location: str, train_examples: int,
                     progress: StudioProgress) -> tuple[Any, Any]:
    """The behaviour checks for this run, and the convention check they use: held-out prompts answered by the judged model (the adapter
    on the full-precision base), matched against the dataset's convention (issue 24)."""
    from transformers import AutoTokenizer

    from core.curation import convention, datasets
    from core.training.behaviour_probe import BehaviourProbe, CurvePoint, JudgedModel, default_probe_prompts

    config = run.config
    version = versions.version_by_id(db, run.dataset_version_id)
    dataset = datasets.get_dataset(db, version.dataset_id)
    train_answers = convention.answers_of(versions.version_messages(db, run.dataset_version_id, "train"))
    check = convention.check_for(dataset.convention_regex, dataset.convention_json, train_answers)
    all_heldout = versions.version_messages(db, run.dataset_version_id, "heldout")
    # The first prompts of the split, in the order rating answers them: same batches, same tokens.
    heldout = all_heldout[:config.probe_prompts or default_probe_prompts(len(all_heldout))]
    prompts, references = zip(*(generation.prompt_of(m) for m in heldout)) if heldout else ((), ())
    tokenizer = AutoTokenizer.from_pretrained(location, padding_side="left")  # batched generation pads left
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    longest = max((len(tokenizer(r)["input_ids"]) for r in references), default=64)
    per_epoch = -(-train_examples // (config.batch_size * config.grad_accumulation))

    def announce(point: CurvePoint) -> None:
        if point.compliant is not None:
            shown = f"held-out format {point.compliant}/{point.probed}, "
        elif point.similarity is not None:
            shown = f"chrF {point.similarity:.1f}, "
        else:
            shown = ""
        loss = f"held-out loss {point.eval_loss:.3f}" if point.eval_loss is not None else ""
        progress.note = f"check at step {point.step}: {shown}{loss}"

    probe = BehaviourProbe(tokenizer, list(prompts), check.pattern, references=list(references),
                           heldout=len(all_heldout), judge=JudgedModel(run.base_model),
                           every=config.check_every_steps or max(2, per_epoch // 3),
                           early_stopping=config.early_stopping, patience=config.patience,
                           max_new_tokens=min(256, longest + 16), on_point=announce,
                           stop_on_format_alone=config.stop_on_format_alone,
                           labels=convention.closed_labels(check, train_answers) if check.pattern else (),
                           keep_best=config.keep_best_check, cancelled=lambda: progress.cancelled)
    return probe, check


class StudioProgress(TrainerCallback):
    """Writes step events to SQLite and honours the cancel flag (one job each hook)."""

    def __init__(self, db: Any, run_id: int, log_path: Path | None = None) -> None:
        self.db = db
        self.run_id = run_id
        self.log_path = log_path
        self.cancelled = False
        self.started = time.time()
        self.tokens_at_start: int | None = None
        self.note = ""  # the last behaviour check, shown beside the phase

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if self.tokens_at_start is None:
            self.tokens_at_start = state.num_input_tokens_seen or 0
        elapsed = max(1e-6, time.time() - self.started)
        tokens = (state.num_input_tokens_seen or 0) - self.tokens_at_start
        event = {"step": state.global_step, "epoch": logs.get("epoch", state.epoch),
                 "loss": logs.get("loss"), "eval_loss": logs.get("eval_loss"),
                 "learning_rate": logs.get("learning_rate"),
                 "tokens_per_s": round(tokens / elapsed, 1) if tokens else None,
                 "memory_mb": round(peak_memory_mb())}
        update: dict[str, Any] = {"total_steps": state.max_steps,
                                  "phase": ("evaluating on held-out examples" if "eval_loss" in logs else "training")
                                  + (f" · {self.note}" if self.note else "")}
        if self.log_path is not None:
            update["log_tail"] = processes.log_tail(self.log_path)  # the live view shows the log while it grows
        runs.record_progress(self.db, self.run_id, event, update)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if runs.cancel_requested(self.db, self.run_id):
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = True
        return control
