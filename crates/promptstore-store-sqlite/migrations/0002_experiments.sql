-- Experiments (A/B tests) on a prompt + label, and their history. An experiment belongs to
-- its prompt: deleting the prompt deletes its experiments and their history (the audit log
-- keeps the records). Times are integer milliseconds since the Unix epoch (UTC); JSON
-- columns hold the serde encoding of the wire types (promptstore-types).

CREATE TABLE experiments (
    pk                 INTEGER PRIMARY KEY AUTOINCREMENT, -- internal; orders "newest first"
    id                 TEXT NOT NULL UNIQUE,              -- public id (UUID)
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    prompt_pk          INTEGER NOT NULL REFERENCES prompts(pk) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    label              TEXT NOT NULL,
    arms               TEXT NOT NULL,          -- JSON [Arm]; the first is the control
    primary_metric     TEXT NOT NULL,          -- JSON MetricSpec
    guardrails         TEXT NOT NULL,          -- JSON [GuardrailSpec]
    min_sample_per_arm INTEGER NOT NULL,
    max_duration_hours INTEGER,
    on_conclusion      TEXT NOT NULL,          -- JSON OnConclusion
    alpha              REAL NOT NULL,
    sequential_tuning  REAL NOT NULL,
    prior              TEXT,                   -- JSON PriorSpec; NULL = flat
    mde                REAL NOT NULL,
    status             TEXT NOT NULL,          -- draft | running | stopped | concluded
    conclusion         TEXT,                   -- JSON Conclusion once concluded
    revision           INTEGER NOT NULL,
    phase              INTEGER NOT NULL,       -- 0 until started
    created_by         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    started_at         INTEGER,
    phase_started_at   INTEGER,
    ended_at           INTEGER
);
CREATE INDEX experiments_by_project ON experiments(project_id, pk);
CREATE INDEX experiments_by_prompt ON experiments(prompt_pk, pk);
-- The invariant the store enforces: at most one running experiment per prompt + label
-- (the prompt implies the project). The write checks first to name the other experiment;
-- this index is the backstop.
CREATE UNIQUE INDEX experiments_one_running ON experiments(prompt_pk, label)
    WHERE status = 'running';

CREATE TABLE experiment_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_pk INTEGER NOT NULL REFERENCES experiments(pk) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL,
    details       TEXT NOT NULL,               -- JSON
    actor         TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX experiment_history_by_experiment ON experiment_history(experiment_pk, id);
