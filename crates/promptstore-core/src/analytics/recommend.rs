//! Rule-based recommendations: deterministic, explainable, no LLM. Each carries its
//! rationale in words and the numbers behind it (`evidence`), and only fires when the data
//! says so beyond noise (the tests of `compare`) on enough events.
//!
//! Rules:
//! - `costlier_version_no_better`: a version of a prompt costs significantly more per
//!   call than another version, and is not significantly better on success rate or on any
//!   score.
//! - `cheaper_model_equal_success`: on the same prompt, another model costs significantly
//!   less per call and is not significantly worse on success rate or any score.
//! - `rising_latency`, `rising_error_rate`: this period against the previous one of equal
//!   length, per prompt: p95 latency up ≥ 20% with a significantly higher mean; error rate
//!   up ≥ 1 point and significantly.
//! - `token_heavy_template`: mean input tokens above 4 000; `token_growth`: a version's
//!   mean input tokens ≥ 30% above its predecessor's.
//!
//! Sorted by severity (`warning` first), then kind, then impact, then prompt.

use std::collections::BTreeMap;

use promptstore_types::{MetricDifference, Recommendation};
use serde_json::json;

use super::compare::{mean_difference, proportion_difference};
use super::metrics::{Dimension, group_rollups};
use super::model::CellKey;
use super::rollup::Rollup;

/// Fewest events on each side of a rule.
pub const MIN_SAMPLE: u64 = 30;
/// Smallest cost difference worth a recommendation (relative).
pub const MIN_COST_SAVING: f64 = 0.10;
/// Mean input tokens above which a template is token-heavy.
pub const HEAVY_INPUT_TOKENS: f64 = 4_000.0;
/// Growth of mean input tokens over the predecessor version that is flagged.
pub const TOKEN_GROWTH: f64 = 0.30;
/// Rise of p95 latency that is flagged (with a significant rise of the mean).
pub const LATENCY_RISE: f64 = 0.20;
/// Rise of the error rate (absolute) that is flagged (when significant).
pub const ERROR_RATE_RISE: f64 = 0.01;

const WARNING: &str = "warning";
const INFO: &str = "info";

struct Candidate {
    rec: Recommendation,
    /// Ranks recommendations of one kind: larger first.
    impact: f64,
}

/// Recommendations from the cells of the period (`current`) and of the period of equal
/// length just before it (`previous`, for the trend rules; may be empty).
pub fn recommend(
    current: &[(CellKey, Rollup)],
    previous: &[(CellKey, Rollup)],
) -> Vec<Recommendation> {
    let versions = by_prompt_and(current, Dimension::Version, "version");
    let models = by_prompt_and(current, Dimension::Model, "model");
    let mut out = Vec::new();
    for (prompt, vs) in &versions {
        out.extend(costlier_versions(prompt, vs));
        out.extend(token_heavy(prompt, vs));
    }
    for (prompt, ms) in &models {
        out.extend(cheaper_models(prompt, ms));
    }
    out.extend(rising(current, previous));
    out.sort_by(|a, b| {
        severity_rank(&a.rec.severity)
            .cmp(&severity_rank(&b.rec.severity))
            .then_with(|| a.rec.kind.cmp(&b.rec.kind))
            .then_with(|| b.impact.total_cmp(&a.impact))
            .then_with(|| a.rec.prompt.cmp(&b.rec.prompt))
            .then_with(|| a.rec.title.cmp(&b.rec.title))
    });
    out.into_iter().map(|c| c.rec).collect()
}

fn severity_rank(s: &str) -> u8 {
    match s {
        WARNING => 0,
        _ => 1,
    }
}

/// prompt → (value of the dimension → rollup). Cells without the dimension (empty model)
/// are left out.
fn by_prompt_and(
    cells: &[(CellKey, Rollup)],
    dim: Dimension,
    field: &str,
) -> BTreeMap<String, BTreeMap<String, Rollup>> {
    let mut out: BTreeMap<String, BTreeMap<String, Rollup>> = BTreeMap::new();
    for (key, r) in group_rollups(cells, &[Dimension::Prompt, dim]) {
        let (Some(p), Some(v)) = (key.get("prompt"), key.get(field)) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        out.entry(p.clone()).or_default().insert(v.clone(), r);
    }
    out
}

fn better(d: &MetricDifference) -> bool {
    d.significant && d.difference.is_some_and(|x| x > 0.0)
}

fn worse(d: &MetricDifference) -> bool {
    d.significant && d.difference.is_some_and(|x| x < 0.0)
}

/// Success rate and every score of `b` against `a`.
fn quality(a: &Rollup, b: &Rollup) -> Vec<MetricDifference> {
    let mut out = vec![proportion_difference(
        "success_rate",
        (a.successes, a.count),
        (b.successes, b.count),
    )];
    for (name, ma) in &a.scores {
        if let Some(mb) = b.scores.get(name) {
            out.push(mean_difference(&format!("score:{name}"), ma, mb));
        }
    }
    out
}

fn evidence_of(d: &MetricDifference) -> serde_json::Value {
    json!({ "a": d.a, "b": d.b, "p_value": d.p_value, "significant": d.significant })
}

/// Is `cheap` significantly cheaper per call than `dear`, by at least MIN_COST_SAVING?
fn cheaper(dear: &Rollup, cheap: &Rollup) -> Option<MetricDifference> {
    if dear.cost.count < MIN_SAMPLE || cheap.cost.count < MIN_SAMPLE {
        return None;
    }
    let d = mean_difference("cost_per_call", &dear.cost, &cheap.cost);
    (worse(&d) && d.relative_difference.is_some_and(|r| r <= -MIN_COST_SAVING)).then_some(d)
}

/// Among the other entries of `all`, the one with the lowest cost per call that is
/// significantly cheaper than `dear` and whose quality comparison `acceptable` keeps,
/// with that cost difference and the quality comparison.
fn cheapest_alternative<'a>(
    key: &str,
    dear: &Rollup,
    all: &'a BTreeMap<String, Rollup>,
    acceptable: impl Fn(&Rollup) -> Option<Vec<MetricDifference>>,
) -> Option<(
    &'a String,
    &'a Rollup,
    MetricDifference,
    Vec<MetricDifference>,
)> {
    all.iter()
        .filter(|(other, _)| other.as_str() != key)
        .filter_map(|(other, cheap)| {
            let cost = cheaper(dear, cheap)?;
            let q = acceptable(cheap)?;
            Some((other, cheap, cost, q))
        })
        .min_by(|a, b| a.2.b.unwrap_or(0.0).total_cmp(&b.2.b.unwrap_or(0.0)))
}

fn costlier_versions(prompt: &str, versions: &BTreeMap<String, Rollup>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (v, dear) in versions {
        // The cheapest other version that the dearer one does not beat on quality
        // (quality of the dear version against the cheap one: better = dear wins).
        let best = cheapest_alternative(v, dear, versions, |cheap| {
            let q = quality(cheap, dear);
            (!q.iter().any(better)).then_some(q)
        });
        let Some((w, cheap, cost, q)) = best else {
            continue;
        };
        let (ca, cb) = (cost.a.unwrap_or(0.0), cost.b.unwrap_or(0.0));
        let extra = if cb > 0.0 { (ca - cb) / cb } else { 0.0 };
        let saving = (ca - cb) * dear.cost.count as f64;
        out.push(Candidate {
            impact: saving,
            rec: Recommendation {
                kind: "costlier_version_no_better".into(),
                prompt: prompt.to_owned(),
                severity: WARNING.into(),
                title: format!("Version {v} of {prompt} costs {:.0}% more per call than version {w}", extra * 100.0),
                rationale: format!(
                    "Version {v} costs ${ca:.6} per call against ${cb:.6} for version {w} (p = {:.3}), and is not significantly better on success rate or any score. Serving version {w} instead would have saved about ${saving:.2} over {} calls in this period.",
                    cost.p_value.unwrap_or(1.0),
                    dear.cost.count
                ),
                evidence: json!({
                    "version": v.parse::<u32>().ok(),
                    "cheaper_version": w.parse::<u32>().ok(),
                    "cost_per_call": ca,
                    "cheaper_cost_per_call": cb,
                    "relative_cost_difference": extra,
                    "cost_p_value": cost.p_value,
                    "calls": dear.count,
                    "cheaper_calls": cheap.count,
                    "estimated_saving": saving,
                    "quality": q.iter().map(|d| (d.metric.clone(), evidence_of(d))).collect::<serde_json::Map<_, _>>(),
                }),
            },
        });
    }
    out
}

fn cheaper_models(prompt: &str, models: &BTreeMap<String, Rollup>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (m, dear) in models {
        // Quality of the cheap model against the dear one: worse = cheap loses.
        let best = cheapest_alternative(m, dear, models, |cheap| {
            let q = quality(dear, cheap);
            (!q.iter().any(worse)).then_some(q)
        });
        let Some((n, cheap, cost, q)) = best else {
            continue;
        };
        let (ca, cb) = (cost.a.unwrap_or(0.0), cost.b.unwrap_or(0.0));
        let saving_share = if ca > 0.0 { (ca - cb) / ca } else { 0.0 };
        let saving = (ca - cb) * dear.cost.count as f64;
        let sr = |r: &Rollup| r.successes as f64 / r.count.max(1) as f64;
        out.push(Candidate {
            impact: saving,
            rec: Recommendation {
                kind: "cheaper_model_equal_success".into(),
                prompt: prompt.to_owned(),
                severity: INFO.into(),
                title: format!("{n} costs {:.0}% less than {m} on {prompt} with equal success", saving_share * 100.0),
                rationale: format!(
                    "On {prompt}, {n} costs ${cb:.6} per call against ${ca:.6} for {m}, with a success rate of {:.1}% against {:.1}% and no score significantly worse. Moving {m}'s {} calls to {n} would have saved about ${saving:.2} in this period; confirm with an A/B test.",
                    sr(cheap) * 100.0,
                    sr(dear) * 100.0,
                    dear.cost.count
                ),
                evidence: json!({
                    "model": m,
                    "cheaper_model": n,
                    "cost_per_call": ca,
                    "cheaper_cost_per_call": cb,
                    "relative_saving": saving_share,
                    "cost_p_value": cost.p_value,
                    "success_rate": sr(dear),
                    "cheaper_success_rate": sr(cheap),
                    "calls": dear.count,
                    "cheaper_calls": cheap.count,
                    "estimated_saving": saving,
                    "quality": q.iter().map(|d| (d.metric.clone(), evidence_of(d))).collect::<serde_json::Map<_, _>>(),
                }),
            },
        });
    }
    out
}

fn mean_input(r: &Rollup) -> Option<f64> {
    (r.count > 0).then(|| r.input_tokens as f64 / r.count as f64)
}

fn token_heavy(prompt: &str, versions: &BTreeMap<String, Rollup>) -> Vec<Candidate> {
    // Numeric version order, so the predecessor of 10 is 9, not 1.
    let mut ordered: Vec<(u32, &Rollup)> = versions
        .iter()
        .filter_map(|(v, r)| Some((v.parse().ok()?, r)))
        .filter(|(_, r)| r.count >= MIN_SAMPLE)
        .collect();
    ordered.sort_by_key(|(v, _)| *v);
    let mut out = Vec::new();
    for (i, &(v, r)) in ordered.iter().enumerate() {
        let Some(mean) = mean_input(r) else { continue };
        if mean > HEAVY_INPUT_TOKENS {
            out.push(Candidate {
                impact: mean,
                rec: Recommendation {
                    kind: "token_heavy_template".into(),
                    prompt: prompt.to_owned(),
                    severity: INFO.into(),
                    title: format!("Version {v} of {prompt} sends {mean:.0} input tokens per call"),
                    rationale: format!(
                        "Calls of version {v} average {mean:.0} input tokens (threshold {HEAVY_INPUT_TOKENS:.0}). Trimming instructions, examples or included context, or caching the stable prefix, cuts cost and latency on every call."
                    ),
                    evidence: json!({
                        "version": v,
                        "mean_input_tokens": mean,
                        "threshold": HEAVY_INPUT_TOKENS,
                        "calls": r.count,
                        "cached_input_share": if r.input_tokens > 0 { r.cached_input_tokens as f64 / r.input_tokens as f64 } else { 0.0 },
                    }),
                },
            });
        }
        let Some(&(pv, pr)) = i.checked_sub(1).and_then(|j| ordered.get(j)) else {
            continue;
        };
        let Some(prev) = mean_input(pr).filter(|m| *m > 0.0) else {
            continue;
        };
        let growth = (mean - prev) / prev;
        if growth > TOKEN_GROWTH {
            out.push(Candidate {
                impact: growth,
                rec: Recommendation {
                    kind: "token_growth".into(),
                    prompt: prompt.to_owned(),
                    severity: INFO.into(),
                    title: format!("Version {v} of {prompt} uses {:.0}% more input tokens than version {pv}", growth * 100.0),
                    rationale: format!(
                        "Mean input tokens went from {prev:.0} (version {pv}) to {mean:.0} (version {v}). Check whether the added text earns its cost."
                    ),
                    evidence: json!({
                        "version": v,
                        "previous_version": pv,
                        "mean_input_tokens": mean,
                        "previous_mean_input_tokens": prev,
                        "growth": growth,
                        "calls": r.count,
                        "previous_calls": pr.count,
                    }),
                },
            });
        }
    }
    out
}

fn rising(current: &[(CellKey, Rollup)], previous: &[(CellKey, Rollup)]) -> Vec<Candidate> {
    let now = by_prompt(current);
    let before = by_prompt(previous);
    let mut out = Vec::new();
    for (prompt, cur) in &now {
        let Some(prev) = before.get(prompt) else {
            continue;
        };
        if cur.count < MIN_SAMPLE || prev.count < MIN_SAMPLE {
            continue;
        }
        // Latency: p95 up by LATENCY_RISE and the mean significantly higher.
        let p95 = |r: &Rollup| r.latency.quantile(0.95).ok().flatten();
        if let (Some(a), Some(b)) = (p95(prev), p95(cur)) {
            let mean = mean_difference(
                "latency_ms_mean",
                &prev.latency_moments,
                &cur.latency_moments,
            );
            if a > 0.0
                && (b - a) / a >= LATENCY_RISE
                && better(&mean)
                && prev.latency.count() >= MIN_SAMPLE
                && cur.latency.count() >= MIN_SAMPLE
            {
                let rise = (b - a) / a;
                out.push(Candidate {
                    impact: rise,
                    rec: Recommendation {
                        kind: "rising_latency".into(),
                        prompt: prompt.clone(),
                        severity: WARNING.into(),
                        title: format!("Latency of {prompt} is rising: p95 {a:.0} ms → {b:.0} ms"),
                        rationale: format!(
                            "p95 latency rose {:.0}% against the previous period of equal length, and mean latency rose from {:.0} ms to {:.0} ms (p = {:.4}). Check recent version or model changes and the provider's status.",
                            rise * 100.0,
                            mean.a.unwrap_or(0.0),
                            mean.b.unwrap_or(0.0),
                            mean.p_value.unwrap_or(1.0)
                        ),
                        evidence: json!({
                            "p95_ms": b,
                            "previous_p95_ms": a,
                            "p95_rise": rise,
                            "mean_ms": mean.b,
                            "previous_mean_ms": mean.a,
                            "p_value": mean.p_value,
                            "calls": cur.count,
                            "previous_calls": prev.count,
                            "relative_error": cur.latency.relative_accuracy(),
                        }),
                    },
                });
            }
        }
        // Error rate, as failures over events.
        let err = proportion_difference(
            "error_rate",
            (prev.errors(), prev.count),
            (cur.errors(), cur.count),
        );
        if better(&err) && err.difference.is_some_and(|d| d >= ERROR_RATE_RISE) {
            let (a, b) = (err.a.unwrap_or(0.0), err.b.unwrap_or(0.0));
            let top_error = cur
                .error_types
                .iter()
                .max_by(|x, y| x.1.cmp(y.1).then_with(|| y.0.cmp(x.0)))
                .map(|(k, _)| k.clone());
            out.push(Candidate {
                impact: b - a,
                rec: Recommendation {
                    kind: "rising_error_rate".into(),
                    prompt: prompt.clone(),
                    severity: WARNING.into(),
                    title: format!("Error rate of {prompt} is rising: {:.1}% → {:.1}%", a * 100.0, b * 100.0),
                    rationale: format!(
                        "The error rate rose from {:.2}% to {:.2}% against the previous period of equal length (p = {:.4}){}.",
                        a * 100.0,
                        b * 100.0,
                        err.p_value.unwrap_or(1.0),
                        top_error.as_ref().map(|t| format!("; the most frequent error is '{t}'")).unwrap_or_default()
                    ),
                    evidence: json!({
                        "error_rate": b,
                        "previous_error_rate": a,
                        "p_value": err.p_value,
                        "calls": cur.count,
                        "previous_calls": prev.count,
                        "error_types": cur.error_types,
                    }),
                },
            });
        }
    }
    out
}

fn by_prompt(cells: &[(CellKey, Rollup)]) -> BTreeMap<String, Rollup> {
    group_rollups(cells, &[Dimension::Prompt])
        .into_iter()
        .filter_map(|(k, r)| Some((k.get("prompt")?.clone(), r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::testutil::{Rng, event};

    struct Spec {
        prompt: &'static str,
        version: u32,
        model: &'static str,
        n: usize,
        success: f64,
        latency: f64,
        cost: f64,
        acc: Option<f64>,
        input_tokens: u64,
    }

    fn spec(prompt: &'static str, version: u32, model: &'static str) -> Spec {
        Spec {
            prompt,
            version,
            model,
            n: 200,
            success: 0.95,
            latency: 300.0,
            cost: 0.01,
            acc: None,
            input_tokens: 1000,
        }
    }

    fn cells(rng: &mut Rng, specs: &[Spec]) -> Vec<(CellKey, Rollup)> {
        specs
            .iter()
            .map(|s| {
                let mut r = Rollup::default();
                for i in 0..s.n {
                    let mut e = event(i as i64);
                    e.success = rng.unit() < s.success;
                    e.latency_ms = Some(rng.latency(s.latency));
                    e.cost = Some(s.cost * (1.0 + 0.1 * rng.normal()).max(0.05));
                    e.input_tokens = s.input_tokens;
                    if let Some(a) = s.acc {
                        e.scores.insert("acc".into(), a + 0.1 * rng.normal());
                    }
                    r.add(&e);
                }
                let key = CellKey {
                    bucket: 0,
                    prompt_id: format!("id-{}", s.prompt),
                    prompt: s.prompt.into(),
                    version: s.version,
                    label: String::new(),
                    model: s.model.into(),
                    experiment: String::new(),
                    arm: String::new(),
                };
                (key, r)
            })
            .collect()
    }

    fn kinds(recs: &[Recommendation]) -> Vec<(String, String)> {
        recs.iter()
            .map(|r| (r.kind.clone(), r.prompt.clone()))
            .collect()
    }

    fn has(recs: &[Recommendation], kind: &str, prompt: &str) -> bool {
        recs.iter().any(|r| r.kind == kind && r.prompt == prompt)
    }

    #[test]
    fn costlier_version_fires_and_does_not() {
        let mut rng = Rng::new(1);
        // v2 costs twice as much, same success and score: fires.
        let c = cells(
            &mut rng,
            &[
                Spec {
                    acc: Some(0.7),
                    ..spec("a", 1, "m")
                },
                Spec {
                    cost: 0.02,
                    acc: Some(0.7),
                    ..spec("a", 2, "m")
                },
            ],
        );
        let recs = recommend(&c, &[]);
        let r = recs
            .iter()
            .find(|r| r.kind == "costlier_version_no_better")
            .unwrap();
        assert_eq!(r.evidence["version"], 2);
        assert_eq!(r.evidence["cheaper_version"], 1);
        assert!(r.evidence["relative_cost_difference"].as_f64().unwrap() > 0.8);
        assert_eq!(r.severity, "warning");
        // v2 costs more but scores clearly better: no recommendation.
        let c = cells(
            &mut rng,
            &[
                Spec {
                    acc: Some(0.5),
                    ..spec("a", 1, "m")
                },
                Spec {
                    cost: 0.02,
                    acc: Some(0.8),
                    ..spec("a", 2, "m")
                },
            ],
        );
        assert!(!has(&recommend(&c, &[]), "costlier_version_no_better", "a"));
        // Costs within noise: nothing.
        let c = cells(&mut rng, &[spec("a", 1, "m"), spec("a", 2, "m")]);
        assert!(!has(&recommend(&c, &[]), "costlier_version_no_better", "a"));
        // Too few events.
        let c = cells(
            &mut rng,
            &[
                Spec {
                    n: 10,
                    ..spec("a", 1, "m")
                },
                Spec {
                    n: 10,
                    cost: 0.05,
                    ..spec("a", 2, "m")
                },
            ],
        );
        assert!(!has(&recommend(&c, &[]), "costlier_version_no_better", "a"));
    }

    #[test]
    fn cheaper_model_fires_and_does_not() {
        let mut rng = Rng::new(2);
        let c = cells(
            &mut rng,
            &[
                Spec {
                    cost: 0.03,
                    ..spec("a", 1, "big")
                },
                Spec {
                    cost: 0.005,
                    ..spec("a", 1, "small")
                },
            ],
        );
        let recs = recommend(&c, &[]);
        let r = recs
            .iter()
            .find(|r| r.kind == "cheaper_model_equal_success")
            .unwrap();
        assert_eq!(
            (
                r.evidence["model"].as_str(),
                r.evidence["cheaper_model"].as_str()
            ),
            (Some("big"), Some("small"))
        );
        // The cheaper model fails clearly more often: no recommendation.
        let c = cells(
            &mut rng,
            &[
                Spec {
                    cost: 0.03,
                    success: 0.97,
                    ..spec("a", 1, "big")
                },
                Spec {
                    cost: 0.005,
                    success: 0.70,
                    ..spec("a", 1, "small")
                },
            ],
        );
        assert!(!has(
            &recommend(&c, &[]),
            "cheaper_model_equal_success",
            "a"
        ));
        // Different prompts never compare.
        let c = cells(
            &mut rng,
            &[
                Spec {
                    cost: 0.03,
                    ..spec("a", 1, "big")
                },
                Spec {
                    cost: 0.005,
                    ..spec("b", 1, "small")
                },
            ],
        );
        assert!(!has(
            &recommend(&c, &[]),
            "cheaper_model_equal_success",
            "a"
        ));
    }

    #[test]
    fn rising_latency_and_errors() {
        let mut rng = Rng::new(3);
        let prev = cells(
            &mut rng,
            &[spec("a", 1, "m"), spec("b", 1, "m"), spec("c", 1, "m")],
        );
        let cur = cells(
            &mut rng,
            &[
                Spec {
                    latency: 600.0,
                    ..spec("a", 1, "m")
                },
                Spec {
                    success: 0.75,
                    ..spec("b", 1, "m")
                },
                spec("c", 1, "m"),
            ],
        );
        let recs = recommend(&cur, &prev);
        assert!(has(&recs, "rising_latency", "a"), "{:?}", kinds(&recs));
        assert!(!has(&recs, "rising_error_rate", "a"));
        assert!(has(&recs, "rising_error_rate", "b"));
        assert!(!has(&recs, "rising_latency", "b"));
        assert!(!has(&recs, "rising_latency", "c") && !has(&recs, "rising_error_rate", "c"));
        // Falling is not rising; no previous period, no trend.
        assert!(!has(&recommend(&prev, &cur), "rising_latency", "a"));
        assert!(!has(&recommend(&cur, &[]), "rising_latency", "a"));
    }

    #[test]
    fn token_rules() {
        let mut rng = Rng::new(4);
        let c = cells(
            &mut rng,
            &[
                Spec {
                    input_tokens: 1000,
                    ..spec("a", 9, "m")
                },
                Spec {
                    input_tokens: 1500,
                    ..spec("a", 10, "m")
                },
                Spec {
                    input_tokens: 5000,
                    ..spec("h", 1, "m")
                },
                Spec {
                    input_tokens: 1000,
                    ..spec("s", 1, "m")
                },
                Spec {
                    input_tokens: 1100,
                    ..spec("s", 2, "m")
                },
            ],
        );
        let recs = recommend(&c, &[]);
        let g = recs.iter().find(|r| r.kind == "token_growth").unwrap();
        assert_eq!(
            (
                g.prompt.as_str(),
                g.evidence["version"].as_u64(),
                g.evidence["previous_version"].as_u64()
            ),
            ("a", Some(10), Some(9))
        );
        assert!(has(&recs, "token_heavy_template", "h"));
        assert!(!has(&recs, "token_heavy_template", "a"));
        assert!(
            !has(&recs, "token_growth", "s"),
            "10% growth is below the threshold"
        );
        assert_eq!(
            recs.iter().filter(|r| r.kind.starts_with("token")).count(),
            2
        );
    }

    #[test]
    fn sorted_by_severity_and_deterministic() {
        let mut rng = Rng::new(5);
        let prev = cells(&mut rng, &[spec("b", 1, "m")]);
        let cur = cells(
            &mut rng,
            &[
                Spec {
                    input_tokens: 9000,
                    ..spec("h", 1, "m")
                },
                Spec {
                    success: 0.6,
                    ..spec("b", 1, "m")
                },
            ],
        );
        let a = recommend(&cur, &prev);
        assert_eq!(a, recommend(&cur, &prev));
        assert_eq!(a.first().map(|r| r.severity.as_str()), Some("warning"));
        assert_eq!(a.last().map(|r| r.severity.as_str()), Some("info"));
        assert!(recommend(&[], &[]).is_empty());
    }
}
