-- The analytics schema, in its own database file (`events.db`), so that heavy ingestion
-- never holds the registry's write lock. Times are integer milliseconds since the Unix
-- epoch (UTC), except cell buckets, which are Unix seconds aligned to the hour or day.
-- No foreign keys to the registry: events outlive prompts, and the file is separate.

-- Raw events. `id` is assigned by the store (the writer holds the lock) and AUTOINCREMENT
-- keeps it from ever being reused after retention has pruned the newest rows.
CREATE TABLE events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project             TEXT NOT NULL,
    client_id           TEXT,
    prompt_id           TEXT NOT NULL,
    prompt              TEXT NOT NULL,
    version             INTEGER NOT NULL,
    label               TEXT,
    experiment          TEXT,
    arm                 TEXT,
    unit_id             TEXT,
    model               TEXT NOT NULL,
    provider            TEXT,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    latency_ms          REAL,
    ttft_ms             REAL,
    cost                REAL,
    cost_source         TEXT NOT NULL,       -- reported | computed | unpriced
    success             INTEGER NOT NULL,
    error_type          TEXT,
    scores              TEXT,                -- JSON object of name → number; NULL when none
    feedback            TEXT,                -- JSON Feedback; NULL when none
    metadata            TEXT,                -- JSON object; NULL when empty
    at                  INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_by_client_id ON events(project, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX events_by_time ON events(project, at);
CREATE INDEX events_by_prompt_time ON events(project, prompt, at);

-- Aggregate cells: one encoded `Rollup` per bucket × combination of dimensions. Absent
-- dimensions are empty strings so that the key is total. Rowid tables (not WITHOUT ROWID):
-- a rollup with its sketches is too large a row for a clustered index.
CREATE TABLE cells_hour (
    project    TEXT NOT NULL,
    bucket     INTEGER NOT NULL,
    prompt_id  TEXT NOT NULL,
    prompt     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    label      TEXT NOT NULL,
    model      TEXT NOT NULL,
    experiment TEXT NOT NULL,
    arm        TEXT NOT NULL,
    rollup     BLOB NOT NULL,
    UNIQUE (project, bucket, prompt_id, prompt, version, label, model, experiment, arm)
);
CREATE INDEX cells_hour_by_prompt ON cells_hour(project, prompt, bucket);

CREATE TABLE cells_day (
    project    TEXT NOT NULL,
    bucket     INTEGER NOT NULL,
    prompt_id  TEXT NOT NULL,
    prompt     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    label      TEXT NOT NULL,
    model      TEXT NOT NULL,
    experiment TEXT NOT NULL,
    arm        TEXT NOT NULL,
    rollup     BLOB NOT NULL,
    UNIQUE (project, bucket, prompt_id, prompt, version, label, model, experiment, arm)
);
CREATE INDEX cells_day_by_prompt ON cells_day(project, prompt, bucket);

-- A project's own model prices; the shipped defaults live in code.
CREATE TABLE prices (
    project               TEXT NOT NULL,
    model                 TEXT NOT NULL,
    effective_from        INTEGER NOT NULL,
    input_per_mtok        REAL NOT NULL,
    output_per_mtok       REAL NOT NULL,
    cached_input_per_mtok REAL,
    PRIMARY KEY (project, model, effective_from)
);

CREATE TABLE alert_rules (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    project           TEXT NOT NULL,
    rule              TEXT NOT NULL,         -- JSON AlertRuleIn
    enabled           INTEGER NOT NULL,      -- copy of rule.enabled, for the worker's query
    state             TEXT NOT NULL,         -- ok | firing | insufficient_data
    last_value        REAL,
    last_evaluated_at INTEGER,
    created_at        INTEGER NOT NULL
);
CREATE INDEX alert_rules_by_project ON alert_rules(project, id);
CREATE INDEX alert_rules_enabled ON alert_rules(enabled, id);

-- State changes of alert rules (firing / resolved): the history, and the notifications to
-- deliver. Kept when the rule is deleted (the rule's name is copied in).
CREATE TABLE alert_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    project   TEXT NOT NULL,
    rule_id   INTEGER NOT NULL,
    rule_name TEXT NOT NULL,
    state     TEXT NOT NULL,
    value     REAL NOT NULL,
    threshold REAL NOT NULL,
    sample    INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX alert_events_by_project ON alert_events(project, id);
CREATE INDEX alert_events_by_rule ON alert_events(project, rule_id, id);
