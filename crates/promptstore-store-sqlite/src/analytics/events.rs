//! Raw events after ingest: look-ups by server or client id, the newest-first listing,
//! the exact rollup of a time window, late judgements, and retention.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::TryStreamExt as _;
use promptstore_core::analytics::model::{AnalyticsFilter, EventRef, StoredEvent};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::model::ProjectId;
use promptstore_core::store::{Page, PageRequest, StoreError};
use promptstore_types::Feedback;
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::filter::{Conditions, Param, bind_all_as};
use super::rows::{EVENT_COLUMNS, EventRow, feedback_text, scores_text};
use crate::codec::{into_page, page_limit};
use crate::error::backend;

/// Events deleted per retention transaction: small enough that an ingest waiting for the
/// writer is delayed by milliseconds, not seconds.
pub(crate) const PRUNE_CHUNK: i64 = 10_000;

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

pub(crate) async fn get(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    event: &EventRef,
) -> Result<Option<StoredEvent>, StoreError> {
    let query = match event {
        EventRef::Id(id) => sqlx::query_as::<_, EventRow>(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project = ?1 AND id = ?2"
        )))
        .bind(project.0.as_str())
        .bind(*id),
        EventRef::ClientId(client_id) => sqlx::query_as::<_, EventRow>(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project = ?1 AND client_id = ?2"
        )))
        .bind(project.0.as_str())
        .bind(client_id.as_str()),
    };
    query
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .map(EventRow::into_stored)
        .transpose()
}

/// The position a page of events ends at: (at, id) of its last event, newest first.
fn encode_cursor(at: i64, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("ev:{at}:{id}"))
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

/// The bucket (ms) of the time index a query seeks: the hourly index of the named prompt or
/// experiment, else the per-second index of the project (`0003_events_layout.sql`). Only
/// that bucket is constrained, so that SQLite cannot prefer the project-wide index (a
/// narrower range) over the prompt's (an extra equality) and read every prompt's events.
fn index_bucket_ms(filter: &AnalyticsFilter) -> i64 {
    let named = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    if filter.prompt.is_some() || named(&filter.experiment) {
        3_600_000
    } else {
        1000
    }
}

/// Restrict `e.at` to `[lo, hi]` (inclusive, either side open), together with the same
/// bounds on the bucket expression of the time index (`e.at / bucket`), so that SQLite
/// seeks it. Integer division truncates in SQLite as in Rust and is monotonic, so
/// `lo <= at` implies `lo / b <= at / b`: the bucket bounds never exclude a matching row.
fn push_time_range(c: &mut Conditions, bucket: i64, lo: Option<i64>, hi: Option<i64>) {
    if let Some(lo) = lo {
        c.push("e.at >= ?", [Param::Int(lo)]);
        c.push(format!("e.at / {bucket} >= ?"), [Param::Int(lo / bucket)]);
    }
    if let Some(hi) = hi {
        c.push("e.at <= ?", [Param::Int(hi)]);
        c.push(format!("e.at / {bucket} <= ?"), [Param::Int(hi / bucket)]);
    }
}

/// The last millisecond before `to` (ranges are half-open, stored times whole ms).
fn last_ms_before(to: OffsetDateTime) -> i64 {
    ceil_ms(to).saturating_sub(1)
}

/// The newest and oldest millisecond whose `at / 1000` is `second` (truncating division:
/// second 0 holds -999..=999).
fn second_bounds(second: i64) -> (i64, i64) {
    let base = second.saturating_mul(1000);
    match second.signum() {
        1 => (base.saturating_add(999), base),
        0 => (999, -999),
        _ => (base, base.saturating_sub(999)),
    }
}

pub(crate) fn conditions(
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Conditions {
    let mut c = Conditions::new();
    c.push("e.project = ?", [Param::Text(project.0.clone())]);
    push_time_range(
        &mut c,
        index_bucket_ms(filter),
        from.map(ceil_ms),
        to.map(last_ms_before),
    );
    c.filter("e", filter, true);
    c
}

/// The newest second at or before `at_most` (ms) holding an event of the project: one
/// seek of `events_by_second`.
pub(crate) const NEWEST_SECOND: &str = "SELECT e.at / 1000 FROM events AS e \
     WHERE e.project = ?1 AND e.at / 1000 <= ?2 ORDER BY e.at / 1000 DESC LIMIT 1";

async fn newest_second(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    at_most: i64,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar(NEWEST_SECOND)
        .bind(project.0.as_str())
        .bind(at_most / 1000)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// Events newest first (by time, then id), paginated by (time, id).
///
/// No index is ordered by time alone (see `0003_events_layout.sql`), so the listing walks
/// back through time in slices — the newest second holding an event first, then slices
/// four times wider each step, skipping empty stretches — and sorts each slice, until the
/// page is full or the range is exhausted. The slices are disjoint and descending, so
/// their concatenation is in order; a page costs about the events of the slices it reads.
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
    let mut rows: Vec<EventRow> = Vec::with_capacity(fetch);
    let mut span: i64 = 1000;
    while rows.len() < fetch && newest >= oldest {
        // Skip to the newest second that holds any event of the project.
        let Some(second) = newest_second(conn, project, newest).await? else {
            break;
        };
        let hi = newest.min(second_bounds(second).0);
        let lo = hi.saturating_sub(span - 1).max(oldest);
        let mut c = Conditions::new();
        c.push("e.project = ?", [Param::Text(project.0.clone())]);
        push_time_range(&mut c, index_bucket_ms(filter), Some(lo), Some(hi));
        c.filter("e", filter, true);
        if let Some((at, id)) = cursor {
            c.push("(e.at, e.id) < (?, ?)", [Param::Int(at), Param::Int(id)]);
        }
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events AS e {} ORDER BY e.at DESC, e.id DESC LIMIT {}",
            c.where_sql(),
            fetch - rows.len()
        );
        let slice: Vec<EventRow> = bind_all_as(sqlx::query_as(AssertSqlSafe(sql)), c.params())
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        rows.extend(slice);
        if lo == i64::MIN {
            break;
        }
        newest = lo - 1;
        span = span.saturating_mul(4);
    }
    into_page(rows, limit, EventRow::into_stored, |e| {
        encode_cursor(crate::codec::to_ms(e.event.at), e.id)
    })
}

/// The rollup of the raw events in `[from, to)` matching `filter`, streamed (not collected)
/// so that a wide window costs time, not memory.
pub(crate) async fn window(
    read: &SqlitePool,
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Rollup, StoreError> {
    let c = conditions(project, filter, Some(from), Some(to));
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events AS e {}", c.where_sql());
    let mut conn = read.acquire().await.map_err(backend)?;
    let mut rows =
        bind_all_as::<EventRow>(sqlx::query_as(AssertSqlSafe(sql)), c.params()).fetch(&mut *conn);
    let mut rollup = Rollup::default();
    while let Some(row) = rows.try_next().await.map_err(backend)? {
        rollup.add(&row.into_stored()?.event);
    }
    Ok(rollup)
}

/// Late scores and feedback: update the event and move its contribution in its hour and
/// day cells from the old judgements to the new ones (caller's transaction).
pub(crate) async fn attach(
    conn: &mut SqliteConnection,
    cache: &mut super::cache::CellCache,
    project: &ProjectId,
    event: &EventRef,
    scores: &BTreeMap<String, f64>,
    feedback: Option<&Feedback>,
) -> Result<StoredEvent, StoreError> {
    let mut stored = get(conn, project, event)
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

    sqlx::query("UPDATE events SET scores = ?, feedback = ? WHERE id = ?")
        .bind(scores_text(&new_scores)?)
        .bind(feedback_text(new_feedback.as_ref())?)
        .bind(stored.id)
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

/// The next project (in key order) after `after` that has events, using the
/// `(project, at)` index: retention walks projects so that every delete is an index range.
pub(crate) async fn next_project(
    conn: &mut SqliteConnection,
    after: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let query = match after {
        None => sqlx::query_scalar("SELECT project FROM events ORDER BY project LIMIT 1"),
        Some(after) => sqlx::query_scalar(
            "SELECT project FROM events WHERE project > ? ORDER BY project LIMIT 1",
        )
        .bind(after.to_owned()),
    };
    query.fetch_optional(&mut *conn).await.map_err(backend)
}

/// The retention delete: a range of `events_by_second` (`?4` is the second of `?2 - 1`).
pub(crate) const PRUNE: &str = "DELETE FROM events WHERE id IN \
     (SELECT e.id FROM events AS e WHERE e.project = ?1 AND e.at / 1000 <= ?4 AND e.at < ?2 \
     LIMIT ?3)";

/// Delete up to `PRUNE_CHUNK` of the project's events older than `before_ms`; returns how
/// many were deleted (caller's transaction).
pub(crate) async fn prune_chunk(
    conn: &mut SqliteConnection,
    project: &str,
    before_ms: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(PRUNE)
        .bind(project)
        .bind(before_ms)
        .bind(PRUNE_CHUNK)
        .bind(before_ms.saturating_sub(1) / 1000)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected())
}

pub(crate) fn prune_bound(before: OffsetDateTime) -> i64 {
    ceil_ms(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::AnalyticsDb;

    fn select(c: &Conditions) -> String {
        format!(
            "SELECT {EVENT_COLUMNS} FROM events AS e {} ORDER BY e.at DESC, e.id DESC LIMIT 51",
            c.where_sql()
        )
    }

    /// Every read of raw events seeks an index by project (and prompt or experiment) and a
    /// time bucket; a scan of the project would make dashboards and listings cost the size
    /// of the table.
    #[tokio::test]
    async fn event_reads_seek_the_time_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = AnalyticsDb::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        let p = ProjectId("p".into());
        let now = OffsetDateTime::now_utc();
        let hour_ago = now - time::Duration::hours(1);
        let check = |plan: String, index: &str, range: &str| {
            assert!(plan.contains(&format!("INDEX {index} (")), "{plan}");
            assert!(plan.contains(range), "{plan}");
            assert!(!plan.contains("SCAN e"), "{plan}");
        };
        let project_wide = conditions(&p, &AnalyticsFilter::default(), Some(hour_ago), Some(now));
        check(
            db.query_plan(&select(&project_wide)).await,
            "events_by_second",
            "project=? AND <expr>>? AND <expr><?",
        );
        let by_prompt = AnalyticsFilter {
            prompt: Some("support/triage".into()),
            model: Some("gpt-4o-mini".into()),
            ..AnalyticsFilter::default()
        };
        let c = conditions(&p, &by_prompt, Some(hour_ago), Some(now));
        check(
            db.query_plan(&select(&c)).await,
            "events_by_prompt_hour",
            "project=? AND prompt=? AND <expr>>? AND <expr><?",
        );
        let by_experiment = AnalyticsFilter {
            experiment: Some("exp".into()),
            ..AnalyticsFilter::default()
        };
        let c = conditions(&p, &by_experiment, Some(hour_ago), Some(now));
        check(
            db.query_plan(&select(&c)).await,
            "events_by_experiment",
            "project=? AND experiment=? AND <expr>>? AND <expr><?",
        );
        // Open-ended ranges seek too (retention, and a listing's first slice).
        let upto = conditions(&p, &AnalyticsFilter::default(), None, Some(now));
        check(
            db.query_plan(&select(&upto)).await,
            "events_by_second",
            "project=? AND <expr><?",
        );
        let prune = db.query_plan(PRUNE).await;
        assert!(
            prune.contains("INDEX events_by_second (project=? AND <expr><?)"),
            "{prune}"
        );
        let newest = db.query_plan(NEWEST_SECOND).await;
        assert!(
            newest.contains("INDEX events_by_second (project=? AND <expr><?)"),
            "{newest}"
        );
        assert!(!newest.contains("TEMP B-TREE"), "{newest}");
    }

    #[test]
    fn seconds_bound_the_milliseconds_truncating_division_puts_in_them() {
        for second in [-3_i64, -1, 0, 1, 1_700_000_000] {
            let (newest, oldest) = second_bounds(second);
            assert_eq!(newest / 1000, second);
            assert_eq!(oldest / 1000, second);
            assert_ne!((newest + 1) / 1000, second, "{second}: newest");
            assert_ne!((oldest - 1) / 1000, second, "{second}: oldest");
        }
        assert_eq!(second_bounds(i64::MAX / 1000).0, i64::MAX - 807 + 807);
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
