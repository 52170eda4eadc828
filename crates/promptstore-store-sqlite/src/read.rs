//! Registry reads: prompts (filtered, searched, paginated), versions, labels, the label
//! history and its point-in-time view, and what the runtime serves.

use futures_util::TryStreamExt;
use promptstore_core::model::{
    IncludeEdge, LabelMoveRecord, LabelRecord, ProjectId, PromptRecord, VersionRecord,
};
use promptstore_core::store::{Page, PageRequest, PromptFilter, StoreError};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, FromRow, SqliteConnection};

use crate::codec::{Cursor, decode_cursor, into_page, page_limit, to_ms, to_u32};
use crate::error::backend;
use crate::lookup::{find_prompt, require_prompt_pk, version};
use crate::rows::{
    LABEL_COLUMNS, LabelRow, MOVE_COLUMNS, MoveRow, PROMPT_BULK_COLUMNS, PROMPT_COLUMNS,
    PromptBulkRow, PromptRow, VERSION_COLUMNS, VersionRow, VersionRowRef,
};
use crate::search::match_expression;

pub(crate) async fn get_prompt(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    name: &str,
) -> Result<Option<PromptRecord>, StoreError> {
    find_prompt(conn, project, name)
        .await?
        .map(PromptRow::into_record)
        .transpose()
}

/// Filters shared by both prompt list queries: ?1 project, ?2 tag, ?3 label, ?4 status,
/// ?5 name prefix.
const PROMPT_FILTERS: &str = "p.project_id = ?1 \
     AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(p.tags) t WHERE t.value = ?2)) \
     AND (?3 IS NULL OR EXISTS (SELECT 1 FROM labels fl WHERE fl.prompt_pk = p.pk AND fl.name = ?3)) \
     AND (?4 IS NULL OR p.status = ?4) \
     AND (?5 IS NULL OR substr(p.name, 1, length(?5)) = ?5)";

/// Column weights of bm25 over (name, description, tags, template): a hit in the name counts
/// most, one in a long template least.
const BM25: &str = "bm25(prompts_fts, 10.0, 4.0, 6.0, 1.0)";

#[derive(sqlx::FromRow)]
struct ScoredRow {
    #[sqlx(flatten)]
    prompt: PromptRow,
    score: f64,
}

pub(crate) async fn list_prompts(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    filter: &PromptFilter,
    page: &PageRequest,
) -> Result<Page<PromptRecord>, StoreError> {
    let (limit, fetch) = page_limit(page.limit);
    let status = filter.status.map(|s| s.as_str());
    let text = filter.text.as_deref().and_then(match_expression);
    let Some(text) = text else {
        let after = decode_cursor(page.cursor.as_deref(), |c| match c {
            Cursor::Name(n) => Some(n),
            _ => None,
        })?;
        let sql = format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts p WHERE {PROMPT_FILTERS} \
             AND (?6 IS NULL OR p.name > ?6) ORDER BY p.name LIMIT ?7"
        );
        let rows: Vec<PromptRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&project.0)
            .bind(filter.tag.as_deref())
            .bind(filter.label.as_deref())
            .bind(status)
            .bind(filter.name_prefix.as_deref())
            .bind(after)
            .bind(fetch)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        return into_page(rows, limit, PromptRow::into_record, |p| {
            Cursor::Name(p.name.clone()).encode()
        });
    };

    let (after_score, after_name) = match decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::Rank(score, name) => Some((score, name)),
        _ => None,
    })? {
        Some((score, name)) => (Some(score), Some(name)),
        None => (None, None),
    };
    // MATERIALIZED keeps bm25() evaluated inside the full-text query it belongs to.
    let sql = format!(
        "WITH hits AS MATERIALIZED (SELECT rowid AS pk, {BM25} AS score FROM prompts_fts \
         WHERE prompts_fts MATCH ?8) \
         SELECT {PROMPT_COLUMNS}, hits.score AS score FROM hits JOIN prompts p ON p.pk = hits.pk \
         WHERE {PROMPT_FILTERS} \
         AND (?9 IS NULL OR hits.score > ?9 OR (hits.score = ?9 AND p.name > ?6)) \
         ORDER BY hits.score, p.name LIMIT ?7"
    );
    let rows: Vec<ScoredRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&project.0)
        .bind(filter.tag.as_deref())
        .bind(filter.label.as_deref())
        .bind(status)
        .bind(filter.name_prefix.as_deref())
        .bind(after_name)
        .bind(fetch)
        .bind(text)
        .bind(after_score)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.into_iter().take(limit) {
        last = Some((row.score, row.prompt.name.clone()));
        items.push(row.prompt.into_record()?);
    }
    let next_cursor = last
        .filter(|_| more)
        .map(|(score, name)| Cursor::Rank(score, name).encode());
    Ok(Page { items, next_cursor })
}

pub(crate) async fn all_prompts(
    conn: &mut SqliteConnection,
    project: &ProjectId,
) -> Result<Vec<PromptRecord>, StoreError> {
    let sql = format!(
        "SELECT {PROMPT_BULK_COLUMNS} FROM prompts p WHERE p.project_id = ? ORDER BY p.name"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(&project.0)
        .fetch(&mut *conn);
    decode_each(rows, |row| {
        PromptBulkRow::from_row(row).map_err(backend)?.into_record()
    })
    .await
}

/// Decodes rows as they arrive (bulk reads: thousands of rows), each in place: no row is
/// copied into owned columns first, and the raw rows are never all held at once.
async fn decode_each<T>(
    mut rows: impl futures_util::Stream<Item = Result<SqliteRow, sqlx::Error>> + Unpin,
    decode: impl Fn(&SqliteRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(backend)? {
        out.push(decode(&row)?);
    }
    Ok(out)
}

pub(crate) async fn get_version(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: &str,
    number: u32,
) -> Result<Option<VersionRecord>, StoreError> {
    let Some(row) = find_prompt(conn, project, prompt).await? else {
        return Ok(None);
    };
    version(conn, row.pk, number).await
}

pub(crate) async fn list_versions(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: &str,
    page: &PageRequest,
) -> Result<Page<VersionRecord>, StoreError> {
    let pk = require_prompt_pk(conn, project, prompt).await?;
    let (limit, fetch) = page_limit(page.limit);
    let before = decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::Version(n) => Some(i64::from(n)),
        _ => None,
    })?;
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN prompts p ON p.pk = v.prompt_pk \
         WHERE v.prompt_pk = ?1 AND (?2 IS NULL OR v.number < ?2) ORDER BY v.number DESC LIMIT ?3"
    );
    let rows: Vec<VersionRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(pk)
        .bind(before)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    into_page(rows, limit, VersionRow::into_record, |v| {
        Cursor::Version(v.number).encode()
    })
}

pub(crate) async fn all_versions(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: &str,
) -> Result<Vec<VersionRecord>, StoreError> {
    let pk = require_prompt_pk(conn, project, prompt).await?;
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN prompts p ON p.pk = v.prompt_pk \
         WHERE v.prompt_pk = ? ORDER BY v.number"
    );
    let rows: Vec<VersionRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(pk)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(VersionRow::into_record).collect()
}

/// The versions some label points to, by prompt name and number. Driven from each prompt's
/// labels (a handful of rows) to the versions they name, so the other versions — most of
/// the table — are never visited; one prompt is found by its (project, name) index.
pub(crate) async fn live_versions(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: Option<&str>,
) -> Result<Vec<VersionRecord>, StoreError> {
    let which = if prompt.is_some() {
        "AND p.name = ?2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM prompts p JOIN versions v ON v.prompt_pk = p.pk \
         WHERE p.project_id = ?1 {which} \
         AND v.number IN (SELECT l.version FROM labels l WHERE l.prompt_pk = p.pk) \
         ORDER BY p.name, v.number"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(&project.0);
    if let Some(name) = prompt {
        query = query.bind(name);
    }
    decode_each(query.fetch(&mut *conn), |row| {
        VersionRowRef::from_row(row).map_err(backend)?.into_record()
    })
    .await
}

pub(crate) async fn list_labels(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: &str,
) -> Result<Vec<LabelRecord>, StoreError> {
    let pk = require_prompt_pk(conn, project, prompt).await?;
    let sql = format!("SELECT {LABEL_COLUMNS} FROM labels WHERE prompt_pk = ? ORDER BY name");
    let rows: Vec<LabelRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(pk)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(LabelRow::into_record).collect()
}

pub(crate) async fn label_history(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: &str,
    label: Option<&str>,
    page: &PageRequest,
) -> Result<Page<LabelMoveRecord>, StoreError> {
    let pk = require_prompt_pk(conn, project, prompt).await?;
    let (limit, fetch) = page_limit(page.limit);
    let before = decode_cursor(page.cursor.as_deref(), |c| match c {
        Cursor::Id(id) => Some(id),
        _ => None,
    })?;
    let sql = format!(
        "SELECT {MOVE_COLUMNS} FROM label_moves WHERE prompt_pk = ?1 AND (?2 IS NULL OR label = ?2) \
         AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
    );
    let rows: Vec<MoveRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(pk)
        .bind(label)
        .bind(before)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    into_page(rows, limit, MoveRow::into_record, |m| {
        Cursor::Id(m.id).encode()
    })
}

/// The last move of the label at or before `at` says where it pointed (nowhere if that move
/// removed it, or if there was none).
pub(crate) async fn label_at(
    conn: &mut SqliteConnection,
    project: &ProjectId,
    prompt: &str,
    label: &str,
    at: time::OffsetDateTime,
) -> Result<Option<u32>, StoreError> {
    let pk = require_prompt_pk(conn, project, prompt).await?;
    let to: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT to_version FROM label_moves WHERE prompt_pk = ? AND label = ? AND at <= ? \
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(pk)
    .bind(label)
    .bind(to_ms(at))
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    to.flatten().map(|n| to_u32("label move", n)).transpose()
}

pub(crate) async fn live_include_edges(
    conn: &mut SqliteConnection,
    project: &ProjectId,
) -> Result<Vec<IncludeEdge>, StoreError> {
    let mut edges: Vec<IncludeEdge> = live_versions(conn, project, None)
        .await?
        .into_iter()
        .flat_map(|v| {
            let (from_prompt, from_version) = (v.prompt, v.number);
            v.includes.into_iter().map(move |target| IncludeEdge {
                from_prompt: from_prompt.clone(),
                from_version,
                target,
            })
        })
        .collect();
    edges.sort();
    edges.dedup();
    Ok(edges)
}
