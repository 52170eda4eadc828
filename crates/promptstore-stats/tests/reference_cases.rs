//! Every reference case (gbstats 0.8.0, scipy, statsmodels) reproduced within its tolerance:
//! the proof that our A/B statistics give the numbers established libraries give.

mod support;

use support::reference::{compare, compute, load_cases, results_document};

#[test]
fn every_reference_case_is_reproduced_within_tolerance() {
    let oracle = load_cases();
    let cases = oracle["cases"].as_array().expect("cases array");
    assert!(!cases.is_empty(), "cases.json holds no cases");
    let mut total = 0;
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().expect("case id");
        let actual = compute(case);
        let (n, f) = compare(&oracle, &case["expected"], &actual, id);
        assert!(n > 0, "{id}: nothing compared");
        total += n;
        failures.extend(f);
    }
    // Also leave the results where check.py can read them.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("abstats-RESULTS.json");
    let doc = serde_json::to_string_pretty(&results_document(&oracle)).expect("serialize");
    std::fs::write(&out, doc).expect("write results");
    assert!(
        failures.is_empty(),
        "{} of {total} reference values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{total} reference values reproduced; results in {}",
        out.display()
    );
}

#[test]
fn the_comparison_catches_a_wrong_value_and_a_missing_field() {
    let oracle = load_cases();
    let case = &oracle["cases"][0];
    let mut actual = compute(case);
    let (_, clean) = compare(&oracle, &case["expected"], &actual, "case");
    assert!(clean.is_empty(), "{clean:?}");
    let p = &mut actual["comparisons"][0]["gbstats_freq_rel"]["p_value"];
    *p = serde_json::json!(p.as_f64().expect("p-value") * (1.0 + 1e-5));
    actual["arms"][0]
        .as_object_mut()
        .expect("arm")
        .remove("mean");
    let (_, failures) = compare(&oracle, &case["expected"], &actual, "case");
    assert_eq!(failures.len(), 2, "{failures:?}");
}
