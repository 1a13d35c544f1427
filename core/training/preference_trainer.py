"""A preference round's training (heavy imports: torch, peft, trl's DPOTrainer), run inside the worker process.

QLoRA on the parent's base, continuing the parent's SFT adapter. trl copies a PEFT model's trained
adapter into a frozen "ref" adapter and scores the reference with it, so DPO's reference is the
parent itself, not the base model: the round learns what the raters preferred over its parent.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from core.models import generation
from core.platform import processes
from core.training import config as training_config
from core.training import rounds, runs, versions
from core.training.trainer import StudioProgress, load_for_training, peak_memory_mb


def train_round(db: Any, run: runs.TrainingRun, directory: Path, log_path: Path) -> dict[str, Any]:
    """DPO on the round's frozen pairs; returns the run's final fields (as trainer.train_adapter)."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from core.models import registry

    config = run.config
    if run.parent_run_id is None:
        raise ValueError("a preference round needs the run whose adapter it continues")
    parent = runs.get_run(db, run.parent_run_id)
    if not parent.adapter_path or not Path(parent.adapter_path).is_dir():
        raise ValueError(f"the parent run {parent.id}'s adapter is gone ({parent.adapter_path})")
    pairs = rounds.pairs_of(db, run.id)
    if not pairs:
        raise ValueError("the round has no preference pairs")
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))  # as trainer.train_adapter, issue 14
    location = registry.resolve(run.base_model)
    runs.set_phase(db, run.id, "loading the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_set = Dataset.from_list([p.to_trl() for p in pairs])
    use_bf16 = training_config.compute_dtype(config, cuda) == "bf16"
    runs.set_phase(db, run.id, f"loading the base model and run {parent.id}'s adapter")
    model = PeftModel.from_pretrained(load_for_training(location, config, cuda), parent.adapter_path,
                                      is_trainable=True)
    args = DPOConfig(
        output_dir=str(directory), num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accumulation,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler,
        # A float in [0, 1) is a ratio of the total steps in transformers 5 (warmup_ratio is gone).
        warmup_steps=config.warmup_fraction, beta=config.beta, max_length=config.max_length,
        logging_steps=1, save_strategy="epoch" if not config.max_steps else "steps",
        save_steps=max(1, config.max_steps // 2) if config.max_steps else 500, save_total_limit=2,
        seed=config.seed, report_to="none", use_cpu=not cuda,
        # DPOConfig turns both on by default; the run's config decides.
        bf16=use_bf16, gradient_checkpointing=config.gradient_checkpointing,
        disable_tqdm=True, dataloader_pin_memory=False)
    callback = StudioProgress(db, run.id, log_path)
    trainer = DPOTrainer(model=model, args=args, train_dataset=train_set, processing_class=tokenizer,
                         callbacks=[callback])
    runs.record_progress(db, run.id, None, {"total_steps": trainer.state.max_steps or None})
    checkpoint = processes.latest_checkpoint(directory)
    runs.set_phase(db, run.id, "training (resuming from a checkpoint)" if checkpoint else "training: first step")
    started = time.time()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    elapsed = time.time() - started
    adapter_dir = directory / "adapter"
    runs.set_phase(db, run.id, "saving the adapter")
    trained: Any = trainer.model
    trained.save_pretrained(str(adapter_dir), selected_adapters=["default"])  # not trl's frozen "ref" copy
    logged = [e for e in trainer.state.log_history if "rewards/margins" in e]
    metrics: dict[str, Any] = {
        "train_loss": round(float(output.training_loss), 4), "steps": trainer.state.global_step,
        "duration_s": round(elapsed, 1), "preference_pairs": len(pairs),
        "corrections": sum(p.source == "correction" for p in pairs),
        # trl's implicit reward margin (beta x log-ratio, chosen - rejected) on the last logged batch.
        "reward_margin_last": round(float(logged[-1]["rewards/margins"]), 4) if logged else None,
        "peak_memory_mb": round(peak_memory_mb()), "device": "cuda" if cuda else "cpu",
        "compute_dtype": "bf16" if use_bf16 else "fp32", "threads": torch.get_num_threads()}
    sha = generation.adapter_sha256(adapter_dir)
    version = versions.version_by_id(db, run.dataset_version_id)
    processes.write_model_card(adapter_dir, run, version, metrics, sha)
    with open(adapter_dir / "README.md", "a", encoding="utf-8") as card:
        card.write(lineage_section(run, parent))
    return {"status": "cancelled" if callback.cancelled else "succeeded", "adapter_path": str(adapter_dir),
            "adapter_sha256": sha, "metrics_json": json.dumps(metrics)}


def lineage_section(run: runs.TrainingRun, parent: runs.TrainingRun) -> str:
    """The round's lineage on its model card: the votes it learned from and the adapter it continued."""
    return (f"\n## Lineage (preference round, DPO)\n\n"
            f"- Rating run: {run.rating_run_id} (its blind votes; corrections as chosen answers)\n"
            f"- Votes sha256: `{run.votes_sha256}`\n"
            f"- Parent adapter: run {parent.id}, sha256 `{parent.adapter_sha256}`\n"
            f"- Beta: {run.config.beta}\n")
