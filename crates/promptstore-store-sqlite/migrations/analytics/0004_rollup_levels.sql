-- Roll-up levels: the hour and day cells merged over coarser keys, so that the queries a
-- dashboard runs most read a few cells per bucket instead of one per combination of
-- dimensions (1,800 in a mid-sized project): level 0 holds one cell per project and bucket
-- (prompt = ''), level 1 one per project, prompt name and bucket. They are maintained in the
-- same transaction as the fine cells (ingest, late judgements), so each level always equals
-- the merge of the fine cells it covers; queries that filter or group by a finer dimension
-- read the fine cells.
CREATE TABLE rollups_hour (
    project TEXT NOT NULL,
    level   INTEGER NOT NULL,
    prompt  TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    rollup  BLOB NOT NULL,
    UNIQUE (project, level, prompt, bucket)
);

CREATE TABLE rollups_day (
    project TEXT NOT NULL,
    level   INTEGER NOT NULL,
    prompt  TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    rollup  BLOB NOT NULL,
    UNIQUE (project, level, prompt, bucket)
);

-- A database that already holds cells gets its levels computed from them once, when it is
-- next opened (a rollup cannot be merged in SQL); the row is deleted in the transaction
-- that writes them. Until then nothing reads the levels.
CREATE TABLE rollup_levels_backfill (pending INTEGER NOT NULL);
INSERT INTO rollup_levels_backfill (pending)
    SELECT 1 WHERE EXISTS (SELECT 1 FROM cells_hour) OR EXISTS (SELECT 1 FROM cells_day);
