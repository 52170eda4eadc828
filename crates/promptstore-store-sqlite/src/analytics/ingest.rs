//! The ingest hot path, in the caller's write transaction: give the planned events ids,
//! write their client ids (which finds the stored ones) and their blocks, and merge their
//! contribution into the stored hour and day cells (read the touched cells, merge, write
//! back). The planning itself (`planner`) happens before, as the batches arrive.
//! Everything heavy is done in memory; SQLite sees a few statements per thousand events,
//! and one row per block rather than per event.

use std::sync::LazyLock;

use futures_util::future::join;
use promptstore_core::analytics::model::{EventRecord, Granularity, IngestOutcome};
use promptstore_core::store::StoreError;
use sqlx::SqliteConnection;

use super::blocks::NewBlock;
use super::cache::{CellCache, Staged};
use super::cells::{self, Levels};
use super::multirow::MultiRow;
use super::planner::{Batch, Fate, PendingCommit, Plan, Planner, StoredIds, plan_whole};
use crate::codec::to_json_text;
use crate::error::backend;

/// `OR IGNORE`: a multi-row statement that may abort half-way makes SQLite keep a
/// statement journal (a copy of every page the statement touches); one that cannot abort
/// needs none. No block is ever ignored in fact — ids are fresh — and the insert checks
/// that all its rows went in, failing the whole transaction otherwise. A client id that
/// is ignored is one stored already: the commit is then planned again knowing it.
static INSERT_BLOCKS: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT OR IGNORE INTO event_blocks (id, last_id, project, prompt, experiment, hour, \
         min_at, max_at, events, judged, body)",
        11,
        "",
    )
});

static INSERT_CLIENT_IDS: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT OR IGNORE INTO event_client_ids (project, client_id, id)",
        3,
        "",
    )
});

/// A commit's plan with its event ids, and the roll-up levels its cells feed.
struct Numbered {
    plan: Plan,
    /// The id of each event of the commit (0 for one that is not new).
    ids: Vec<i64>,
    next_id: i64,
    levels: Levels,
}

impl Numbered {
    fn outcomes(&self) -> Vec<IngestOutcome> {
        self.plan
            .fates
            .iter()
            .enumerate()
            .map(|(i, fate)| match fate {
                Fate::Stored(id) => IngestOutcome::Duplicate(*id),
                Fate::SameAs(first) => IngestOutcome::Duplicate(self.ids[*first]),
                Fate::New => IngestOutcome::Inserted(self.ids[i]),
            })
            .collect()
    }
}

/// (project, client id, event id) of every new event with a client id.
fn client_id_rows<'b>(
    batches: &'b [Batch],
    fates: &[Fate],
    ids: &[i64],
) -> Vec<(&'b str, &'b str, i64)> {
    batches
        .iter()
        .flat_map(|b| &b.events)
        .zip(fates)
        .zip(ids)
        .filter(|((_, fate), _)| matches!(fate, Fate::New))
        .filter_map(|((e, _), id)| Some((e.project.0.as_str(), e.client_id.as_deref()?, *id)))
        .collect()
}

/// Store an open commit's events, in order, in the caller's transaction; see
/// `AnalyticsStore::ingest_open`. Returns the outcomes, the cells written (which the
/// caller puts in `cache` once the transaction has committed) and the batches, for the
/// caller to free where it costs the next commit nothing.
///
/// The commit arrives planned (grouped into blocks and folded into hour cells as its
/// batches were added) as if none of its client ids were stored. Inserting the client ids
/// checks that: when one is refused as stored, the insert is rolled back and the commit
/// planned again as one batch, knowing the stored ids. While SQLite inserts the client ids
/// the plan is finished (blocks cut, day cells and roll-up levels folded), and while it
/// inserts the blocks the touched cells are merged.
pub(crate) async fn ingest(
    conn: &mut SqliteConnection,
    cache: &mut CellCache,
    commit: PendingCommit,
) -> Result<(Vec<IngestOutcome>, Staged, Vec<Batch>), StoreError> {
    let PendingCommit { batches, planner } = commit;
    let first_id = next_event_id(conn).await?;
    let fresh = if planner.given_up() {
        None
    } else {
        insert_if_fresh(conn, &batches, planner, first_id).await?
    };
    let (batches, numbered) = match fresh {
        Some(numbered) => (batches, numbered),
        None => plan_knowing_stored(conn, batches, first_id).await?,
    };
    let outcomes = numbered.outcomes();
    let mut staged = Staged::default();
    let Numbered {
        plan,
        next_id,
        levels,
        ..
    } = numbered;
    if plan.blocks.is_empty() {
        return Ok((outcomes, staged, batches));
    }
    let folds = [
        (Granularity::Hour, plan.hours, levels.hour),
        (Granularity::Day, plan.days, levels.day),
    ];
    let touched = cells::touch(conn, cache, folds).await?;
    let (written, merges) = join(
        async {
            insert_blocks(conn, plan.blocks).await?;
            set_next_event_id(conn, next_id).await
        },
        touched.merge(),
    )
    .await;
    written?;
    merges?.write(conn, &mut staged).await?;
    Ok((outcomes, staged, batches))
}

/// Insert the client ids of a commit planned as if none were stored, and finish its plan
/// meanwhile. None, with nothing inserted, when some client id is stored already.
async fn insert_if_fresh(
    conn: &mut SqliteConnection,
    batches: &[Batch],
    planner: Planner,
    first_id: i64,
) -> Result<Option<Numbered>, StoreError> {
    let (ids, next_id) = planner.ids(first_id);
    let rows = client_id_rows(batches, planner.fates(), &ids);
    let expected = rows.len() as u64;
    savepoint(conn, "SAVEPOINT client_ids").await?;
    let (inserted, finished) = join(
        INSERT_CLIENT_IDS.execute(conn, rows, bind_client_id, None),
        async {
            let plan = planner.finish(batches, first_id)?;
            let levels = Levels::of(&plan.hours);
            Ok::<_, StoreError>((plan, levels))
        },
    )
    .await;
    let inserted = inserted?;
    let (plan, levels) = finished?;
    if inserted == expected {
        savepoint(conn, "RELEASE client_ids").await?;
        Ok(Some(Numbered {
            plan,
            ids,
            next_id,
            levels,
        }))
    } else {
        savepoint(conn, "ROLLBACK TO client_ids").await?;
        savepoint(conn, "RELEASE client_ids").await?;
        Ok(None)
    }
}

/// Plan the commit as one batch, given the stored client ids, and insert its client ids.
async fn plan_knowing_stored(
    conn: &mut SqliteConnection,
    batches: Vec<Batch>,
    first_id: i64,
) -> Result<(Vec<Batch>, Numbered), StoreError> {
    let events: Vec<EventRecord> = batches.into_iter().flat_map(|b| b.events).collect();
    let stored = stored_client_ids(conn, &events).await?;
    let (batches, ids, next_id, plan) = plan_whole(events, &stored, first_id)?;
    insert_client_ids(conn, client_id_rows(&batches, &plan.fates, &ids)).await?;
    let levels = Levels::of(&plan.hours);
    Ok((
        batches,
        Numbered {
            plan,
            ids,
            next_id,
            levels,
        },
    ))
}

async fn savepoint(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The next free event id (`event_sequence`): ids of pruned events are never handed out
/// again.
async fn next_event_id(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT next_id FROM event_sequence")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

async fn set_next_event_id(conn: &mut SqliteConnection, next: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE event_sequence SET next_id = ?")
        .bind(next)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// CROSS JOIN keeps json_each as the outer loop: one unique-index probe per client id.
pub(crate) const STORED_CLIENT_IDS: &str = "SELECT c.client_id, c.id FROM json_each(?2) AS j \
     CROSS JOIN event_client_ids AS c ON c.project = ?1 AND c.client_id = j.value";

/// (project, client id) → stored event id, for the commit's client ids that are stored.
/// One query per project of the commit, with the ids as a JSON array.
async fn stored_client_ids(
    conn: &mut SqliteConnection,
    events: &[EventRecord],
) -> Result<StoredIds, StoreError> {
    let mut by_project: foldhash::HashMap<&str, Vec<&str>> = foldhash::HashMap::default();
    for e in events {
        if let Some(client_id) = &e.client_id {
            by_project
                .entry(e.project.0.as_str())
                .or_default()
                .push(client_id);
        }
    }
    let mut found = StoredIds::default();
    for (project, ids) in by_project {
        let json = to_json_text("client ids", &ids)?;
        let rows: Vec<(String, i64)> = sqlx::query_as(STORED_CLIENT_IDS)
            .bind(project)
            .bind(json)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        if !rows.is_empty() {
            found
                .0
                .insert(project.to_owned(), rows.into_iter().collect());
        }
    }
    Ok(found)
}

pub(crate) async fn insert_blocks(
    conn: &mut SqliteConnection,
    new_blocks: Vec<NewBlock>,
) -> Result<(), StoreError> {
    INSERT_BLOCKS
        .execute(
            conn,
            new_blocks,
            |q, b| {
                q.bind(b.id)
                    .bind(b.last_id)
                    .bind(b.project)
                    .bind(b.prompt)
                    .bind(b.experiment)
                    .bind(b.hour)
                    .bind(b.min_at)
                    .bind(b.max_at)
                    .bind(b.events)
                    .bind(false)
                    .bind(b.body)
            },
            Some("event blocks were refused by the database"),
        )
        .await
        .map(drop)
}

fn bind_client_id(
    q: super::multirow::SqliteQuery,
    (project, client_id, id): (&str, &str, i64),
) -> super::multirow::SqliteQuery {
    q.bind(project.to_owned())
        .bind(client_id.to_owned())
        .bind(id)
}

/// Insert client ids of events the caller knows are new (a commit planned knowing the
/// stored ids, converted rows): one that is refused fails the transaction.
pub(crate) async fn insert_client_ids(
    conn: &mut SqliteConnection,
    rows: Vec<(&str, &str, i64)>,
) -> Result<(), StoreError> {
    INSERT_CLIENT_IDS
        .execute(
            conn,
            rows,
            bind_client_id,
            Some("client ids were refused by the database"),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::*;
    use crate::analytics::AnalyticsDb;

    /// The lookups of the hot path probe indexes; a full scan would make every batch cost
    /// the size of the table.
    #[tokio::test]
    async fn hot_path_lookups_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        let ids = db.query_plan(STORED_CLIENT_IDS).await;
        assert!(
            ids.contains("PRIMARY KEY (project=? AND client_id=?)"),
            "{ids}"
        );
        for granularity in [Granularity::Hour, Granularity::Day] {
            let cells = db
                .query_plan(super::super::cells::read_sql_for(granularity))
                .await;
            assert!(
                cells.contains("USING INDEX sqlite_autoindex_cells_"),
                "{cells}"
            );
            assert!(!cells.contains("SCAN c"), "{cells}");
            // Cached cells are written by rowid: one primary-key seek per cell.
            for levels in [false, true] {
                let update = db
                    .query_plan(&super::super::cells::update_sql_for(granularity, levels, 4))
                    .await;
                assert!(
                    update.contains("USING INTEGER PRIMARY KEY (rowid=?)"),
                    "{update}"
                );
                assert!(!update.contains("SCAN cells_"), "{update}");
                assert!(!update.contains("SCAN rollups_"), "{update}");
            }
        }
    }

    fn pending(batch: Vec<EventRecord>) -> PendingCommit {
        use promptstore_core::analytics::store::OpenCommit;
        let mut commit = PendingCommit::default();
        commit.add(super::super::planner::prepare(batch));
        commit
    }

    fn record(i: usize, prompt: &str) -> EventRecord {
        let mut e = promptstore_core::analytics::testutil::event(1_700_000_000);
        e.client_id = Some(format!("c-{i}"));
        e.prompt = prompt.into();
        e
    }

    /// The block insert cannot abort half-way (`OR IGNORE`), so a row the database skipped
    /// must fail the whole ingest: nothing of the batch is stored, no cell counts it.
    #[tokio::test]
    async fn a_row_the_database_skips_fails_the_whole_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER skip_refused BEFORE INSERT ON event_blocks WHEN NEW.prompt = 'refused' \
             BEGIN SELECT RAISE(IGNORE); END",
        )
        .execute(&db.write)
        .await
        .unwrap();
        let batch: Vec<EventRecord> = (0..10)
            .map(|i| record(i, if i == 7 { "refused" } else { "fine" }))
            .collect();
        let mut cache = CellCache::default();
        let mut tx = crate::tx::begin(&db.write).await.unwrap();
        let result = ingest(&mut tx, &mut cache, pending(batch)).await;
        let result = crate::tx::finish(tx, result).await;
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("refused by the database")),
            "{:?}",
            result.map(|(outcomes, _, _)| outcomes)
        );
        for table in [
            "event_blocks",
            "event_client_ids",
            "cells_hour",
            "cells_day",
        ] {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&db.read)
                .await
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
        // The same batch without the refused row goes in whole.
        let mut tx = crate::tx::begin(&db.write).await.unwrap();
        let batch: Vec<EventRecord> = (0..10).map(|i| record(i, "fine")).collect();
        let result = ingest(&mut tx, &mut cache, pending(batch)).await;
        let (outcomes, _, _) = crate::tx::finish(tx, result).await.unwrap();
        assert_eq!(outcomes.len(), 10);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, IngestOutcome::Inserted(_)))
        );
    }
}
