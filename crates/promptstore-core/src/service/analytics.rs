//! The analytics use cases the server maps HTTP onto: events (list, get, attach late
//! judgements), the aggregate queries (summary, time series, comparison, top lists,
//! recommendations) read from the store's cells, prices, and alert rules with their
//! evaluation. Ingestion itself is in the server (it owns the group-commit writer); the
//! pure pieces it uses live in `crate::analytics`.

use std::collections::HashMap;

use promptstore_types as wire;
use promptstore_types::ErrorCode;
use time::OffsetDateTime;

use crate::analytics::compare;
use crate::analytics::metrics::{self, Dimension, GroupFold};
use crate::analytics::model::{
    AlertEventRecord, AlertRuleRecord, AnalyticsFilter, CellKey, Granularity, StoredEvent,
};
use crate::analytics::range::{Range, align_to_hours, plan};
use crate::analytics::recommend;
use crate::analytics::rollup::Rollup;
use crate::analytics::store::{AnalyticsStore, CellQuery, CellSink, KeyDetail};
use crate::analytics::timeseries::{Interval, SeriesFold, plan_series};
use crate::analytics::top::{self, TopBy};
use crate::error::{Error, Result};
use crate::model::Actor;

/// The range of a query that names none: the last 24 hours.
pub const DEFAULT_RANGE: time::Duration = time::Duration::hours(24);

/// The range a query asked for, aligned to whole hours: `to` defaults to `now`, `from` to
/// 24 hours before `to`.
pub fn query_range(
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Range> {
    let (from, to) = with_defaults(from, to, now)?;
    align_to_hours(from, to)
}

/// `to` defaults to `now`, `from` to 24 hours before `to`.
pub fn with_defaults(
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let to = to.unwrap_or(now);
    let from = match from {
        Some(from) => from,
        None => to.checked_sub(DEFAULT_RANGE).ok_or_else(|| {
            Error::rejected(ErrorCode::InvalidRequest, "'to' is too early a date")
                .with_details(serde_json::json!({ "field": "to" }))
        })?,
    };
    Ok((from, to))
}

/// The cells covering `range` (see [`fold_range`]) merged across their buckets: one rollup
/// per combination of dimensions, with bucket 0. For the readers that never look at the
/// bucket (comparisons, recommendations): memory is one rollup per combination, however
/// many hours and days the range holds.
pub async fn range_combinations(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    range: Range,
    filter: &AnalyticsFilter,
) -> Result<Vec<(CellKey, Rollup)>> {
    let mut merged: HashMap<CellKey, Rollup> = HashMap::new();
    // The lookup key, refilled for every cell: no allocation for a combination seen before.
    let mut scratch: Option<CellKey> = None;
    fold_range(
        store,
        actor,
        range,
        filter,
        KeyDetail::Full,
        &mut |key, rollup| {
            let probe = scratch.get_or_insert_with(|| key.clone());
            probe.clone_from(key);
            probe.bucket = 0;
            match merged.get_mut(probe) {
                Some(slot) => slot.merge_encoded(rollup),
                None => {
                    let mut slot = Rollup::default();
                    slot.merge_encoded(rollup)?;
                    merged.insert(probe.clone(), slot);
                    Ok(())
                }
            }
        },
    )
    .await?;
    // In key order, as the cells were read before, so that every answer is the same.
    let mut cells: Vec<(CellKey, Rollup)> = merged.into_iter().collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(cells)
}

/// Feed the cells covering `range` once to `sink` (DAY cells of its whole UTC days, HOUR
/// cells of the edges, see `range::plan`), read with the key `detail` the sink needs.
pub async fn fold_range(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    range: Range,
    filter: &AnalyticsFilter,
    detail: KeyDetail,
    sink: &mut CellSink<'_>,
) -> Result<()> {
    let plan = plan(range);
    let reads = plan
        .days
        .map(|d| (Granularity::Day, d))
        .into_iter()
        .chain(plan.hours.into_iter().map(|h| (Granularity::Hour, h)));
    for (granularity, piece) in reads {
        let query = CellQuery {
            granularity,
            from: piece.from,
            to: piece.to,
            filter,
            detail,
        };
        store.fold_cells(&actor.project, &query, sink).await?;
    }
    Ok(())
}

/// Metrics of a range, with one group per combination of `dims` when given. The cells are
/// folded as they are read (memory: one rollup per group), from a roll-up level when the
/// filter and the grouping allow (see `KeyDetail`).
pub async fn summary(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    range: Range,
    filter: &AnalyticsFilter,
    dims: &[Dimension],
) -> Result<wire::Summary> {
    let mut groups = GroupFold::new(dims);
    let detail = groups.detail();
    fold_range(store, actor, range, filter, detail, &mut |key, rollup| {
        groups.add_encoded(key, rollup)
    })
    .await?;
    Ok(metrics::summary_of(range, groups))
}

// ---- conversions to the wire ---------------------------------------------------------

pub fn event(e: &StoredEvent) -> wire::Event {
    let r = &e.event;
    wire::Event {
        id: e.id,
        client_id: r.client_id.clone(),
        prompt: r.prompt.clone(),
        version: r.version,
        label: r.label.clone(),
        experiment: r.experiment.clone(),
        arm: r.arm.clone(),
        unit_id: r.unit_id.clone(),
        model: r.model.clone(),
        provider: r.provider.clone(),
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cached_input_tokens: r.cached_input_tokens,
        latency_ms: r.latency_ms,
        ttft_ms: r.ttft_ms,
        cost: r.cost,
        cost_source: r.cost_source,
        success: r.success,
        error_type: r.error_type.clone(),
        scores: r.scores.clone(),
        feedback: r.feedback.clone(),
        metadata: r.metadata.clone(),
        timestamp: r.at,
    }
}

pub fn alert_rule(r: &AlertRuleRecord) -> wire::AlertRule {
    wire::AlertRule {
        id: r.id,
        rule: r.rule.clone(),
        state: r.state.clone(),
        last_value: r.last_value,
        last_evaluated_at: r.last_evaluated_at,
        created_at: r.created_at,
    }
}

pub fn alert_event(e: &AlertEventRecord) -> wire::AlertEvent {
    wire::AlertEvent {
        id: e.id,
        rule_id: e.rule_id,
        rule_name: e.rule_name.clone(),
        state: e.state.clone(),
        value: e.value,
        threshold: e.threshold,
        sample: e.sample,
        at: e.at,
    }
}

/// Metrics per hour or day bucket over `[from, to)` (see [`with_defaults`]), aligned to
/// `offset` (whole hours).
pub async fn timeseries(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    interval: Interval,
    offset: time::UtcOffset,
    from: OffsetDateTime,
    to: OffsetDateTime,
    filter: &AnalyticsFilter,
) -> Result<wire::TimeSeries> {
    let plan = plan_series(interval, offset, from, to)?;
    let mut series = SeriesFold::new(&plan);
    let query = CellQuery {
        granularity: plan.cell_granularity(),
        from: plan.range.from,
        to: plan.range.to,
        filter,
        detail: KeyDetail::Bucket,
    };
    store
        .fold_cells(&actor.project, &query, &mut |key, rollup| {
            series.add_encoded(key, rollup)
        })
        .await?;
    Ok(series.finish())
}

/// How version `b` of `prompt` differs from version `a` over the range.
pub async fn compare_versions(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    prompt: &str,
    a: u32,
    b: u32,
    range: Range,
) -> Result<wire::VersionComparison> {
    let filter = AnalyticsFilter {
        prompt: Some(prompt.to_owned()),
        ..AnalyticsFilter::default()
    };
    let cells = range_combinations(store, actor, range, &filter).await?;
    Ok(compare::compare_cells(prompt, a, b, &cells))
}

/// Prompts ranked by `by` over the range (at most `limit`).
pub async fn top(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    by: TopBy,
    limit: usize,
    range: Range,
) -> Result<Vec<wire::TopEntry>> {
    let limit = top::check_limit(limit)?;
    let mut groups = GroupFold::new(&[Dimension::Prompt]);
    let all = AnalyticsFilter::default();
    fold_range(
        store,
        actor,
        range,
        &all,
        groups.detail(),
        &mut |key, rollup| groups.add_encoded(key, rollup),
    )
    .await?;
    Ok(top::top_of(groups.into_rollups(), by, limit))
}

/// Rule-based recommendations over the range; trends compare it with the period of the
/// same length just before it.
pub async fn recommendations(
    store: &dyn AnalyticsStore,
    actor: &Actor,
    range: Range,
) -> Result<Vec<wire::Recommendation>> {
    let all = AnalyticsFilter::default();
    let current = range_combinations(store, actor, range, &all).await?;
    let length = range.to - range.from;
    let previous = match range.from.checked_sub(length) {
        Some(from) => {
            let before = Range {
                from,
                to: range.from,
            };
            range_combinations(store, actor, before, &all).await?
        }
        // Before the earliest date there is nothing to compare with.
        None => Vec::new(),
    };
    Ok(recommend::recommend(&current, &previous))
}
