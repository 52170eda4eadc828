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

pub(crate) fn conditions(
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Conditions {
    let mut c = Conditions::new();
    c.push("e.project = ?", [Param::Text(project.0.clone())]);
    if let Some(from) = from {
        c.push("e.at >= ?", [Param::Int(ceil_ms(from))]);
    }
    if let Some(to) = to {
        c.push("e.at < ?", [Param::Int(ceil_ms(to))]);
    }
    c.filter("e", filter, true);
    c
}

/// Events newest first (by time, then id), paginated by (time, id).
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    filter: &AnalyticsFilter,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    page: &PageRequest,
) -> Result<Page<StoredEvent>, StoreError> {
    let (limit, fetch) = page_limit(page.limit);
    let mut c = conditions(project, filter, from, to);
    if let Some(cursor) = page.cursor.as_deref() {
        let (at, id) = decode_cursor(cursor)?;
        c.push("(e.at, e.id) < (?, ?)", [Param::Int(at), Param::Int(id)]);
    }
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events AS e {} ORDER BY e.at DESC, e.id DESC LIMIT {fetch}",
        c.where_sql()
    );
    let rows: Vec<EventRow> = bind_all_as(sqlx::query_as(AssertSqlSafe(sql)), c.params())
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
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

/// Delete up to `PRUNE_CHUNK` of the project's events older than `before_ms`; returns how
/// many were deleted (caller's transaction).
pub(crate) async fn prune_chunk(
    conn: &mut SqliteConnection,
    project: &str,
    before_ms: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM events WHERE id IN \
         (SELECT id FROM events WHERE project = ?1 AND at < ?2 LIMIT ?3)",
    )
    .bind(project)
    .bind(before_ms)
    .bind(PRUNE_CHUNK)
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
