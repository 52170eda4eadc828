-- Time indexes of raw events that ingestion can afford.
--
-- Events arrive up to a minute (or more) after they happened, in no particular order, so an
-- index ordered by `at` receives each new entry at a random place among the last minute's
-- entries: every event of a commit dirtied its own index page (~4 KiB of WAL, written
-- again by the checkpoint), and the two `at`-ordered indexes cost about five times the
-- rows themselves (measured: 1,000-row transactions over 300,000 events, 9,000 rows/s with
-- them, 40,000 rows/s with these).
--
-- These indexes order events by a time bucket and then by id (arrival order): a commit
-- appends at the end of each bucket it touches — about one per second of lateness for the
-- per-second index, two per prompt for the hourly ones — and `at` rides along as the last
-- column, so range conditions on it are checked in the index before any row is read.
-- Queries name the bucket expressions (`at / 1000`, `at / 3600000`) beside their bounds on
-- `at` (see `events::conditions`), and the newest-first listing walks seconds backwards.
--
-- Only indexes change: they are rebuilt from the stored rows, so no row is copied.

DROP INDEX events_by_time;
DROP INDEX events_by_prompt_time;
DROP INDEX events_by_experiment;

-- Time ranges of a project (listing, windows, retention).
CREATE INDEX events_by_second ON events(project, at / 1000, id, at);
-- Time ranges of one prompt (dashboards' partial hours, a prompt's listing).
CREATE INDEX events_by_prompt_hour ON events(project, prompt, at / 3600000, id, at);
-- Experiment results read the raw events of a partial first hour.
CREATE INDEX events_by_experiment ON events(project, experiment, at / 3600000, id, at)
    WHERE experiment IS NOT NULL;
