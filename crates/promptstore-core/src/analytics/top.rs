//! Top prompts: by use, by cost, by error rate and by worst feedback. Rates rank only
//! prompts with enough data: one failure out of one call is not the worst prompt.

use std::collections::BTreeMap;

use promptstore_types::{ErrorCode, TopEntry};

use super::metrics::{Dimension, group_rollups, metrics};
use super::model::CellKey;
use super::rollup::Rollup;
use crate::error::Error;

/// Fewest events for a prompt to rank by error rate.
pub const MIN_SAMPLE: u64 = 20;
/// Fewest feedback judgements for a prompt to rank by negative feedback.
pub const MIN_FEEDBACK: u64 = 10;
/// Longest top list.
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Use,
    Cost,
    ErrorRate,
    WorstFeedback,
}

impl TopBy {
    pub fn parse(s: &str) -> Result<TopBy, Error> {
        match s {
            "use" => Ok(TopBy::Use),
            "cost" => Ok(TopBy::Cost),
            "error_rate" => Ok(TopBy::ErrorRate),
            "worst_feedback" => Ok(TopBy::WorstFeedback),
            other => Err(Error::rejected(
                ErrorCode::InvalidRequest,
                format!("by must be one of use, cost, error_rate, worst_feedback; got '{other}'"),
            )
            .with_details(serde_json::json!({ "field": "by" }))),
        }
    }

    /// The ranked value of a prompt, None when it does not qualify.
    fn value(self, r: &Rollup) -> Option<f64> {
        match self {
            TopBy::Use => (r.count > 0).then_some(r.count as f64),
            // Only priced events have a cost; a prompt with none has no cost to rank.
            TopBy::Cost => (r.cost.count > 0).then_some(r.cost.sum),
            TopBy::ErrorRate => (r.count >= MIN_SAMPLE).then(|| r.errors() as f64 / r.count as f64),
            TopBy::WorstFeedback => {
                if r.feedback.given >= MIN_FEEDBACK {
                    r.feedback.negative_rate()
                } else {
                    None
                }
            }
        }
    }
}

/// Check a `limit` (1..=100).
pub fn check_limit(limit: usize) -> Result<usize, Error> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::rejected(
            ErrorCode::InvalidRequest,
            format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
        )
        .with_details(serde_json::json!({ "field": "limit" })))
    }
}

/// The top `limit` prompts of the cells by `by`, highest value first; ties go to the
/// prompt with more events, then by name.
pub fn top(cells: &[(CellKey, Rollup)], by: TopBy, limit: usize) -> Vec<TopEntry> {
    top_of(group_rollups(cells, &[Dimension::Prompt]), by, limit)
}

/// [`top`] of cells already grouped by prompt (a `GroupFold` of `[Dimension::Prompt]`).
pub fn top_of(
    by_prompt: BTreeMap<BTreeMap<String, String>, Rollup>,
    by: TopBy,
    limit: usize,
) -> Vec<TopEntry> {
    let mut ranked: Vec<(f64, String, Rollup)> = by_prompt
        .into_iter()
        .filter_map(|(key, r)| {
            let name = key.get("prompt").cloned().unwrap_or_default();
            by.value(&r).map(|v| (v, name, r))
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| b.2.count.cmp(&a.2.count))
            .then_with(|| a.1.cmp(&b.1))
    });
    ranked
        .into_iter()
        .take(limit)
        .map(|(value, prompt, r)| TopEntry {
            prompt,
            value,
            metrics: metrics(&r),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use promptstore_types::Feedback;

    use super::*;
    use crate::analytics::testutil::event;

    /// A cell of `prompt` with `n` events, `errors` failures, cost `cost` each, and
    /// `neg`/`fb` negative/total feedback.
    fn cell(prompt: &str, n: u64, errors: u64, cost: f64, fb: u64, neg: u64) -> (CellKey, Rollup) {
        let mut r = Rollup::default();
        for i in 0..n {
            let mut e = event(0);
            e.prompt = prompt.into();
            e.success = i >= errors;
            e.cost = Some(cost);
            if i < fb {
                e.feedback = Some(Feedback {
                    thumbs_up: Some(i >= neg),
                    ..Default::default()
                });
            }
            r.add(&e);
        }
        let key = CellKey {
            bucket: 0,
            prompt_id: format!("id-{prompt}"),
            prompt: prompt.into(),
            version: 1,
            label: String::new(),
            model: String::new(),
            experiment: String::new(),
            arm: String::new(),
        };
        (key, r)
    }

    fn names(v: &[TopEntry]) -> Vec<(&str, f64)> {
        v.iter().map(|e| (e.prompt.as_str(), e.value)).collect()
    }

    #[test]
    fn rankings() {
        let cells = vec![
            cell("busy", 100, 5, 0.001, 20, 2),
            cell("busy", 50, 0, 0.001, 0, 0),
            cell("pricey", 30, 3, 0.1, 10, 8),
            // High error rate but below the minimum sample.
            cell("tiny", 3, 3, 0.0, 1, 1),
            cell("flaky", 40, 20, 0.002, 5, 5),
        ];
        assert_eq!(
            names(&top(&cells, TopBy::Use, 10)),
            vec![
                ("busy", 150.0),
                ("flaky", 40.0),
                ("pricey", 30.0),
                ("tiny", 3.0)
            ]
        );
        assert_eq!(names(&top(&cells, TopBy::Use, 2)).len(), 2);
        let by_cost = top(&cells, TopBy::Cost, 10);
        assert_eq!(by_cost[0].prompt, "pricey");
        assert!((by_cost[0].value - 3.0).abs() < 1e-9);
        assert_eq!(
            names(&top(&cells, TopBy::ErrorRate, 10)),
            vec![("flaky", 0.5), ("pricey", 0.1), ("busy", 5.0 / 150.0)]
        );
        // flaky has only 5 judgements and tiny 1: below the minimum.
        assert_eq!(
            names(&top(&cells, TopBy::WorstFeedback, 10)),
            vec![("pricey", 0.8), ("busy", 0.1)]
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(TopBy::parse("error_rate").unwrap(), TopBy::ErrorRate);
        assert!(
            TopBy::parse("fame")
                .unwrap_err()
                .to_string()
                .contains("got 'fame'")
        );
        assert!(check_limit(0).is_err());
        assert!(check_limit(101).is_err());
        assert_eq!(check_limit(10).unwrap(), 10);
    }
}
