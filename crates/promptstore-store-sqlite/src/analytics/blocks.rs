//! Raw events as encoded blocks (`0005_event_blocks.sql`): how a commit's events are cut
//! into blocks, a block's byte format, and reading a block back — its events, filtered, with
//! the judgements attached since overlaid.
//!
//! A block holds the events of one (project, prompt, experiment, UTC hour), at most
//! `MAX_BLOCK_EVENTS` of them, with ascending ids inside `[id, last_id]` of its row. The
//! body is one format byte and then the events in postcard (a stable, documented compact
//! serde format: varints, length-prefixed strings); the block's own columns (project,
//! prompt, experiment) are not repeated per event. Scores, feedback and metadata are kept
//! as the JSON texts the row layout stored.

use std::collections::HashMap;

use promptstore_core::analytics::model::{AnalyticsFilter, EventRecord, StoredEvent};
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;
use promptstore_types::CostSource;
use serde::{Deserialize, Serialize};

use super::cells::HOUR_MS;
use super::rows::{feedback_text, metadata_text, scores_text};
use crate::codec::{from_json_text, from_ms, to_ms};
use crate::error::corrupt;

/// Events per block at most: a look-up by id decodes one block, so blocks stay small
/// enough for that to take well under a millisecond.
pub(crate) const MAX_BLOCK_EVENTS: usize = 1024;

/// The first byte of every body. A new layout takes the next number and keeps reading this.
const FORMAT: u8 = 1;

/// One event inside a block body, borrowing its strings from the body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Encoded<'a> {
    /// This event's id minus the previous one's (the first: minus the block's id, plus one).
    id_step: u64,
    #[serde(borrow)]
    pub(crate) client_id: Option<&'a str>,
    pub(crate) prompt_id: &'a str,
    pub(crate) version: u32,
    #[serde(borrow)]
    pub(crate) label: Option<&'a str>,
    #[serde(borrow)]
    pub(crate) arm: Option<&'a str>,
    #[serde(borrow)]
    unit_id: Option<&'a str>,
    pub(crate) model: &'a str,
    #[serde(borrow)]
    provider: Option<&'a str>,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cached_input_tokens: u64,
    pub(crate) latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    pub(crate) cost: Option<f64>,
    cost_source: u8,
    pub(crate) success: bool,
    #[serde(borrow)]
    pub(crate) error_type: Option<&'a str>,
    #[serde(borrow)]
    scores: Option<&'a str>,
    #[serde(borrow)]
    feedback: Option<&'a str>,
    #[serde(borrow)]
    metadata: Option<&'a str>,
    pub(crate) at: i64,
}

fn cost_source_code(source: CostSource) -> u8 {
    match source {
        CostSource::Reported => 0,
        CostSource::Computed => 1,
        CostSource::Unpriced => 2,
    }
}

fn cost_source_of(code: u8) -> Result<CostSource, StoreError> {
    match code {
        0 => Ok(CostSource::Reported),
        1 => Ok(CostSource::Computed),
        2 => Ok(CostSource::Unpriced),
        other => Err(corrupt("event block", format!("cost source code {other}"))),
    }
}

/// The key events are grouped into blocks by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey<'a> {
    pub(crate) project: &'a str,
    pub(crate) prompt: &'a str,
    pub(crate) experiment: Option<&'a str>,
    pub(crate) hour: i64,
}

impl<'a> BlockKey<'a> {
    pub(crate) fn of(e: &'a EventRecord) -> BlockKey<'a> {
        BlockKey {
            project: &e.project.0,
            prompt: &e.prompt,
            experiment: e.experiment.as_deref(),
            hour: to_ms(e.at).div_euclid(HOUR_MS),
        }
    }
}

/// A block to insert: its row's columns.
#[derive(Debug)]
pub(crate) struct NewBlock {
    pub(crate) id: i64,
    pub(crate) last_id: i64,
    pub(crate) project: String,
    pub(crate) prompt: String,
    pub(crate) experiment: Option<String>,
    pub(crate) hour: i64,
    pub(crate) min_at: i64,
    pub(crate) max_at: i64,
    pub(crate) events: i64,
    pub(crate) body: Vec<u8>,
}

/// Append one event's encoding to `out`: `id_step` is its id minus the previous event's
/// (the first event's previous is the block's id minus one, so that a block of contiguous
/// ids is all steps of 1 and each event encodes on its own, before ids are handed out).
pub(crate) fn encode_event(
    e: &EventRecord,
    id_step: u64,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let scores = scores_text(&e.scores)?;
    let feedback = feedback_text(e.feedback.as_ref())?;
    let metadata = metadata_text(&e.metadata)?;
    let encoded = Encoded {
        id_step,
        client_id: e.client_id.as_deref(),
        prompt_id: &e.prompt_id,
        version: e.version,
        label: e.label.as_deref(),
        arm: e.arm.as_deref(),
        unit_id: e.unit_id.as_deref(),
        model: &e.model,
        provider: e.provider.as_deref(),
        input_tokens: e.input_tokens,
        output_tokens: e.output_tokens,
        cached_input_tokens: e.cached_input_tokens,
        latency_ms: e.latency_ms,
        ttft_ms: e.ttft_ms,
        cost: e.cost,
        cost_source: cost_source_code(e.cost_source),
        success: e.success,
        error_type: e.error_type.as_deref(),
        scores: scores.as_deref(),
        feedback: feedback.as_deref(),
        metadata: metadata.as_deref(),
        at: to_ms(e.at),
    };
    let taken = std::mem::take(out);
    *out = postcard::to_extend(&encoded, taken)
        .map_err(|e| StoreError::Backend(format!("cannot encode an event: {e}")))?;
    Ok(())
}

/// A block from its events' encodings (`encode_event`, in id order) and the events
/// themselves (for the block's key and time range), with ids `first_id..=last_id`.
pub(crate) fn assemble<'e>(
    events: impl IntoIterator<Item = (&'e EventRecord, &'e [u8])>,
    first_id: i64,
    last_id: i64,
) -> Result<NewBlock, StoreError> {
    let mut parts = events.into_iter().peekable();
    let Some(&(first, _)) = parts.peek() else {
        return Err(StoreError::Backend("an event block cannot be empty".into()));
    };
    let mut span = Span::default();
    let mut count = 0_usize;
    let mut encoded = Vec::new();
    for (e, bytes) in parts {
        span.add(to_ms(e.at));
        count += 1;
        encoded.extend_from_slice(bytes);
    }
    block_of(first, count, span, &encoded, first_id, last_id)
}

/// The times a block's events span, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) min_at: i64,
    pub(crate) max_at: i64,
}

impl Default for Span {
    fn default() -> Self {
        Span {
            min_at: i64::MAX,
            max_at: i64::MIN,
        }
    }
}

impl Span {
    pub(crate) fn add(&mut self, at_ms: i64) {
        self.min_at = self.min_at.min(at_ms);
        self.max_at = self.max_at.max(at_ms);
    }
}

/// The block of `count` events whose encodings are `encoded` (back to back, in id order),
/// keyed like `key_event`, spanning `span`, with ids `first_id..=last_id`.
pub(crate) fn block_of(
    key_event: &EventRecord,
    count: usize,
    span: Span,
    encoded: &[u8],
    first_id: i64,
    last_id: i64,
) -> Result<NewBlock, StoreError> {
    if count == 0 {
        return Err(StoreError::Backend("an event block cannot be empty".into()));
    }
    let key = BlockKey::of(key_event);
    // The format byte, then a postcard sequence: its length, then its elements.
    let mut body = Vec::with_capacity(encoded.len() + 11);
    body.push(FORMAT);
    let mut body = postcard::to_extend(&count, body)
        .map_err(|e| StoreError::Backend(format!("cannot encode an event block: {e}")))?;
    body.extend_from_slice(encoded);
    Ok(NewBlock {
        id: first_id,
        last_id,
        project: key.project.to_owned(),
        prompt: key.prompt.to_owned(),
        experiment: key.experiment.map(str::to_owned),
        hour: key.hour,
        min_at: span.min_at,
        max_at: span.max_at,
        events: count as i64,
        body,
    })
}

/// The block of `events` (ascending ids, one `BlockKey`). Every event is encoded before
/// anything is written, so a failure leaves nothing half-built.
pub(crate) fn encode(events: &[(i64, &EventRecord)]) -> Result<NewBlock, StoreError> {
    let (Some((first_id, _)), Some((last_id, _))) = (events.first(), events.last()) else {
        return Err(StoreError::Backend("an event block cannot be empty".into()));
    };
    let mut bytes = Vec::new();
    let mut ends = Vec::with_capacity(events.len());
    let mut previous = first_id - 1;
    for (id, e) in events {
        encode_event(e, id.abs_diff(previous), &mut bytes)?;
        previous = *id;
        ends.push(bytes.len());
    }
    let starts = std::iter::once(0).chain(ends.iter().copied());
    let parts = events
        .iter()
        .zip(starts.zip(ends.iter().copied()))
        .map(|((_, e), (start, end))| (*e, &bytes[start..end]));
    assemble(parts, *first_id, *last_id)
}

/// The columns `BlockRow` reads, for a query `FROM event_blocks AS b`, as a literal for
/// `concat!`. A block with judgements brings them along as one JSON array of
/// `[id, scores, feedback]`.
macro_rules! block_columns {
    () => {
        "b.id, b.last_id, b.project, b.prompt, b.experiment, b.body, \
         CASE WHEN b.judged THEN (SELECT json_group_array(json_array(j.id, j.scores, \
         j.feedback)) FROM event_judgements AS j WHERE j.id BETWEEN b.id AND b.last_id) END \
         AS judgements"
    };
}
pub(crate) use block_columns;

/// `block_columns!` as a constant.
pub(crate) const BLOCK_COLUMNS: &str = block_columns!();

/// A stored block, as `BLOCK_COLUMNS` reads it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct BlockRow {
    pub(crate) id: i64,
    pub(crate) last_id: i64,
    pub(crate) project: String,
    pub(crate) prompt: String,
    pub(crate) experiment: Option<String>,
    body: Vec<u8>,
    judgements: Option<String>,
}

/// Judgements attached after ingest, by event id: (scores, feedback) as JSON texts.
type Judgements = HashMap<i64, (Option<String>, Option<String>)>;

impl BlockRow {
    fn judgements(&self) -> Result<Judgements, StoreError> {
        let Some(text) = &self.judgements else {
            return Ok(Judgements::new());
        };
        let rows: Vec<(i64, Option<String>, Option<String>)> =
            from_json_text("event judgements", text)?;
        Ok(rows.into_iter().map(|(id, s, f)| (id, (s, f))).collect())
    }

    /// The block's events with their ids, in id order, judgements overlaid.
    pub(crate) fn decode(&self) -> Result<Decoded<'_>, StoreError> {
        let bad = |detail: String| corrupt("event block", format!("block {}: {detail}", self.id));
        let Some((&format, rest)) = self.body.split_first() else {
            return Err(bad("empty body".into()));
        };
        if format != FORMAT {
            return Err(bad(format!(
                "format {format} (this build reads format {FORMAT})"
            )));
        }
        let events: Vec<Encoded<'_>> =
            postcard::from_bytes(rest).map_err(|e| bad(e.to_string()))?;
        let mut ids = Vec::with_capacity(events.len());
        let mut id = self
            .id
            .checked_sub(1)
            .ok_or_else(|| bad("the block id is out of range".into()))?;
        for e in &events {
            if e.id_step == 0 {
                return Err(bad("event ids do not ascend".into()));
            }
            id = i64::try_from(e.id_step)
                .ok()
                .and_then(|step| id.checked_add(step))
                .filter(|&id| id <= self.last_id)
                .ok_or_else(|| bad("an event id lies outside the block's range".into()))?;
            ids.push(id);
        }
        Ok(Decoded {
            block: self,
            events,
            ids,
            judgements: self.judgements()?,
        })
    }
}

/// A decoded block: its events and their ids, side by side.
pub(crate) struct Decoded<'a> {
    block: &'a BlockRow,
    events: Vec<Encoded<'a>>,
    ids: Vec<i64>,
    judgements: Judgements,
}

impl<'a> Decoded<'a> {
    /// (id, event) in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, &Encoded<'a>)> {
        self.ids.iter().copied().zip(&self.events)
    }

    /// The event with `id`, if the block holds it.
    pub(crate) fn find(&self, id: i64) -> Option<&Encoded<'a>> {
        let i = self.ids.binary_search(&id).ok()?;
        self.events.get(i)
    }

    /// The current (scores, feedback) JSON texts of an event of this block.
    fn judgements_of<'s>(
        &'s self,
        id: i64,
        e: &'s Encoded<'a>,
    ) -> (Option<&'s str>, Option<&'s str>) {
        match self.judgements.get(&id) {
            Some((scores, feedback)) => (scores.as_deref(), feedback.as_deref()),
            None => (e.scores, e.feedback),
        }
    }

    /// Whether the event passes the filter's per-event conditions. The block's own columns
    /// (prompt, experiment) are the query's business: `events::block_conditions`.
    pub(crate) fn matches(&self, e: &Encoded<'_>, filter: &AnalyticsFilter) -> bool {
        let absent_or = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(want) => have.unwrap_or("") == want,
        };
        filter.version.is_none_or(|v| v == e.version)
            && absent_or(&filter.label, e.label)
            && filter.model.as_deref().is_none_or(|m| m == e.model)
            && absent_or(&filter.arm, e.arm)
    }

    /// The whole stored event.
    pub(crate) fn stored(&self, id: i64, e: &Encoded<'a>) -> Result<StoredEvent, StoreError> {
        let mut record = empty_record();
        self.fill(&mut record, id, e)?;
        record.client_id = e.client_id.map(str::to_owned);
        record.unit_id = e.unit_id.map(str::to_owned);
        record.provider = e.provider.map(str::to_owned);
        record.prompt_id = e.prompt_id.to_owned();
        record.metadata = match e.metadata {
            Some(text) => from_json_text("event metadata", text)?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        Ok(StoredEvent { id, event: record })
    }

    /// Overwrite `record` with what a rollup of the event needs (dimensions, measures,
    /// judgements, time) — reusing its strings' buffers, so that folding a window
    /// allocates per judgement, not per event. Client id, unit id, provider, prompt id and
    /// metadata are left as they were.
    pub(crate) fn fill(
        &self,
        record: &mut EventRecord,
        id: i64,
        e: &Encoded<'a>,
    ) -> Result<(), StoreError> {
        fn set(to: &mut String, from: &str) {
            to.clear();
            to.push_str(from);
        }
        fn set_option(to: &mut Option<String>, from: Option<&str>) {
            match (to.as_mut(), from) {
                (Some(to), Some(from)) => set(to, from),
                (_, from) => *to = from.map(str::to_owned),
            }
        }
        set(&mut record.project.0, &self.block.project);
        set(&mut record.prompt, &self.block.prompt);
        set_option(&mut record.experiment, self.block.experiment.as_deref());
        record.version = e.version;
        set_option(&mut record.label, e.label);
        set_option(&mut record.arm, e.arm);
        set(&mut record.model, e.model);
        record.input_tokens = e.input_tokens;
        record.output_tokens = e.output_tokens;
        record.cached_input_tokens = e.cached_input_tokens;
        record.latency_ms = e.latency_ms;
        record.ttft_ms = e.ttft_ms;
        record.cost = e.cost;
        record.cost_source = cost_source_of(e.cost_source)?;
        record.success = e.success;
        set_option(&mut record.error_type, e.error_type);
        let (scores, feedback) = self.judgements_of(id, e);
        record.scores = match scores {
            Some(text) => from_json_text("event scores", text)?,
            None => Default::default(),
        };
        record.feedback = feedback
            .map(|text| from_json_text("event feedback", text))
            .transpose()?;
        record.at = from_ms(e.at)?;
        Ok(())
    }
}

/// A record to `fill`.
pub(crate) fn empty_record() -> EventRecord {
    EventRecord {
        project: ProjectId(String::new()),
        client_id: None,
        prompt_id: String::new(),
        prompt: String::new(),
        version: 0,
        label: None,
        experiment: None,
        arm: None,
        unit_id: None,
        model: String::new(),
        provider: None,
        input_tokens: 0,
        output_tokens: 0,
        cached_input_tokens: 0,
        latency_ms: None,
        ttft_ms: None,
        cost: None,
        cost_source: CostSource::Unpriced,
        success: true,
        error_type: None,
        scores: Default::default(),
        feedback: None,
        metadata: serde_json::Value::Null,
        at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use promptstore_types::Feedback;

    use super::*;

    fn event(i: usize) -> EventRecord {
        EventRecord {
            project: ProjectId("p".into()),
            client_id: i.is_multiple_of(2).then(|| format!("c-{i}")),
            prompt_id: "pid".into(),
            prompt: "prompt".into(),
            version: 3,
            label: i.is_multiple_of(3).then(|| "production".into()),
            experiment: Some("exp".into()),
            arm: Some(["a", "b"][i % 2].into()),
            unit_id: Some(format!("u-{i}")),
            model: "m".into(),
            provider: (i % 2 == 1).then(|| "openai".into()),
            input_tokens: u64::MAX - i as u64,
            output_tokens: i as u64,
            cached_input_tokens: 7,
            latency_ms: Some(12.5 + i as f64),
            ttft_ms: i.is_multiple_of(2).then_some(3.25),
            cost: (!i.is_multiple_of(4)).then_some(0.002),
            cost_source: [
                CostSource::Reported,
                CostSource::Computed,
                CostSource::Unpriced,
            ][i % 3],
            success: !i.is_multiple_of(5),
            error_type: i.is_multiple_of(5).then(|| "timeout".into()),
            scores: BTreeMap::from([("accuracy".to_owned(), 0.25 * i as f64)]),
            feedback: i.is_multiple_of(2).then(|| Feedback {
                thumbs_up: Some(true),
                rating: Some(4),
                comment: Some("ok \u{2713}".into()),
            }),
            metadata: if i.is_multiple_of(2) {
                serde_json::json!({"k": [1, 2, {"x": null}]})
            } else {
                serde_json::json!({})
            },
            at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
                + time::Duration::milliseconds(i as i64 * 37),
        }
    }

    fn row(block: &NewBlock) -> BlockRow {
        BlockRow {
            id: block.id,
            last_id: block.last_id,
            project: block.project.clone(),
            prompt: block.prompt.clone(),
            experiment: block.experiment.clone(),
            body: block.body.clone(),
            judgements: None,
        }
    }

    #[test]
    fn a_block_gives_back_every_field_of_every_event() {
        let events: Vec<EventRecord> = (0..20).map(event).collect();
        // Ids with gaps (rows moved from an earlier version) as well as contiguous ones.
        let ids: Vec<i64> = (0..20).map(|k| 100 + k * k).collect();
        let members: Vec<(i64, &EventRecord)> = ids.iter().copied().zip(&events).collect();
        let block = encode(&members).unwrap();
        assert_eq!(
            (block.id, block.last_id, block.events),
            (100, 100 + 19 * 19, 20)
        );
        assert_eq!(block.min_at, to_ms(events[0].at));
        assert_eq!(block.max_at, to_ms(events[19].at));
        assert_eq!(block.experiment.as_deref(), Some("exp"));
        let row = row(&block);
        let decoded = row.decode().unwrap();
        let back: Vec<StoredEvent> = decoded
            .iter()
            .map(|(id, e)| decoded.stored(id, e).unwrap())
            .collect();
        let want: Vec<StoredEvent> = ids
            .iter()
            .zip(&events)
            .map(|(&id, e)| StoredEvent {
                id,
                event: e.clone(),
            })
            .collect();
        assert_eq!(back, want);
        assert!(decoded.find(102).is_none());
        assert_eq!(decoded.find(104).map(|e| e.at), Some(to_ms(events[2].at)));
    }

    #[test]
    fn judgements_attached_later_replace_the_blocks_copy() {
        let events: Vec<EventRecord> = (0..4).map(event).collect();
        let members: Vec<(i64, &EventRecord)> = (1..).zip(&events).collect();
        let mut row = row(&encode(&members).unwrap());
        row.judgements =
            Some(r#"[[2, "{\"late\":1.0}", null], [3, null, "{\"thumbs_up\":false}"]]"#.into());
        let decoded = row.decode().unwrap();
        let got: Vec<StoredEvent> = decoded
            .iter()
            .map(|(id, e)| decoded.stored(id, e).unwrap())
            .collect();
        assert_eq!(got[0].event, events[0]);
        assert_eq!(
            got[1].event.scores,
            BTreeMap::from([("late".to_owned(), 1.0)])
        );
        assert_eq!(got[1].event.feedback, events[1].feedback);
        assert!(got[2].event.scores.is_empty());
        assert_eq!(
            got[2].event.feedback,
            Some(Feedback {
                thumbs_up: Some(false),
                rating: None,
                comment: None
            })
        );
        // `fill` (what windows fold) sees the same judgements.
        let mut record = empty_record();
        let (id, e) = decoded.iter().nth(2).unwrap();
        decoded.fill(&mut record, id, e).unwrap();
        assert_eq!(record.feedback, got[2].event.feedback);
    }

    /// A damaged block is an error naming the block, never a panic or a wrong event.
    #[test]
    fn damaged_blocks_are_errors() {
        let events: Vec<EventRecord> = (0..5).map(event).collect();
        let members: Vec<(i64, &EventRecord)> = (10..).zip(&events).collect();
        let good = row(&encode(&members).unwrap());
        let damaged = |f: &dyn Fn(&mut BlockRow)| {
            let mut r = row(&encode(&members).unwrap());
            f(&mut r);
            r
        };
        let cases: Vec<(BlockRow, &str)> = vec![
            (damaged(&|r| r.body.clear()), "empty body"),
            (damaged(&|r| r.body[0] = 9), "format 9"),
            (
                damaged(&|r| r.body.truncate(good.body.len() / 2)),
                "block 10",
            ),
            (damaged(&|r| r.last_id = 12), "outside the block's range"),
            (
                damaged(&|r| r.judgements = Some("[[11, 5".into())),
                "judgements",
            ),
        ];
        for (row, want) in cases {
            match row.decode() {
                Err(StoreError::Backend(message)) => {
                    assert!(message.contains(want), "{message} lacks {want}")
                }
                Err(other) => panic!("{want}: {other:?}"),
                Ok(_) => panic!("{want}: decoded"),
            }
        }
        // Every truncation of a body fails cleanly.
        for len in 0..good.body.len() {
            let mut r = row(&encode(&members).unwrap());
            r.body.truncate(len);
            assert!(r.decode().is_err(), "truncated to {len}");
        }
        assert!(encode(&[]).is_err());
    }

    #[test]
    fn events_group_by_project_prompt_experiment_and_utc_hour() {
        let a = event(0);
        let mut b = event(1);
        assert_eq!(BlockKey::of(&a), BlockKey::of(&b));
        b.at = a.at + time::Duration::hours(1);
        assert_ne!(BlockKey::of(&a), BlockKey::of(&b));
        let mut c = event(2);
        c.experiment = None;
        assert_ne!(BlockKey::of(&a), BlockKey::of(&c));
        // Before 1970 the hour still contains the event (floor, not truncation).
        let mut d = event(3);
        d.at = time::OffsetDateTime::from_unix_timestamp(-1).unwrap();
        assert_eq!(BlockKey::of(&d).hour, -1);
    }
}
