-- The registry schema. Times are integer milliseconds since the Unix epoch (UTC), so that
-- "what did a label point to at time T" is an indexed range query over label_moves.
-- JSON columns hold the serde encoding of the shared value types (promptstore-types).

CREATE TABLE projects (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL UNIQUE,
    protected_labels TEXT NOT NULL,          -- JSON array of label names
    created_at       INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,   -- public key id
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,               -- SHA-256 hex of the whole secret
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_project ON api_keys(project_id, created_at);

CREATE TABLE prompts (
    pk             INTEGER PRIMARY KEY,      -- internal; also the rowid of prompts_fts
    id             TEXT NOT NULL UNIQUE,     -- public id (UUID)
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    description    TEXT NOT NULL,
    tags           TEXT NOT NULL,            -- JSON array
    status         TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    latest_version INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE versions (
    prompt_pk        INTEGER NOT NULL REFERENCES prompts(pk) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    template         TEXT NOT NULL,          -- JSON Template
    variables        TEXT NOT NULL,          -- JSON [VariableSpec]
    model_config     TEXT NOT NULL,          -- JSON
    commit_message   TEXT NOT NULL,
    author           TEXT NOT NULL,
    parent_prompt    TEXT,
    parent_number    INTEGER,
    content_hash     TEXT NOT NULL,
    includes         TEXT NOT NULL,          -- JSON [IncludeRef]
    breaking_changes TEXT NOT NULL,          -- JSON [BreakingChange]
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (prompt_pk, number)
);

CREATE TABLE labels (
    prompt_pk  INTEGER NOT NULL REFERENCES prompts(pk) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (prompt_pk, name),
    FOREIGN KEY (prompt_pk, version) REFERENCES versions(prompt_pk, number) ON DELETE CASCADE
);

-- Every label move, `latest` included. `at` never decreases with `id` (the store takes the
-- later of the clock and the previous move), so ordering by (at, id) is the order of moves.
CREATE TABLE label_moves (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_pk    INTEGER NOT NULL REFERENCES prompts(pk) ON DELETE CASCADE,
    prompt_name  TEXT NOT NULL,
    label        TEXT NOT NULL,
    from_version INTEGER,
    to_version   INTEGER,
    actor        TEXT NOT NULL,
    reason       TEXT,
    at           INTEGER NOT NULL
);
CREATE INDEX label_moves_by_label_time ON label_moves(prompt_pk, label, at, id);
CREATE INDEX label_moves_by_prompt ON label_moves(prompt_pk, id);

-- No foreign keys: the audit log outlives what it describes (deleted prompts).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log(project_id, id);

-- Full-text index of prompts: rowid = prompts.pk. `template` is the text of the newest
-- version (every message content of a chat template). Kept in sync by the store in the
-- transaction that changes the prompt.
CREATE VIRTUAL TABLE prompts_fts USING fts5(
    name, description, tags, template,
    tokenize = 'unicode61 remove_diacritics 2'
);
