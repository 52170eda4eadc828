//! The A/B calculator for data from anywhere: cases shaped like the reference cases
//! (`shared/abstats-reference/cases.json`) in, the same statistics the reference libraries
//! compute out — in the reference's `expected` field names (so `check.py` can compare them)
//! or as a readable report.
//!
//! Accepted input: one case `{"id"?, "kind"?, "input": {...}}`, a bare input, a list of
//! either, or a document `{"cases": [...]}`. Kinds: `metric` (binomial or continuous arms),
//! `srm`, `sample_size_proportion`, `sample_size_mean`; inferred from the input's fields
//! when absent. Bad input is `invalid_request` naming the path (`cases[3].input.arms[1].n`).

use std::collections::BTreeSet;

use promptstore_stats::bayesian::{BayesianConfig, GaussianPrior, bayesian_test};
use promptstore_stats::classical::{self, Counts};
use promptstore_stats::effect::DifferenceType;
use promptstore_stats::frequentist::{FrequentistConfig, FrequentistResult, two_sided_t_test};
use promptstore_stats::power::{MdeType, sample_size_mean, sample_size_proportion};
use promptstore_stats::sequential::{SequentialConfig, sequential_test};
use promptstore_stats::srm::{DEFAULT_SRM_THRESHOLD, srm_test};
use promptstore_stats::summary::ArmStats;
use promptstore_stats::{BayesianResult, StatsError};
use serde_json::{Map, Value, json};

use super::definition::invalid;
use crate::error::Result;

mod input;
mod report;

pub use input::parse_cases;

/// The alpha of the classical intervals, which the reference always gives at 95%.
const CLASSICAL_ALPHA: f64 = 0.05;

/// One case to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct CalcCase {
    pub id: String,
    /// Where the case is in the input (`cases[3]`; empty for a single case), for error
    /// messages.
    pub path: String,
    pub input: CalcInput,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CalcInput {
    Metric(MetricCase),
    Srm(SrmCase),
    SampleSizeProportion(ProportionSizeCase),
    SampleSizeMean(MeanSizeCase),
}

impl CalcInput {
    pub fn kind(&self) -> &'static str {
        match self {
            CalcInput::Metric(_) => "metric",
            CalcInput::Srm(_) => "srm",
            CalcInput::SampleSizeProportion(_) => "sample_size_proportion",
            CalcInput::SampleSizeMean(_) => "sample_size_mean",
        }
    }
}

/// Arms of one metric (the first is the control) and the analysis settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCase {
    pub binomial: bool,
    pub metric_name: Option<String>,
    /// Lower is better.
    pub inverse: bool,
    pub arms: Vec<CalcArm>,
    /// The expected traffic split (SRM); any positive scale.
    pub weights: Vec<f64>,
    pub alpha: f64,
    pub sequential_tuning: f64,
    /// gbstats' default prior (flat unless `proper`).
    pub prior_default: GaussianPrior,
    /// The prior of the `gbstats_bayes_rel_proper_prior` block.
    pub prior_proper: GaussianPrior,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalcArm {
    pub name: String,
    pub stats: ArmStats,
    /// Binomial arms: the successes (for the classical proportion tests).
    pub successes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SrmCase {
    pub users: Vec<u64>,
    pub weights: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProportionSizeCase {
    pub baseline_rate: f64,
    pub mde: f64,
    pub mde_type: MdeType,
    pub alpha: f64,
    pub power: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MeanSizeCase {
    pub stddev: f64,
    pub mde_abs: f64,
    pub alpha: f64,
    pub power: f64,
}

/// How the calculator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CalcFormat {
    /// A readable analysis.
    #[default]
    Text,
    /// `[{"id", "expected": {...}}]` with the reference's field names.
    Reference,
}

impl CalcFormat {
    pub fn parse(s: &str) -> Option<CalcFormat> {
        match s {
            "text" => Some(CalcFormat::Text),
            "reference" => Some(CalcFormat::Reference),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CalcOutput {
    Text(String),
    Reference(Value),
}

/// The calculator's entry point (CLI and `POST /api/v1/abtest/analyze`): parse `doc` and
/// answer in `format`.
pub fn analyze_json(doc: &Value, format: CalcFormat) -> Result<CalcOutput> {
    let cases = parse_cases(doc)?;
    Ok(match format {
        CalcFormat::Reference => CalcOutput::Reference(reference_results(&cases)?),
        CalcFormat::Text => CalcOutput::Text(text_report(&cases)?),
    })
}

/// `[{"id", "expected": {...}}]` for every case.
pub fn reference_results(cases: &[CalcCase]) -> Result<Value> {
    let out: Result<Vec<Value>> = cases
        .iter()
        .map(|c| Ok(json!({ "id": c.id, "expected": case_reference(c)? })))
        .collect();
    Ok(Value::Array(out?))
}

/// A readable analysis of every case.
pub fn text_report(cases: &[CalcCase]) -> Result<String> {
    let mut out = String::new();
    for (i, case) in cases.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let expected = case_reference(case)?;
        report::render(&mut out, case, &expected);
    }
    Ok(out)
}

/// One case's results, shaped like the reference's `expected` block.
pub fn case_reference(case: &CalcCase) -> Result<Value> {
    let path = if case.path.is_empty() {
        "input".to_owned()
    } else {
        format!("{}.input", case.path)
    };
    let at = |e: StatsError| invalid(&path, e);
    match &case.input {
        CalcInput::Metric(m) => metric_block(m).map_err(at),
        CalcInput::Srm(s) => Ok(json!({ "srm": srm_block(&s.users, &s.weights).map_err(at)? })),
        CalcInput::SampleSizeProportion(p) => {
            let r = sample_size_proportion(p.baseline_rate, p.mde, p.mde_type, p.alpha, p.power)
                .map_err(at)?;
            Ok(json!({
                "p1": r.p1, "p2": r.p2, "abs_effect": r.abs_effect,
                "z_alpha_2": r.z_alpha_2, "z_beta": r.z_beta, "cohens_h": r.cohens_h,
                "n_per_arm_normal_unpooled": r.n_normal_unpooled,
                "n_per_arm_normal_unpooled_ceil": ceil(r.n_normal_unpooled),
                "n_per_arm_normal_pooled": r.n_normal_pooled,
                "n_per_arm_normal_pooled_ceil": ceil(r.n_normal_pooled),
                "n_per_arm_arcsine_closed_form": r.n_arcsine,
                "n_per_arm_arcsine_closed_form_ceil": ceil(r.n_arcsine),
                "n_per_arm_statsmodels_normalindpower": r.n_normal_ind_power,
                "n_per_arm_statsmodels_normalindpower_ceil": ceil(r.n_normal_ind_power),
                "statsmodels_power_at_solution": r.power_at_solution,
            }))
        }
        CalcInput::SampleSizeMean(m) => {
            let r = sample_size_mean(m.stddev, m.mde_abs, m.alpha, m.power).map_err(at)?;
            Ok(json!({
                "effect_size_d": r.effect_size_d,
                "n_per_arm_normal": r.n_normal,
                "n_per_arm_normal_ceil": ceil(r.n_normal),
                "n_per_arm_statsmodels_ttestindpower": r.n_t_ind_power,
                "n_per_arm_statsmodels_ttestindpower_ceil": ceil(r.n_t_ind_power),
                "statsmodels_power_at_solution": r.power_at_solution,
            }))
        }
    }
}

/// A finite number, or null (the reference's "undefined").
fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// The number of units to recruit: the ceiling, as an integer when representable.
fn ceil(x: f64) -> Value {
    let c = x.ceil();
    if (0.0..9.0e15).contains(&c) {
        json!(c as u64)
    } else {
        Value::Null
    }
}

fn srm_block(users: &[u64], weights: &[f64]) -> std::result::Result<Value, StatsError> {
    let r = srm_test(users, weights)?;
    Ok(json!({
        "expected_counts": r.expected_counts.iter().map(|e| num(*e)).collect::<Vec<_>>(),
        "df": r.df,
        "chisq_stat": opt(r.statistic),
        // scipy's chisquare is undefined without units; gbstats then reports 1.
        "chisq_p_scipy": opt(r.statistic.map(|_| r.p_value)),
        "gbstats_srm_p": num(r.p_value),
        "srm_flag_p_lt_0_001": r.is_mismatch(DEFAULT_SRM_THRESHOLD),
    }))
}

fn metric_block(m: &MetricCase) -> std::result::Result<Value, StatsError> {
    let arms: Vec<Value> = m
        .arms
        .iter()
        .map(|a| {
            let s = &a.stats;
            json!({
                "name": a.name,
                "n": s.n(),
                "mean": num(s.mean()),
                "variance_sample": opt(s.sample_variance()),
                "variance_gbstats": num(s.variance()),
                "stddev_gbstats": num(s.stddev()),
            })
        })
        .collect();
    let users: Vec<u64> = m.arms.iter().map(|a| a.stats.n()).collect();
    let control = &m.arms[0];
    let comparisons = m
        .arms
        .iter()
        .enumerate()
        .skip(1)
        .map(|(j, treatment)| comparison_block(m, control, treatment, j))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(json!({
        "arms": arms,
        "srm": srm_block(&users, &m.weights)?,
        "comparisons": comparisons,
    }))
}

fn comparison_block(
    m: &MetricCase,
    control: &CalcArm,
    treatment: &CalcArm,
    j: usize,
) -> std::result::Result<Value, StatsError> {
    let (a, b) = (&control.stats, &treatment.stats);
    let (ma, mb) = (a.mean(), b.mean());
    let mut cmp = Map::new();
    cmp.insert("control".into(), json!(0));
    cmp.insert("treatment".into(), json!(j));
    cmp.insert("abs_diff".into(), num(mb - ma));
    cmp.insert(
        "rel_diff".into(),
        if ma == 0.0 {
            Value::Null
        } else {
            num((mb - ma) / ma)
        },
    );
    cmp.insert("classical".into(), classical_block(m, control, treatment)?);
    for (name, difference_type) in [
        ("rel", DifferenceType::Relative),
        ("abs", DifferenceType::Absolute),
    ] {
        let freq = two_sided_t_test(
            a,
            b,
            &FrequentistConfig {
                alpha: m.alpha,
                difference_type,
            },
        )?;
        cmp.insert(format!("gbstats_freq_{name}"), freq_block(&freq, None));
        let seq = sequential_test(
            a,
            b,
            &SequentialConfig {
                alpha: m.alpha,
                difference_type,
                tuning: m.sequential_tuning,
            },
        )?;
        cmp.insert(
            format!("gbstats_seq_{name}"),
            freq_block(&seq.result, Some(seq.rho)),
        );
        let bayes = bayesian_test(
            a,
            b,
            &BayesianConfig {
                alpha: m.alpha,
                difference_type,
                inverse: m.inverse,
                prior: m.prior_default,
            },
        )?;
        cmp.insert(format!("gbstats_bayes_{name}"), bayes_block(&bayes));
    }
    let proper = bayesian_test(
        a,
        b,
        &BayesianConfig {
            alpha: m.alpha,
            difference_type: DifferenceType::Relative,
            inverse: m.inverse,
            prior: m.prior_proper,
        },
    )?;
    cmp.insert(
        "gbstats_bayes_rel_proper_prior".into(),
        bayes_block(&proper),
    );
    Ok(Value::Object(cmp))
}

fn freq_block(r: &FrequentistResult, rho: Option<f64>) -> Value {
    let mut m = Map::new();
    m.insert("expected".into(), num(r.expected));
    m.insert("uplift_stddev".into(), num(r.uplift_stddev));
    m.insert("ci_lower".into(), num(r.ci_lower));
    m.insert("ci_upper".into(), num(r.ci_upper));
    m.insert("p_value".into(), num(r.p_value));
    match rho {
        Some(rho) => m.insert("rho".into(), num(rho)),
        None => m.insert("dof".into(), opt(r.dof)),
    };
    m.insert("error_message".into(), json!(r.error.map(|e| e.code())));
    Value::Object(m)
}

fn bayes_block(r: &BayesianResult) -> Value {
    json!({
        "expected": num(r.expected),
        "uplift_stddev": num(r.uplift_stddev),
        "ci_lower": num(r.ci_lower),
        "ci_upper": num(r.ci_upper),
        "chance_to_win": num(r.chance_to_win),
        "risk_control": num(r.risk_control),
        "risk_treatment": num(r.risk_treatment),
        "risk_type": r.risk_type.as_str(),
        "error_message": r.error.map(|e| e.code()),
    })
}

fn classical_block(
    m: &MetricCase,
    control: &CalcArm,
    treatment: &CalcArm,
) -> std::result::Result<Value, StatsError> {
    let (a, b) = (&control.stats, &treatment.stats);
    let mut out = Map::new();
    if m.binomial {
        // The proportion tests need at least one unit per arm; without, all are undefined.
        let counts = |arm: &CalcArm| {
            arm.successes
                .and_then(|s| Counts::new(s, arm.stats.n()).ok())
        };
        let pair = counts(control).zip(counts(treatment));
        let pooled = pair.map(|(a, b)| classical::z_test_pooled(a, b));
        let unpooled = pair.map(|(a, b)| classical::z_test_unpooled(a, b));
        out.insert(
            "z_pooled_stat".into(),
            opt(pooled.and_then(|t| t.statistic)),
        );
        out.insert("z_pooled_p".into(), opt(pooled.and_then(|t| t.p_value)));
        out.insert("se_pooled".into(), opt(pooled.map(|t| t.se)));
        out.insert(
            "z_unpooled_stat".into(),
            opt(unpooled.and_then(|t| t.statistic)),
        );
        out.insert("z_unpooled_p".into(), opt(unpooled.and_then(|t| t.p_value)));
        out.insert("se_unpooled".into(), opt(unpooled.map(|t| t.se)));
        let wald = match pair {
            Some((a, b)) => Some(classical::wald_diff_ci(a, b, CLASSICAL_ALPHA)?),
            None => None,
        };
        out.insert("abs_diff_ci95_wald_lower".into(), opt(wald.map(|c| c.0)));
        out.insert("abs_diff_ci95_wald_upper".into(), opt(wald.map(|c| c.1)));
        let newcombe = match pair {
            Some((a, b)) => Some(classical::newcombe_diff_ci(a, b, CLASSICAL_ALPHA)?),
            None => None,
        };
        out.insert(
            "abs_diff_ci95_newcombe_lower".into(),
            opt(newcombe.map(|c| c.0)),
        );
        out.insert(
            "abs_diff_ci95_newcombe_upper".into(),
            opt(newcombe.map(|c| c.1)),
        );
        let katz = match pair {
            Some((a, b)) => classical::katz_log_relative_ci(a, b, CLASSICAL_ALPHA)?,
            None => None,
        };
        out.insert(
            "rel_diff_ci95_katz_log_lower".into(),
            opt(katz.map(|c| c.0)),
        );
        out.insert(
            "rel_diff_ci95_katz_log_upper".into(),
            opt(katz.map(|c| c.1)),
        );
        out.insert(
            "chi2_yates_p".into(),
            opt(pair.and_then(|(a, b)| classical::chi2_yates_p(a, b))),
        );
        out.insert(
            "fisher_exact_p".into(),
            opt(pair.map(|(a, b)| classical::fisher_exact_p(a, b))),
        );
    }
    let welch = classical::welch_t_test(a, b, CLASSICAL_ALPHA)?;
    out.insert("welch_t_stat".into(), opt(welch.map(|t| t.statistic)));
    out.insert("welch_df".into(), opt(welch.map(|t| t.df)));
    out.insert("welch_p".into(), opt(welch.map(|t| t.p_value)));
    out.insert("welch_abs_diff_se".into(), opt(welch.map(|t| t.se)));
    out.insert(
        "welch_abs_diff_ci95_lower".into(),
        opt(welch.map(|t| t.ci_lower)),
    );
    out.insert(
        "welch_abs_diff_ci95_upper".into(),
        opt(welch.map(|t| t.ci_upper)),
    );
    if !m.binomial {
        let student = classical::student_t_test(a, b, CLASSICAL_ALPHA)?;
        out.insert("student_t_stat".into(), opt(student.map(|t| t.statistic)));
        out.insert("student_t_p".into(), opt(student.map(|t| t.p_value)));
    }
    let delta = classical::relative_delta_ci(a, b, CLASSICAL_ALPHA)?;
    out.insert("rel_diff_se_delta".into(), opt(delta.se));
    out.insert(
        "rel_diff_ci95_delta_lower".into(),
        opt(delta.ci.map(|c| c.0)),
    );
    out.insert(
        "rel_diff_ci95_delta_upper".into(),
        opt(delta.ci.map(|c| c.1)),
    );
    Ok(Value::Object(out))
}

/// Case ids must be unique: check.py matches results to cases by id.
fn check_unique_ids(cases: &[CalcCase]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for c in cases {
        if !seen.insert(c.id.as_str()) {
            return Err(invalid(
                &format!("{}.id", c.path),
                format_args!("case id '{}' is used twice", super::metric::shorten(&c.id)),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "calculator_tests.rs"]
mod tests;
