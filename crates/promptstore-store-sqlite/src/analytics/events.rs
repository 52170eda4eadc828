//! Raw events after ingest, read from their blocks (`blocks.rs`): look-ups by server or
//! client id, the newest-first listing, the exact rollup of a time window, late
//! judgements, retention, and the one-time move of rows stored by earlier versions into
//! blocks.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::TryStreamExt as _;
use promptstore_core::analytics::model::{AnalyticsFilter, EventRecord, EventRef, StoredEvent};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::model::ProjectId;
use promptstore_core::store::{Page, PageRequest, StoreError};
use promptstore_types::Feedback;
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::blocks::{self, BLOCK_COLUMNS, BlockKey, BlockRow, MAX_BLOCK_EVENTS, block_columns};
use super::cells::HOUR_MS;
use super::filter::{Conditions, Param, bind_all_as};
use super::rows::{EVENT_COLUMNS, EventRow, feedback_text, scores_text};
use crate::codec::{into_page, page_limit, to_json_text, to_ms};
use crate::error::backend;

/// Blocks pruned per retention transaction (at most `MAX_BLOCK_EVENTS` events each): small
/// enough that an ingest waiting for the writer is delayed by milliseconds, not seconds.
pub(crate) const PRUNE_BLOCKS: i64 = 16;

pub(crate) fn not_found(event: &EventRef) -> StoreError {
    StoreError::NotFound {
        what: match event {
            EventRef::Id(id) => format!("event {id}"),
            EventRef::ClientId(c) => format!("event with client id '{c}'"),
        },
    }
}

/// First millisecond at or after `t` (stored times are whole milliseconds).
fn ceil_ms(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    let ms = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The last millisecond before `to` (ranges are half-open, stored times whole ms).
fn last_ms_before(to: OffsetDateTime) -> i64 {
    ceil_ms(to).saturating_sub(1)
}

/// The block holding event `id` of `project`: the block with the greatest first id at or
/// below it, if its range reaches `id` (block ranges never overlap).
pub(crate) const BLOCK_OF_ID: &str = concat!(
    "SELECT ",
    block_columns!(),
    " FROM event_blocks AS b WHERE b.id = (SELECT MAX(id) FROM event_blocks WHERE id <= ?2) \
     AND b.project = ?1 AND b.last_id >= ?2"
);

async fn block_of(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    id: i64,
) -> Result<Option<BlockRow>, StoreError> {
    sqlx::query_as(BLOCK_OF_ID)
        .bind(project.0.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// A block by its id (the listing's second step).
const BLOCK_BY_ID: &str = concat!(
    "SELECT ",
    block_columns!(),
    " FROM event_blocks AS b WHERE b.id = ?"
);

pub(crate) async fn get(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    event: &EventRef,
) -> Result<Option<StoredEvent>, StoreError> {
    Ok(locate(conn, project, event)
        .await?
        .map(|(_, stored)| stored))
}

/// The stored event and the id of the block that holds it.
async fn locate(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    event: &EventRef,
) -> Result<Option<(i64, StoredEvent)>, StoreError> {
    let id = match event {
        EventRef::Id(id) => *id,
        EventRef::ClientId(client_id) => {
            let id: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM event_client_ids WHERE project = ?1 AND client_id = ?2",
            )
            .bind(project.0.as_str())
            .bind(client_id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
            match id {
                Some(id) => id,
                None => return Ok(None),
            }
        }
    };
    let Some(block) = block_of(conn, project, id).await? else {
        return Ok(None);
    };
    let decoded = block.decode()?;
    decoded
        .find(id)
        .map(|e| Ok((block.id, decoded.stored(id, e)?)))
        .transpose()
}

/// The position a page of events ends at: (at, id) of its last event, newest first.
fn encode_cursor(at: i64, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("ev:{at}:{id}"))
}

fn cursor_of(e: &StoredEvent) -> String {
    encode_cursor(to_ms(e.event.at), e.id)
}

fn decode_cursor(cursor: &str) -> Result<(i64, i64), StoreError> {
    let invalid = || {
        StoreError::InvalidCursor {
        message: "the cursor was not issued by the event list; pass the `next_cursor` of the previous page"
            .to_owned(),
    }
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(bytes).map_err(|_| invalid())?;
    let rest = raw.strip_prefix("ev:").ok_or_else(invalid)?;
    let (at, id) = rest.split_once(':').ok_or_else(invalid)?;
    Ok((
        at.parse().map_err(|_| invalid())?,
        id.parse().map_err(|_| invalid())?,
    ))
}

/// The conditions on a block's own columns: its project, and the prompt or experiment
/// when the filter names one (an empty experiment asks for events outside experiments).
pub(crate) fn block_conditions(project: &ProjectId, filter: &AnalyticsFilter) -> Conditions {
    let mut c = Conditions::new();
    c.push("b.project = ?", [Param::Text(project.0.clone())]);
    if let Some(prompt) = &filter.prompt {
        c.push("b.prompt = ?", [Param::Text(prompt.clone())]);
    }
    match filter.experiment.as_deref() {
        Some("") => c.push("b.experiment IS NULL", []),
        Some(experiment) => c.push("b.experiment = ?", [Param::Text(experiment.to_owned())]),
        None => {}
    }
    c
}

/// Restrict blocks to those that may hold an event at a time in `[lo, hi]` (ms): by hour,
/// which the block indexes are ordered by, then by the block's own time range.
pub(crate) fn push_block_time(c: &mut Conditions, lo: i64, hi: i64) {
    c.push("b.hour >= ?", [Param::Int(lo.div_euclid(HOUR_MS))]);
    c.push("b.hour <= ?", [Param::Int(hi.div_euclid(HOUR_MS))]);
    c.push("b.max_at >= ?", [Param::Int(lo)]);
    c.push("b.min_at <= ?", [Param::Int(hi)]);
}

/// Blocks per step of the listing's walk.
const LISTING_STEP: i64 = 32;

/// Events newest first (by time, then id), paginated by (time, id).
///
/// Blocks are taken by their newest event, newest first (`event_blocks_by_newest`), and
/// their matching events kept in order; the walk stops once a page is full and the next
/// block's newest event is older than the page's oldest — no later block can hold an event
/// that belongs on the page. A page costs about the blocks that overlap its time span.
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    page: &PageRequest,
) -> Result<Page<StoredEvent>, StoreError> {
    let (limit, fetch) = page_limit(page.limit);
    let fetch = usize::try_from(fetch).unwrap_or(limit);
    let cursor = page.cursor.as_deref().map(decode_cursor).transpose()?;
    let oldest = from.map(ceil_ms).unwrap_or(i64::MIN);
    let mut newest = to.map(last_ms_before).unwrap_or(i64::MAX);
    if let Some((at, _)) = cursor {
        newest = newest.min(at);
    }
    if newest < oldest {
        return into_page(Vec::new(), limit, Ok, cursor_of);
    }
    // (at, event), newest first, at most `fetch` once trimmed.
    let mut found: Vec<(i64, StoredEvent)> = Vec::with_capacity(fetch);
    let mut position: Option<(i64, i64)> = None;
    'walk: loop {
        let mut c = block_conditions(project, filter);
        c.push("b.max_at >= ?", [Param::Int(oldest)]);
        c.push("b.min_at <= ?", [Param::Int(newest)]);
        if let Some((max_at, id)) = position {
            c.push(
                "(b.max_at, b.id) < (?, ?)",
                [Param::Int(max_at), Param::Int(id)],
            );
        }
        let sql = format!(
            "SELECT b.max_at, b.id FROM event_blocks AS b {} \
             ORDER BY b.max_at DESC, b.id DESC LIMIT {LISTING_STEP}",
            c.where_sql()
        );
        let heads: Vec<(i64, i64)> = bind_all_as(sqlx::query_as(AssertSqlSafe(sql)), c.params())
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        for &(max_at, id) in &heads {
            // The page's oldest (at, id) once it is full: nothing at or below it can enter.
            let floor = (found.len() >= fetch)
                .then(|| found.last().map(|(at, e)| (*at, e.id)))
                .flatten();
            if floor.is_some_and(|(at, _)| max_at < at) {
                break 'walk;
            }
            position = Some((max_at, id));
            let block: BlockRow = sqlx::query_as(BLOCK_BY_ID)
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?;
            let decoded = block.decode()?;
            for (event_id, e) in decoded.iter() {
                let key = (e.at, event_id);
                let in_range = e.at >= oldest && e.at <= newest;
                let after_cursor = cursor.is_none_or(|c| key < c);
                let above_floor = floor.is_none_or(|f| key > f);
                // Only events that can stay on the page are decoded whole.
                if in_range && after_cursor && above_floor && decoded.matches(e, filter) {
                    found.push((e.at, decoded.stored(event_id, e)?));
                }
            }
            found.sort_unstable_by_key(|(at, e)| std::cmp::Reverse((*at, e.id)));
            found.truncate(fetch);
        }
        if heads.len() < LISTING_STEP as usize {
            break;
        }
    }
    into_page(found, limit, |(_, e)| Ok(e), cursor_of)
}

/// Call `each` with every stored event of `project` in `[from, to)` matching `filter`, in
/// no particular order, as one reused record (see `Decoded::fill`: client id, unit id,
/// provider, prompt id and metadata are not filled). Blocks are streamed, so a wide
/// window costs time, not memory.
pub(crate) async fn for_each_in_window(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: OffsetDateTime,
    to: OffsetDateTime,
    mut each: impl FnMut(&EventRecord),
) -> Result<(), StoreError> {
    let (lo, hi) = (ceil_ms(from), last_ms_before(to));
    if hi < lo {
        return Ok(());
    }
    let mut c = block_conditions(project, filter);
    push_block_time(&mut c, lo, hi);
    let sql = format!(
        "SELECT {BLOCK_COLUMNS} FROM event_blocks AS b {}",
        c.where_sql()
    );
    let mut rows =
        bind_all_as::<BlockRow>(sqlx::query_as(AssertSqlSafe(sql)), c.params()).fetch(&mut *conn);
    let mut record = blocks::empty_record();
    while let Some(block) = rows.try_next().await.map_err(backend)? {
        let decoded = block.decode()?;
        for (id, e) in decoded.iter() {
            if e.at >= lo && e.at <= hi && decoded.matches(e, filter) {
                decoded.fill(&mut record, id, e)?;
                each(&record);
            }
        }
    }
    Ok(())
}

/// The rollup of the raw events in `[from, to)` matching `filter`.
pub(crate) async fn window(
    read: &SqlitePool,
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Rollup, StoreError> {
    let mut conn = read.acquire().await.map_err(backend)?;
    let mut rollup = Rollup::default();
    for_each_in_window(&mut conn, project, filter, from, to, |e| rollup.add(e)).await?;
    Ok(rollup)
}

/// Late scores and feedback: record the event's new judgements beside its block (which is
/// never rewritten) and move its contribution in its hour and day cells from the old
/// judgements to the new ones (caller's transaction).
pub(crate) async fn attach(
    conn: &mut SqliteConnection,
    cache: &mut super::cache::CellCache,
    project: &ProjectId,
    event: &EventRef,
    scores: &BTreeMap<String, f64>,
    feedback: Option<&Feedback>,
) -> Result<StoredEvent, StoreError> {
    let (block_id, mut stored) = locate(conn, project, event)
        .await?
        .ok_or_else(|| not_found(event))?;
    if scores.is_empty() && feedback.is_none() {
        return Ok(stored);
    }
    let old_scores = stored.event.scores.clone();
    let old_feedback = stored.event.feedback.clone();
    let mut new_scores = old_scores.clone();
    new_scores.extend(scores.iter().map(|(k, v)| (k.clone(), *v)));
    let new_feedback = feedback.cloned().or_else(|| old_feedback.clone());

    sqlx::query(
        "INSERT INTO event_judgements (id, scores, feedback) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET scores = excluded.scores, feedback = excluded.feedback",
    )
    .bind(stored.id)
    .bind(scores_text(&new_scores)?)
    .bind(feedback_text(new_feedback.as_ref())?)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query("UPDATE event_blocks SET judged = 1 WHERE id = ?")
        .bind(block_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;

    // The cells and their roll-up levels, by the difference.
    super::cells::replace_judgements(
        conn,
        cache,
        project,
        stored.id,
        &stored.event,
        (&old_scores, old_feedback.as_ref()),
        (&new_scores, new_feedback.as_ref()),
    )
    .await?;

    stored.event.scores = new_scores;
    stored.event.feedback = new_feedback;
    Ok(stored)
}

/// The next project (in key order) after `after` that has events: retention walks
/// projects so that every read is an index range.
pub(crate) async fn next_project(
    conn: &mut SqliteConnection,
    after: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let query = match after {
        None => sqlx::query_scalar("SELECT project FROM event_blocks ORDER BY project LIMIT 1"),
        Some(after) => sqlx::query_scalar(
            "SELECT project FROM event_blocks WHERE project > ? ORDER BY project LIMIT 1",
        )
        .bind(after.to_owned()),
    };
    query.fetch_optional(&mut *conn).await.map_err(backend)
}

/// The blocks retention visits: those holding any event older than `?3` (`?2` is its
/// hour), oldest hours first.
pub(crate) const PRUNE_CANDIDATES: &str = concat!(
    "SELECT ",
    block_columns!(),
    " FROM event_blocks AS b WHERE b.project = ?1 AND b.hour <= ?2 AND b.min_at < ?3 \
     ORDER BY b.hour LIMIT ?4"
);

/// What one retention transaction did.
pub(crate) struct Pruned {
    /// Events deleted.
    pub(crate) events: u64,
    /// Blocks visited: fewer than `PRUNE_BLOCKS` means the project has no more to prune.
    pub(crate) blocks: usize,
}

/// Delete the project's events older than `before_ms` from up to `PRUNE_BLOCKS` blocks,
/// with their client ids and judgements (caller's transaction). A block whose events are
/// all older goes whole; one that straddles the bound is written again with the events it
/// keeps (their current judgements inline).
pub(crate) async fn prune_chunk(
    conn: &mut SqliteConnection,
    project: &str,
    before_ms: i64,
) -> Result<Pruned, StoreError> {
    let candidates: Vec<BlockRow> = sqlx::query_as(PRUNE_CANDIDATES)
        .bind(project)
        .bind(before_ms.saturating_sub(1).div_euclid(HOUR_MS))
        .bind(before_ms)
        .bind(PRUNE_BLOCKS)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut pruned = Pruned {
        events: 0,
        blocks: candidates.len(),
    };
    for block in &candidates {
        let decoded = block.decode()?;
        let mut gone_ids: Vec<&str> = Vec::new();
        let mut kept: Vec<StoredEvent> = Vec::new();
        for (id, e) in decoded.iter() {
            if e.at < before_ms {
                pruned.events += 1;
                gone_ids.extend(e.client_id);
            } else {
                kept.push(decoded.stored(id, e)?);
            }
        }
        sqlx::query(
            "DELETE FROM event_client_ids WHERE project = ?1 \
             AND client_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(project)
        .bind(to_json_text("client ids", &gone_ids)?)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        sqlx::query("DELETE FROM event_judgements WHERE id BETWEEN ?1 AND ?2")
            .bind(block.id)
            .bind(block.last_id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM event_blocks WHERE id = ?")
            .bind(block.id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        if !kept.is_empty() {
            let members: Vec<(i64, &EventRecord)> = kept.iter().map(|s| (s.id, &s.event)).collect();
            super::ingest::insert_blocks(conn, vec![blocks::encode(&members)?]).await?;
        }
    }
    Ok(pruned)
}

pub(crate) fn prune_bound(before: OffsetDateTime) -> i64 {
    ceil_ms(before)
}

/// Rows read per transaction when moving rows into blocks.
const CONVERT_CHUNK: i64 = 20_000;

/// Move the events an earlier version stored as rows (`events`) into blocks, then drop the
/// table (`0005_event_blocks.sql`). Ids, client ids and judgements are kept; each chunk is
/// its own transaction, which deletes the rows it moved, so an interrupted conversion goes
/// on where it stopped when the file is next opened.
pub(crate) async fn convert_rows(write: &SqlitePool) -> Result<(), StoreError> {
    let has_rows_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'")
            .fetch_optional(write)
            .await
            .map_err(backend)?;
    if has_rows_table.is_none() {
        return Ok(());
    }
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(write)
        .await
        .map_err(backend)?;
    if waiting > 0 {
        // Opening waits for this (minutes for tens of millions of events): say why.
        tracing::info!(
            events = waiting,
            "moving events stored as rows by an earlier version into blocks"
        );
    }
    let mut moved = 0_u64;
    loop {
        let mut tx = crate::tx::begin(write).await?;
        let result = convert_chunk(&mut tx).await;
        let n = crate::tx::finish(tx, result).await?;
        if n == 0 {
            break;
        }
        moved += n;
    }
    if moved > 0 {
        tracing::info!(events = moved, "moved stored events into blocks");
    }
    Ok(())
}

/// One chunk of `convert_rows`; 0 when there was nothing left (the table is then dropped).
async fn convert_chunk(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM events ORDER BY id LIMIT {CONVERT_CHUNK}"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let Some(last) = rows.last().map(EventRow::id) else {
        sqlx::raw_sql("DROP TABLE events")
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        return Ok(0);
    };
    let events = rows
        .into_iter()
        .map(EventRow::into_stored)
        .collect::<Result<Vec<_>, _>>()?;
    // Runs of consecutive ids with one block key: the blocks' id ranges cannot overlap.
    let mut new_blocks = Vec::new();
    for run in events.chunk_by(|a, b| BlockKey::of(&a.event) == BlockKey::of(&b.event)) {
        for chunk in run.chunks(MAX_BLOCK_EVENTS) {
            let members: Vec<(i64, &EventRecord)> =
                chunk.iter().map(|s| (s.id, &s.event)).collect();
            new_blocks.push(blocks::encode(&members)?);
        }
    }
    super::ingest::insert_blocks(conn, new_blocks).await?;
    let client_ids: Vec<(&str, &str, i64)> = events
        .iter()
        .filter_map(|s| {
            Some((
                s.event.project.0.as_str(),
                s.event.client_id.as_deref()?,
                s.id,
            ))
        })
        .collect();
    super::ingest::insert_client_ids(conn, client_ids).await?;
    sqlx::query("DELETE FROM events WHERE id <= ?")
        .bind(last)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::AnalyticsDb;

    fn select(c: &Conditions) -> String {
        format!(
            "SELECT {BLOCK_COLUMNS} FROM event_blocks AS b {}",
            c.where_sql()
        )
    }

    /// Every read of raw events seeks a block index by project (and prompt or experiment)
    /// and hour, or by id; a scan of the project's blocks would make dashboards and
    /// listings cost the size of the table.
    #[tokio::test]
    async fn event_reads_seek_the_block_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        let p = ProjectId("p".into());
        let now = 1_700_000_000_000_i64;
        let window = |filter: &AnalyticsFilter| {
            let mut c = block_conditions(&p, filter);
            push_block_time(&mut c, now - HOUR_MS, now);
            select(&c)
        };
        let check = |plan: String, index: &str, range: &str| {
            assert!(plan.contains(&format!("INDEX {index} (")), "{plan}");
            assert!(plan.contains(range), "{plan}");
            assert!(!plan.contains("SCAN b"), "{plan}");
        };
        check(
            db.query_plan(&window(&AnalyticsFilter::default())).await,
            "event_blocks_by_hour",
            "project=? AND hour>? AND hour<?",
        );
        let by_prompt = AnalyticsFilter {
            prompt: Some("support/triage".into()),
            model: Some("gpt-4o-mini".into()),
            ..AnalyticsFilter::default()
        };
        check(
            db.query_plan(&window(&by_prompt)).await,
            "event_blocks_by_prompt_hour",
            "project=? AND prompt=? AND hour>? AND hour<?",
        );
        let by_experiment = AnalyticsFilter {
            experiment: Some("exp".into()),
            ..AnalyticsFilter::default()
        };
        check(
            db.query_plan(&window(&by_experiment)).await,
            "event_blocks_by_experiment",
            "project=? AND experiment=? AND hour>? AND hour<?",
        );
        let prune = db.query_plan(PRUNE_CANDIDATES).await;
        check(prune, "event_blocks_by_hour", "project=? AND hour<?");
        // The listing's walk: blocks by their newest event, in index order (no sort).
        let heads = db
            .query_plan(
                "SELECT b.max_at, b.id FROM event_blocks AS b WHERE b.project = ? \
                 AND b.max_at >= ? AND b.min_at <= ? AND (b.max_at, b.id) < (?, ?) \
                 ORDER BY b.max_at DESC, b.id DESC LIMIT 32",
            )
            .await;
        check(heads, "event_blocks_by_newest", "project=? AND max_at");
        assert!(!heads_sorted_in_memory(&db).await);
        // Look-ups by id: one seek of the primary key.
        let by_id = db.query_plan(BLOCK_OF_ID).await;
        assert!(by_id.contains("INTEGER PRIMARY KEY (rowid=?)"), "{by_id}");
        assert!(!by_id.contains("SCAN b"), "{by_id}");
    }

    async fn heads_sorted_in_memory(db: &AnalyticsDb) -> bool {
        db.query_plan(
            "SELECT b.max_at, b.id FROM event_blocks AS b WHERE b.project = ? \
             ORDER BY b.max_at DESC, b.id DESC LIMIT 32",
        )
        .await
        .contains("TEMP B-TREE")
    }

    #[test]
    fn event_cursors_round_trip_and_refuse_garbage() {
        let c = encode_cursor(1_700_000_000_000, 42);
        assert_eq!(decode_cursor(&c).unwrap(), (1_700_000_000_000, 42));
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("i:5"),
            &URL_SAFE_NO_PAD.encode("ev:x:1"),
        ] {
            assert!(matches!(
                decode_cursor(bad),
                Err(StoreError::InvalidCursor { .. })
            ));
        }
    }

    #[test]
    fn bounds_round_up_to_stored_precision() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_000_000_001).unwrap();
        assert_eq!(ceil_ms(t), 1001);
        assert_eq!(
            ceil_ms(OffsetDateTime::from_unix_timestamp(1).unwrap()),
            1000
        );
    }
}
