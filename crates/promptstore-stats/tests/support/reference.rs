//! Shared by `tests/reference_cases.rs` and `examples/abstats_results.rs`: loads the
//! reference cases (gbstats 0.8.0, scipy, statsmodels outputs), computes this crate's
//! answer to each in the same JSON shape, and compares leaf by leaf with the tolerances.

use std::path::{Path, PathBuf};

use promptstore_stats::bayesian::{BayesianConfig, GaussianPrior, bayesian_test};
use promptstore_stats::classical::{self, Counts};
use promptstore_stats::effect::DifferenceType;
use promptstore_stats::frequentist::{FrequentistConfig, FrequentistResult, two_sided_t_test};
use promptstore_stats::power::{MdeType, sample_size_mean, sample_size_proportion};
use promptstore_stats::sequential::{SequentialConfig, sequential_test};
use promptstore_stats::srm::{DEFAULT_SRM_THRESHOLD, srm_test};
use promptstore_stats::summary::{ArmStats, MetricKind};
use serde_json::{Map, Value, json};

/// Where `cases.json` lives: `$ABSTATS_CASES` if set, else `shared/abstats-reference/`
/// beside the repository (`../../../shared` from this crate, in development and in CI).
pub fn cases_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ABSTATS_CASES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/abstats-reference/cases.json")
}

/// The parsed `cases.json`; panics with the path when it is missing (a missing oracle must
/// fail the test run, never skip it).
pub fn load_cases() -> Value {
    let path = cases_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reference cases not found at {}: {e} (set ABSTATS_CASES to its path)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("input field {key} missing or not a number in {v}"))
}

fn int(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("input field {key} missing or not an integer in {v}"))
}

fn opt(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}

/// This crate's outputs for one case, shaped like the case's `expected`.
pub fn compute(case: &Value) -> Value {
    let input = &case["input"];
    match case["kind"].as_str().unwrap_or_default() {
        "metric" => metric_case(input),
        "srm" => {
            let users: Vec<u64> = input["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| u.as_u64().expect("user count"))
                .collect();
            json!({ "srm": srm_block(&users, &weights(input)) })
        }
        "sample_size_proportion" => {
            let mde_type = match input["mde_type"].as_str() {
                Some("relative") => MdeType::Relative,
                Some("absolute") => MdeType::Absolute,
                other => panic!("unknown mde_type {other:?}"),
            };
            let r = sample_size_proportion(
                num(input, "baseline_rate"),
                num(input, "mde"),
                mde_type,
                num(input, "alpha"),
                num(input, "power"),
            )
            .expect("valid sample size input");
            json!({
                "p1": r.p1, "p2": r.p2, "abs_effect": r.abs_effect,
                "z_alpha_2": r.z_alpha_2, "z_beta": r.z_beta, "cohens_h": r.cohens_h,
                "n_per_arm_normal_unpooled": r.n_normal_unpooled,
                "n_per_arm_normal_unpooled_ceil": r.n_normal_unpooled.ceil() as u64,
                "n_per_arm_normal_pooled": r.n_normal_pooled,
                "n_per_arm_normal_pooled_ceil": r.n_normal_pooled.ceil() as u64,
                "n_per_arm_arcsine_closed_form": r.n_arcsine,
                "n_per_arm_arcsine_closed_form_ceil": r.n_arcsine.ceil() as u64,
                "n_per_arm_statsmodels_normalindpower": r.n_normal_ind_power,
                "n_per_arm_statsmodels_normalindpower_ceil": r.n_normal_ind_power.ceil() as u64,
                "statsmodels_power_at_solution": r.power_at_solution,
            })
        }
        "sample_size_mean" => {
            let r = sample_size_mean(
                num(input, "stddev"),
                num(input, "mde_abs"),
                num(input, "alpha"),
                num(input, "power"),
            )
            .expect("valid sample size input");
            json!({
                "effect_size_d": r.effect_size_d,
                "n_per_arm_normal": r.n_normal,
                "n_per_arm_normal_ceil": r.n_normal.ceil() as u64,
                "n_per_arm_statsmodels_ttestindpower": r.n_t_ind_power,
                "n_per_arm_statsmodels_ttestindpower_ceil": r.n_t_ind_power.ceil() as u64,
                "statsmodels_power_at_solution": r.power_at_solution,
            })
        }
        other => panic!("unknown case kind {other:?}"),
    }
}

fn weights(input: &Value) -> Vec<f64> {
    input["weights"]
        .as_array()
        .expect("weights")
        .iter()
        .map(|w| w.as_f64().expect("weight"))
        .collect()
}

fn srm_block(users: &[u64], weights: &[f64]) -> Value {
    let r = srm_test(users, weights).expect("valid SRM input");
    json!({
        "expected_counts": r.expected_counts,
        "df": r.df,
        "chisq_stat": opt(r.statistic),
        // scipy's chisquare is undefined without units; gbstats then reports 1.
        "chisq_p_scipy": opt(r.statistic.map(|_| r.p_value)),
        "gbstats_srm_p": r.p_value,
        "srm_flag_p_lt_0_001": r.is_mismatch(DEFAULT_SRM_THRESHOLD),
    })
}

fn metric_case(input: &Value) -> Value {
    let binomial = match input["metric_type"].as_str() {
        Some("binomial") => true,
        Some("continuous") => false,
        other => panic!("unknown metric_type {other:?}"),
    };
    let alpha = num(input, "alpha");
    let inverse = input["inverse"].as_bool().unwrap_or(false);
    let tuning = num(input, "sequential_tuning_parameter");
    let prior = |p: &Value| GaussianPrior {
        mean: num(p, "mean"),
        variance: num(p, "stddev").powi(2),
        proper: p["proper"].as_bool().unwrap_or(false),
    };
    let default_prior = prior(&input["prior_default"]);
    let proper_prior = prior(&input["prior_proper"]);

    let raw_arms = input["arms"].as_array().expect("arms");
    let arms: Vec<ArmStats> = raw_arms
        .iter()
        .map(|a| {
            if binomial {
                ArmStats::proportion(int(a, "n"), int(a, "successes"))
            } else {
                ArmStats::sample_mean(int(a, "n"), num(a, "sum"), num(a, "sum_squares"))
            }
            .expect("valid arm")
        })
        .collect();
    let users: Vec<u64> = arms.iter().map(ArmStats::n).collect();

    let arm_blocks: Vec<Value> = arms
        .iter()
        .map(|a| {
            json!({
                "mean": a.mean(),
                "variance_sample": opt(a.sample_variance()),
                "variance_gbstats": a.variance(),
                "stddev_gbstats": a.stddev(),
            })
        })
        .collect();

    let control = &arms[0];
    let comparisons: Vec<Value> = arms
        .iter()
        .enumerate()
        .skip(1)
        .map(|(j, treatment)| {
            let ma = control.mean();
            let mb = treatment.mean();
            let mut cmp = Map::new();
            cmp.insert("control".into(), json!(0));
            cmp.insert("treatment".into(), json!(j));
            cmp.insert("abs_diff".into(), json!(mb - ma));
            cmp.insert(
                "rel_diff".into(),
                if ma == 0.0 {
                    Value::Null
                } else {
                    json!((mb - ma) / ma)
                },
            );
            cmp.insert(
                "classical".into(),
                classical_block(control, treatment, binomial, &raw_arms[0], &raw_arms[j]),
            );
            for (name, diff) in [
                ("rel", DifferenceType::Relative),
                ("abs", DifferenceType::Absolute),
            ] {
                let freq = two_sided_t_test(
                    control,
                    treatment,
                    &FrequentistConfig {
                        alpha,
                        difference_type: diff,
                    },
                )
                .expect("valid config");
                cmp.insert(format!("gbstats_freq_{name}"), freq_block(&freq, None));
                let seq = sequential_test(
                    control,
                    treatment,
                    &SequentialConfig {
                        alpha,
                        difference_type: diff,
                        tuning,
                    },
                )
                .expect("valid config");
                cmp.insert(
                    format!("gbstats_seq_{name}"),
                    freq_block(&seq.result, Some(seq.rho)),
                );
                let bayes = bayesian_test(
                    control,
                    treatment,
                    &BayesianConfig {
                        alpha,
                        difference_type: diff,
                        inverse,
                        prior: default_prior,
                    },
                )
                .expect("valid config");
                cmp.insert(format!("gbstats_bayes_{name}"), bayes_block(&bayes));
            }
            let proper = bayesian_test(
                control,
                treatment,
                &BayesianConfig {
                    alpha,
                    difference_type: DifferenceType::Relative,
                    inverse,
                    prior: proper_prior,
                },
            )
            .expect("valid config");
            cmp.insert(
                "gbstats_bayes_rel_proper_prior".into(),
                bayes_block(&proper),
            );
            Value::Object(cmp)
        })
        .collect();

    json!({
        "arms": arm_blocks,
        "srm": srm_block(&users, &weights(input)),
        "comparisons": comparisons,
    })
}

fn freq_block(r: &FrequentistResult, rho: Option<f64>) -> Value {
    let mut m = Map::new();
    m.insert("expected".into(), json!(r.expected));
    m.insert("uplift_stddev".into(), json!(r.uplift_stddev));
    m.insert("ci_lower".into(), json!(r.ci_lower));
    m.insert("ci_upper".into(), json!(r.ci_upper));
    m.insert("p_value".into(), json!(r.p_value));
    match rho {
        Some(rho) => m.insert("rho".into(), json!(rho)),
        None => m.insert("dof".into(), opt(r.dof)),
    };
    m.insert("error_message".into(), json!(r.error.map(|e| e.code())));
    Value::Object(m)
}

fn bayes_block(r: &promptstore_stats::BayesianResult) -> Value {
    json!({
        "expected": r.expected,
        "uplift_stddev": r.uplift_stddev,
        "ci_lower": r.ci_lower,
        "ci_upper": r.ci_upper,
        "chance_to_win": r.chance_to_win,
        "risk_control": r.risk_control,
        "risk_treatment": r.risk_treatment,
        "risk_type": r.risk_type.as_str(),
        "error_message": r.error.map(|e| e.code()),
    })
}

fn classical_block(
    control: &ArmStats,
    treatment: &ArmStats,
    binomial: bool,
    raw_a: &Value,
    raw_b: &Value,
) -> Value {
    const ALPHA: f64 = 0.05; // classical intervals are always 95% in the reference
    let mut m = Map::new();
    if binomial {
        debug_assert_eq!(control.kind(), MetricKind::Proportion);
        let a = Counts::new(int(raw_a, "successes"), int(raw_a, "n")).expect("counts");
        let b = Counts::new(int(raw_b, "successes"), int(raw_b, "n")).expect("counts");
        let pooled = classical::z_test_pooled(a, b);
        m.insert("z_pooled_stat".into(), opt(pooled.statistic));
        m.insert("z_pooled_p".into(), opt(pooled.p_value));
        m.insert("se_pooled".into(), json!(pooled.se));
        let unpooled = classical::z_test_unpooled(a, b);
        m.insert("z_unpooled_stat".into(), opt(unpooled.statistic));
        m.insert("z_unpooled_p".into(), opt(unpooled.p_value));
        m.insert("se_unpooled".into(), json!(unpooled.se));
        let (lo, hi) = classical::wald_diff_ci(a, b, ALPHA).expect("alpha");
        m.insert("abs_diff_ci95_wald_lower".into(), json!(lo));
        m.insert("abs_diff_ci95_wald_upper".into(), json!(hi));
        let (lo, hi) = classical::newcombe_diff_ci(a, b, ALPHA).expect("alpha");
        m.insert("abs_diff_ci95_newcombe_lower".into(), json!(lo));
        m.insert("abs_diff_ci95_newcombe_upper".into(), json!(hi));
        let katz = classical::katz_log_relative_ci(a, b, ALPHA).expect("alpha");
        m.insert(
            "rel_diff_ci95_katz_log_lower".into(),
            opt(katz.map(|c| c.0)),
        );
        m.insert(
            "rel_diff_ci95_katz_log_upper".into(),
            opt(katz.map(|c| c.1)),
        );
        m.insert("chi2_yates_p".into(), opt(classical::chi2_yates_p(a, b)));
        m.insert(
            "fisher_exact_p".into(),
            json!(classical::fisher_exact_p(a, b)),
        );
    }
    let welch = classical::welch_t_test(control, treatment, ALPHA).expect("alpha");
    m.insert("welch_t_stat".into(), opt(welch.map(|t| t.statistic)));
    m.insert("welch_df".into(), opt(welch.map(|t| t.df)));
    m.insert("welch_p".into(), opt(welch.map(|t| t.p_value)));
    m.insert("welch_abs_diff_se".into(), opt(welch.map(|t| t.se)));
    m.insert(
        "welch_abs_diff_ci95_lower".into(),
        opt(welch.map(|t| t.ci_lower)),
    );
    m.insert(
        "welch_abs_diff_ci95_upper".into(),
        opt(welch.map(|t| t.ci_upper)),
    );
    if !binomial {
        let student = classical::student_t_test(control, treatment, ALPHA).expect("alpha");
        m.insert("student_t_stat".into(), opt(student.map(|t| t.statistic)));
        m.insert("student_t_p".into(), opt(student.map(|t| t.p_value)));
    }
    let delta = classical::relative_delta_ci(control, treatment, ALPHA).expect("alpha");
    m.insert("rel_diff_se_delta".into(), opt(delta.se));
    m.insert(
        "rel_diff_ci95_delta_lower".into(),
        opt(delta.ci.map(|c| c.0)),
    );
    m.insert(
        "rel_diff_ci95_delta_upper".into(),
        opt(delta.ci.map(|c| c.1)),
    );
    Value::Object(m)
}

/// Compare `actual` with `expected` leaf by leaf, with the tolerance class of each field
/// name; returns (number of leaves compared, failure descriptions). A leaf missing from
/// `actual` is a failure: every reference field must be reproduced.
pub fn compare(
    oracle: &Value,
    expected: &Value,
    actual: &Value,
    path: &str,
) -> (usize, Vec<String>) {
    let mut compared = 0;
    let mut failures = Vec::new();
    walk(
        oracle,
        expected,
        actual,
        path,
        None,
        &mut compared,
        &mut failures,
    );
    (compared, failures)
}

fn walk(
    oracle: &Value,
    expected: &Value,
    actual: &Value,
    path: &str,
    field: Option<&str>,
    compared: &mut usize,
    failures: &mut Vec<String>,
) {
    match expected {
        Value::Object(map) => {
            for (k, v) in map {
                let next = actual.get(k).unwrap_or(&Value::Null);
                if actual.get(k).is_none() && !v.is_null() {
                    failures.push(format!("{path}.{k}: missing"));
                    continue;
                }
                walk(
                    oracle,
                    v,
                    next,
                    &format!("{path}.{k}"),
                    Some(k),
                    compared,
                    failures,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let next = actual.get(i).unwrap_or(&Value::Null);
                walk(
                    oracle,
                    v,
                    next,
                    &format!("{path}[{i}]"),
                    field,
                    compared,
                    failures,
                );
            }
        }
        leaf => {
            *compared += 1;
            let class = field
                .and_then(|f| oracle["field_tolerances"][f].as_str())
                .unwrap_or("dist");
            let tol = &oracle["tolerance_classes"][class];
            let (rtol, atol) = (
                tol["rtol"].as_f64().expect("rtol"),
                tol["atol"].as_f64().expect("atol"),
            );
            let ok = match (leaf, actual) {
                (Value::Null, a) => a.is_null(),
                (Value::Bool(e), a) => a.as_bool() == Some(*e),
                (Value::String(e), a) => a.as_str() == Some(e.as_str()),
                (Value::Number(e), a) => match (e.as_f64(), a.as_f64()) {
                    (Some(e), Some(a)) => (a - e).abs() <= atol + rtol * e.abs(),
                    _ => false,
                },
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{path}: expected {leaf}, got {actual} [{class}: rtol {rtol}, atol {atol}]"
                ));
            }
        }
    }
}

/// This crate's results for every case, in check.py's `{"cases": [{"id", "expected"}]}`
/// shape.
pub fn results_document(oracle: &Value) -> Value {
    let cases: Vec<Value> = oracle["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| json!({ "id": c["id"], "expected": compute(c) }))
        .collect();
    json!({ "cases": cases })
}
