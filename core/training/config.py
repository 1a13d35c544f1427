"""Training configuration: the config record with help per field, presets, and pre-launch estimates."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import sqlite_utils

from core.models import registry
from core.models.templating import DEFAULT_MAX_LENGTH
from core.platform.store import get_setting

if TYPE_CHECKING:  # read lazily: reading a run's config must not import the PII stack (issue 22)
    from core.training import versions

# Training tokens per second measured for the shipped model (SmolLM2-135M, QLoRA, fp32 compute)
# on a quiet 2-core machine: 79–89 in 0.1.0's benchmarks. Used until this machine has measured
# its own runs (see `throughput`), scaled by parameter count for other models.
PRIOR_TOKENS_PER_S = 80.0
# The default preset (batch 2, 0.4.0) with bf16 compute, behaviour checks included, on a quiet 2-core
# AVX512-BF16 machine: 61.6-78.3 on three datasets with 0.4.1's cheaper checks, median 61.8 (docs/BENCHMARKS.md
# section 0; 0.4.0: 51.6-64.1; 0.3's batch 4: 105).
PRIOR_TOKENS_PER_S_BF16 = 62.0
PRIOR_PARAMETERS = 134_515_008


# An early stop must imply at least this share of held-out answers in the format (one-sided 95 %
# confidence; core.training.behaviour_probe applies it, the run card reads it).
FORMAT_TARGET = 0.9

HOSTED_RATES_PER_MILLION = {"Hosted small model (article)": 3.0, "Hosted large model (article)": 25.0}


@dataclass(frozen=True)
class TrainingConfig:
    """Every knob of a run. Field help texts are shown next to the widgets on the Train page."""
    method: str = field(default="qlora", metadata={"help": "qlora: 4-bit NF4 base weights with double quantisation (least memory). lora: full-precision base weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank: capacity of the adapter. 8-32 is typical."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling; usually 2 x rank."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the adapter's input; regularises small datasets."})
    target_modules: str = field(default="all-linear", metadata={"help": "Which layers get adapters: all-linear, or a comma list such as q_proj,k_proj,v_proj,o_proj."})
    epochs: float = field(default=3.0, metadata={"help": "Passes over the training examples."})
    max_steps: int = field(default=0, metadata={"help": "Stop after this many optimizer steps (0 = use epochs)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of the adapter."})
    lr_scheduler: str = field(default="cosine", metadata={"help": "Learning-rate schedule after warmup: cosine, linear or constant."})
    warmup_fraction: float = field(default=0.05, metadata={"help": "Fraction of steps spent warming up the learning rate."})
    batch_size: int = field(default=2, metadata={"help": "Examples per forward pass."})
    grad_accumulation: int = field(default=1, metadata={"help": "Forward passes per optimizer step; effective batch = batch x this."})
    max_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={"help": "Tokens per example after the chat template; longer ones are cut."})
    seed: int = field(default=42, metadata={"help": "Random seed for shuffling and adapter initialisation."})
    assistant_only_loss: bool = field(default=True, metadata={"help": "Learn only from the assistant's answers, not from re-predicting the prompt."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations to save memory (slower)."})
    eval_each_epoch: bool = field(default=True, metadata={"help": "Compute held-out loss after every epoch (when behaviour checks are off)."})
    precision: str = field(default="auto", metadata={"help": "auto: bf16 compute where the hardware has it (GPUs; CPUs with AVX512-BF16 or AMX), else fp32. The base weights stay 4-bit NF4 either way."})
    behaviour_checks: bool = field(default=True, metadata={"help": "During training, answer a few held-out prompts and check them against the dataset's output convention, with the held-out loss: the run's behaviour curve."})
    check_every_steps: int = field(default=0, metadata={"help": "Optimizer steps between behaviour checks (0: about three per epoch)."})
    probe_prompts: int = field(default=0, metadata={"help": "Held-out prompts answered at each behaviour check (0: all of them, up to 32 — enough that a stop shows at least 90 % of held-out answers in the format with 95 % confidence)."})
    early_stopping: bool = field(default=True, metadata={"help": "Stop once the held-out format held with margin (at least 90 % of held-out answers, 95 % confidence) at two checks in a row and what the answers say stopped improving for `patience` checks: chrF against the reference answers and the share of closed-set values (such as a category) equal to the reference's. Without a convention: once chrF stopped improving."})
    stop_on_format_alone: bool = field(default=False, metadata={"help": "Early stopping: stop once the held-out format held with margin at two checks in a row, without waiting for what the answers say to stop improving. Much faster, with less of the content learned (support tickets, 90 examples: the format held at 96 s, with 30 % of categories and priorities right; the default went on to 345 s and 67 %)."})
    keep_best_check: bool = field(default=True, metadata={"help": "At the end, keep the adapter of the best behaviour check (the most held-out answers in the format, then the most closed-set values right) when the last step's is worse; a cancelled run keeps its last state. Insurance claims, 60 examples, 5 epochs: 17 of 20 in the format at step 60, 5 of 20 at step 150."})
    patience: int = field(default=2, metadata={"help": "Checks without improvement in what the answers say (chrF against the reference answers, closed-set values right) before early stopping."})
    beta: float = field(default=0.1, metadata={"help": "Preference rounds (DPO) only: how far the round may move from its parent adapter. Higher keeps it closer to the parent; 0.1 is DPO's usual value, 0.05-0.5 the useful range."})

    def __post_init__(self) -> None:
        problems = []
        if self.method not in ("qlora", "lora"):
            problems.append("method must be qlora or lora")
        if self.lora_r < 1 or self.lora_alpha < 1:
            problems.append("lora_r and lora_alpha must be at least 1")
        if not 0 <= self.lora_dropout < 1:
            problems.append("lora_dropout must be in [0, 1)")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("set epochs > 0 or max_steps > 0")
        if not 0 < self.learning_rate < 1:
            problems.append("learning_rate must be between 0 and 1")
        if self.check_every_steps < 0 or self.probe_prompts < 0 or self.patience < 1:
            problems.append("check_every_steps and probe_prompts must be >= 0, patience >= 1")
        if self.lr_scheduler not in ("cosine", "linear", "constant"):
            problems.append("lr_scheduler must be cosine, linear or constant")
        if not 0 <= self.warmup_fraction < 1:
            problems.append("warmup_fraction must be in [0, 1)")
        if self.batch_size < 1 or self.grad_accumulation < 1:
            problems.append("batch_size and grad_accumulation must be at least 1")
        if self.precision not in ("auto", "fp32", "bf16"):
            problems.append("precision must be auto, fp32 or bf16")
        if not 0 < self.beta <= 10:
            problems.append("beta must be in (0, 10]")
        if not 16 <= self.max_length <= 32768:
            problems.append("max_length must be between 16 and 32768")
        if problems:
            raise ValueError("Invalid training config: " + "; ".join(problems))

    @property
    def targets(self) -> str | list[str]:
        if self.target_modules.strip() == "all-linear":
            return "all-linear"
        return [t.strip() for t in self.target_modules.split(",") if t.strip()]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    def with_overrides(self, overrides: dict[str, str]) -> TrainingConfig:
        """Apply `key=value` strings (CLI --set) with the field's own type."""
        values = asdict(self)
        types = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        for key, raw in overrides.items():
            if key not in types:
                raise ValueError(f"Unknown setting '{key}'. Known: {', '.join(sorted(types))}")
            kind = types[key]
            if kind is bool:
                values[key] = raw.lower() in ("1", "true", "yes", "on")
            else:
                try:
                    values[key] = kind(raw)
                except ValueError as exc:
                    raise ValueError(f"{key}={raw!r} is not a valid {kind.__name__}") from exc
        return TrainingConfig(**values)


FIELD_HELP = {f.name: f.metadata.get("help", "") for f in fields(TrainingConfig)}


PRESETS: dict[str, TrainingConfig] = {
    # Our default for 50-500 examples: see docs/training.md for the measurements behind it.
    "small-data": TrainingConfig(),
    # The seed article's recipe, unchanged, for comparison.
    "seed-article": TrainingConfig(
        method="qlora", lora_r=16, lora_alpha=32, lora_dropout=0.05,
        target_modules="q_proj,k_proj,v_proj,o_proj", epochs=3, learning_rate=2e-4,
        lr_scheduler="linear", warmup_fraction=0.1, batch_size=4, grad_accumulation=4,
        assistant_only_loss=False, gradient_checkpointing=True,
        # As 0.1.0 ran it: fp32 compute on CPUs, no behaviour checks, no early stopping.
        precision="fp32", behaviour_checks=False, early_stopping=False),
    # A handful of steps to check the pipeline end to end.
    # lr 1e-3 and fp32 as in 0.2.0, so four steps still move the answers visibly.
    "smoke-test": TrainingConfig(max_steps=4, epochs=1, batch_size=2, max_length=256, learning_rate=1e-3,
                                 precision="fp32", behaviour_checks=False, early_stopping=False),
}

# A preference round (DPO) on tens of rated prompts, starting from an SFT adapter: a few passes,
# a learning rate ten times below SFT's (the adapter already knows the format; DPO only reorders
# answers it can already give), beta 0.1. The LoRA shape is the parent's (its adapter keeps
# training), so the lora_* fields are not used. Behaviour checks need a parent run's probe: off.
# Kept apart from PRESETS, which the SFT choices list.
PREFERENCE_PRESET = "preference-round"
PREFERENCE_PRESETS: dict[str, TrainingConfig] = {PREFERENCE_PRESET: TrainingConfig(
    epochs=3, learning_rate=5e-5, lr_scheduler="constant", warmup_fraction=0.1, batch_size=2,
    grad_accumulation=2, max_length=512, beta=0.1, eval_each_epoch=False, behaviour_checks=False,
    early_stopping=False)}


DEFAULT_PRESET = "small-data"


@dataclass(frozen=True)
class Estimate:
    train_tokens: int
    steps: int
    peak_memory_mb: float
    duration_s: float
    fits: bool
    available_memory_mb: float
    hosted_costs: dict[str, float]
    tokens_per_s: float = 0.0
    basis: str = ""  # where the speed behind the duration comes from


@dataclass(frozen=True)
class Architecture:
    """The numbers of a base model that estimates need, read from its config.json."""
    parameters: int
    hidden: int
    intermediate: int
    layers: int
    vocab: int
    kv_dim: int

    @classmethod
    def of(cls, base_model: str) -> Architecture:
        location = registry.resolve(base_model)
        path = os.path.join(location, "config.json") if os.path.isdir(location) else None
        if path is None or not os.path.exists(path):
            raise registry.ModelUnavailable(f"{base_model}: no config.json to read its size from.")
        with open(path, encoding="utf-8") as f:
            c = json.load(f)
        c = c.get("text_config", c)  # multimodal configs nest the language model's
        hidden, layers, vocab = int(c["hidden_size"]), int(c["num_hidden_layers"]), int(c["vocab_size"])
        intermediate = int(c.get("intermediate_size", 4 * hidden))
        heads = int(c.get("num_attention_heads", 1))
        kv_dim = hidden * int(c.get("num_key_value_heads", heads)) // heads
        # A decoder layer: q and o (h x h), k and v (h x kv), a gated MLP (3 x h x i), two norms.
        per_layer = 2 * hidden * hidden + 2 * hidden * kv_dim + 3 * hidden * intermediate + 2 * hidden
        embeddings = vocab * hidden * (1 if c.get("tie_word_embeddings", True) else 2)
        return cls(layers * per_layer + embeddings + hidden, hidden, intermediate, layers, vocab, kv_dim)

    def lora_parameters(self, r: int, targets: str | list[str]) -> int:
        shapes = {"q_proj": (self.hidden, self.hidden), "o_proj": (self.hidden, self.hidden),
                  "k_proj": (self.hidden, self.kv_dim), "v_proj": (self.hidden, self.kv_dim),
                  "gate_proj": (self.hidden, self.intermediate), "up_proj": (self.hidden, self.intermediate),
                  "down_proj": (self.intermediate, self.hidden)}
        names = [targets] if isinstance(targets, str) else targets
        chosen = shapes if "all-linear" in names else {t: shapes[t] for t in names if t in shapes}
        return self.layers * sum(r * (fan_in + fan_out) for fan_in, fan_out in chosen.values())


def cpu_has_bf16() -> bool:
    """bf16 matmuls run several times faster than fp32 on CPUs with AMX / AVX512-BF16 (bench/)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def compute_dtype(config: TrainingConfig, cuda: bool = False) -> str:
    """The one rule for a run's compute precision: bf16 where the hardware has it, unless fp32 is asked for."""
    return "bf16" if config.precision != "fp32" and (cuda or cpu_has_bf16()) else "fp32"


def throughput_key(base_model: str, method: str, dtype: str, batch_size: int) -> str:
    # The batch size is part of it: on 2 cores batch 2 runs ~40 % fewer tokens/s than batch 4, so a
    # speed measured at one batch size is no basis for the other.
    return f"measured_tokens_per_s:{base_model}:{method}:{dtype}:batch{batch_size}"


def early_stop_key(config: TrainingConfig) -> str:
    """Where runs stopping by this config's rule record the share of their schedule they used. The
    rule is part of it: a run stopping on the format alone ends far sooner than one waiting for what
    the answers say, and fractions from 0.4.0's loss rule (the old key) say nothing about 0.4.1's."""
    return "early_stop_fractions:v2" + (":format-alone" if config.stop_on_format_alone else "")


def early_stop_fraction(db: sqlite_utils.Database, config: TrainingConfig) -> float | None:
    """Median share of its schedule a run with early stopping used on this machine (last five runs of
    this stop rule; a run that never stopped used all of it)."""
    raw = get_setting(db, early_stop_key(config))
    fractions = sorted(json.loads(raw)) if raw else []
    return fractions[len(fractions) // 2] if fractions else None


def throughput(db: sqlite_utils.Database, base_model: str, method: str,
               parameters: int, dtype: str = "fp32", *, batch_size: int) -> tuple[float, str]:
    """Tokens/s to expect and its basis: this machine's last run of this model, method, compute
    precision and batch size, else the shipped model's measured speed scaled by parameter count."""
    value = get_setting(db, throughput_key(base_model, method, dtype, batch_size))
    if value:
        return float(value), (f"measured on this machine in the last {method} ({dtype}, batch {batch_size}) "
                              f"run of {base_model}")
    prior = PRIOR_TOKENS_PER_S_BF16 if dtype == "bf16" else PRIOR_TOKENS_PER_S
    scaled = prior * PRIOR_PARAMETERS / max(parameters, 1)
    if base_model == registry.DEFAULT_MODEL:
        return scaled, f"{prior:.0f} tokens/s ({dtype}) measured for this model on a quiet 2-core machine"
    return scaled, (f"the shipped model's {prior:.0f} tokens/s ({dtype}) on 2 cores, scaled by parameter count "
                    f"({parameters / 1e6:.0f} M); the first run here replaces it with a measurement")


def measured_throughput(db: sqlite_utils.Database) -> float:
    """The newest speed measured on this machine for any model (a cache key for the page)."""
    row = db.execute("SELECT value FROM settings WHERE key LIKE 'measured_tokens_per_s%' "
                     "ORDER BY updated_at DESC LIMIT 1").fetchone()
    return float(row[0]) if row else PRIOR_TOKENS_PER_S


def estimate(db: sqlite_utils.Database, version: versions.DatasetVersion, config: TrainingConfig,
             base_model: str = registry.DEFAULT_MODEL) -> Estimate:
    """Tokens, steps, peak memory and duration before launch, for the chosen base model (its own
    tokenizer and architecture). Memory is a model, not a measurement."""
    from core.models import templating
    from core.training import versions as dataset_versions

    arch = Architecture.of(base_model)
    parameters, hidden, layers, vocab = arch.parameters, arch.hidden, arch.layers, arch.vocab
    tokenizer = templating.load_tokenizer(base_model)
    lengths = [min(config.max_length, templating.template_example(tokenizer, m).token_count)
               for m in dataset_versions.version_messages(db, version.id, "train")]
    epochs = config.epochs if config.max_steps <= 0 else 0
    batches_per_epoch = -(-len(lengths) // config.batch_size)
    steps = config.max_steps or max(1, int(-(-batches_per_epoch * epochs // config.grad_accumulation)))
    passes = (steps * config.grad_accumulation * config.batch_size) / max(1, len(lengths))
    train_tokens = int(sum(lengths) * passes)
    # NF4 stores 4 bits a weight plus a block scale (~0.56 bytes with double quantisation); the
    # embeddings stay in fp32 (4 bytes). LoRA weights train in fp32 with a gradient and two Adam moments.
    weight_bytes = parameters * (0.56 if config.method == "qlora" else 4.0) + vocab * hidden * 4
    lora_bytes = arch.lora_parameters(config.lora_r, config.targets) * 4 * 4
    longest = max(lengths or [config.max_length])
    # Activations kept per token and layer, in hidden-size units of 4 bytes: ~34 without gradient
    # checkpointing (attention and MLP intermediates), ~6 with it (layer inputs only) — rule-of-thumb
    # factors from the activation-memory analysis of Korthikanti et al. (2022) for small batches.
    per_token = hidden * layers * (6 if config.gradient_checkpointing else 34) * 4
    activation_bytes = config.batch_size * longest * per_token + config.batch_size * longest * vocab * 4
    peak_mb = (weight_bytes + lora_bytes + activation_bytes) / 2**20 + 900  # torch + libraries, measured idle
    available = _available_memory_mb()
    speed, basis = throughput(db, base_model, config.method, parameters, compute_dtype(config),
                              batch_size=config.batch_size)
    duration = train_tokens / speed
    fraction = early_stop_fraction(db, config) if config.early_stopping and config.behaviour_checks else None
    if fraction is not None:
        # Early stopping ends most runs before their schedule: expect the share earlier runs used.
        duration *= fraction
        basis += f"; early stopping used {fraction:.0%} of the schedule in recent runs here"
    costs = hosted_costs(train_tokens, HOSTED_RATES_PER_MILLION)
    return Estimate(train_tokens, steps, round(peak_mb), round(duration), peak_mb < available * 0.9,
                    round(available), costs, round(speed, 1), basis)


def hosted_costs(train_tokens: int, rates_per_million: dict[str, float]) -> dict[str, float]:
    """What the same training tokens cost at hosted fine-tuning rates ($ per million tokens)."""
    return {str(name): round(train_tokens / 1e6 * float(rate), 4)
            for name, rate in rates_per_million.items() if name and rate == rate and rate is not None}


def _available_memory_mb() -> float:
    """Free memory where training will run: the GPU's when there is one, else the machine's."""
    import psutil
    import torch

    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        return free / 2**20
    return psutil.virtual_memory().available / 2**20


def config_diff(a: TrainingConfig, b: TrainingConfig) -> dict[str, tuple[Any, Any]]:
    left, right = asdict(a), asdict(b)
    return {k: (left[k], right[k]) for k in left if left[k] != right[k]}
