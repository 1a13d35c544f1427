"""The schema as each migration in core.platform.store created it (append only, never edited)."""

SCHEMA_V1 = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);

CREATE TABLE base_models (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    location TEXT NOT NULL, added_at TEXT NOT NULL);

CREATE TABLE datasets (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
    system_prompt TEXT NOT NULL DEFAULT '', guidelines TEXT NOT NULL DEFAULT '',
    criteria_json TEXT NOT NULL DEFAULT '[]', convention_regex TEXT NOT NULL DEFAULT '',
    glossary_json TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL);

CREATE TABLE examples (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    messages_json TEXT NOT NULL, content_hash TEXT NOT NULL,
    split TEXT NOT NULL DEFAULT 'train' CHECK (split IN ('train', 'heldout')),
    tags_json TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'ready')),
    author TEXT NOT NULL DEFAULT '', revision INTEGER NOT NULL DEFAULT 1,
    problem_codes TEXT NOT NULL DEFAULT '', token_count INTEGER,
    source TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX idx_examples_dataset ON examples(dataset_id);
CREATE INDEX idx_examples_hash ON examples(dataset_id, content_hash);

CREATE TABLE example_revisions (
    id INTEGER PRIMARY KEY, example_id INTEGER NOT NULL, revision INTEGER NOT NULL,
    messages_json TEXT NOT NULL, content_hash TEXT NOT NULL, author TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE INDEX idx_example_revisions_example ON example_revisions(example_id);

CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    source TEXT NOT NULL DEFAULT '', line_no INTEGER NOT NULL, raw_text TEXT NOT NULL,
    code TEXT NOT NULL, message TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX idx_quarantine_dataset ON quarantine(dataset_id);

CREATE TABLE dataset_versions (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    number INTEGER NOT NULL, content_hash TEXT NOT NULL, train_count INTEGER NOT NULL,
    heldout_count INTEGER NOT NULL, created_by TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    pii_override_reason TEXT NOT NULL DEFAULT '', UNIQUE (dataset_id, number));
CREATE INDEX idx_dataset_versions_dataset ON dataset_versions(dataset_id);

CREATE TABLE dataset_version_examples (
    dataset_version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, example_id INTEGER, split TEXT NOT NULL,
    messages_json TEXT NOT NULL, content_hash TEXT NOT NULL,
    PRIMARY KEY (dataset_version_id, position));

CREATE TABLE pii_configs (
    id INTEGER PRIMARY KEY, config_json TEXT NOT NULL, config_hash TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);

CREATE TABLE pii_findings (
    id INTEGER PRIMARY KEY, example_id INTEGER REFERENCES examples(id) ON DELETE CASCADE,
    generation_id INTEGER, content_hash TEXT NOT NULL, config_hash TEXT NOT NULL,
    message_index INTEGER NOT NULL, entity_type TEXT NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, score REAL NOT NULL, value_hash TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'anonymised', 'dismissed')),
    reason TEXT NOT NULL DEFAULT '', decided_by TEXT NOT NULL DEFAULT '', decided_at TEXT,
    created_at TEXT NOT NULL);
CREATE INDEX idx_pii_findings_example ON pii_findings(example_id);
CREATE INDEX idx_pii_findings_key ON pii_findings(content_hash, config_hash);

CREATE TABLE pii_scans (
    content_hash TEXT NOT NULL, config_hash TEXT NOT NULL, scanned_at TEXT NOT NULL,
    PRIMARY KEY (content_hash, config_hash));

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    dataset_version_id INTEGER NOT NULL REFERENCES dataset_versions(id),
    base_model TEXT NOT NULL, preset TEXT NOT NULL DEFAULT '', config_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
        ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    pid INTEGER, total_steps INTEGER, cancel_requested INTEGER NOT NULL DEFAULT 0,
    resume_from_run_id INTEGER, adapter_path TEXT, adapter_sha256 TEXT,
    metrics_json TEXT NOT NULL DEFAULT '{}', error TEXT NOT NULL DEFAULT '',
    log_tail TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL DEFAULT '',
    approval TEXT NOT NULL DEFAULT '', approval_note TEXT NOT NULL DEFAULT '',
    queued_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, heartbeat_at TEXT);
CREATE INDEX idx_runs_dataset_version ON runs(dataset_version_id);

CREATE TABLE run_events (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL, epoch REAL, loss REAL, eval_loss REAL, learning_rate REAL,
    tokens_per_s REAL, memory_mb REAL, created_at TEXT NOT NULL);
CREATE INDEX idx_run_events_run ON run_events(run_id);

CREATE TABLE generation_jobs (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    status TEXT NOT NULL, pid INTEGER, done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
    settings_json TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    finished_at TEXT);
CREATE INDEX idx_generation_jobs_run ON generation_jobs(run_id);

CREATE TABLE generations (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, prompt_json TEXT NOT NULL, reference TEXT NOT NULL DEFAULT '',
    side TEXT NOT NULL CHECK (side IN ('base', 'tuned')), text TEXT NOT NULL,
    settings_json TEXT NOT NULL, adapter_sha256 TEXT NOT NULL DEFAULT '',
    flags_json TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
    UNIQUE (run_id, position, side));
CREATE INDEX idx_generations_run ON generations(run_id);

CREATE TABLE rating_sessions (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rater TEXT NOT NULL, order_json TEXT NOT NULL, created_at TEXT NOT NULL,
    completed_at TEXT, UNIQUE (run_id, rater));
CREATE INDEX idx_rating_sessions_run ON rating_sessions(run_id);

CREATE TABLE ratings (
    id INTEGER PRIMARY KEY,
    rating_session_id INTEGER NOT NULL REFERENCES rating_sessions(id) ON DELETE CASCADE,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, rater TEXT NOT NULL,
    left_side TEXT NOT NULL CHECK (left_side IN ('base', 'tuned')),
    verdict TEXT NOT NULL CHECK (verdict IN ('A', 'B', 'tie', 'both_bad')),
    preferred TEXT NOT NULL CHECK (preferred IN ('base', 'tuned', 'tie', 'both_bad')),
    scores_json TEXT NOT NULL DEFAULT '{}', comment TEXT NOT NULL DEFAULT '',
    seconds_spent REAL NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (run_id, position, rater));
CREATE INDEX idx_ratings_session ON ratings(rating_session_id);
CREATE INDEX idx_ratings_run ON ratings(run_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL, object_type TEXT NOT NULL,
    object_id TEXT, detail_json TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
"""


SCHEMA_V2 = """
CREATE TABLE rating_closures (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    closed_by TEXT NOT NULL, closed_at TEXT NOT NULL);

CREATE TABLE sign_in_failures (
    id INTEGER PRIMARY KEY, user_name TEXT NOT NULL, client TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX idx_sign_in_failures_user ON sign_in_failures(user_name);
CREATE INDEX idx_sign_in_failures_client ON sign_in_failures(client);

CREATE TABLE change_counters (scope TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);

ALTER TABLE runs ADD COLUMN phase TEXT NOT NULL DEFAULT '';

CREATE TABLE playground_requests (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    prompt_json TEXT NOT NULL, settings_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    pid INTEGER, base_text TEXT NOT NULL DEFAULT '', tuned_text TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    finished_at TEXT);
CREATE INDEX idx_playground_requests_run ON playground_requests(run_id)
"""

# value_text is kept only for "not personal data" decisions; an anonymised value is known by its
# salted hash alone (its raw text is erased everywhere).
SCHEMA_V3 = """
CREATE TABLE pii_value_decisions (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    value_hash TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('not_pii', 'anonymise')),
    method TEXT NOT NULL DEFAULT '', entity_types_json TEXT NOT NULL DEFAULT '[]',
    value_text TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL, decided_at TEXT NOT NULL,
    PRIMARY KEY (dataset_id, value_hash))
"""

# target: 'local' (a worker process here) or 'ray' (a Ray job; target_ref is its submission id).
SCHEMA_V4 = """
ALTER TABLE runs ADD COLUMN estimated_s REAL;
ALTER TABLE runs ADD COLUMN target TEXT NOT NULL DEFAULT 'local';
ALTER TABLE runs ADD COLUMN target_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE generation_jobs ADD COLUMN started_at TEXT;
ALTER TABLE generation_jobs ADD COLUMN target TEXT NOT NULL DEFAULT 'local';
ALTER TABLE generation_jobs ADD COLUMN target_ref TEXT NOT NULL DEFAULT ''
"""

# The e-value's entry rule (issue 26): k is read once, when a run's first rating session starts;
# a prompt enters the sequential test when its k-th vote arrives, with the mean of its first k
# votes in time order, stored here so that later votes and edits cannot change it.
SCHEMA_V5 = """
CREATE TABLE rating_plans (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    raters_per_pair INTEGER NOT NULL CHECK (raters_per_pair >= 1),
    created_at TEXT NOT NULL);
CREATE TABLE evalue_entries (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    value REAL NOT NULL CHECK (value >= 0 AND value <= 1),
    votes INTEGER NOT NULL CHECK (votes >= 1),
    entered_at TEXT NOT NULL,
    PRIMARY KEY (run_id, position))
"""

# The dataset vocabulary an admin confirmed (issue 23): {"glossary": [...], "guidelines": "...",
# "confirmed_by": ..., "confirmed_at": ...}, or '' when none was. Only the confirmed vocabulary clears
# findings; what an author writes in the glossary afterwards waits for the next confirmation.
SCHEMA_V7 = """
ALTER TABLE datasets ADD COLUMN vocabulary_json TEXT NOT NULL DEFAULT ''
"""

# Who saw a run's outcome (issue 23): one row per (run, viewer), the first look, written by
# core.rating.blinding.open_outcome. A look from before the run's rating closed (seen_at < closed_at)
# bars that run; any look bars runs on the same base model and prompts (blinding.earlier_look).
SCHEMA_V8 = """
CREATE TABLE outcome_views (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    viewer TEXT NOT NULL, seen_at TEXT NOT NULL,
    PRIMARY KEY (run_id, viewer))
"""

# The identity of a job's process: its pid and psutil's create_time() (seconds since the epoch).
# A pid alone is reused (after a reboot, the first few hundred pids come back within seconds) and
# kept a dead run "running"; pid and start time together name one process (issue 22).
SCHEMA_V9 = """
ALTER TABLE runs ADD COLUMN pid_started REAL;
ALTER TABLE generation_jobs ADD COLUMN pid_started REAL;
ALTER TABLE playground_requests ADD COLUMN pid_started REAL
"""

# An output convention an author accepted or edited (issue 24): JSON of curation.convention.Convention;
# '' means the studio infers it from the training answers of each version.
SCHEMA_V11 = """
ALTER TABLE datasets ADD COLUMN convention_json TEXT NOT NULL DEFAULT ''
"""

# Preference rounds and any-two-model comparisons (issue 28). kind: 'sft' (examples) or 'dpo' (a
# preference round on `preference_pairs`, frozen when it was queued, starting from parent_run_id's
# adapter). rating_run_id and votes_sha256 name the blind votes it learned from. reference_run_id:
# the model a run's answers are rated against (NULL: the base model). Plain ids, not foreign keys:
# lineage stays readable after the run it names is deleted.
SCHEMA_V12 = """
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'sft' CHECK (kind IN ('sft', 'dpo'));
ALTER TABLE runs ADD COLUMN parent_run_id INTEGER;
ALTER TABLE runs ADD COLUMN rating_run_id INTEGER;
ALTER TABLE runs ADD COLUMN votes_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN reference_run_id INTEGER;
CREATE TABLE preference_pairs (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, prompt_json TEXT NOT NULL, chosen TEXT NOT NULL, rejected TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('votes', 'correction')));
CREATE INDEX idx_preference_pairs_run ON preference_pairs(run_id)
"""

# A refused rater is audited once per run and reason (the Rate page asks on every load): the lookup
# must not scan the whole log inside the rating transaction.
SCHEMA_V13 = """
CREATE INDEX idx_audit_log_action_object ON audit_log(action, object_type, object_id)
"""
