//! Generated usage events for the analytics and A/B benchmarks: what an application
//! reports after each generation (prompt, version, label, model, tokens, latency, cost
//! inputs, success or error, a score, sometimes feedback, a little metadata), reproducible
//! from a seed so that the HTTP run and the raw-SQLite baseline store the same rows.
//!
//! Batch `k` of a run is a pure function of `k`: the load driver's clients take batch
//! numbers from one counter, so every event is generated exactly once, in any interleaving.

use std::collections::BTreeMap;

use promptstore_types::{EventIn, Feedback};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::workload;

/// SplitMix64: a small, seeded generator (reproducible data without a dependency).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n` ≥ 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Models the events name: all in the shipped price table, so costs are computed at ingest.
pub const MODELS: [&str; 3] = ["gpt-4o-mini", "gpt-4.1-mini", "claude-3-5-haiku-latest"];
/// Labels the events name (the seeded prompts have both).
pub const LABELS: [&str; 2] = ["production", "latest"];
const ERROR_TYPES: [&str; 3] = ["timeout", "rate_limit", "invalid_output"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];

/// An experiment the events are attributed to: every event is of its prompt and label and
/// names one of its arms (chosen uniformly, as equal weights assign them).
#[derive(Debug, Clone)]
pub struct ExperimentArms {
    pub id: String,
    pub prompt: String,
    pub label: String,
    /// (arm name, version), the control first.
    pub arms: Vec<(String, u32)>,
}

/// When the events of a batch happened.
#[derive(Debug, Clone, Copy)]
pub enum Spread {
    /// Live traffic: each event up to `window` before the moment the batch is generated.
    Live { window: Duration },
    /// History in arrival order: batch `k` of `batches` covers the `k`-th equal slice of
    /// `[start, end)`, so a seeding run walks forward through time as real traffic did.
    Chronological {
        start: OffsetDateTime,
        end: OffsetDateTime,
        batches: u64,
    },
}

/// The events of a run.
#[derive(Debug, Clone)]
pub struct EventGen {
    /// Prompts `bench/chat-00001..=prompts` (seeded with `versions` versions each).
    pub prompts: usize,
    pub versions: u32,
    pub batch_size: usize,
    pub spread: Spread,
    /// When set, every event belongs to this experiment instead.
    pub experiment: Option<ExperimentArms>,
    /// Distinguishes the client ids of separate runs on one database.
    pub run_tag: String,
}

impl EventGen {
    /// The events of batch `k`, generated at `now` (used by `Spread::Live`).
    pub fn batch(&self, k: u64, now: OffsetDateTime) -> Vec<EventIn> {
        let mut rng = Rng::new(k.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
        (0..self.batch_size)
            .map(|i| self.event(&mut rng, k, i, now))
            .collect()
    }

    /// Batch `k` as the JSON array `POST /api/v1/events` takes.
    pub fn body(&self, k: u64, now: OffsetDateTime) -> anyhow::Result<Vec<u8>> {
        Ok(serde_json::to_vec(&self.batch(k, now))?)
    }

    fn at(&self, rng: &mut Rng, k: u64, i: usize, now: OffsetDateTime) -> OffsetDateTime {
        match self.spread {
            Spread::Live { window } => {
                let back = window.whole_milliseconds() as f64 * rng.unit();
                now - Duration::milliseconds(back as i64)
            }
            Spread::Chronological {
                start,
                end,
                batches,
            } => {
                let span = (end - start).whole_milliseconds() as f64;
                let slice = span / batches.max(1) as f64;
                // Events of a batch in order inside its slice.
                let offset =
                    slice * (k as f64 + (i as f64 + rng.unit()) / self.batch_size.max(1) as f64);
                start + Duration::milliseconds(offset.min(span) as i64)
            }
        }
    }

    fn event(&self, rng: &mut Rng, k: u64, i: usize, now: OffsetDateTime) -> EventIn {
        let at = self.at(rng, k, i, now);
        let (prompt, version, label, experiment, arm) = match &self.experiment {
            Some(x) => {
                let (name, version) = &x.arms[rng.below(x.arms.len() as u64) as usize];
                (
                    x.prompt.clone(),
                    *version,
                    x.label.clone(),
                    Some(x.id.clone()),
                    Some(name.clone()),
                )
            }
            None => (
                workload::prompt_name(1 + rng.below(self.prompts as u64) as usize),
                1 + rng.below(u64::from(self.versions)) as u32,
                LABELS[rng.below(LABELS.len() as u64) as usize].to_owned(),
                None,
                None,
            ),
        };
        let model = MODELS[rng.below(MODELS.len() as u64) as usize];
        let input_tokens = 400 + rng.below(1600);
        let cached_input_tokens = if rng.below(3) == 0 {
            input_tokens / 2
        } else {
            0
        };
        let output_tokens = 40 + rng.below(600);
        // Latency grows with the output, with a long tail.
        let latency_ms = 150.0 + output_tokens as f64 * 1.8 * (0.5 + rng.unit()).powi(2);
        let error_type = (rng.below(100) < 3)
            .then(|| ERROR_TYPES[rng.below(ERROR_TYPES.len() as u64) as usize].to_owned());
        let mut scores = BTreeMap::new();
        if rng.below(2) == 0 {
            scores.insert(
                "helpfulness".to_owned(),
                (rng.unit() * 100.0).round() / 100.0,
            );
        }
        let feedback = (rng.below(10) == 0).then(|| Feedback {
            thumbs_up: Some(rng.below(5) != 0),
            rating: None,
            comment: None,
        });
        EventIn {
            id: Some(format!("{}-{k:08x}-{i:04x}", self.run_tag)),
            prompt,
            version: Some(version),
            label: Some(label),
            experiment,
            arm,
            unit_id: Some(format!("user-{}", rng.below(50_000))),
            model: Some(model.to_owned()),
            provider: Some(
                if model.starts_with("claude") {
                    "anthropic"
                } else {
                    "openai"
                }
                .to_owned(),
            ),
            input_tokens: Some(input_tokens),
            output_tokens: Some(output_tokens),
            cached_input_tokens: Some(cached_input_tokens),
            latency_ms: Some((latency_ms * 10.0).round() / 10.0),
            ttft_ms: Some((latency_ms * 0.3 * 10.0).round() / 10.0),
            cost: None,
            success: Some(error_type.is_none()),
            error_type,
            scores,
            feedback,
            metadata: Some(json!({
                "env": "prod",
                "region": REGIONS[rng.below(REGIONS.len() as u64) as usize],
            })),
            timestamp: Some(at),
        }
    }
}

/// The shape of the client event ids of a run. The product deduplicates on them through a
/// unique index, so their order decides where each new entry lands in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIds {
    /// `<run>-<batch>-<index>`, as `EventGen` makes them: each batch's ids sort after the
    /// previous batch's, so new index entries append.
    Sequential,
    /// Random UUIDs (version 4), what many SDKs send: each new entry lands at a random
    /// place in the index.
    UuidV4,
    /// Time-ordered UUIDs (version 7): new entries land near the end of the index.
    UuidV7,
}

impl ClientIds {
    /// The `--client-ids` flag of a benchmark program; sequential when absent.
    pub fn from_flags(flags: &crate::args::Flags) -> anyhow::Result<ClientIds> {
        match flags.optional("client-ids") {
            Some(text) => ClientIds::parse(&text),
            None => Ok(ClientIds::Sequential),
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<ClientIds> {
        match text {
            "sequential" => Ok(ClientIds::Sequential),
            "uuid-v4" => Ok(ClientIds::UuidV4),
            "uuid-v7" => Ok(ClientIds::UuidV7),
            other => anyhow::bail!(
                "unknown client id shape '{other}': use sequential, uuid-v4 or uuid-v7"
            ),
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            ClientIds::Sequential => "sequential",
            ClientIds::UuidV4 => "uuid-v4",
            ClientIds::UuidV7 => "uuid-v7",
        }
    }

    /// Give every event of `events` an id of this shape (`Sequential` keeps the generator's).
    pub fn apply(self, events: &mut [EventIn]) {
        let fresh = match self {
            ClientIds::Sequential => return,
            ClientIds::UuidV4 => uuid::Uuid::new_v4,
            ClientIds::UuidV7 => uuid::Uuid::now_v7,
        };
        for event in events {
            event.id = Some(fresh().to_string());
        }
    }
}

/// Request bodies for a timed ingestion run, made without generating or serialising events
/// inside the timed window: a pool of generated events is serialised once (without client id
/// and timestamp), and each body splices a fresh client id (`<run>-<batch>-<index>`, unique
/// per event as `EventGen::batch` makes them) and a timestamp in the window before the send
/// into those bytes. So the load generator costs a copy and a timestamp per event, and the
/// server is what the run measures. Only for `Spread::Live`.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    run_tag: String,
    window_ms: f64,
    batch_size: usize,
    /// Each pooled event's JSON object without its opening brace, id and timestamp.
    tails: Vec<Vec<u8>>,
    client_ids: ClientIds,
}

impl BodyTemplate {
    /// Serialise `pool_batches` batches of `generator` as the pool.
    pub fn new(generator: &EventGen, pool_batches: u64) -> anyhow::Result<BodyTemplate> {
        let Spread::Live { window } = generator.spread else {
            anyhow::bail!("pre-encoded bodies are for live traffic (Spread::Live) only");
        };
        let now = OffsetDateTime::now_utc();
        let mut tails = Vec::new();
        for k in 0..pool_batches.max(1) {
            for mut event in generator.batch(k, now) {
                event.id = None;
                event.timestamp = None;
                let json = serde_json::to_vec(&event)?;
                // `{"prompt":…}` → `"prompt":…}`: the id and timestamp go in front.
                let tail = json
                    .strip_prefix(b"{")
                    .filter(|t| t.len() > 1)
                    .ok_or_else(|| anyhow::anyhow!("an event serialised to an empty object"))?;
                tails.push(tail.to_vec());
            }
        }
        Ok(BodyTemplate {
            run_tag: generator.run_tag.clone(),
            window_ms: window.whole_milliseconds() as f64,
            batch_size: generator.batch_size,
            tails,
            client_ids: ClientIds::Sequential,
        })
    }

    /// Give the events ids of this shape instead of `<run>-<batch>-<index>` (a UUID costs
    /// the driver ~0.1 µs per event).
    pub fn with_client_ids(mut self, client_ids: ClientIds) -> BodyTemplate {
        self.client_ids = client_ids;
        self
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batch `k` as the JSON array `POST /api/v1/events` takes, its timestamps up to the
    /// window before `now`.
    pub fn body(&self, k: u64, now: OffsetDateTime) -> anyhow::Result<Vec<u8>> {
        use std::io::Write as _;
        let mut rng = Rng::new(k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB0D1);
        let mut body = Vec::with_capacity(self.batch_size * 640 + 2);
        body.push(b'[');
        for i in 0..self.batch_size {
            if i > 0 {
                body.push(b',');
            }
            let back = Duration::milliseconds((self.window_ms * rng.unit()) as i64);
            let at = (now - back).format(&time::format_description::well_known::Rfc3339)?;
            match self.client_ids {
                ClientIds::Sequential => {
                    write!(body, "{{\"id\":\"{}-{k:08x}-{i:04x}\"", self.run_tag)?
                }
                ClientIds::UuidV4 => write!(body, "{{\"id\":\"{}\"", uuid::Uuid::new_v4())?,
                ClientIds::UuidV7 => write!(body, "{{\"id\":\"{}\"", uuid::Uuid::now_v7())?,
            }
            write!(body, ",\"timestamp\":\"{at}\",")?;
            let slot =
                (k as usize).wrapping_mul(self.batch_size).wrapping_add(i) % self.tails.len();
            body.extend_from_slice(&self.tails[slot]);
        }
        body.push(b']');
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(spread: Spread) -> EventGen {
        EventGen {
            prompts: 100,
            versions: 3,
            batch_size: 1000,
            spread,
            experiment: None,
            run_tag: "t".to_owned(),
        }
    }

    #[test]
    fn client_id_shapes_are_unique_and_ordered_as_named() {
        let g = generator(Spread::Live {
            window: Duration::seconds(50),
        });
        let now = OffsetDateTime::now_utc();
        let ids = |shape: ClientIds| {
            let mut events = g.batch(0, now);
            events.extend(g.batch(1, now));
            shape.apply(&mut events);
            events
                .into_iter()
                .map(|e| e.id.expect("every event has an id"))
                .collect::<Vec<_>>()
        };
        for shape in [ClientIds::Sequential, ClientIds::UuidV4, ClientIds::UuidV7] {
            let ids = ids(shape);
            let unique: std::collections::BTreeSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "{shape:?}");
            // Sequential ids sort in the order they were made, v7 ids by their leading
            // millisecond timestamp (`xxxxxxxx-xxxx`); v4 ids in no order.
            let prefix = if shape == ClientIds::UuidV7 {
                13
            } else {
                usize::MAX
            };
            let key = |id: &String| id.chars().take(prefix).collect::<String>();
            let sorted = ids.windows(2).all(|w| key(&w[0]) <= key(&w[1]));
            assert_eq!(sorted, shape != ClientIds::UuidV4, "{shape:?}");
        }
        for shape in [ClientIds::Sequential, ClientIds::UuidV4, ClientIds::UuidV7] {
            assert_eq!(ClientIds::parse(shape.name()).unwrap(), shape);
        }
        let refused = ClientIds::parse("uuid").unwrap_err().to_string();
        assert!(
            refused.contains("sequential, uuid-v4 or uuid-v7"),
            "{refused}"
        );
    }

    #[test]
    fn batches_are_reproducible_distinct_and_spread_over_the_dimensions() {
        let now = OffsetDateTime::now_utc();
        let g = generator(Spread::Live {
            window: Duration::seconds(60),
        });
        let a = g.batch(7, now);
        assert_eq!(a, g.batch(7, now));
        assert_ne!(a, g.batch(8, now));
        assert_eq!(a.len(), 1000);
        let ids: std::collections::HashSet<_> = a.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), 1000, "client ids are unique within a batch");
        assert!(a.iter().all(|e| e.timestamp.is_some_and(|t| t <= now)));
        let models: std::collections::HashSet<_> = a.iter().map(|e| e.model.clone()).collect();
        assert_eq!(models.len(), MODELS.len());
        let prompts: std::collections::HashSet<_> = a.iter().map(|e| e.prompt.clone()).collect();
        assert!(prompts.len() > 90, "{}", prompts.len());
        let errors = a.iter().filter(|e| e.error_type.is_some()).count();
        assert!((5..100).contains(&errors), "{errors}");
        assert!(a.iter().all(|e| e.success == Some(e.error_type.is_none())));
    }

    #[test]
    fn chronological_batches_walk_forward_inside_the_range() {
        let end = OffsetDateTime::now_utc();
        let start = end - Duration::days(30);
        let g = generator(Spread::Chronological {
            start,
            end,
            batches: 100,
        });
        let first = g.batch(0, end);
        let last = g.batch(99, end);
        let max_first = first.iter().filter_map(|e| e.timestamp).max().unwrap();
        let min_last = last.iter().filter_map(|e| e.timestamp).min().unwrap();
        assert!(max_first < min_last);
        assert!(first.iter().all(|e| e.timestamp.unwrap() >= start));
        assert!(last.iter().all(|e| e.timestamp.unwrap() <= end));
    }

    #[test]
    fn experiment_events_name_an_arm_and_its_version() {
        let mut g = generator(Spread::Live {
            window: Duration::seconds(1),
        });
        g.experiment = Some(ExperimentArms {
            id: "x1".to_owned(),
            prompt: "bench/chat-00001".to_owned(),
            label: "production".to_owned(),
            arms: vec![("control".to_owned(), 2), ("treatment".to_owned(), 3)],
        });
        let batch = g.batch(0, OffsetDateTime::now_utc());
        for e in &batch {
            assert_eq!(e.experiment.as_deref(), Some("x1"));
            let expected = if e.arm.as_deref() == Some("control") {
                2
            } else {
                3
            };
            assert_eq!(e.version, Some(expected));
        }
        assert!(batch.iter().any(|e| e.arm.as_deref() == Some("control")));
        assert!(batch.iter().any(|e| e.arm.as_deref() == Some("treatment")));
    }

    #[test]
    fn a_batch_serialises_to_a_json_array() {
        let g = generator(Spread::Live {
            window: Duration::seconds(1),
        });
        let body = g.body(1, OffsetDateTime::now_utc()).unwrap();
        let parsed: Vec<EventIn> = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.len(), 1000);
    }

    #[test]
    fn spliced_bodies_hold_the_pool_with_fresh_ids_and_recent_timestamps() {
        let g = generator(Spread::Live {
            window: Duration::seconds(60),
        });
        let template = BodyTemplate::new(&g, 2).unwrap();
        let now = OffsetDateTime::now_utc();
        let mut ids = std::collections::HashSet::new();
        for k in 0..3u64 {
            let parsed: Vec<EventIn> = serde_json::from_slice(&template.body(k, now).unwrap())
                .expect("a body is a JSON array of events");
            assert_eq!(parsed.len(), 1000);
            // Batch k, event i carries the content of pool slot (k * 1000 + i) mod 2000.
            let pool = g.batch(k % 2, now);
            for (i, e) in parsed.iter().enumerate() {
                assert!(ids.insert(e.id.clone().unwrap()), "unique client ids");
                assert_eq!(e.id, Some(format!("t-{k:08x}-{i:04x}")));
                let at = e.timestamp.unwrap();
                assert!(at <= now && at >= now - Duration::seconds(60), "{at}");
                let want = &pool[i];
                assert_eq!(
                    (&e.prompt, e.version, &e.model, e.input_tokens, &e.metadata),
                    (
                        &want.prompt,
                        want.version,
                        &want.model,
                        want.input_tokens,
                        &want.metadata
                    )
                );
            }
        }
        let chronological = generator(Spread::Chronological {
            start: now - Duration::days(1),
            end: now,
            batches: 10,
        });
        assert!(BodyTemplate::new(&chronological, 1).is_err());
    }

    #[test]
    fn spliced_bodies_carry_uuids_of_the_asked_version() {
        let g = generator(Spread::Live {
            window: Duration::seconds(60),
        });
        let now = OffsetDateTime::now_utc();
        for (shape, version) in [(ClientIds::UuidV4, 4), (ClientIds::UuidV7, 7)] {
            let template = BodyTemplate::new(&g, 1).unwrap().with_client_ids(shape);
            let mut ids = std::collections::HashSet::new();
            for k in 0..2u64 {
                let parsed: Vec<EventIn> =
                    serde_json::from_slice(&template.body(k, now).unwrap()).unwrap();
                assert_eq!(parsed.len(), 1000);
                for e in parsed {
                    let id = e.id.expect("every event has an id");
                    let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
                    assert_eq!(uuid.get_version_num(), version, "{id}");
                    assert!(ids.insert(id), "unique client ids");
                    assert!(e.timestamp.is_some());
                }
            }
        }
    }
}
