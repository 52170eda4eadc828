-- First exposures of units to experiment arms, per phase (the sample-ratio-mismatch check
-- counts units, not events), and their running totals per arm so that the check reads a
-- few rows however many units there are. Times are integer milliseconds (UTC).

CREATE TABLE exposures (
    project    TEXT NOT NULL,
    experiment TEXT NOT NULL,
    phase      INTEGER NOT NULL,
    unit_id    TEXT NOT NULL,
    arm        TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (project, experiment, phase, unit_id)
) WITHOUT ROWID;

-- Maintained in the transaction that inserts the exposures: always the count of their rows.
CREATE TABLE exposure_totals (
    project    TEXT NOT NULL,
    experiment TEXT NOT NULL,
    phase      INTEGER NOT NULL,
    arm        TEXT NOT NULL,
    units      INTEGER NOT NULL,
    PRIMARY KEY (project, experiment, phase, arm)
) WITHOUT ROWID;

-- Experiment results read one experiment's cells and, for a partial first hour, its raw
-- events; without these they would scan every cell or event of the project.
CREATE INDEX cells_hour_by_experiment ON cells_hour(project, experiment, bucket);
CREATE INDEX cells_day_by_experiment ON cells_day(project, experiment, bucket);
CREATE INDEX events_by_experiment ON events(project, experiment, at)
    WHERE experiment IS NOT NULL;
