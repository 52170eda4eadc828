//! One ingest request: validate and cost each item against the in-memory snapshot and price
//! book (no store read), hand the valid events to the group-commit writer, and build the
//! report — ids in batch order, duplicates, per-item errors.

use promptstore_core::analytics::model::{EventRecord, IngestOutcome};
use promptstore_core::analytics::validate::{IngestContext, validate_event};
use promptstore_core::model::Actor;
use promptstore_core::runtime::ProjectSnapshot;
use promptstore_types::{ErrorCode, EventIn, IngestReport, ItemError};
use time::OffsetDateTime;

use super::body::Item;
use super::writer::SubmitError;
use crate::error::ApiError;
use crate::state::AppState;

/// Validate, cost and commit a batch; answered once the valid events are durable.
pub async fn ingest(
    state: &AppState,
    actor: &Actor,
    items: Vec<Item>,
) -> Result<IngestReport, IngestFailure> {
    let now = OffsetDateTime::now_utc();
    let runtime = match state.runtime_now(&actor.project) {
        Some(rt) => rt,
        None => state.runtime(&actor.project).await?,
    };
    let book = state.prices().book(&actor.project);
    // An event older than the retention age would be pruned at the next run anyway.
    let oldest = time::Duration::try_from(state.config().analytics.events_retention)
        .ok()
        .and_then(|age| now.checked_sub(age));
    let total = items.len();
    // Validation is synchronous and reads the snapshot only; nothing borrowed from it
    // lives across the commit below.
    let (records, positions, errors) = {
        let snapshot = runtime.snapshot();
        let ctx = IngestContext {
            project: &actor.project,
            prompts: &**snapshot,
            prices: &book,
            now,
            oldest,
        };
        validate_items(&ctx, &snapshot, items)
    };
    state
        .metrics()
        .events_rejected
        .increment(errors.len() as u64);

    let outcomes = state.writer().submit(records).await?;
    let mut ids: Vec<Option<i64>> = vec![None; total];
    let mut report = IngestReport {
        rejected: errors.len() as u64,
        errors,
        ..IngestReport::default()
    };
    for (index, outcome) in positions.into_iter().zip(outcomes) {
        match outcome {
            IngestOutcome::Inserted(id) => {
                report.accepted += 1;
                ids[index] = Some(id);
            }
            IngestOutcome::Duplicate(id) => {
                report.duplicates += 1;
                ids[index] = Some(id);
            }
        }
    }
    report.ids = ids;
    Ok(report)
}

/// The valid records with their batch positions, and the refused items in index order.
fn validate_items(
    ctx: &IngestContext<'_>,
    snapshot: &ProjectSnapshot,
    items: Vec<Item>,
) -> (Vec<EventRecord>, Vec<usize>, Vec<ItemError>) {
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let checked = item
            .and_then(|event| attribute(snapshot, index, event))
            .and_then(|event| validate_event(ctx, index, event));
        match checked {
            Ok(record) => {
                positions.push(index);
                records.push(record);
            }
            Err(mut error) => {
                // Parse errors already carry their index; keep validation's in step.
                error.index = index;
                errors.push(error);
            }
        }
    }
    (records, positions, errors)
}

/// Checks an event's experiment attribution against the running experiments of the
/// snapshot: an event naming a running experiment must be of its prompt and name one of
/// its arms, and without a version it counts for that arm's version (not the label's).
/// An experiment the snapshot does not run (ended, or unknown) is accepted as sent: late
/// events of a finished experiment still belong to it.
fn attribute(
    snapshot: &ProjectSnapshot,
    index: usize,
    mut event: EventIn,
) -> Result<EventIn, ItemError> {
    let Some(id) = event.experiment.as_deref() else {
        return Ok(event);
    };
    let Some(experiment) = snapshot.running_experiment(id) else {
        return Ok(event);
    };
    let refuse = |field: &str, message: String| ItemError {
        index,
        code: ErrorCode::InvalidRequest,
        message,
        field: Some(field.to_owned()),
    };
    if event.prompt != experiment.prompt() {
        return Err(refuse(
            "experiment",
            format!(
                "experiment '{id}' runs on prompt '{}', not on this event's prompt",
                experiment.prompt()
            ),
        ));
    }
    let Some(arm_name) = event.arm.as_deref() else {
        return Err(refuse(
            "arm",
            format!(
                "an event of experiment '{id}' must name its arm (the resolve answer's assignment.arm)"
            ),
        ));
    };
    let Some(arm) = experiment.arm(arm_name) else {
        let names: Vec<&str> = experiment.arms().iter().map(|a| a.name.as_str()).collect();
        return Err(refuse(
            "arm",
            format!(
                "experiment '{id}' has no arm '{}'; its arms are {}",
                arm_name.chars().take(80).collect::<String>(),
                names.join(", ")
            ),
        ));
    };
    if event.version.is_none() {
        event.version = Some(arm.version);
    }
    Ok(event)
}

/// Why a batch got no report.
#[derive(Debug)]
pub enum IngestFailure {
    Api(ApiError),
    Submit(SubmitError),
}

impl From<ApiError> for IngestFailure {
    fn from(e: ApiError) -> Self {
        IngestFailure::Api(e)
    }
}

impl From<SubmitError> for IngestFailure {
    fn from(e: SubmitError) -> Self {
        IngestFailure::Submit(e)
    }
}
