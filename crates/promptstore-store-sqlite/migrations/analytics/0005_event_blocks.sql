-- Raw events in encoded blocks instead of one indexed row each.
--
-- A row per event cost ingestion more than everything else together: 25 bound values, the
-- row, and an entry in each of four indexes (client id and three time orders), about 60 %
-- of a group commit (BENCHMARKS.md, "Event blocks"). Raw events are read far less often than
-- they are written — a dashboard's partial hours, a listing's newest page, a late judgement
-- — and always by project and time, usually by prompt or experiment too. So a commit now
-- writes, per (project, prompt, experiment, hour) it touches, one row holding its events
-- encoded (`blocks.rs`), and per event only its client id in the dedup index.
--
-- Events stay append-only: a block is never rewritten. Judgements attached later go to
-- `event_judgements`, which reads overlay on the block's copy (`judged` says whether any
-- exists, so that most block reads look nothing up).

CREATE TABLE event_blocks (
    -- The id of the block's first event. Event ids of a block lie in [id, last_id], and the
    -- ranges of two blocks never overlap, so the block of an event id is one seek.
    id         INTEGER PRIMARY KEY,
    last_id    INTEGER NOT NULL,
    project    TEXT NOT NULL,
    prompt     TEXT NOT NULL,
    experiment TEXT,                -- NULL for events outside any experiment
    hour       INTEGER NOT NULL,    -- at / 3600000 (ms) of every event in the block
    min_at     INTEGER NOT NULL,
    max_at     INTEGER NOT NULL,
    events     INTEGER NOT NULL,    -- how many the block holds
    judged     INTEGER NOT NULL,    -- 1 once any of its events has a row in event_judgements
    body       BLOB NOT NULL
);
-- A project's time range (windows, retention), one prompt's, one experiment's.
CREATE INDEX event_blocks_by_hour ON event_blocks(project, hour, min_at, max_at);
CREATE INDEX event_blocks_by_prompt_hour ON event_blocks(project, prompt, hour, min_at, max_at);
CREATE INDEX event_blocks_by_experiment ON event_blocks(project, experiment, hour, min_at, max_at)
    WHERE experiment IS NOT NULL;
-- The newest-first listing takes blocks by their newest event (then id: the rowid that
-- ends every index entry), in index order.
CREATE INDEX event_blocks_by_newest ON event_blocks(project, max_at);

-- Deduplication and look-up by client id: one small entry per event that has one.
CREATE TABLE event_client_ids (
    project   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    id        INTEGER NOT NULL,
    PRIMARY KEY (project, client_id)
) WITHOUT ROWID;

-- Scores and feedback attached after ingest: the event's whole current judgements, which
-- replace the block's copy when read.
CREATE TABLE event_judgements (
    id       INTEGER PRIMARY KEY,
    scores   TEXT,                  -- JSON object of name → number; NULL when none
    feedback TEXT                   -- JSON Feedback; NULL when none
);

-- The next event id: ids of pruned events are never handed out again.
CREATE TABLE event_sequence (next_id INTEGER NOT NULL);
INSERT INTO event_sequence (next_id)
    SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
               COALESCE((SELECT MAX(id) FROM events), 0)) + 1;

-- Events stored as rows by earlier versions are moved into blocks by the store when it
-- next opens the file (`blocks::convert_rows`, in Rust: SQL cannot encode a block), which
-- then drops the `events` table. Until then nothing reads it.
