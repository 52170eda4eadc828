//! Event validation: an `EventIn` as a client sent it becomes an `EventRecord` ready to
//! store (prompt resolved, version filled in, cost computed), or an `ItemError` naming the
//! field at fault. A batch is validated item by item so one bad event never sinks the rest.

use std::collections::{BTreeMap, HashMap};

use promptstore_types::{AttachToEvent, ErrorCode, EventIn, Feedback, ItemError};
use time::{Duration, OffsetDateTime};

use super::cost::PriceBook;
use super::model::EventRecord;
use crate::model::{ProjectId, PromptRecord};
use crate::runtime::ProjectSnapshot;

/// Longest id, model, provider, error type, experiment, arm, unit id or score name.
pub const MAX_SHORT_STRING: usize = 200;
/// Longest feedback comment, in characters.
pub const MAX_COMMENT: usize = 10_000;
/// Largest metadata object, JSON-encoded.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Most scores on one event.
pub const MAX_SCORES: usize = 100;
/// How far in the future a timestamp may be (clients' clocks drift).
pub const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);

/// How validation finds prompts: by name, in the event's project. The server answers from
/// its in-memory snapshot; tests from a map.
pub trait PromptLookup {
    fn prompt(&self, name: &str) -> Option<&PromptRecord>;
}

impl PromptLookup for ProjectSnapshot {
    fn prompt(&self, name: &str) -> Option<&PromptRecord> {
        ProjectSnapshot::prompt(self, name)
    }
}

impl PromptLookup for BTreeMap<String, PromptRecord> {
    fn prompt(&self, name: &str) -> Option<&PromptRecord> {
        self.get(name)
    }
}

impl PromptLookup for HashMap<String, PromptRecord> {
    fn prompt(&self, name: &str) -> Option<&PromptRecord> {
        self.get(name)
    }
}

/// What validation needs besides the event.
pub struct IngestContext<'a> {
    pub project: &'a ProjectId,
    pub prompts: &'a dyn PromptLookup,
    pub prices: &'a PriceBook,
    /// Arrival time: the default timestamp and the reference for the future bound.
    pub now: OffsetDateTime,
    /// Events older than this are refused (the retention horizon); None = no bound.
    pub oldest: Option<OffsetDateTime>,
}

/// Validate a batch: the valid events with their batch index, and one error per refused
/// item (in index order).
pub fn validate_batch(
    ctx: &IngestContext<'_>,
    events: Vec<EventIn>,
) -> (Vec<(usize, EventRecord)>, Vec<ItemError>) {
    let mut ok = Vec::with_capacity(events.len());
    let mut errors = Vec::new();
    for (index, e) in events.into_iter().enumerate() {
        match validate_event(ctx, index, e) {
            Ok(r) => ok.push((index, r)),
            Err(err) => errors.push(err),
        }
    }
    (ok, errors)
}

/// One problem: the code, the field and the message.
struct Problem {
    code: ErrorCode,
    field: &'static str,
    message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        code: ErrorCode::InvalidRequest,
        field,
        message: message.into(),
    }
}

fn not_found(field: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        code: ErrorCode::NotFound,
        field,
        message: message.into(),
    }
}

/// At most 80 characters of a value quoted in a message.
fn quote(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_owned()
    } else {
        let mut q: String = s.chars().take(80).collect();
        q.push('…');
        q
    }
}

/// Validate one event (`index` is its position in the batch, for the error).
pub fn validate_event(
    ctx: &IngestContext<'_>,
    index: usize,
    event: EventIn,
) -> Result<EventRecord, ItemError> {
    check(ctx, event).map_err(|p| ItemError {
        index,
        code: p.code,
        message: p.message,
        field: Some(p.field.to_owned()),
    })
}

fn check_short(field: &'static str, v: &str) -> Result<(), Problem> {
    if v.is_empty() {
        Err(invalid(field, format!("{field} must not be empty")))
    } else if v.len() > MAX_SHORT_STRING && v.chars().count() > MAX_SHORT_STRING {
        Err(invalid(
            field,
            format!("{field} must be at most {MAX_SHORT_STRING} characters"),
        ))
    } else if v.chars().any(char::is_control) {
        Err(invalid(
            field,
            format!("{field} must not contain control characters"),
        ))
    } else {
        Ok(())
    }
}

fn short(field: &'static str, value: Option<String>) -> Result<Option<String>, Problem> {
    if let Some(v) = &value {
        check_short(field, v)?;
    }
    Ok(value)
}

/// Counts the bytes of an encoding without keeping them.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encoded_size(v: &serde_json::Value) -> usize {
    let mut c = ByteCounter(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

fn non_negative(field: &'static str, value: Option<f64>) -> Result<Option<f64>, Problem> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(invalid(
            field,
            format!("{field} must be a finite number ≥ 0, got {v}"),
        )),
        v => Ok(v),
    }
}

fn check(ctx: &IngestContext<'_>, e: EventIn) -> Result<EventRecord, Problem> {
    let client_id = short("id", e.id)?;
    if e.prompt.is_empty() {
        return Err(invalid("prompt", "prompt must not be empty"));
    }
    let Some(prompt) = ctx.prompts.prompt(&e.prompt) else {
        return Err(not_found(
            "prompt",
            format!(
                "prompt '{}' does not exist in this project",
                quote(&e.prompt)
            ),
        ));
    };
    let label = match e.label {
        Some(l) => {
            crate::names::validate_label_name(&l)
                .map_err(|err| invalid("label", err.to_string()))?;
            Some(l)
        }
        None => None,
    };
    let version = match (e.version, &label) {
        (Some(v), _) => {
            if v == 0 || v > prompt.latest_version {
                return Err(not_found(
                    "version",
                    format!(
                        "version {v} of prompt '{}' does not exist (latest is {})",
                        prompt.name, prompt.latest_version
                    ),
                ));
            }
            v
        }
        (None, Some(l)) => match prompt.labels.get(l) {
            Some(&v) => v,
            None => {
                return Err(not_found(
                    "label",
                    format!(
                        "prompt '{}' has no label '{l}'; send the version used",
                        prompt.name
                    ),
                ));
            }
        },
        (None, None) => prompt.latest_version,
    };
    let experiment = short("experiment", e.experiment)?;
    let arm = short("arm", e.arm)?;
    let unit_id = short("unit_id", e.unit_id)?;
    let model = short("model", e.model)?.unwrap_or_default();
    let provider = short("provider", e.provider)?;
    let error_type = short("error_type", e.error_type)?;
    let input_tokens = e.input_tokens.unwrap_or(0);
    let output_tokens = e.output_tokens.unwrap_or(0);
    let cached_input_tokens = e.cached_input_tokens.unwrap_or(0);
    if cached_input_tokens > input_tokens {
        return Err(invalid(
            "cached_input_tokens",
            format!(
                "cached_input_tokens ({cached_input_tokens}) cannot exceed input_tokens ({input_tokens}): cached tokens are part of the input"
            ),
        ));
    }
    let latency_ms = non_negative("latency_ms", e.latency_ms)?;
    let ttft_ms = non_negative("ttft_ms", e.ttft_ms)?;
    let reported_cost = non_negative("cost", e.cost)?;
    let success = match (e.success, &error_type) {
        (Some(true), Some(t)) => {
            return Err(invalid(
                "success",
                format!("error_type '{t}' implies success: false, but success is true"),
            ));
        }
        (Some(s), _) => s,
        (None, t) => t.is_none(),
    };
    let scores = check_scores(e.scores)?;
    let feedback = e.feedback.map(check_feedback).transpose()?;
    let metadata = match e.metadata {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(m @ serde_json::Value::Object(_)) => {
            let size = encoded_size(&m);
            if size > MAX_METADATA_BYTES {
                return Err(invalid(
                    "metadata",
                    format!(
                        "metadata is {size} bytes encoded; at most {MAX_METADATA_BYTES} are allowed"
                    ),
                ));
            }
            m
        }
        Some(_) => return Err(invalid("metadata", "metadata must be a JSON object")),
    };
    let at = e.timestamp.unwrap_or(ctx.now);
    if at > ctx.now + MAX_FUTURE_SKEW {
        return Err(invalid(
            "timestamp",
            format!(
                "timestamp {at} is more than {} minutes in the future (server time {})",
                MAX_FUTURE_SKEW.whole_minutes(),
                ctx.now
            ),
        ));
    }
    if let Some(oldest) = ctx.oldest
        && at < oldest
    {
        return Err(invalid(
            "timestamp",
            format!("timestamp {at} is older than the retention horizon ({oldest})"),
        ));
    }
    let (cost, cost_source) = ctx.prices.event_cost(
        reported_cost,
        &model,
        at,
        input_tokens,
        cached_input_tokens,
        output_tokens,
    );
    Ok(EventRecord {
        project: ctx.project.clone(),
        client_id,
        prompt_id: prompt.id.clone(),
        prompt: prompt.name.clone(),
        version,
        label,
        experiment,
        arm,
        unit_id,
        model,
        provider,
        input_tokens,
        output_tokens,
        cached_input_tokens,
        latency_ms,
        ttft_ms,
        cost,
        cost_source,
        success,
        error_type,
        scores,
        feedback,
        metadata,
        at,
    })
}

fn check_scores(scores: BTreeMap<String, f64>) -> Result<BTreeMap<String, f64>, Problem> {
    if scores.len() > MAX_SCORES {
        return Err(invalid(
            "scores",
            format!(
                "{} scores sent; at most {MAX_SCORES} are allowed",
                scores.len()
            ),
        ));
    }
    for (name, v) in &scores {
        check_short("scores", name)?;
        if !v.is_finite() {
            return Err(invalid(
                "scores",
                format!("score '{}' must be a finite number, got {v}", quote(name)),
            ));
        }
    }
    Ok(scores)
}

fn check_feedback(f: Feedback) -> Result<Feedback, Problem> {
    if let Some(r) = f.rating
        && !(1..=5).contains(&r)
    {
        return Err(invalid(
            "feedback.rating",
            format!("feedback rating must be 1 to 5, got {r}"),
        ));
    }
    if let Some(c) = &f.comment {
        let n = c.chars().count();
        if n > MAX_COMMENT {
            return Err(invalid(
                "feedback.comment",
                format!("feedback comment is {n} characters; at most {MAX_COMMENT} are allowed"),
            ));
        }
    }
    Ok(f)
}

/// Check late scores and feedback (`POST /events/{id}/attach`): the same rules as at
/// ingest, and at least one of the two.
pub fn validate_attach(body: AttachToEvent) -> Result<AttachToEvent, crate::error::Error> {
    let to_error = |p: Problem| {
        crate::error::Error::rejected(p.code, p.message)
            .with_details(serde_json::json!({ "field": p.field }))
    };
    if body.scores.is_empty() && body.feedback.is_none() {
        return Err(to_error(invalid(
            "scores",
            "nothing to attach: send scores, feedback or both",
        )));
    }
    Ok(AttachToEvent {
        scores: check_scores(body.scores).map_err(to_error)?,
        feedback: body
            .feedback
            .map(check_feedback)
            .transpose()
            .map_err(to_error)?,
    })
}

#[cfg(test)]
mod tests {
    use promptstore_types::CostSource;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use promptstore_types::{PromptKind, PromptStatus};

    const NOW: OffsetDateTime = datetime!(2025-09-01 12:00 UTC);

    fn prompts() -> BTreeMap<String, PromptRecord> {
        let rec = PromptRecord {
            id: "pid-1".into(),
            project: ProjectId("p1".into()),
            name: "support/triage".into(),
            kind: PromptKind::Text,
            description: String::new(),
            tags: vec![],
            status: PromptStatus::Active,
            revision: 1,
            latest_version: 3,
            labels: [("latest".to_string(), 3), ("production".to_string(), 2)].into(),
            created_by: "t".into(),
            created_at: NOW,
            updated_at: NOW,
        };
        [(rec.name.clone(), rec)].into()
    }

    fn with(
        ctx_prompts: &BTreeMap<String, PromptRecord>,
        e: serde_json::Value,
    ) -> Result<EventRecord, ItemError> {
        let project = ProjectId("p1".into());
        let book = PriceBook::default();
        let ctx = IngestContext {
            project: &project,
            prompts: ctx_prompts,
            prices: &book,
            now: NOW,
            oldest: Some(NOW - Duration::days(30)),
        };
        let mut base = json!({"prompt": "support/triage"});
        if let (Some(b), Some(o)) = (base.as_object_mut(), e.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        let event: EventIn = serde_json::from_value(base).unwrap();
        validate_event(&ctx, 7, event)
    }

    #[test]
    fn valid_events_are_normalised() {
        let p = prompts();
        let r = with(&p, json!({})).unwrap();
        assert_eq!((r.version, r.label.as_deref(), r.at), (3, None, NOW));
        assert_eq!(r.prompt_id, "pid-1");
        assert!(r.success);
        assert_eq!(r.metadata, json!({}));
        assert_eq!(r.cost_source, CostSource::Unpriced);
        assert_eq!(r.cost, None);
        let r = with(&p, json!({"label": "production"})).unwrap();
        assert_eq!(r.version, 2);
        let r = with(&p, json!({"label": "gone-label", "version": 1})).unwrap();
        assert_eq!((r.version, r.label.as_deref()), (1, Some("gone-label")));
        let r = with(&p, json!({"error_type": "timeout"})).unwrap();
        assert!(!r.success);
        let r = with(&p, json!({"model": "gpt-4o-mini", "input_tokens": 1000000})).unwrap();
        assert_eq!(r.cost_source, CostSource::Computed);
        assert!((r.cost.unwrap() - 0.15).abs() < 1e-12);
        let r = with(&p, json!({"model": "gpt-4o-mini", "cost": 0.2})).unwrap();
        assert_eq!((r.cost, r.cost_source), (Some(0.2), CostSource::Reported));
        let r = with(
            &p,
            json!({"timestamp": "2025-09-01T12:04:00Z", "metadata": {"k": 1}}),
        )
        .unwrap();
        assert_eq!(r.metadata, json!({"k": 1}));
    }

    #[test]
    fn every_validation_error() {
        let p = prompts();
        let long = "x".repeat(201);
        let cases: Vec<(serde_json::Value, ErrorCode, &str, &str)> = vec![
            (
                json!({"prompt": "nope"}),
                ErrorCode::NotFound,
                "prompt",
                "does not exist",
            ),
            (
                json!({"prompt": ""}),
                ErrorCode::InvalidRequest,
                "prompt",
                "must not be empty",
            ),
            (
                json!({"version": 4}),
                ErrorCode::NotFound,
                "version",
                "latest is 3",
            ),
            (
                json!({"version": 0}),
                ErrorCode::NotFound,
                "version",
                "version 0",
            ),
            (
                json!({"label": "canary"}),
                ErrorCode::NotFound,
                "label",
                "no label 'canary'",
            ),
            (
                json!({"label": "Bad Label"}),
                ErrorCode::InvalidRequest,
                "label",
                "invalid label name",
            ),
            (
                json!({"id": ""}),
                ErrorCode::InvalidRequest,
                "id",
                "must not be empty",
            ),
            (
                json!({"id": long}),
                ErrorCode::InvalidRequest,
                "id",
                "at most 200",
            ),
            (
                json!({"model": long}),
                ErrorCode::InvalidRequest,
                "model",
                "at most 200",
            ),
            (
                json!({"error_type": long}),
                ErrorCode::InvalidRequest,
                "error_type",
                "at most 200",
            ),
            (
                json!({"unit_id": "a\u{0}b"}),
                ErrorCode::InvalidRequest,
                "unit_id",
                "control",
            ),
            (
                json!({"experiment": long}),
                ErrorCode::InvalidRequest,
                "experiment",
                "at most 200",
            ),
            (
                json!({"arm": long}),
                ErrorCode::InvalidRequest,
                "arm",
                "at most 200",
            ),
            (
                json!({"provider": long}),
                ErrorCode::InvalidRequest,
                "provider",
                "at most 200",
            ),
            (
                json!({"latency_ms": -1.0}),
                ErrorCode::InvalidRequest,
                "latency_ms",
                "≥ 0",
            ),
            (
                json!({"ttft_ms": -0.5}),
                ErrorCode::InvalidRequest,
                "ttft_ms",
                "≥ 0",
            ),
            (
                json!({"cost": -0.01}),
                ErrorCode::InvalidRequest,
                "cost",
                "≥ 0",
            ),
            (
                json!({"input_tokens": 5, "cached_input_tokens": 6}),
                ErrorCode::InvalidRequest,
                "cached_input_tokens",
                "cannot exceed",
            ),
            (
                json!({"success": true, "error_type": "timeout"}),
                ErrorCode::InvalidRequest,
                "success",
                "implies success: false",
            ),
            (
                json!({"feedback": {"rating": 0}}),
                ErrorCode::InvalidRequest,
                "feedback.rating",
                "1 to 5",
            ),
            (
                json!({"feedback": {"rating": 6}}),
                ErrorCode::InvalidRequest,
                "feedback.rating",
                "1 to 5",
            ),
            (
                json!({"feedback": {"comment": "y".repeat(10_001)}}),
                ErrorCode::InvalidRequest,
                "feedback.comment",
                "at most 10000",
            ),
            (
                json!({"scores": {"": 1.0}}),
                ErrorCode::InvalidRequest,
                "scores",
                "must not be empty",
            ),
            (
                json!({"metadata": [1, 2]}),
                ErrorCode::InvalidRequest,
                "metadata",
                "JSON object",
            ),
            (
                json!({"metadata": {"big": "z".repeat(17_000)}}),
                ErrorCode::InvalidRequest,
                "metadata",
                "bytes encoded",
            ),
            (
                json!({"timestamp": "2025-09-01T12:06:00Z"}),
                ErrorCode::InvalidRequest,
                "timestamp",
                "in the future",
            ),
            (
                json!({"timestamp": "2025-07-01T00:00:00Z"}),
                ErrorCode::InvalidRequest,
                "timestamp",
                "retention horizon",
            ),
        ];
        for (input, code, field, msg) in cases {
            let err = with(&p, input.clone()).unwrap_err();
            assert_eq!(err.index, 7);
            assert_eq!(err.code, code, "{input}: {}", err.message);
            assert_eq!(err.field.as_deref(), Some(field), "{input}");
            assert!(err.message.contains(msg), "{input}: {}", err.message);
        }
        // Non-finite numbers cannot come through JSON; they are checked for callers that
        // build `EventIn` in code.
        let project = ProjectId("p1".into());
        let book = PriceBook::default();
        let ctx = IngestContext {
            project: &project,
            prompts: &p,
            prices: &book,
            now: NOW,
            oldest: None,
        };
        let mut e = EventIn {
            prompt: "support/triage".into(),
            ..Default::default()
        };
        e.latency_ms = Some(f64::NAN);
        assert_eq!(
            validate_event(&ctx, 0, e.clone())
                .unwrap_err()
                .field
                .as_deref(),
            Some("latency_ms")
        );
        e.latency_ms = None;
        e.scores.insert("acc".into(), f64::INFINITY);
        let err = validate_event(&ctx, 0, e.clone()).unwrap_err();
        assert!(err.message.contains("finite"), "{}", err.message);
        e.scores = (0..101).map(|i| (format!("s{i}"), 1.0)).collect();
        assert!(
            validate_event(&ctx, 0, e)
                .unwrap_err()
                .message
                .contains("at most 100")
        );
    }

    #[test]
    fn a_batch_keeps_the_good_and_reports_the_bad() {
        let p = prompts();
        let project = ProjectId("p1".into());
        let book = PriceBook::default();
        let ctx = IngestContext {
            project: &project,
            prompts: &p,
            prices: &book,
            now: NOW,
            oldest: None,
        };
        let ok = EventIn {
            prompt: "support/triage".into(),
            ..Default::default()
        };
        let bad = EventIn {
            prompt: "missing".into(),
            ..Default::default()
        };
        let (good, errors) = validate_batch(&ctx, vec![ok.clone(), bad, ok]);
        assert_eq!(good.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].index, 1);
    }

    #[test]
    fn attach_is_validated() {
        assert!(validate_attach(AttachToEvent::default()).is_err());
        let bad = AttachToEvent {
            feedback: Some(Feedback {
                rating: Some(9),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            validate_attach(bad)
                .unwrap_err()
                .to_string()
                .contains("1 to 5")
        );
        let ok = AttachToEvent {
            scores: [("acc".to_string(), 0.5)].into(),
            ..Default::default()
        };
        assert!(validate_attach(ok).is_ok());
    }
}
