"""The training itself (heavy imports: torch, transformers, peft, trl), run inside the worker process.

Kept apart from core.worker so that the launcher, which only forks, starts in a fraction of a
second and never holds anything while transformers imports (issue 15).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from core import generation, run_files, training, versions


def peak_memory_mb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_has_bf16() -> bool:
    """bf16 matmuls run ~4x faster than fp32 on CPUs with AMX / AVX512-BF16 (measured in bench/)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def train_adapter(db: Any, run: training.TrainingRun, directory: Path, log_path: Path) -> dict[str, Any]:
    """QLoRA (or LoRA) training of one run with trl's SFTTrainer; returns the run's final fields."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    from core import models, templating

    config = run.config
    cuda = torch.cuda.is_available()
    location = models.resolve(run.base_model)
    training.set_phase(db, run.id, "loading the tokenizer")
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

    training.set_phase(db, run.id, "tokenising the examples")
    train_set = tokenised("train")
    eval_set = tokenised("heldout") if config.eval_each_epoch else None
    if train_set is None:
        raise ValueError("no training example has an assistant answer inside max_length")

    # On CPU, bf16 measured only ~5 % faster here (4-bit dequantisation dominates, not matmuls),
    # so "auto" keeps fp32 there, where the presets' behaviour was measured.
    use_bf16 = (cuda and config.precision != "fp32") or (config.precision == "bf16" and (cuda or cpu_has_bf16()))
    compute_dtype = torch.bfloat16 if use_bf16 else torch.float32
    load_kwargs: dict[str, Any] = {"dtype": compute_dtype}
    if config.method == "qlora":
        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype)
    load_kwargs["device_map"] = {"": 0} if cuda else "cpu"
    training.set_phase(db, run.id, "loading the base model" + (" in 4-bit NF4" if config.method == "qlora" else ""))
    model = AutoModelForCausalLM.from_pretrained(location, **load_kwargs)
    if config.method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing)
    peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                             lora_dropout=config.lora_dropout, target_modules=config.targets,
                             task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(directory), num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accumulation, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_fraction,
        logging_steps=1, save_strategy="epoch" if not config.max_steps else "steps",
        save_steps=max(1, config.max_steps // 2) if config.max_steps else 500,
        eval_strategy="epoch" if eval_set is not None else "no", seed=config.seed,
        report_to="none", max_length=config.max_length, use_cpu=not cuda, bf16=use_bf16,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        gradient_checkpointing=config.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding", save_total_limit=2,
        disable_tqdm=True, dataloader_pin_memory=False,
        train_sampling_strategy="group_by_length")
    callback = StudioProgress(db, run.id, log_path)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         processing_class=tokenizer, peft_config=peft_config,
                         callbacks=[callback])
    training.record_progress(db, run.id, None, {"total_steps": trainer.state.max_steps or None})
    checkpoint = run_files.latest_checkpoint(directory)
    training.set_phase(db, run.id, "training (resuming from a checkpoint)" if checkpoint else "training: first step")
    started = time.time()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    elapsed = time.time() - started
    cancelled = callback.cancelled
    adapter_dir = directory / "adapter"
    training.set_phase(db, run.id, "saving the adapter")
    trained: Any = trainer.model
    trained.save_pretrained(str(adapter_dir))
    tokens = trainer.state.num_input_tokens_seen or 0
    metrics: dict[str, Any] = {
        "train_loss": round(float(output.training_loss), 4), "steps": trainer.state.global_step,
        "duration_s": round(elapsed, 1), "tokens_seen": int(tokens),
        "tokens_per_s": round(tokens / elapsed, 1) if elapsed else None,
        "peak_memory_mb": round(peak_memory_mb()), "device": "cuda" if cuda else "cpu",
        "train_examples": len(train_set), "heldout_examples": len(eval_set) if eval_set else 0}
    if eval_set is not None and not cancelled:
        metrics["eval_loss"] = round(float(trainer.evaluate()["eval_loss"]), 4)
    if metrics["tokens_per_s"] and not cuda and not cancelled:
        training.record_throughput(db, run.base_model, config.method, float(metrics["tokens_per_s"]))
    sha = generation.adapter_sha256(adapter_dir)
    version = versions.version_by_id(db, run.dataset_version_id)
    run_files.write_model_card(adapter_dir, run, version, metrics, sha)
    return {"status": "cancelled" if cancelled else "succeeded", "adapter_path": str(adapter_dir),
            "adapter_sha256": sha, "metrics_json": json.dumps(metrics)}


class StudioProgress(TrainerCallback):
    """Writes step events to SQLite and honours the cancel flag (one job each hook)."""

    def __init__(self, db: Any, run_id: int, log_path: Path | None = None) -> None:
        self.db = db
        self.run_id = run_id
        self.log_path = log_path
        self.cancelled = False
        self.started = time.time()
        self.tokens_at_start: int | None = None

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
                                  "phase": "evaluating on held-out examples" if "eval_loss" in logs else "training"}
        if self.log_path is not None:
            update["log_tail"] = run_files.log_tail(self.log_path)  # the live view shows the log while it grows
        training.record_progress(self.db, self.run_id, event, update)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if training.cancel_requested(self.db, self.run_id):
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = True
        return control
