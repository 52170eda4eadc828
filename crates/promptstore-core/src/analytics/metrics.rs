//! From aggregate cells to the wire numbers: one `Rollup` → `Metrics`, cells grouped by any
//! subset of dimensions → `GroupMetrics`, and the summary of a range from its day and hour
//! cells (see `range::plan`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use promptstore_stats::sketch::QuantileSketch;
use promptstore_types::{
    Distribution, ErrorCode, FeedbackSummary, GroupMetrics, Metrics, ScoreSummary, Summary,
};

use super::model::CellKey;
use super::range::Range;
use super::rollup::{Rollup, RollupDecodeError};
use super::store::KeyDetail;
use crate::error::Error;

/// Percentiles and mean of a sketch.
pub fn distribution(sketch: &QuantileSketch) -> Distribution {
    // The quantiles asked for are constants in [0, 1], so `quantile` cannot refuse them.
    let q = |q: f64| sketch.quantile(q).ok().flatten();
    Distribution {
        count: sketch.count(),
        mean: sketch.mean(),
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        min: sketch.min(),
        max: sketch.max(),
        relative_error: sketch.relative_accuracy(),
    }
}

/// The wire numbers of one rollup.
pub fn metrics(r: &Rollup) -> Metrics {
    Metrics {
        count: r.count,
        successes: r.successes,
        errors: r.errors(),
        success_rate: (r.count > 0).then(|| r.successes as f64 / r.count as f64),
        error_types: r.error_types.clone(),
        latency_ms: distribution(&r.latency),
        ttft_ms: distribution(&r.ttft),
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cached_input_tokens: r.cached_input_tokens,
        cost: r.cost.sum,
        cost_per_call: r.cost.mean(),
        priced_events: r.cost.count,
        unpriced_events: r.unpriced,
        unpriced_models: r.unpriced_models.keys().cloned().collect(),
        scores: r
            .scores
            .iter()
            .filter_map(|(name, m)| {
                Some((
                    name.clone(),
                    ScoreSummary {
                        count: m.count,
                        mean: m.mean()?,
                        stddev: m.stddev(),
                    },
                ))
            })
            .collect(),
        feedback: FeedbackSummary {
            thumbs_up: r.feedback.thumbs_up,
            thumbs_down: r.feedback.thumbs_down,
            ratings: r.feedback.ratings,
            mean_rating: r.feedback.mean_rating(),
            negative_rate: r.feedback.negative_rate(),
        },
    }
}

/// A dimension cells can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Prompt,
    Version,
    Label,
    Model,
    Arm,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Prompt,
        Dimension::Version,
        Dimension::Label,
        Dimension::Model,
        Dimension::Arm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Prompt => "prompt",
            Dimension::Version => "version",
            Dimension::Label => "label",
            Dimension::Model => "model",
            Dimension::Arm => "arm",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Parse `group_by=prompt,version`: known names, no repeats; empty = no grouping.
pub fn parse_group_by(s: &str) -> Result<Vec<Dimension>, Error> {
    let mut dims = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some(d) = Dimension::parse(part) else {
            return Err(Error::rejected(
                ErrorCode::InvalidRequest,
                format!(
                    "unknown group_by dimension '{part}'; use any of prompt, version, label, model, arm"
                ),
            )
            .with_details(serde_json::json!({ "field": "group_by" })));
        };
        if dims.contains(&d) {
            return Err(Error::rejected(
                ErrorCode::InvalidRequest,
                format!("group_by names '{part}' twice"),
            )
            .with_details(serde_json::json!({ "field": "group_by" })));
        }
        dims.push(d);
    }
    Ok(dims)
}

/// The group key of a cell. A version only means something within its prompt, and an arm
/// within its experiment, so those dimensions bring their parent along. Dimensions the
/// event did not give are empty strings.
pub fn group_key(key: &CellKey, dims: &[Dimension]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for d in dims {
        match d {
            Dimension::Prompt => {
                out.insert("prompt".into(), key.prompt.clone());
            }
            Dimension::Version => {
                out.insert("prompt".into(), key.prompt.clone());
                out.insert("version".into(), key.version.to_string());
            }
            Dimension::Label => {
                out.insert("label".into(), key.label.clone());
            }
            Dimension::Model => {
                out.insert("model".into(), key.model.clone());
            }
            Dimension::Arm => {
                out.insert("experiment".into(), key.experiment.clone());
                out.insert("arm".into(), key.arm.clone());
            }
        }
    }
    out
}

/// Cells merged into one rollup per group key, one cell at a time: a query's memory is one
/// rollup per group, whatever the number of cells.
#[derive(Debug, Default)]
pub struct GroupFold {
    dims: Vec<Dimension>,
    /// Each group's `group_key` and rollup.
    groups: Vec<(BTreeMap<String, String>, Rollup)>,
    /// A group's values joined (the lookup key) → its index in `groups`.
    index: HashMap<String, usize>,
    /// The lookup key of the current cell, reused.
    scratch: String,
}

impl GroupFold {
    pub fn new(dims: &[Dimension]) -> GroupFold {
        GroupFold {
            dims: dims.to_vec(),
            ..GroupFold::default()
        }
    }

    /// How much of a cell's key the grouping reads (for `CellQuery::detail`).
    pub fn detail(&self) -> KeyDetail {
        if self.dims.is_empty() {
            KeyDetail::Bucket
        } else if self.dims.iter().all(|d| *d == Dimension::Prompt) {
            KeyDetail::Prompt
        } else {
            KeyDetail::Full
        }
    }

    fn slot(&mut self, key: &CellKey) -> &mut Rollup {
        let buf = &mut self.scratch;
        buf.clear();
        for d in &self.dims {
            match d {
                Dimension::Prompt => buf.push_str(&key.prompt),
                Dimension::Version => {
                    let _ = write!(buf, "{}\u{1f}{}", key.prompt, key.version);
                }
                Dimension::Label => buf.push_str(&key.label),
                Dimension::Model => buf.push_str(&key.model),
                Dimension::Arm => {
                    let _ = write!(buf, "{}\u{1f}{}", key.experiment, key.arm);
                }
            }
            buf.push('\u{1e}');
        }
        let i = match self.index.get(buf.as_str()) {
            Some(&i) => i,
            None => {
                self.groups
                    .push((group_key(key, &self.dims), Rollup::default()));
                self.index.insert(buf.clone(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[i].1
    }

    /// Merge a cell into its group.
    pub fn add(&mut self, key: &CellKey, rollup: &Rollup) {
        self.slot(key).merge(rollup);
    }

    /// Merge an encoded cell into its group (see `Rollup::merge_encoded`).
    pub fn add_encoded(&mut self, key: &CellKey, rollup: &[u8]) -> Result<(), RollupDecodeError> {
        self.slot(key).merge_encoded(rollup)
    }

    /// The rollup of each group, by group key.
    pub fn into_rollups(self) -> BTreeMap<BTreeMap<String, String>, Rollup> {
        self.groups.into_iter().collect()
    }
}

/// Merge cells into one rollup per group key.
pub fn group_rollups<'a>(
    cells: impl IntoIterator<Item = &'a (CellKey, Rollup)>,
    dims: &[Dimension],
) -> BTreeMap<BTreeMap<String, String>, Rollup> {
    let mut groups = GroupFold::new(dims);
    for (key, rollup) in cells {
        groups.add(key, rollup);
    }
    groups.into_rollups()
}

/// Group cells and turn each group into metrics: largest groups first, ties by key.
/// Versions sort numerically within a prompt, as people expect (2 before 10).
pub fn group(cells: &[(CellKey, Rollup)], dims: &[Dimension]) -> Vec<GroupMetrics> {
    ranked(group_rollups(cells, dims))
}

fn ranked(groups: BTreeMap<BTreeMap<String, String>, Rollup>) -> Vec<GroupMetrics> {
    let mut out: Vec<GroupMetrics> = groups
        .into_iter()
        .map(|(key, r)| GroupMetrics {
            key,
            metrics: metrics(&r),
        })
        .collect();
    out.sort_by(|a, b| {
        b.metrics
            .count
            .cmp(&a.metrics.count)
            .then_with(|| sort_key(&a.key).cmp(&sort_key(&b.key)))
    });
    out
}

fn sort_key(key: &BTreeMap<String, String>) -> Vec<(&str, u64, &str)> {
    key.iter()
        .map(|(k, v)| (k.as_str(), v.parse::<u64>().unwrap_or(0), v.as_str()))
        .collect()
}

/// Merge every cell into one rollup.
pub fn merge_all<'a>(cells: impl IntoIterator<Item = &'a (CellKey, Rollup)>) -> Rollup {
    let mut total = Rollup::default();
    for (_, r) in cells {
        total.merge(r);
    }
    total
}

/// The summary of a range from the cells its plan named: DAY cells of the whole days and
/// HOUR cells of the edges (each event counted once, since the plan's pieces do not
/// overlap), with groups when `dims` is not empty.
pub fn summary(
    range: Range,
    day_cells: &[(CellKey, Rollup)],
    hour_cells: &[(CellKey, Rollup)],
    dims: &[Dimension],
) -> Summary {
    let mut groups = GroupFold::new(dims);
    for (key, rollup) in day_cells.iter().chain(hour_cells) {
        groups.add(key, rollup);
    }
    summary_of(range, groups)
}

/// The summary of a range whose cells were folded into `groups` (see [`summary`]): the
/// total is the merge of the groups, and the groups are listed when grouping by something.
pub fn summary_of(range: Range, groups: GroupFold) -> Summary {
    let grouped = !groups.dims.is_empty();
    let rollups = groups.into_rollups();
    let mut total = Rollup::default();
    for r in rollups.values() {
        total.merge(r);
    }
    Summary {
        from: range.from,
        to: range.to,
        metrics: metrics(&total),
        groups: if grouped { ranked(rollups) } else { Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use promptstore_types::{CostSource, Feedback};
    use time::macros::datetime;

    use super::*;
    use crate::analytics::range::{align_to_hours, plan};
    use crate::analytics::testutil::{Rng, event};

    fn key(bucket: i64, prompt: &str, version: u32, model: &str) -> CellKey {
        CellKey {
            bucket,
            prompt_id: format!("id-{prompt}"),
            prompt: prompt.into(),
            version,
            label: String::new(),
            model: model.into(),
            experiment: String::new(),
            arm: String::new(),
        }
    }

    #[test]
    fn metrics_of_a_rollup() {
        let mut events = Vec::new();
        for i in 0..10 {
            let mut e = event(i);
            e.latency_ms = Some(100.0 * (i + 1) as f64);
            e.cost = Some(0.01);
            e.scores
                .insert("acc".into(), if i % 2 == 0 { 1.0 } else { 0.0 });
            if i < 4 {
                e.feedback = Some(Feedback {
                    thumbs_up: Some(i != 0),
                    rating: Some(if i == 1 { 2 } else { 5 }),
                    comment: None,
                });
            }
            if i == 9 {
                e.success = false;
                e.error_type = Some("timeout".into());
                e.model = "local".into();
                e.cost = None;
                e.cost_source = CostSource::Unpriced;
            }
            events.push(e);
        }
        let m = metrics(&Rollup::of(&events));
        assert_eq!((m.count, m.successes, m.errors), (10, 9, 1));
        assert_eq!(m.success_rate, Some(0.9));
        assert_eq!(m.error_types["timeout"], 1);
        assert_eq!(m.latency_ms.count, 10);
        assert_eq!(m.latency_ms.min, Some(100.0));
        assert_eq!(m.latency_ms.max, Some(1000.0));
        assert!((m.latency_ms.mean.unwrap() - 550.0).abs() < 1e-9);
        assert!((m.latency_ms.p50.unwrap() - 500.0).abs() <= 5.0);
        assert_eq!(m.latency_ms.relative_error, 0.01);
        assert_eq!(m.ttft_ms.count, 0);
        assert_eq!(m.ttft_ms.p50, None);
        assert!((m.cost - 0.09).abs() < 1e-12);
        assert!((m.cost_per_call.unwrap() - 0.01).abs() < 1e-12);
        assert_eq!((m.priced_events, m.unpriced_events), (9, 1));
        assert_eq!(m.unpriced_models, vec!["local".to_string()]);
        let acc = &m.scores["acc"];
        assert_eq!(acc.count, 10);
        assert!((acc.mean - 0.5).abs() < 1e-12);
        // Sample stddev of five 1s and five 0s: sqrt(2.5/9).
        assert!((acc.stddev.unwrap() - (2.5f64 / 9.0).sqrt()).abs() < 1e-12);
        let f = &m.feedback;
        assert_eq!((f.thumbs_up, f.thumbs_down), (3, 1));
        assert_eq!(f.ratings, [0, 1, 0, 0, 3]);
        assert_eq!(f.mean_rating, Some(17.0 / 4.0));
        // Event 0 (thumbs down) and event 1 (rating 2) are negative: 2 of 4.
        assert_eq!(f.negative_rate, Some(0.5));
        let empty = metrics(&Rollup::default());
        assert_eq!(empty.success_rate, None);
        assert_eq!(empty.cost_per_call, None);
        assert_eq!(empty.feedback.negative_rate, None);
    }

    #[test]
    fn group_by_parsing() {
        assert_eq!(parse_group_by("").unwrap(), vec![]);
        assert_eq!(
            parse_group_by("prompt, version").unwrap(),
            vec![Dimension::Prompt, Dimension::Version]
        );
        assert!(parse_group_by("prompt,prompt").is_err());
        let err = parse_group_by("colour").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown group_by dimension 'colour'")
        );
    }

    #[test]
    fn grouping_by_dimensions() {
        let cell = |k: CellKey, n: u64| {
            let mut r = Rollup::default();
            for i in 0..n {
                r.add(&event(i as i64));
            }
            (k, r)
        };
        let cells = vec![
            cell(key(0, "a", 1, "m1"), 3),
            cell(key(3600, "a", 1, "m1"), 2),
            cell(key(0, "a", 2, "m2"), 4),
            cell(key(0, "b", 10, "m1"), 1),
            cell(key(0, "b", 2, "m1"), 1),
        ];
        let by = |dims: &[Dimension]| {
            group(&cells, dims)
                .into_iter()
                .map(|g| {
                    (
                        g.key
                            .into_iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        g.metrics.count,
                    )
                })
                .collect::<Vec<_>>()
        };
        let s = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), *b))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            by(&[Dimension::Prompt]),
            s(&[("prompt=a", 9), ("prompt=b", 2)])
        );
        assert_eq!(
            by(&[Dimension::Version]),
            s(&[
                ("prompt=a,version=1", 5),
                ("prompt=a,version=2", 4),
                ("prompt=b,version=2", 1),
                ("prompt=b,version=10", 1),
            ])
        );
        assert_eq!(
            by(&[Dimension::Model]),
            s(&[("model=m1", 7), ("model=m2", 4)])
        );
        assert_eq!(by(&[]), s(&[("", 11)]));
    }

    #[test]
    fn summary_from_days_and_hours_counts_each_event_once() {
        // Events every 20 minutes over 3.5 days; cells built both ways; the planned summary
        // must equal the fold of the events in the aligned range.
        let start = datetime!(2025-03-01 00:00 UTC).unix_timestamp();
        let mut rng = Rng::new(5);
        let mut events = Vec::new();
        for i in 0..(84 * 3) {
            let mut e = event(start + i * 1200);
            e.latency_ms = Some(rng.latency(200.0));
            events.push(e);
        }
        let mut hour: BTreeMap<CellKey, Rollup> = BTreeMap::new();
        let mut day: BTreeMap<CellKey, Rollup> = BTreeMap::new();
        for e in &events {
            let t = e.at.unix_timestamp();
            hour.entry(key(t - t.rem_euclid(3600), "a", 1, "m"))
                .or_default()
                .add(e);
            day.entry(key(t - t.rem_euclid(86_400), "a", 1, "m"))
                .or_default()
                .add(e);
        }
        let range = align_to_hours(
            datetime!(2025-03-01 05:30 UTC),
            datetime!(2025-03-03 17:10 UTC),
        )
        .unwrap();
        let p = plan(range);
        let pick = |cells: &BTreeMap<CellKey, Rollup>, r: &Range| {
            cells
                .iter()
                .filter(|(k, _)| {
                    (r.from.unix_timestamp()..r.to.unix_timestamp()).contains(&k.bucket)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let days = p.days.as_ref().map(|d| pick(&day, d)).unwrap_or_default();
        let hours: Vec<_> = p.hours.iter().flat_map(|h| pick(&hour, h)).collect();
        assert_eq!(days.len(), 1);
        let s = summary(range, &days, &hours, &[]);
        let want: Vec<_> = events
            .iter()
            .filter(|e| e.at >= range.from && e.at < range.to)
            .collect();
        let expected = metrics(&Rollup::of(want.iter().copied()));
        assert_eq!(s.metrics.count, expected.count);
        assert_eq!(s.metrics.latency_ms.p95, expected.latency_ms.p95);
        assert!((s.metrics.cost - expected.cost).abs() < 1e-12);
        assert_eq!(s.from, datetime!(2025-03-01 05:00 UTC));
        assert_eq!(s.to, datetime!(2025-03-03 18:00 UTC));
        assert!(s.groups.is_empty());
        assert_eq!(
            summary(range, &days, &hours, &[Dimension::Prompt])
                .groups
                .len(),
            1
        );
    }
}
