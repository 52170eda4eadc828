//! Putting a group commit together while its batches arrive.
//!
//! Each request prepares its own batch (`prepare`: each event's fate within the batch, and
//! its encoding in a block). The writer adds the prepared batches to an open commit
//! (`PendingCommit`) one by one as they arrive, and each addition groups the batch's new
//! events into their blocks and folds them into their hour cells. So by the time the last
//! batch is in, most of a commit's computation is done, in the gaps while the others were
//! still on their way; what is left (`Planner::finish`) is cutting the groups into block
//! rows and deriving the day cells.
//!
//! The plan assumes that none of the commit's client ids is stored yet. The commit checks
//! that as it inserts them (a stored one is refused). Only when one is stored, a client id
//! repeats one of an earlier batch, or a batch came unprepared, is the commit planned again
//! as one batch, knowing the stored ids (`plan_whole`).

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::LazyLock;

use hashbrown::HashTable;
use promptstore_core::analytics::model::{EventRecord, Granularity};
use promptstore_core::analytics::rollup::Rollup;
use promptstore_core::analytics::store::{OpenCommit, PreparedBatch};
use promptstore_core::store::StoreError;

use super::blocks::{self, BlockKey, MAX_BLOCK_EVENTS, NewBlock, Span};
use super::cells::{ProjectCell, bucket_of, cell_key};
use crate::codec::to_ms;

/// One hasher for every key a commit groups by, seeded once per process: the keys come
/// from clients, so the seed must not be predictable.
static HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);

fn hash_of(key: impl Hash) -> u64 {
    HASHER.hash_one(key)
}

/// What becomes of one event of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fate {
    /// Its client id is stored already, as this event.
    Stored(i64),
    /// Its client id came earlier in the batch (or commit), at this index.
    SameAs(usize),
    New,
}

/// The stored events of a commit's client ids: project → client id → event id.
#[derive(Debug, Default)]
pub(crate) struct StoredIds(pub(crate) foldhash::HashMap<String, foldhash::HashMap<String, i64>>);

impl StoredIds {
    fn get(&self, project: &str, client_id: &str) -> Option<i64> {
        self.0.get(project)?.get(client_id).copied()
    }
}

/// The work on one batch that needs no database (`AnalyticsStore::prepare`): each event's
/// fate given the stored client ids it was planned with, and the encoding of each new
/// event in a block (`blocks::encode_event`). Requests compute it for their own batch, in
/// parallel, before handing it to the one writer.
pub(crate) struct Prepared {
    fates: Vec<Fate>,
    /// The new events' encodings, back to back; `ends[i]` is where event `i`'s ends (an
    /// event that is not new takes no bytes).
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Prepared {
    /// Prepare `events` given the client ids already stored: a client id seen before
    /// (stored, or earlier in this batch) is a duplicate of that event.
    fn new(events: &[EventRecord], stored: &StoredIds) -> Result<Prepared, StoreError> {
        // The keys borrow from the batch, so this allocates nothing per event.
        let mut fates = Vec::with_capacity(events.len());
        let mut seen: foldhash::HashMap<(&str, &str), usize> = foldhash::HashMap::default();
        seen.reserve(events.len());
        for (i, event) in events.iter().enumerate() {
            if let Some(client_id) = &event.client_id {
                let project = event.project.0.as_str();
                if let Some(id) = stored.get(project, client_id) {
                    fates.push(Fate::Stored(id));
                    continue;
                }
                if let Some(&first) = seen.get(&(project, client_id.as_str())) {
                    fates.push(Fate::SameAs(first));
                    continue;
                }
                seen.insert((project, client_id), i);
            }
            fates.push(Fate::New);
        }
        let mut bytes = Vec::with_capacity(events.len() * 160);
        let mut ends = Vec::with_capacity(events.len());
        for (fate, e) in fates.iter().zip(events) {
            if matches!(fate, Fate::New) {
                // Contiguous ids inside a block: every step is 1.
                blocks::encode_event(e, 1, &mut bytes)?;
            }
            ends.push(bytes.len());
        }
        Ok(Prepared { fates, bytes, ends })
    }

    /// The encoding of event `i` (empty when it is not new).
    fn encoded(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// The prepared work of a batch that needs no database, for `AnalyticsStore::prepare`.
/// A batch that cannot be prepared (an event that does not encode) goes to the writer as
/// it is, which then fails it with the reason.
pub(crate) fn prepare(events: Vec<EventRecord>) -> PreparedBatch {
    match Prepared::new(&events, &StoredIds::default()) {
        Ok(work) => PreparedBatch {
            events,
            work: Some(Box::new(work)),
        },
        Err(_) => PreparedBatch::plain(events),
    }
}

/// A batch of an open commit: its events, and its prepared work when it has some that
/// fits it.
pub(crate) struct Batch {
    pub(crate) events: Vec<EventRecord>,
    prepared: Option<Prepared>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("events", &self.events.len())
            .field("prepared", &self.prepared.is_some())
            .finish()
    }
}

impl Batch {
    fn from_prepared(batch: PreparedBatch) -> Batch {
        let prepared = batch
            .work
            .and_then(|work| work.downcast::<Prepared>().ok())
            .map(|work| *work)
            .filter(|work| work.fates.len() == batch.events.len());
        Batch {
            events: batch.events,
            prepared,
        }
    }
}

/// The SQLite store's open commit (`AnalyticsStore::open_commit`).
#[derive(Default)]
pub(crate) struct PendingCommit {
    pub(crate) batches: Vec<Batch>,
    pub(crate) planner: Planner,
}

impl OpenCommit for PendingCommit {
    fn add(&mut self, batch: PreparedBatch) {
        self.batches.push(Batch::from_prepared(batch));
        self.planner.add(&self.batches);
    }

    fn events(&self) -> usize {
        self.batches.iter().map(|b| b.events.len()).sum()
    }

    fn into_batches(self: Box<Self>) -> Vec<PreparedBatch> {
        self.batches
            .into_iter()
            .map(|b| PreparedBatch {
                events: b.events,
                work: b
                    .prepared
                    .map(|work| Box::new(work) as Box<dyn Any + Send + Sync>),
            })
            .collect()
    }
}

/// Where an event of an open commit is: its batch, and its index in the batch.
#[derive(Debug, Clone, Copy)]
struct Loc {
    batch: u32,
    index: u32,
}

impl Loc {
    fn event(self, batches: &[Batch]) -> &EventRecord {
        &batches[self.batch as usize].events[self.index as usize]
    }
}

/// The events of one block-to-be, in commit order: encoded back to back as they were added.
struct Group {
    /// The first event: the group's `BlockKey` is its.
    first: Loc,
    /// Commit indices of the members.
    members: Vec<usize>,
    bytes: Vec<u8>,
    /// `ends[k]`: where member `k`'s encoding ends in `bytes`.
    ends: Vec<usize>,
    /// The time span of each run of `MAX_BLOCK_EVENTS` members: each run is one block.
    spans: Vec<Span>,
}

/// An hour cell being folded: the key is its first event's, at `bucket`.
struct HourCell {
    first: Loc,
    bucket: i64,
    rollup: Rollup,
}

/// A cell named by borrowed parts of an event: folding allocates per cell, not per event.
/// (project, bucket, prompt id, prompt, version, label, model, experiment, arm).
type CellRef<'a> = (
    &'a str,
    i64,
    &'a str,
    &'a str,
    u32,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

fn cell_ref(e: &EventRecord, bucket: i64) -> CellRef<'_> {
    (
        &e.project.0,
        bucket,
        &e.prompt_id,
        &e.prompt,
        e.version,
        e.label.as_deref().unwrap_or(""),
        &e.model,
        e.experiment.as_deref().unwrap_or(""),
        e.arm.as_deref().unwrap_or(""),
    )
}

/// The cell of `granularity` that event `e` counts in, owned.
fn project_cell(granularity: Granularity, e: &EventRecord) -> ProjectCell {
    (e.project.0.clone(), cell_key(granularity, e))
}

/// The incremental plan of an open commit. The hash tables hold indices and the hash of
/// each entry's key; keys are compared against the events themselves, so nothing is
/// copied per event.
#[derive(Default)]
pub(crate) struct Planner {
    /// The fate of every event added, by commit index.
    fates: Vec<Fate>,
    /// Client ids of the new events added, to find one that repeats an earlier batch's.
    client_ids: HashTable<(u64, Loc)>,
    /// (hash of the block key, index in `groups`).
    group_index: HashTable<(u64, usize)>,
    groups: Vec<Group>,
    /// (hash of the cell key, index in `cells`).
    cell_index: HashTable<(u64, usize)>,
    cells: Vec<HourCell>,
    /// A batch came unprepared, or repeated a client id of an earlier batch: the commit
    /// is planned whole instead (`plan_whole`), and nothing more is done here.
    given_up: bool,
}

impl Planner {
    /// Plan the last batch of `batches` (just added).
    fn add(&mut self, batches: &[Batch]) {
        let Some(b) = batches.len().checked_sub(1) else {
            return;
        };
        let batch = &batches[b];
        let Some(prepared) = batch.prepared.as_ref().filter(|_| !self.given_up) else {
            self.given_up = true;
            return;
        };
        let offset = self.fates.len();
        self.fates.reserve(batch.events.len());
        for (i, (e, fate)) in batch.events.iter().zip(&prepared.fates).enumerate() {
            let fate = match *fate {
                Fate::SameAs(j) => Fate::SameAs(offset + j),
                other => other,
            };
            self.fates.push(fate);
            if !matches!(fate, Fate::New) {
                continue;
            }
            let here = Loc {
                batch: b as u32,
                index: i as u32,
            };
            if let Some(client_id) = &e.client_id
                && self.repeats(batches, here, &e.project.0, client_id)
            {
                self.given_up = true;
                return;
            }
            let at = to_ms(e.at);
            self.group(batches, here, e, at, offset + i, prepared.encoded(i));
            self.fold(batches, here, e, at);
        }
    }

    /// Whether a new event's client id is one of an earlier batch's new events (one
    /// earlier in its own batch is a duplicate already, not new); records it otherwise.
    fn repeats(&mut self, batches: &[Batch], here: Loc, project: &str, client_id: &str) -> bool {
        let hash = hash_of((project, client_id));
        let same = |&(h, loc): &(u64, Loc)| {
            let other = loc.event(batches);
            h == hash && other.project.0 == project && other.client_id.as_deref() == Some(client_id)
        };
        if self.client_ids.find(hash, same).is_some() {
            return true;
        }
        self.client_ids
            .insert_unique(hash, (hash, here), |&(h, _)| h);
        false
    }

    /// Append a new event to its block's group.
    fn group(
        &mut self,
        batches: &[Batch],
        here: Loc,
        e: &EventRecord,
        at: i64,
        commit_index: usize,
        encoded: &[u8],
    ) {
        let key = BlockKey::of(e);
        let hash = hash_of(&key);
        let groups = &self.groups;
        let same = |&(h, g): &(u64, usize)| {
            h == hash && BlockKey::of(groups[g].first.event(batches)) == key
        };
        let g = match self.group_index.find(hash, same) {
            Some(&(_, g)) => g,
            None => {
                let g = self.groups.len();
                self.groups.push(Group {
                    first: here,
                    members: Vec::new(),
                    bytes: Vec::new(),
                    ends: Vec::new(),
                    spans: Vec::new(),
                });
                self.group_index.insert_unique(hash, (hash, g), |&(h, _)| h);
                g
            }
        };
        let group = &mut self.groups[g];
        if group.members.len().is_multiple_of(MAX_BLOCK_EVENTS) {
            group.spans.push(Span::default());
        }
        if let Some(span) = group.spans.last_mut() {
            span.add(at);
        }
        group.members.push(commit_index);
        group.bytes.extend_from_slice(encoded);
        group.ends.push(group.bytes.len());
    }

    /// Fold a new event into its hour cell.
    fn fold(&mut self, batches: &[Batch], here: Loc, e: &EventRecord, at: i64) {
        let bucket = bucket_of(Granularity::Hour, at);
        let key = cell_ref(e, bucket);
        let hash = hash_of(key);
        let cells = &self.cells;
        let same = |&(h, c): &(u64, usize)| {
            let cell = &cells[c];
            h == hash && cell.bucket == bucket && cell_ref(cell.first.event(batches), bucket) == key
        };
        let c = match self.cell_index.find(hash, same) {
            Some(&(_, c)) => c,
            None => {
                let c = self.cells.len();
                self.cells.push(HourCell {
                    first: here,
                    bucket,
                    rollup: Rollup::default(),
                });
                self.cell_index.insert_unique(hash, (hash, c), |&(h, _)| h);
                c
            }
        };
        self.cells[c].rollup.add(e);
    }

    /// Whether the commit must be planned whole (`plan_whole`) instead.
    pub(crate) fn given_up(&self) -> bool {
        self.given_up
    }

    /// The fate of every event added, by commit index.
    pub(crate) fn fates(&self) -> &[Fate] {
        &self.fates
    }

    /// The id of every event added (0 for one that is not new), handed out from
    /// `first_id` group by group — the order `finish` cuts blocks in, so that each block's
    /// ids are one range — and the next free id.
    pub(crate) fn ids(&self, first_id: i64) -> (Vec<i64>, i64) {
        let mut ids = vec![0_i64; self.fates.len()];
        let mut next = first_id;
        for group in &self.groups {
            for &i in &group.members {
                ids[i] = next;
                next += 1;
            }
        }
        (ids, next)
    }

    /// The commit's plan, its blocks numbered from `first_id` as `ids` numbers their events.
    /// An error if the planner gave up (`given_up`).
    pub(crate) fn finish(self, batches: &[Batch], first_id: i64) -> Result<Plan, StoreError> {
        if self.given_up {
            return Err(StoreError::Backend(
                "a commit the planner gave up on cannot be finished".into(),
            ));
        }
        let mut new_blocks = Vec::with_capacity(self.groups.len());
        let mut next_id = first_id;
        for group in &self.groups {
            let first = group.first.event(batches);
            let mut start = 0;
            for (chunk, span) in group.members.chunks(MAX_BLOCK_EVENTS).zip(&group.spans) {
                let end = group.ends[start + chunk.len() - 1];
                let from = if start == 0 { 0 } else { group.ends[start - 1] };
                let count = chunk.len() as i64;
                new_blocks.push(blocks::block_of(
                    first,
                    chunk.len(),
                    *span,
                    &group.bytes[from..end],
                    next_id,
                    next_id + count - 1,
                )?);
                next_id += count;
                start += chunk.len();
            }
        }
        // Each day cell is the merge of the commit's hour cells inside it (a merge is exact
        // for counts and sketches; sums differ only in the order floats are added), so the
        // per-event work is done once, not once per granularity.
        // Each cell's first event names it: the day it lies in is its hour's.
        let mut days: foldhash::HashMap<CellRef<'_>, (&EventRecord, Rollup)> =
            foldhash::HashMap::default();
        for cell in &self.cells {
            let first = cell.first.event(batches);
            let day = bucket_of(Granularity::Day, to_ms(first.at));
            days.entry(cell_ref(first, day))
                .or_insert_with(|| (first, Rollup::default()))
                .1
                .merge(&cell.rollup);
        }
        let days = days
            .into_values()
            .map(|(first, rollup)| (project_cell(Granularity::Day, first), rollup))
            .collect();
        let hours = self
            .cells
            .into_iter()
            .map(|cell| {
                let first = cell.first.event(batches);
                (project_cell(Granularity::Hour, first), cell.rollup)
            })
            .collect();
        Ok(Plan {
            fates: self.fates,
            blocks: new_blocks,
            hours,
            days,
        })
    }
}

/// What a commit writes: each event's fate, the new events' blocks and their contribution
/// to the hour and day cells.
pub(crate) struct Plan {
    pub(crate) fates: Vec<Fate>,
    pub(crate) blocks: Vec<NewBlock>,
    pub(crate) hours: HashMap<ProjectCell, Rollup>,
    pub(crate) days: HashMap<ProjectCell, Rollup>,
}

/// Plan the commit of `events` as one batch, given the stored client ids: its batch, the
/// ids of its events from `first_id` (`Planner::ids`), the next free id, and the plan.
pub(crate) fn plan_whole(
    events: Vec<EventRecord>,
    stored: &StoredIds,
    first_id: i64,
) -> Result<(Vec<Batch>, Vec<i64>, i64, Plan), StoreError> {
    let prepared = Prepared::new(&events, stored)?;
    let batches = vec![Batch {
        events,
        prepared: Some(prepared),
    }];
    let mut planner = Planner::default();
    planner.add(&batches);
    let (ids, next_id) = planner.ids(first_id);
    let plan = planner.finish(&batches, first_id)?;
    Ok((batches, ids, next_id, plan))
}

#[cfg(test)]
mod tests {
    use promptstore_core::analytics::testutil;

    use super::*;

    /// Event `i`: one of two prompts, times spread over two UTC hours, every event with a
    /// client id of its own.
    fn event(i: usize) -> EventRecord {
        // 1,699,999,200 is the start of a UTC hour; events run 37 s apart from 55 min in.
        let mut e = testutil::event(1_699_999_200 + 3_300 + (i as i64 * 37) % 600);
        e.client_id = Some(format!("c-{i}"));
        if i.is_multiple_of(7) {
            e.prompt = "b".into();
            e.prompt_id = "id-b".into();
        }
        e.version = 1 + (i % 3) as u32;
        e.latency_ms = Some(10.0 + i as f64);
        e
    }

    fn open(batches: &[std::ops::Range<usize>]) -> PendingCommit {
        let mut commit = PendingCommit::default();
        for range in batches {
            commit.add(prepare(range.clone().map(event).collect()));
        }
        commit
    }

    /// A commit planned batch by batch as its batches arrive is the commit planned whole:
    /// the same ids, the same block rows (cut at `MAX_BLOCK_EVENTS`, each one id range) and
    /// the same cells.
    #[test]
    fn planning_batch_by_batch_equals_planning_whole() {
        let n = 3_000;
        let commit = open(&[0..900, 900..1_800, 1_800..n]);
        assert_eq!(commit.events(), n);
        let (ids, next) = commit.planner.ids(10);
        let plan = commit.planner.finish(&commit.batches, 10).unwrap();

        let all: Vec<EventRecord> = (0..n).map(event).collect();
        let (_, whole_ids, whole_next, whole) =
            plan_whole(all.clone(), &StoredIds::default(), 10).unwrap();
        assert_eq!(ids, whole_ids);
        assert_eq!(next, whole_next);
        assert_eq!(next, 10 + n as i64);

        // Each block is what the reference encoder makes of its events and ids.
        let mut covered = 0;
        for (block, other) in plan.blocks.iter().zip(&whole.blocks) {
            let members: Vec<(i64, &EventRecord)> = all
                .iter()
                .zip(&ids)
                .filter(|(_, id)| (block.id..=block.last_id).contains(*id))
                .map(|(e, id)| (*id, e))
                .collect();
            assert!(members.len() <= MAX_BLOCK_EVENTS);
            assert_eq!(members.len() as i64, block.last_id - block.id + 1);
            let reference = blocks::encode(&members).unwrap();
            assert_eq!(block.body, reference.body);
            assert_eq!(
                (block.min_at, block.max_at),
                (reference.min_at, reference.max_at)
            );
            assert_eq!(
                (block.prompt.as_str(), block.hour),
                (reference.prompt.as_str(), reference.hour)
            );
            assert_eq!(block.body, other.body);
            covered += members.len();
        }
        assert_eq!(plan.blocks.len(), whole.blocks.len());
        assert_eq!(covered, n);
        // Prompt "a" in its second hour holds more than one block's worth.
        assert!(plan.blocks.len() > 4, "{}", plan.blocks.len());

        assert_eq!(plan.hours.len(), whole.hours.len());
        for (key, rollup) in &plan.hours {
            testutil::assert_rollups_close(rollup, &whole.hours[key]);
        }
        for (key, rollup) in &plan.days {
            testutil::assert_rollups_close(rollup, &whole.days[key]);
        }
        let counted: u64 = plan.hours.values().map(|r| r.count).sum();
        assert_eq!(counted, n as u64);
    }

    /// A client id that repeats one of an earlier batch, or a batch that came unprepared,
    /// makes the planner give up: the commit is then planned whole.
    #[test]
    fn a_repeat_across_batches_or_an_unprepared_batch_gives_up() {
        let commit = open(&[0..10, 10..20]);
        assert!(!commit.planner.given_up());

        let repeat = open(&[0..10, 5..6]);
        assert!(repeat.planner.given_up());
        assert!(repeat.planner.finish(&repeat.batches, 1).is_err());

        let mut unprepared = PendingCommit::default();
        unprepared.add(prepare((0..10).map(event).collect()));
        unprepared.add(PreparedBatch::plain((10..20).map(event).collect()));
        assert!(unprepared.planner.given_up());
        assert_eq!(unprepared.events(), 20);
        // The batches come back whole, for a plan of them all.
        let batches = Box::new(unprepared).into_batches();
        assert_eq!(batches.iter().map(|b| b.events.len()).sum::<usize>(), 20);

        // A repeat inside one batch is a duplicate of its first event, not a reason to
        // give up.
        let mut within = PendingCommit::default();
        within.add(prepare(vec![event(1), event(2), event(1)]));
        assert!(!within.planner.given_up());
        assert!(matches!(within.planner.fates()[2], Fate::SameAs(0)));
    }
}
