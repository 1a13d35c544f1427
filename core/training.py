"""Training runs: configs and presets, estimates, the background queue, cancel/resume, reconcile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import sqlite_utils

from core import datasets, models, permissions
from core.paths import REPO_ROOT, data_dir
from core.store import audit, get_setting, insert_row, now, set_setting, transaction

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
# Tokens per second of training measured on the 2-core reference machine with the shipped model;
# replaced by this machine's own measurement after its first run (see `measured_throughput`).
PRIOR_TOKENS_PER_S = 550.0
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
    batch_size: int = field(default=4, metadata={"help": "Examples per forward pass."})
    grad_accumulation: int = field(default=1, metadata={"help": "Forward passes per optimizer step; effective batch = batch x this."})
    max_length: int = field(default=512, metadata={"help": "Tokens per example after the chat template; longer ones are cut."})
    seed: int = field(default=42, metadata={"help": "Random seed for shuffling and adapter initialisation."})
    assistant_only_loss: bool = field(default=True, metadata={"help": "Learn only from the assistant's answers, not from re-predicting the prompt."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations to save memory (slower)."})
    eval_each_epoch: bool = field(default=True, metadata={"help": "Compute held-out loss after every epoch."})
    precision: str = field(default="auto", metadata={"help": "auto: bf16 on GPUs, fp32 on CPUs. bf16 on a CPU needs AMX / AVX512-BF16 (measured ~5 % faster)."})

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
        if self.lr_scheduler not in ("cosine", "linear", "constant"):
            problems.append("lr_scheduler must be cosine, linear or constant")
        if not 0 <= self.warmup_fraction < 1:
            problems.append("warmup_fraction must be in [0, 1)")
        if self.batch_size < 1 or self.grad_accumulation < 1:
            problems.append("batch_size and grad_accumulation must be at least 1")
        if self.precision not in ("auto", "fp32", "bf16"):
            problems.append("precision must be auto, fp32 or bf16")
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
        assistant_only_loss=False, gradient_checkpointing=True),
    # A handful of steps to check the pipeline end to end.
    "smoke-test": TrainingConfig(max_steps=4, epochs=1, batch_size=2, max_length=256),
}
DEFAULT_PRESET = "small-data"


@dataclass(frozen=True)
class TrainingRun:
    id: int
    dataset_version_id: int
    base_model: str
    preset: str
    config: TrainingConfig
    status: str
    pid: int | None
    total_steps: int | None
    cancel_requested: bool
    adapter_path: str | None
    adapter_sha256: str | None
    metrics: dict[str, Any]
    error: str
    log_tail: str
    created_by: str
    approval: str
    approval_note: str
    queued_at: str
    started_at: str | None
    finished_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrainingRun:
        return cls(row["id"], row["dataset_version_id"], row["base_model"], row["preset"],
                   TrainingConfig.from_json(row["config_json"]), row["status"], row["pid"],
                   row["total_steps"], bool(row["cancel_requested"]), row["adapter_path"],
                   row["adapter_sha256"], json.loads(row["metrics_json"]), row["error"],
                   row["log_tail"], row["created_by"], row["approval"], row["approval_note"],
                   row["queued_at"], row["started_at"], row["finished_at"])

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class RunEvent:
    step: int
    epoch: float | None
    loss: float | None
    eval_loss: float | None
    learning_rate: float | None
    tokens_per_s: float | None
    memory_mb: float | None


@dataclass(frozen=True)
class Estimate:
    train_tokens: int
    steps: int
    peak_memory_mb: float
    duration_s: float
    fits: bool
    available_memory_mb: float
    hosted_costs: dict[str, float]


def run_dir(db: sqlite_utils.Database | Path, run_id: int) -> Path:
    """Files of one run. Keyed by the database's name and store id: two databases in one folder,
    or a database re-created under an old name (run ids start again at 1), never share files."""
    database = db if isinstance(db, Path) else Path(db_file(db))
    return data_dir(database) / "runs" / _folder_name(database) / f"run-{run_id:04d}"


def log_dir(database: str | Path) -> Path:
    path = Path(database).resolve()
    return path.parent / "logs" / _folder_name(path)


def _folder_name(database: Path) -> str:
    # Read the store id with a plain read-only connection: callers (the launcher) may hold none.
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT value FROM settings WHERE key = 'store_id'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        row = None
    return f"{database.stem}-{row[0]}" if row else database.stem


def db_file(db: sqlite_utils.Database) -> str:
    return str(db.execute("PRAGMA database_list").fetchone()[2])


# ----------------------------------------------------------------------------- estimates

def measured_throughput(db: sqlite_utils.Database) -> float:
    value = get_setting(db, "measured_tokens_per_s")
    return float(value) if value else PRIOR_TOKENS_PER_S


def estimate(db: sqlite_utils.Database, version: datasets.DatasetVersion, config: TrainingConfig,
             *, parameters: int = 134_515_008, hidden: int = 576, layers: int = 30,
             vocab: int = 49_152) -> Estimate:
    """Peak memory and duration before launch; memory is a model, not a measurement."""
    from core import templating

    tokenizer = templating.load_tokenizer(models.DEFAULT_MODEL)
    lengths = [min(config.max_length, templating.template_example(tokenizer, m).token_count)
               for m in datasets.version_messages(db, version.id, "train")]
    epochs = config.epochs if config.max_steps <= 0 else 0
    batches_per_epoch = -(-len(lengths) // config.batch_size)
    steps = config.max_steps or max(1, int(-(-batches_per_epoch * epochs // config.grad_accumulation)))
    passes = (steps * config.grad_accumulation * config.batch_size) / max(1, len(lengths))
    train_tokens = int(sum(lengths) * passes)
    weight_bytes = parameters * (0.56 if config.method == "qlora" else 4.0) + vocab * hidden * 4
    lora_params = layers * 7 * config.lora_r * 2 * hidden * 2  # rough: all-linear upper bound
    lora_bytes = lora_params * 4 * 4  # weights, gradients, two Adam moments
    longest = max(lengths or [config.max_length])
    per_token = hidden * layers * (6 if config.gradient_checkpointing else 34) * 4
    activation_bytes = config.batch_size * longest * per_token + config.batch_size * longest * vocab * 4
    peak_mb = (weight_bytes + lora_bytes + activation_bytes) / 2**20 + 900  # runtime + libraries
    available = _available_memory_mb()
    duration = train_tokens / measured_throughput(db)
    costs = hosted_costs(train_tokens, HOSTED_RATES_PER_MILLION)
    return Estimate(train_tokens, steps, round(peak_mb), round(duration), peak_mb < available * 0.9,
                    round(available), costs)


def hosted_costs(train_tokens: int, rates_per_million: dict[str, float]) -> dict[str, float]:
    """What the same training tokens cost at hosted fine-tuning rates ($ per million tokens)."""
    return {str(name): round(train_tokens / 1e6 * float(rate), 4)
            for name, rate in rates_per_million.items() if name and rate == rate and rate is not None}


def _available_memory_mb() -> float:
    try:
        import torch

        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info()
            return free / 2**20
    except Exception:  # torch missing or CUDA broken: fall back to system memory
        pass
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: line.split()[1] for line in f}
        return int(info["MemAvailable"]) / 1024
    except (OSError, KeyError):
        return 4096.0


# ----------------------------------------------------------------------------- queue

def start_run(db: sqlite_utils.Database, version: datasets.DatasetVersion, *,
              base_model: str = models.DEFAULT_MODEL, preset: str = DEFAULT_PRESET,
              config: TrainingConfig | None = None, actor: str = "", launch: bool = True) -> TrainingRun:
    """Queue a run on a frozen version and launch the queue; returns at once."""
    from core import pii

    permissions.require(actor, "start_run")
    models.resolve(base_model)  # a clear ModelUnavailable now, not a traceback in the worker
    gate = pii.gate_status(db, version.dataset_id, version_id=version.id)
    if gate.open_findings and not version.pii_override_reason:
        raise datasets.DatasetError(f"Version {version.number} has {gate.open_findings} unresolved "
                                    "PII finding(s); resolve them and freeze again.")
    if version.train_count == 0:
        raise datasets.DatasetError("This version has no training examples.")
    config = config or PRESETS[preset]
    with transaction(db):
        run_id = insert_row(db, "runs", {
            "dataset_version_id": version.id, "base_model": base_model, "preset": preset,
            "config_json": config.to_json(), "status": "queued", "created_by": actor,
            "queued_at": now()})
        audit(db, actor, "start_run", "run", run_id, {"preset": preset, "version": version.id})
    if launch:
        launch_next(db)
    return get_run(db, int(run_id))


def get_run(db: sqlite_utils.Database, run_id: int) -> TrainingRun:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    if not rows:
        raise datasets.DatasetError(f"No run {run_id}.")
    return TrainingRun.from_row(rows[0])


def list_runs(db: sqlite_utils.Database, dataset_id: int | None = None) -> list[TrainingRun]:
    if dataset_id is None:
        rows = db.query("SELECT * FROM runs ORDER BY id DESC")
    else:
        rows = db.query("SELECT r.* FROM runs r JOIN dataset_versions v ON v.id = r.dataset_version_id "
                        "WHERE v.dataset_id = ? ORDER BY r.id DESC", [dataset_id])
    return [TrainingRun.from_row(r) for r in rows]


def run_events(db: sqlite_utils.Database, run_id: int) -> list[RunEvent]:
    return [RunEvent(r["step"], r["epoch"], r["loss"], r["eval_loss"], r["learning_rate"],
                     r["tokens_per_s"], r["memory_mb"])
            for r in db.query("SELECT * FROM run_events WHERE run_id = ? ORDER BY id", [run_id])]


def max_concurrent(db: sqlite_utils.Database) -> int:
    return int(get_setting(db, "max_concurrent_runs", "1") or 1)


def launch_next(db: sqlite_utils.Database) -> int | None:
    """Start the oldest queued run if a slot is free; returns its id.

    The slot is claimed in a short transaction (pid = this process, alive while it launches), and
    the worker is spawned after the commit: spawning never holds the write lock (issue 15).
    """
    reconcile(db)
    me = os.getpid()
    with transaction(db):
        busy = db.execute("SELECT count(*) FROM runs WHERE status = 'running' OR "
                          "(status = 'queued' AND pid IS NOT NULL)").fetchone()[0]
        if busy >= max_concurrent(db):
            return None
        row = db.execute("SELECT id FROM runs WHERE status = 'queued' AND pid IS NULL "
                         "ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        run_id = int(row[0])
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", [me, run_id])
    try:
        pid = spawn_worker(db_file(db), "train", run_id)
    except BaseException:
        with transaction(db):  # give the slot back; the run stays queued
            db.execute("UPDATE runs SET pid = NULL WHERE id = ? AND status = 'queued' AND pid = ?", [run_id, me])
        raise
    # The worker may have claimed the run already (then it wrote its own pid): only replace ours.
    with transaction(db):
        db.execute("UPDATE runs SET pid = ? WHERE id = ? AND status = 'queued' AND pid = ?", [pid, run_id, me])
    return run_id


# ----------------------------------------------------------------------------- the worker's writes
# The worker process records its run's life here, so `runs` and `run_events` have one writer.

def claim_run(db: sqlite_utils.Database, run_id: int, pid: int) -> bool | None:
    """Mark a queued run running under this pid. None: not claimable; True: its first start."""
    with transaction(db):
        before = db.execute("SELECT started_at FROM runs WHERE id = ?", [run_id]).fetchone()
        claimed = db.execute(
            "UPDATE runs SET status = 'running', pid = ?, started_at = coalesce(started_at, ?), heartbeat_at = ? "
            "WHERE id = ? AND status = 'queued'", [pid, now(), now(), run_id]).rowcount
    if not claimed:
        return None
    return before is not None and before[0] is None


def record_progress(db: sqlite_utils.Database, run_id: int, event: dict[str, Any] | None,
                    update: dict[str, Any]) -> None:
    """One training step's event (optional) and the run's live fields, with a heartbeat."""
    with transaction(db):
        if event is not None:
            db.table("run_events").insert({"run_id": run_id, **event, "created_at": now()})
        db.table("runs").update(run_id, {**update, "heartbeat_at": now()})


def cancel_requested(db: sqlite_utils.Database, run_id: int) -> bool:
    row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", [run_id]).fetchone()
    return bool(row and row[0])


def record_throughput(db: sqlite_utils.Database, tokens_per_s: float) -> None:
    """The last CPU run's measured speed: the prior for the next estimate."""
    with transaction(db):
        set_setting(db, "measured_tokens_per_s", str(tokens_per_s))


def finish_run(db: sqlite_utils.Database, run: TrainingRun, result: dict[str, Any], log_tail_text: str) -> None:
    with transaction(db):
        db.table("runs").update(run.id, {**result, "finished_at": now(), "log_tail": log_tail_text})
        audit(db, run.created_by, f"run_{result['status']}", "run", run.id,
              {"adapter_sha256": result.get("adapter_sha256")})


def fail_run(db: sqlite_utils.Database, run: TrainingRun, error: str, error_type: str, log_tail_text: str) -> None:
    with transaction(db):
        db.table("runs").update(run.id, {"status": "failed", "finished_at": now(), "error": error,
                                         "log_tail": log_tail_text})
        audit(db, run.created_by, "run_failed", "run", run.id, {"error": error_type})


def record_metrics(db: sqlite_utils.Database, run_id: int, metrics: dict[str, Any]) -> None:
    """Merge evaluation metrics (held-out loss, forgetting probe) into the run's metrics."""
    with transaction(db):
        current = json.loads(db.execute("SELECT metrics_json FROM runs WHERE id = ?", [run_id]).fetchone()[0])
        db.table("runs").update(run_id, {"metrics_json": json.dumps({**current, **metrics})})


def set_approval(db: sqlite_utils.Database, run_id: int, decision: str, note: str) -> None:
    """The sign-off decision on a run (the caller, signoff, checks the role and audits)."""
    db.table("runs").update(run_id, {"approval": decision, "approval_note": note})


def log_tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, for the run's live view and its final record."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def spawn_worker(database: str, job: str, object_id: int) -> int:
    """A detached worker process (new session) that outlives the app; returns the launcher pid.

    The worker forks once more and records its own pid, so no zombie is left in the app process.
    """
    logs = log_dir(database)
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(logs / f"{job}-{object_id}.log", "ab") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "core.worker", "--db", database, job, str(object_id), "--detach"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=REPO_ROOT, env=env)
        child_pid = launcher.wait(timeout=60)  # the launcher prints nothing; its exit code is 0
    del child_pid
    pidfile = logs / f"{job}-{object_id}.pid"
    try:
        return int(pidfile.read_text())
    except (OSError, ValueError):
        return launcher.pid


def process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return True  # no /proc (macOS): trust kill(0)


def reconcile(db: sqlite_utils.Database) -> int:
    """Runs marked running (or launched) whose process is gone become `interrupted`."""
    stale = [r for r in db.query("SELECT id, pid FROM runs WHERE status = 'running' OR "
                                 "(status = 'queued' AND pid IS NOT NULL)")
             if not process_alive(r["pid"])]
    if not stale:
        return 0
    with transaction(db):
        for r in stale:
            db.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, error = CASE WHEN "
                       "error = '' THEN 'The training process stopped unexpectedly (killed, or the "
                       "machine restarted). Resume continues from the last checkpoint.' ELSE error END "
                       "WHERE id = ? AND status IN ('running', 'queued')", [now(), r["id"]])
            audit(db, "studio", "run_interrupted", "run", r["id"], {})
    return len(stale)


def cancel_run(db: sqlite_utils.Database, run_id: int, actor: str = "") -> TrainingRun:
    """Ask a run to stop; the trainer saves and stops at the next step. A queued run stops now."""
    permissions.require(actor, "start_run")
    run = get_run(db, run_id)
    with transaction(db):
        if run.status == "queued" and run.pid is None:
            db.table("runs").update(run_id, {"status": "cancelled", "finished_at": now(), "cancel_requested": 1})
        elif run.status in ("running", "queued"):
            db.table("runs").update(run_id, {"cancel_requested": 1})
        audit(db, actor, "cancel_run", "run", run_id, {})
    return get_run(db, run_id)


def resume_run(db: sqlite_utils.Database, run_id: int, actor: str = "", launch: bool = True) -> TrainingRun:
    """Re-queue an interrupted, cancelled or failed run; it continues from its last checkpoint."""
    permissions.require(actor, "start_run")
    run = get_run(db, run_id)
    if run.status not in ("interrupted", "cancelled", "failed"):
        raise datasets.DatasetError(f"Run {run_id} is {run.status}; only stopped runs can resume.")
    with transaction(db):
        db.table("runs").update(run_id, {"status": "queued", "pid": None, "cancel_requested": 0,
                                   "finished_at": None, "error": ""})
        audit(db, actor, "resume_run", "run", run_id, {})
    if launch:
        launch_next(db)
    return get_run(db, run_id)


def delete_run(db: sqlite_utils.Database, run_id: int, actor: str = "") -> None:
    permissions.require(actor, "delete_run")
    run = get_run(db, run_id)
    if run.status == "running":
        raise datasets.DatasetError("Cancel the run before deleting it.")
    with transaction(db):
        db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        audit(db, actor, "delete_run", "run", run_id, {"adapter_sha256": run.adapter_sha256})
    shutil.rmtree(run_dir(db, run_id), ignore_errors=True)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint. The Trainer writes trainer_state.json last, so a folder
    without it was cut off mid-save (killed process, full disk) and must not be resumed from."""
    checkpoints = sorted((p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").exists()),
                         key=lambda p: int(p.name.split("-")[-1]))
    return checkpoints[-1] if checkpoints else None


def config_diff(a: TrainingConfig, b: TrainingConfig) -> dict[str, tuple[Any, Any]]:
    left, right = asdict(a), asdict(b)
    return {k: (left[k], right[k]) for k in left if left[k] != right[k]}


# The files that make a PEFT adapter; anything else in the folder (optimizer state, data, links to
# elsewhere on the server) is not copied.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md")


def _adapter_files(source: Path) -> list[Path]:
    """The adapter's own regular files; a symbolic link is refused, never followed."""
    if source.is_symlink() or not source.is_dir():
        raise datasets.DatasetError(f"{source} is not a folder (symbolic links are not followed).")
    files = []
    for name in ADAPTER_FILES:
        path = source / name
        if path.is_symlink():
            raise datasets.DatasetError(f"{path} is a symbolic link; copy the real file into the folder.")
        if path.is_file():
            files.append(path)
    names = {f.name for f in files}
    if "adapter_config.json" not in names:
        raise datasets.DatasetError(f"{source} has no adapter_config.json: not a PEFT adapter directory.")
    if not names & {"adapter_model.safetensors", "adapter_model.bin"}:
        raise datasets.DatasetError(f"{source} has no adapter weights (adapter_model.safetensors).")
    return files


def import_adapter(db: sqlite_utils.Database, directory: Path, version_id: int, *, actor: str = "",
                   base_model: str = models.DEFAULT_MODEL) -> TrainingRun:
    """Register a PEFT adapter trained elsewhere (a bundle, another machine) as a finished run."""
    from core import generation

    permissions.require(actor, "import_adapter")
    source = Path(directory)
    files = _adapter_files(source)
    adapter_config = json.loads((source / "adapter_config.json").read_text())
    version = datasets.version_by_id(db, version_id)
    with transaction(db):
        run_id = insert_row(db, "runs", {
            "dataset_version_id": version.id, "base_model": base_model, "preset": "imported",
            "config_json": TrainingConfig().to_json(), "status": "succeeded", "created_by": actor,
            "queued_at": now(), "finished_at": now(),
            "metrics_json": json.dumps({"imported_from": str(source.resolve()),
                                        "base_model_name_or_path": adapter_config.get("base_model_name_or_path")})})
    # Copy and hash outside the write transaction (slow work never holds the write lock).
    target = run_dir(db, run_id) / "adapter"
    try:
        target.mkdir(parents=True, exist_ok=False)
        for f in files:
            shutil.copyfile(f, target / f.name, follow_symlinks=False)
        sha = generation.adapter_sha256(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        with transaction(db):
            db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        raise
    with transaction(db):
        db.table("runs").update(run_id, {"adapter_path": str(target), "adapter_sha256": sha})
        audit(db, actor, "import_adapter", "run", run_id, {"source": str(source), "files": [f.name for f in files]})
    return get_run(db, run_id)
