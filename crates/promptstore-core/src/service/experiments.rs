//! Experiments (A/B tests): create, read, edit and delete drafts, start, change arms, stop,
//! conclude (with the promotion of the winner moving the label in the same transaction,
//! under the same protected-label and variable-contract rules as a label move by hand), and
//! gather the data their results are computed from.

use std::collections::BTreeMap;

use promptstore_types::{
    CreateExperiment, EndExperiment, ErrorCode, PromptStatus, Role, UpdateArms,
};
use time::{Duration, OffsetDateTime};

use crate::analytics::model::{AnalyticsFilter, Granularity};
use crate::analytics::range::{Range, plan};
use crate::analytics::rollup::Rollup;
use crate::analytics::store::{AnalyticsStore, CellQuery, KeyDetail};
use crate::error::{Error, Result};
use crate::experiments::definition::{validate_definition, validate_update_arms};
use crate::experiments::lifecycle::{check_change, check_delete, manual_conclusion};
use crate::experiments::model::{
    ExperimentChange, ExperimentFilter, ExperimentHistoryRecord, ExperimentRecord, HistoryNote,
};
use crate::model::{Actor, LabelMoveRecord, ProjectId, PromptRecord};
use crate::service::prompts::unexpected;
use crate::service::{checks, prompt_or_404, version_or_404};
use crate::store::{Page, PageRequest, Store, StoreError, WriteOp, WriteOutcome};

/// One experiment of the project or `not_found` naming it.
pub async fn get(store: &dyn Store, project: &ProjectId, id: &str) -> Result<ExperimentRecord> {
    store
        .get_experiment(project, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("experiment '{}'", short(id))))
}

/// Experiments of the project, newest first.
pub async fn list(
    store: &dyn Store,
    project: &ProjectId,
    filter: &ExperimentFilter,
    page: &PageRequest,
) -> Result<Page<ExperimentRecord>> {
    Ok(store.list_experiments(project, filter, page).await?)
}

/// The history of an experiment, oldest first.
pub async fn history(
    store: &dyn Store,
    project: &ProjectId,
    id: &str,
    page: &PageRequest,
) -> Result<Page<ExperimentHistoryRecord>> {
    get(store, project, id).await?;
    Ok(store.experiment_history(project, id, page).await?)
}

/// At most 80 characters of a caller's id in a message.
fn short(id: &str) -> String {
    crate::experiments::metric::shorten(id)
}

/// The prompt an experiment is defined on, which must hold the label (not archived).
async fn experiment_prompt(
    store: &dyn Store,
    project: &ProjectId,
    prompt: &str,
    label: &str,
) -> Result<PromptRecord> {
    let record = prompt_or_404(store, project, prompt).await?;
    if record.status == PromptStatus::Archived {
        return Err(Error::rejected(
            ErrorCode::PromptArchived,
            format!("prompt '{prompt}' is archived and is not served; restore it first"),
        )
        .with_details(serde_json::json!({ "prompt": prompt })));
    }
    if !record.labels.contains_key(label) {
        return Err(crate::experiments::definition::invalid(
            "label",
            format_args!(
                "prompt '{prompt}' has no label '{label}'; an experiment splits the traffic of an existing label"
            ),
        ));
    }
    Ok(record)
}

/// Append a note to an experiment's history without changing it.
pub async fn annotate(
    store: &dyn Store,
    actor: &Actor,
    record: &ExperimentRecord,
    note: HistoryNote,
) -> Result<()> {
    store
        .apply(
            actor,
            vec![WriteOp::NoteExperiment {
                id: record.id.clone(),
                note,
            }],
        )
        .await?;
    Ok(())
}

fn note(kind: &str, message: String, details: serde_json::Value) -> HistoryNote {
    HistoryNote {
        kind: kind.to_owned(),
        message,
        details,
    }
}

fn experiment_outcome(op: &str, outcomes: Vec<WriteOutcome>) -> Result<ExperimentRecord> {
    match outcomes.into_iter().next() {
        Some(WriteOutcome::Experiment(record)) => Ok(record),
        other => Err(unexpected(op, &other)),
    }
}

/// The experiment as of the caller's read: `precondition_failed` when `expected_revision` is
/// given and the experiment has changed since.
async fn current(
    store: &dyn Store,
    project: &ProjectId,
    id: &str,
    expected_revision: Option<u64>,
) -> Result<ExperimentRecord> {
    let record = get(store, project, id).await?;
    if let Some(expected) = expected_revision
        && expected != record.revision
    {
        return Err(stale_revision(&record, expected));
    }
    Ok(record)
}

fn stale_revision(record: &ExperimentRecord, expected: u64) -> Error {
    Error::rejected(
        ErrorCode::PreconditionFailed,
        format!(
            "experiment '{}' changed since it was read (revision {expected}, now {}); reload and retry",
            record.name, record.revision
        ),
    )
    .with_details(serde_json::json!({ "expected_revision": expected, "current_revision": record.revision }))
}

/// Apply one change of an experiment with its history note (the revision the decision was
/// taken on must still be current).
pub async fn change(
    store: &dyn Store,
    actor: &Actor,
    record: &ExperimentRecord,
    change: ExperimentChange,
    note: HistoryNote,
) -> Result<ExperimentRecord> {
    let op = WriteOp::UpdateExperiment {
        id: record.id.clone(),
        expected_revision: Some(record.revision),
        change,
        note,
    };
    let outcomes = store.apply(actor, vec![op]).await?;
    experiment_outcome("UpdateExperiment", outcomes)
}

/// Create an experiment in `draft`.
pub async fn create(
    store: &dyn Store,
    actor: &Actor,
    req: CreateExperiment,
) -> Result<ExperimentRecord> {
    checks::prompt_name(&req.prompt)?;
    let prompt = prompt_or_404(store, &actor.project, &req.prompt).await?;
    let definition = validate_definition(req, prompt.latest_version)?;
    experiment_prompt(store, &actor.project, &definition.prompt, &definition.label).await?;
    let message = format!(
        "created on {}@{} with arms {}",
        definition.prompt,
        definition.label,
        arm_list(&definition.arms)
    );
    let op = WriteOp::CreateExperiment {
        experiment: definition,
        note: note("created", message, serde_json::json!({})),
    };
    let outcomes = store.apply(actor, vec![op]).await?;
    experiment_outcome("CreateExperiment", outcomes)
}

fn arm_list(arms: &[promptstore_types::Arm]) -> String {
    arms.iter()
        .map(|a| format!("{} (v{}, weight {})", a.name, a.version, a.weight))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replace a draft's definition.
pub async fn replace_draft(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    expected_revision: Option<u64>,
    req: CreateExperiment,
) -> Result<ExperimentRecord> {
    let record = current(store, &actor.project, id, expected_revision).await?;
    let replacement = ExperimentChange::ReplaceDraft(definition_of(&record));
    crate::experiments::lifecycle::check_transition(record.status, &replacement)?;
    checks::prompt_name(&req.prompt)?;
    let prompt = prompt_or_404(store, &actor.project, &req.prompt).await?;
    let definition = validate_definition(req, prompt.latest_version)?;
    experiment_prompt(store, &actor.project, &definition.prompt, &definition.label).await?;
    let message = format!(
        "definition replaced: {}@{} with arms {}",
        definition.prompt,
        definition.label,
        arm_list(&definition.arms)
    );
    change(
        store,
        actor,
        &record,
        ExperimentChange::ReplaceDraft(definition),
        note("updated", message, serde_json::json!({})),
    )
    .await
}

/// The record's own definition, only to ask the lifecycle whether a draft edit is allowed
/// before validating the new one (so a running experiment answers `invalid_transition`
/// rather than a validation error about the new body).
fn definition_of(record: &ExperimentRecord) -> crate::experiments::model::NewExperiment {
    crate::experiments::model::NewExperiment {
        name: record.name.clone(),
        description: record.description.clone(),
        prompt: record.prompt.clone(),
        label: record.label.clone(),
        arms: record.arms.clone(),
        primary_metric: record.primary_metric.clone(),
        guardrails: record.guardrails.clone(),
        min_sample_per_arm: record.min_sample_per_arm,
        max_duration_hours: record.max_duration_hours,
        on_conclusion: record.on_conclusion,
        alpha: record.alpha,
        sequential_tuning: record.sequential_tuning,
        prior: record.prior.clone(),
        mde: record.mde,
    }
}

/// Delete a draft.
pub async fn delete(store: &dyn Store, actor: &Actor, id: &str) -> Result<ExperimentRecord> {
    let record = get(store, &actor.project, id).await?;
    check_delete(record.status)?;
    store
        .apply(
            actor,
            vec![WriteOp::DeleteExperiment {
                id: record.id.clone(),
            }],
        )
        .await?;
    Ok(record)
}

/// `draft → running`. The label must still exist and every arm's version must still be a
/// version of the prompt; a second running experiment on the same prompt + label is
/// refused with `conflict`.
pub async fn start(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    expected_revision: Option<u64>,
) -> Result<ExperimentRecord> {
    let record = current(store, &actor.project, id, expected_revision).await?;
    let prompt = experiment_prompt(store, &actor.project, &record.prompt, &record.label).await?;
    check_change(&record, &ExperimentChange::Start, prompt.latest_version)?;
    let running = store.running_experiments(Some(&actor.project)).await?;
    if let Some(other) = running
        .iter()
        .find(|e| e.id != record.id && e.prompt == record.prompt && e.label == record.label)
    {
        return Err(already_running(&record, other));
    }
    let message = format!(
        "started on {}@{} with arms {}",
        record.prompt,
        record.label,
        arm_list(&record.arms)
    );
    change(
        store,
        actor,
        &record,
        ExperimentChange::Start,
        note("started", message, serde_json::json!({ "phase": 1 })),
    )
    .await
}

fn already_running(record: &ExperimentRecord, other: &ExperimentRecord) -> Error {
    Error::rejected(
        ErrorCode::Conflict,
        format!(
            "experiment '{}' already runs on {}@{}; stop or conclude it first (one running experiment per prompt and label)",
            other.name, record.prompt, record.label
        ),
    )
    .with_details(serde_json::json!({ "running_experiment": other.id }))
}

/// New arms or weights of a running experiment: a new analysis phase starts, recorded with
/// the reason (a draft's arms change with its definition, `replace_draft`).
pub async fn set_arms(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    expected_revision: Option<u64>,
    req: UpdateArms,
) -> Result<ExperimentRecord> {
    let record = current(store, &actor.project, id, expected_revision).await?;
    let prompt = prompt_or_404(store, &actor.project, &record.prompt).await?;
    let (arms, reason) = validate_update_arms(req, prompt.latest_version)?;
    let new_phase = record.phase + 1;
    let details = serde_json::json!({
        "reason": reason,
        "before": record.arms,
        "after": arms,
        "phase": new_phase,
    });
    let message = format!(
        "arms changed to {} (phase {new_phase} starts): {reason}",
        arm_list(&arms)
    );
    let change_arms = ExperimentChange::SetArms(arms);
    check_change(&record, &change_arms, prompt.latest_version)?;
    change(
        store,
        actor,
        &record,
        change_arms,
        note("arms_changed", message, details),
    )
    .await
}

/// `running → stopped`: no more assignment; the data stays for the results.
pub async fn stop(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    expected_revision: Option<u64>,
    req: &EndExperiment,
) -> Result<ExperimentRecord> {
    let record = current(store, &actor.project, id, expected_revision).await?;
    check_change(&record, &ExperimentChange::Stop, u32::MAX)?;
    let reason = req.reason.trim();
    crate::experiments::definition::check_display_text(
        "reason",
        reason,
        crate::experiments::definition::MAX_REASON_LEN,
        true,
    )?;
    let reason = if reason.is_empty() {
        "stopped by hand"
    } else {
        reason
    };
    change(
        store,
        actor,
        &record,
        ExperimentChange::Stop,
        note(
            "stopped",
            format!("stopped: {reason}"),
            serde_json::json!({ "reason": reason }),
        ),
    )
    .await
}

/// The result of a conclusion: the experiment and, with promotion, the label move.
#[derive(Debug, Clone, PartialEq)]
pub struct Concluded {
    pub experiment: ExperimentRecord,
    pub label_move: Option<LabelMoveRecord>,
}

/// Conclude by hand (`running` or `stopped` → `concluded`). With `promote`, the label moves
/// to the winner's version in the same transaction, under the rules of a label move by the
/// caller: a protected label needs an admin key, and a version that breaks its variable
/// contract is refused (`breaking_change`; conclude without promotion and move the label
/// with `allow_breaking` to force it).
pub async fn conclude(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    expected_revision: Option<u64>,
    req: &EndExperiment,
) -> Result<Concluded> {
    let record = current(store, &actor.project, id, expected_revision).await?;
    let conclusion = manual_conclusion(&record, req)?;
    check_change(
        &record,
        &ExperimentChange::Conclude(conclusion.clone()),
        u32::MAX,
    )?;
    let promotion = match (&conclusion.winner, req.promote) {
        (Some(winner), true) => Some(promotion_move(store, actor, &record, winner, false).await?),
        _ => None,
    };
    let message = conclusion_message(&record, &conclusion, promotion.as_ref());
    let details = serde_json::json!({
        "winner": conclusion.winner,
        "reason": conclusion.reason,
        "promoted": conclusion.promoted,
        "decided_by": conclusion.decided_by,
    });
    let label_reason = format!(
        "experiment {} concluded: {}",
        record.name, conclusion.reason
    );
    apply_conclusion(
        store,
        actor,
        &record,
        conclusion,
        note("concluded", message, details),
        promotion.map(|p| (p, label_reason)),
    )
    .await
}

/// A label move that promotes an arm: where the label points now and where it will.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub label: String,
    pub from: Option<u32>,
    pub to: u32,
}

/// The checks of promoting `winner`: the prompt is servable, the caller may move the label
/// (protected labels: admin), and the winner's version keeps the variable contract of the
/// version the label serves now — for protected labels only when the move is by hand
/// (`always_check_contract` = false), for every label when it is automatic.
pub async fn promotion_move(
    store: &dyn Store,
    actor: &Actor,
    record: &ExperimentRecord,
    winner: &str,
    always_check_contract: bool,
) -> Result<Promotion> {
    let Some(arm) = record.arms.iter().find(|a| a.name == winner) else {
        return Err(crate::experiments::definition::invalid(
            "winner",
            format_args!("'{}' is not an arm of this experiment", short(winner)),
        ));
    };
    let prompt = prompt_or_404(store, &actor.project, &record.prompt).await?;
    if prompt.status == PromptStatus::Archived {
        return Err(Error::rejected(
            ErrorCode::PromptArchived,
            format!(
                "prompt '{}' is archived and cannot hold labels",
                record.prompt
            ),
        ));
    }
    let project = crate::service::projects::get(store, &actor.project).await?;
    let protected = project.protected_labels.iter().any(|l| l == &record.label);
    if protected && actor.role != Role::Admin {
        return Err(Error::rejected(
            ErrorCode::ProtectedLabel,
            format!(
                "label '{}' is protected; only an admin key may promote a winner to it",
                record.label
            ),
        )
        .with_details(serde_json::json!({ "label": record.label })));
    }
    let target = version_or_404(store, &actor.project, &record.prompt, arm.version).await?;
    let from = prompt.labels.get(&record.label).copied();
    if (protected || always_check_contract)
        && let Some(current_n) = from.filter(|c| *c != arm.version)
    {
        let current_v = version_or_404(store, &actor.project, &record.prompt, current_n).await?;
        let breaking = checks::breaking_changes(&current_v.variables, &target.variables);
        if !breaking.is_empty() {
            return Err(Error::rejected(
                ErrorCode::BreakingChange,
                format!(
                    "version {} of the winner '{winner}' breaks the variable contract of version {current_n} that label '{}' serves; conclude without promotion and move the label with allow_breaking",
                    arm.version, record.label
                ),
            )
            .with_details(serde_json::json!({ "from_version": current_n, "to_version": arm.version, "breaking_changes": breaking })));
        }
    }
    Ok(Promotion {
        label: record.label.clone(),
        from,
        to: arm.version,
    })
}

fn conclusion_message(
    record: &ExperimentRecord,
    conclusion: &promptstore_types::Conclusion,
    promotion: Option<&Promotion>,
) -> String {
    let winner = match &conclusion.winner {
        Some(w) => format!("winner '{w}'"),
        None => "no winner".to_owned(),
    };
    let promoted = match promotion {
        Some(p) => format!(
            "; label '{}' moved to version {} (was {})",
            p.label,
            p.to,
            p.from.map_or_else(|| "unset".to_owned(), |v| v.to_string())
        ),
        None => String::new(),
    };
    format!(
        "experiment '{}' concluded ({}): {winner}{promoted} — {}",
        record.name, conclusion.decided_by, conclusion.reason
    )
}

/// Apply a conclusion and, with a promotion, the label move (its recorded reason
/// `label_reason`, naming the experiment) in one transaction.
pub async fn apply_conclusion(
    store: &dyn Store,
    actor: &Actor,
    record: &ExperimentRecord,
    conclusion: promptstore_types::Conclusion,
    history: HistoryNote,
    promotion: Option<(Promotion, String)>,
) -> Result<Concluded> {
    let mut ops = vec![WriteOp::UpdateExperiment {
        id: record.id.clone(),
        expected_revision: Some(record.revision),
        change: ExperimentChange::Conclude(conclusion),
        note: history,
    }];
    if let Some((p, label_reason)) = promotion {
        ops.push(WriteOp::MoveLabel {
            name: record.prompt.clone(),
            label: p.label,
            to: Some(p.to),
            expected_from: Some(p.from),
            reason: Some(label_reason),
        });
    }
    let outcomes = store.apply(actor, ops).await.map_err(|e| match e {
        StoreError::Conflict { message } => Error::rejected(
            ErrorCode::Conflict,
            format!(
                "the experiment or its label changed while concluding ({message}); reload and retry"
            ),
        ),
        other => other.into(),
    })?;
    let mut outcomes = outcomes.into_iter();
    let experiment = experiment_outcome("UpdateExperiment", outcomes.by_ref().take(1).collect())?;
    let label_move = match outcomes.next() {
        Some(WriteOutcome::LabelMoved(m)) => m,
        None => None,
        other => return Err(unexpected("MoveLabel", &other)),
    };
    Ok(Concluded {
        experiment,
        label_move,
    })
}

/// What the results of an experiment are computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsData {
    /// Per arm name: the fold of its events since `from`, counts and moments only (what
    /// results use): the latency and TTFT sketches are left empty.
    pub rollups: BTreeMap<String, Rollup>,
    /// Units first exposed per arm in the current phase.
    pub exposures: BTreeMap<String, u64>,
    pub from: Option<OffsetDateTime>,
    pub to: OffsetDateTime,
}

/// The start of the hour `at` is in.
fn hour_floor(at: OffsetDateTime) -> OffsetDateTime {
    let seconds = at.unix_timestamp();
    let floored = seconds - seconds.rem_euclid(3600);
    OffsetDateTime::from_unix_timestamp(floored).unwrap_or(at)
}

/// The start of the first whole hour at or after `at`.
fn hour_ceil(at: OffsetDateTime) -> OffsetDateTime {
    let floor = hour_floor(at);
    if floor == at {
        floor
    } else {
        floor + Duration::hours(1)
    }
}

/// Gather an experiment's data: every arm's events from the start of the current phase (or
/// of the experiment with `all_phases`) to `now` or the end — whole hours from the aggregate
/// cells (whole UTC days from day cells), the partial first hour from the raw events — and
/// the current phase's exposures. A draft has no data (empty rollups).
pub async fn results_data(
    analytics: &dyn AnalyticsStore,
    record: &ExperimentRecord,
    all_phases: bool,
    now: OffsetDateTime,
) -> Result<ResultsData> {
    let from = if all_phases {
        record.started_at
    } else {
        record.phase_started_at.or(record.started_at)
    };
    let to = record.ended_at.unwrap_or(now);
    let mut rollups: BTreeMap<String, Rollup> = record
        .arms
        .iter()
        .map(|a| (a.name.clone(), Rollup::default()))
        .collect();
    let Some(from) = from.filter(|f| *f < to) else {
        return Ok(ResultsData {
            rollups,
            exposures: BTreeMap::new(),
            from,
            to,
        });
    };
    let project = &record.project;
    let whole_from = hour_ceil(from);
    let filter = AnalyticsFilter {
        experiment: Some(record.id.clone()),
        ..AnalyticsFilter::default()
    };
    if whole_from < to {
        // The hour `to` falls in is included whole: its events are the newest there are.
        // Whole UTC days come from DAY cells, the edge hours from HOUR cells (`range::plan`),
        // so a month-long experiment reads ~30 cells per series instead of ~720.
        let whole = plan(Range {
            from: whole_from,
            to: hour_ceil(to),
        });
        let reads = whole
            .days
            .map(|d| (Granularity::Day, d))
            .into_iter()
            .chain(whole.hours.into_iter().map(|h| (Granularity::Hour, h)));
        for (granularity, range) in reads {
            let query = CellQuery {
                granularity,
                from: range.from,
                to: range.to,
                filter: &filter,
                detail: KeyDetail::Full,
            };
            // Results read counts and moments only: the sketches are not even merged.
            analytics
                .fold_cells(
                    project,
                    &query,
                    &mut |key, rollup| match rollups.get_mut(&key.arm) {
                        Some(arm) => arm.merge_encoded_counts(rollup),
                        None => Ok(()),
                    },
                )
                .await?;
        }
    }
    let partial_to = whole_from.min(to);
    if from < partial_to {
        let partial = analytics
            .experiment_window(project, &record.id, from, partial_to)
            .await?;
        for (name, rollup) in &mut rollups {
            if let Some(part) = partial.get(name) {
                // Without its sketches too, so every arm's rollup is alike.
                rollup
                    .merge_encoded_counts(&part.encode())
                    .map_err(|e| StoreError::Backend(format!("a partial rollup: {e}")))?;
            }
        }
    }
    let exposures = if record.phase > 0 {
        analytics
            .exposure_counts(project, &record.id, record.phase)
            .await?
    } else {
        BTreeMap::new()
    };
    Ok(ResultsData {
        rollups,
        exposures,
        from: Some(from),
        to,
    })
}

/// How to analyse: the current phase (default) or every phase, and an optional minimum
/// detectable effect for the sample-size estimate instead of the experiment's own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResultsOptions {
    pub all_phases: bool,
    pub mde: Option<f64>,
}

/// The results of an experiment as of `now` (see [`results_data`] for the data).
pub async fn results(
    store: &dyn Store,
    analytics: &dyn AnalyticsStore,
    project: &ProjectId,
    id: &str,
    options: ResultsOptions,
    now: OffsetDateTime,
) -> Result<promptstore_types::ExperimentResults> {
    let mut record = get(store, project, id).await?;
    if let Some(mde) = options.mde {
        if !(mde.is_finite() && mde > 0.0) {
            return Err(crate::experiments::definition::invalid(
                "mde",
                format_args!("must be a positive number such as 0.05 (5 %), got {mde}"),
            ));
        }
        record.mde = mde;
    }
    analyze_record(analytics, &record, options.all_phases, now).await
}

/// Gather the data of `record` and analyse it.
pub async fn analyze_record(
    analytics: &dyn AnalyticsStore,
    record: &ExperimentRecord,
    all_phases: bool,
    now: OffsetDateTime,
) -> Result<promptstore_types::ExperimentResults> {
    let data = results_data(analytics, record, all_phases, now).await?;
    Ok(crate::experiments::results::analyze(
        record,
        &data.rollups,
        &data.exposures,
        data.from,
        data.to,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_to_utc_hour_boundaries() {
        let at = time::macros::datetime!(2026-03-01 10:20:30 UTC);
        assert_eq!(
            hour_floor(at),
            time::macros::datetime!(2026-03-01 10:00 UTC)
        );
        assert_eq!(hour_ceil(at), time::macros::datetime!(2026-03-01 11:00 UTC));
        let exact = time::macros::datetime!(2026-03-01 10:00 UTC);
        assert_eq!(hour_ceil(exact), exact);
    }
}
