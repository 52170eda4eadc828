//! The calculator against every reference case (gbstats, scipy, statsmodels) within the
//! file's tolerances, its input shapes and defaults, its refusals, and its text report.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::error::Error;

/// The reference cases; a missing file fails the run (the oracle must never be skipped).
fn oracle() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/abstats-reference/cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reference cases missing at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Leaf-by-leaf comparison with the tolerance class of each field; every expected leaf
/// must be present. Returns the number of leaves compared and the failures.
fn compare(oracle: &Value, expected: &Value, actual: &Value, path: &str) -> (usize, Vec<String>) {
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
                match actual.get(k) {
                    None => failures.push(format!("{path}.{k}: missing")),
                    Some(a) => walk(
                        oracle,
                        v,
                        a,
                        &format!("{path}.{k}"),
                        Some(k),
                        compared,
                        failures,
                    ),
                }
            }
        }
        Value::Array(items) => {
            let len = actual.as_array().map_or(0, Vec::len);
            if len != items.len() {
                failures.push(format!("{path}: {len} items, expected {}", items.len()));
            }
            for (i, v) in items.iter().enumerate() {
                let a = actual.get(i).unwrap_or(&Value::Null);
                walk(
                    oracle,
                    v,
                    a,
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
            let (rtol, atol) = (tol["rtol"].as_f64().unwrap(), tol["atol"].as_f64().unwrap());
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
                failures.push(format!("{path}: expected {leaf}, got {actual} [{class}]"));
            }
        }
    }
}

#[test]
fn every_reference_case_is_reproduced_within_its_tolerance() {
    let oracle = oracle();
    let cases = oracle["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let CalcOutput::Reference(results) = analyze_json(&oracle, CalcFormat::Reference).unwrap()
    else {
        panic!("reference format asked");
    };
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    let mut total = 0;
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(results) {
        let id = case["id"].as_str().unwrap();
        assert_eq!(result["id"], json!(id));
        let (n, f) = compare(&oracle, &case["expected"], &result["expected"], id);
        assert!(n > 0, "{id}: nothing compared");
        total += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} of {total} reference values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_comparison_catches_a_wrong_value() {
    // The oracle check above must be able to fail.
    let oracle = oracle();
    let case = &oracle["cases"][0];
    let mut actual = case_reference(&parse_cases(case).unwrap()[0]).unwrap();
    let p = &mut actual["comparisons"][0]["gbstats_freq_rel"]["p_value"];
    *p = json!(p.as_f64().unwrap() * (1.0 + 1e-4));
    actual["arms"][0].as_object_mut().unwrap().remove("mean");
    let (_, failures) = compare(&oracle, &case["expected"], &actual, "case");
    assert_eq!(failures.len(), 2, "{failures:?}");
}

#[test]
fn the_text_report_covers_every_case() {
    let oracle = oracle();
    let CalcOutput::Text(text) = analyze_json(&oracle, CalcFormat::Text).unwrap() else {
        panic!("text asked");
    };
    for case in oracle["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        assert!(
            text.contains(&format!("{id} — ")),
            "{id} missing from the report"
        );
    }
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    let section = |id: &str| {
        let start = text.find(&format!("{id} — ")).unwrap();
        let rest = &text[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    };
    let basic = section("bin_basic_1000v1000");
    assert!(basic.contains("+20.0%"), "{basic}");
    assert!(basic.contains("p = 0.1924"), "{basic}");
    assert!(basic.contains("no significant difference"), "{basic}");
    assert!(basic.contains("chance to beat the control"), "{basic}");
    assert!(section("bin_moderate_significant").contains("is better than control"));
    let inverse = section("bin_inverse_error_rate");
    assert!(inverse.contains("lower is better"), "{inverse}");
    assert!(section("srm_three_bad").contains("MISMATCH"));
    assert!(section("srm_5000_5000").contains("→ ok"));
    assert!(section("bin_zero_treatment").contains("zero variance"));
    assert!(
        section("ss_p10_rel10").contains("14749"),
        "{}",
        section("ss_p10_rel10")
    );
}

fn binomial_input() -> Value {
    json!({
        "arms": [{"n": 1000, "successes": 100}, {"n": 1000, "successes": 120}],
    })
}

#[test]
fn every_input_shape_gives_the_same_answer() {
    let bare = binomial_input();
    let case = json!({"id": "x", "input": bare.clone()});
    let listed = json!([case.clone()]);
    let doc = json!({"cases": [case.clone()]});
    let answer = |v: &Value| {
        let CalcOutput::Reference(r) = analyze_json(v, CalcFormat::Reference).unwrap() else {
            panic!()
        };
        r[0]["expected"].clone()
    };
    let expected = answer(&case);
    for v in [&bare, &listed, &doc] {
        assert_eq!(answer(v), expected, "{v}");
    }
    // Defaults: alpha 0.05, tuning 5000, equal weights, gbstats' priors.
    let c = parse_cases(&bare).unwrap().remove(0);
    assert_eq!(c.id, "case-1");
    let CalcInput::Metric(m) = c.input else {
        panic!("a metric")
    };
    assert!(m.binomial && !m.inverse);
    assert_eq!((m.alpha, m.sequential_tuning), (0.05, 5000.0));
    assert_eq!(m.weights, vec![1.0, 1.0]);
    assert!(!m.prior_default.proper && m.prior_proper.proper);
    assert_eq!(m.arms[1].name, "treatment 1");
}

#[test]
fn kinds_are_inferred_from_the_fields() {
    let kind = |v: Value| parse_cases(&v).unwrap()[0].input.kind();
    assert_eq!(kind(binomial_input()), "metric");
    assert_eq!(kind(json!({"users": [10, 12]})), "srm");
    assert_eq!(
        kind(json!({"baseline_rate": 0.1, "mde": 0.1})),
        "sample_size_proportion"
    );
    assert_eq!(
        kind(json!({"stddev": 1.0, "mde_abs": 0.1})),
        "sample_size_mean"
    );
    let continuous = json!({"arms": [
        {"n": 4, "sum": 10, "sum_squares": 30},
        {"n": 4, "sum": 14, "sum_squares": 54}
    ]});
    let c = parse_cases(&continuous).unwrap().remove(0);
    let CalcInput::Metric(m) = c.input else {
        panic!()
    };
    assert!(!m.binomial);
}

/// Each refusal: the input and the path the error must name.
#[test]
fn bad_input_names_the_path() {
    let doc = |arm1: Value| {
        json!({"cases": [
            {"id": "a", "input": binomial_input()},
            {"id": "b", "input": {"users": [1, 2]}},
            {"id": "c", "input": {"baseline_rate": 0.1, "mde": 0.1}},
            {"id": "d", "input": {"arms": [{"n": 10, "successes": 1}, arm1]}},
        ]})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            doc(json!({"n": -1, "successes": 1})),
            "cases[3].input.arms[1].n",
        ),
        (
            doc(json!({"n": 1.5, "successes": 1})),
            "cases[3].input.arms[1].n",
        ),
        (doc(json!({"successes": 1})), "cases[3].input.arms[1].n"),
        (
            doc(json!({"n": 10, "successes": 11})),
            "cases[3].input.arms[1].successes",
        ),
        (doc(json!({"n": 10})), "cases[3].input.arms[1].successes"),
        (
            doc(json!({"n": 10, "successes": 2, "sum": 3})),
            "cases[3].input.arms[1].sum",
        ),
        (
            doc(json!({"n": 10, "sucesses": 2})),
            "cases[3].input.arms[1].sucesses",
        ),
        (doc(json!("ten")), "cases[3].input.arms[1]"),
        (json!({"arms": [{"n": 10, "successes": 1}]}), "arms"),
        (
            json!({"arms": [{"n": 4, "sum": 1, "sum_squares": -1}, {"n": 4, "sum": 1, "sum_squares": 1}]}),
            "arms[0].sum_squares",
        ),
        (
            json!({"arms": [{"n": 4, "sum": "x", "sum_squares": 1}, {"n": 4, "sum": 1, "sum_squares": 1}]}),
            "arms[0].sum",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "alpha": 1.5}),
            "alpha",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "weights": [1]}),
            "weights",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "weights": [1, -1]}),
            "weights[1]",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "weights": [0, 0]}),
            "weights",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "sequential_tuning_parameter": 0}),
            "sequential_tuning_parameter",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "prior_proper": {"stddev": 0}}),
            "prior_proper.stddev",
        ),
        (
            json!({"arms": [{"n": 1, "successes": 1}, {"n": 1, "successes": 0}], "metric_type": "ratio"}),
            "metric_type",
        ),
        (json!({"input": {"users": [1, 2]}, "kind": "magic"}), "kind"),
        (json!({"input": {"users": [1, "x"]}}), "input.users[1]"),
        (json!({"users": [1, 2], "weights": [1, 1, 1]}), "weights"),
        (json!({"baseline_rate": 1.5, "mde": 0.1}), "baseline_rate"),
        (json!({"baseline_rate": 0.9, "mde": 0.2}), "mde"),
        (
            json!({"baseline_rate": 0.1, "mde": 0.1, "alternative": "larger"}),
            "alternative",
        ),
        (
            json!({"baseline_rate": 0.1, "mde": 0.1, "ratio": 2}),
            "ratio",
        ),
        (
            json!({"baseline_rate": 0.1, "mde": 0.1, "mde_type": "huge"}),
            "mde_type",
        ),
        (json!({"stddev": 0, "mde_abs": 0.1}), "stddev"),
        (json!({"stddev": 1, "mde_abs": 0}), "mde_abs"),
        (json!({"hello": 1}), "(document)"),
        (json!(42), "(document)"),
        (json!({"cases": []}), "cases"),
        (json!({"cases": {}}), "cases"),
        (
            json!([{"id": "x", "input": {"users": [1, 2]}}, {"id": "x", "input": {"users": [1, 2]}}]),
            "[1].id",
        ),
    ];
    for (input, path) in cases {
        let err: Error =
            analyze_json(&input, CalcFormat::Text).expect_err(&format!("{input} must be refused"));
        assert_eq!(
            err.code(),
            promptstore_types::ErrorCode::InvalidRequest,
            "{err}"
        );
        assert_eq!(
            err.to_body().details["field"],
            json!(path),
            "{input}: {err}"
        );
    }
}

#[test]
fn degenerate_data_gives_nulls_and_error_codes_never_nan() {
    let input = json!({"arms": [
        {"n": 0, "successes": 0},
        {"n": 10, "successes": 0},
        {"n": 10, "successes": 10}
    ]});
    let CalcOutput::Reference(r) = analyze_json(&input, CalcFormat::Reference).unwrap() else {
        panic!()
    };
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("NaN"));
    let c = &r[0]["expected"]["comparisons"][0];
    assert_eq!(c["rel_diff"], Value::Null);
    assert_eq!(c["classical"]["z_pooled_p"], Value::Null);
    assert_eq!(
        c["gbstats_freq_rel"]["error_message"],
        "ZERO_NEGATIVE_BASELINE_VARIATION"
    );
    let CalcOutput::Text(t) = analyze_json(&input, CalcFormat::Text).unwrap() else {
        panic!()
    };
    assert!(t.contains("no gbstats test possible"), "{t}");
}
