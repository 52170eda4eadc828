//! Validating an experiment definition: a `CreateExperiment` request becomes a
//! `NewExperiment` with every default applied, or is refused with `invalid_request` naming
//! the field (`arms[2].weight`). Arm lists are validated here too, for drafts and for the
//! audited arm changes of running experiments.

use std::collections::BTreeSet;

use promptstore_types::{
    Arm, ArmSpec, CreateExperiment, ErrorCode, GuardrailSpec, MetricSpec, PriorSpec, UpdateArms,
};
use serde_json::json;

use super::metric::{Metric, shorten};
use super::model::NewExperiment;
use crate::error::{Error, Result};
use crate::model::LATEST_LABEL;
use crate::names::{validate_label_name, validate_prompt_name};

pub const DEFAULT_ALPHA: f64 = 0.05;
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;
pub const DEFAULT_MIN_SAMPLE_PER_ARM: u64 = 100;
pub const DEFAULT_MDE: f64 = 0.05;
pub const MIN_ARMS: usize = 2;
pub const MAX_ARMS: usize = 10;
pub const MAX_GUARDRAILS: usize = 10;
/// Longest experiment name, in characters.
pub const MAX_EXPERIMENT_NAME_LEN: usize = 100;
/// Longest arm name: arm names travel on every event, so they are short slugs.
pub const MAX_ARM_NAME_LEN: usize = 64;
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// Longest reason of an audited change.
pub const MAX_REASON_LEN: usize = 2_000;

/// A refusal naming the offending field, in the message and in `details.field`.
pub(crate) fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::rejected(ErrorCode::InvalidRequest, format!("{field}: {message}"))
        .with_details(json!({ "field": field }))
}

/// Validate a definition for a prompt whose newest version is `latest_version` (arm
/// versions must be in `1..=latest_version`), applying the defaults: alpha 0.05,
/// sequential tuning 5000, 100 events per arm, mde 0.05, a flat prior, and each metric's
/// natural direction.
pub fn validate_definition(req: CreateExperiment, latest_version: u32) -> Result<NewExperiment> {
    check_display_text("name", &req.name, MAX_EXPERIMENT_NAME_LEN, false)?;
    check_display_text("description", &req.description, MAX_DESCRIPTION_LEN, true)?;
    validate_prompt_name(&req.prompt).map_err(|e| invalid("prompt", e))?;
    validate_label_name(&req.label).map_err(|e| invalid("label", e))?;
    if req.label == LATEST_LABEL {
        return Err(invalid(
            "label",
            "'latest' moves with every save and cannot be experimented on; use a label you move yourself",
        ));
    }
    let arms = validate_arm_specs(&req.arms, latest_version)?;
    let primary_metric = validate_metric_spec("primary_metric", &req.primary_metric)?;
    let guardrails = validate_guardrails(&req.guardrails)?;
    let min_sample_per_arm = req.min_sample_per_arm.unwrap_or(DEFAULT_MIN_SAMPLE_PER_ARM);
    if min_sample_per_arm == 0 {
        return Err(invalid(
            "min_sample_per_arm",
            "must be at least 1 (omit it for the default of 100)",
        ));
    }
    if req.max_duration_hours == Some(0) {
        return Err(invalid(
            "max_duration_hours",
            "must be at least 1 hour (omit it for no limit)",
        ));
    }
    let alpha = req.alpha.unwrap_or(DEFAULT_ALPHA);
    if !(alpha.is_finite() && alpha > 0.0 && alpha <= 0.5) {
        return Err(invalid(
            "alpha",
            format_args!("must be in (0, 0.5], got {alpha}"),
        ));
    }
    let sequential_tuning = req.sequential_tuning.unwrap_or(DEFAULT_SEQUENTIAL_TUNING);
    positive("sequential_tuning", sequential_tuning)?;
    if let Some(prior) = &req.prior {
        validate_prior(prior)?;
    }
    let mde = req.mde.unwrap_or(DEFAULT_MDE);
    positive("mde", mde)?;
    Ok(NewExperiment {
        name: req.name,
        description: req.description,
        prompt: req.prompt,
        label: req.label,
        arms,
        primary_metric,
        guardrails,
        min_sample_per_arm,
        max_duration_hours: req.max_duration_hours,
        on_conclusion: req.on_conclusion,
        alpha,
        sequential_tuning,
        prior: req.prior,
        mde,
    })
}

/// Validate arm specs (2..=10 arms, unique valid names, positive finite weights, versions
/// of the prompt); the result has every arm active.
pub fn validate_arm_specs(specs: &[ArmSpec], latest_version: u32) -> Result<Vec<Arm>> {
    let arms: Vec<Arm> = specs
        .iter()
        .map(|s| Arm {
            name: s.name.clone(),
            version: s.version,
            weight: s.weight,
            stopped: false,
            stopped_reason: None,
        })
        .collect();
    validate_arms(&arms, latest_version)?;
    Ok(arms)
}

/// The rules every arm list obeys, stopped arms included.
pub fn validate_arms(arms: &[Arm], latest_version: u32) -> Result<()> {
    if !(MIN_ARMS..=MAX_ARMS).contains(&arms.len()) {
        return Err(invalid(
            "arms",
            format_args!(
                "an experiment needs {MIN_ARMS} to {MAX_ARMS} arms (the first is the control), got {}",
                arms.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, arm) in arms.iter().enumerate() {
        let field = |f: &str| format!("arms[{i}].{f}");
        check_arm_name(&field("name"), &arm.name)?;
        if !seen.insert(arm.name.as_str()) {
            return Err(invalid(
                &field("name"),
                format_args!(
                    "arm name '{}' is used twice; arm names must be unique",
                    arm.name
                ),
            ));
        }
        if !(arm.weight.is_finite() && arm.weight > 0.0) {
            return Err(invalid(
                &field("weight"),
                format_args!("must be a positive finite number, got {}", arm.weight),
            ));
        }
        if arm.version == 0 || arm.version > latest_version {
            return Err(invalid(
                &field("version"),
                format_args!(
                    "version {} does not exist; the prompt has versions 1 to {latest_version}",
                    arm.version
                ),
            ));
        }
        if let Some(reason) = &arm.stopped_reason {
            check_display_text(&field("stopped_reason"), reason, MAX_REASON_LEN, true)?;
        }
    }
    Ok(())
}

/// The arms of a running experiment: valid arms whose control (the first) is active, with
/// at least one active treatment beside it.
pub fn validate_running_arms(arms: &[Arm], latest_version: u32) -> Result<()> {
    validate_arms(arms, latest_version)?;
    if arms[0].stopped {
        return Err(invalid(
            "arms[0].stopped",
            "the control (the first arm) cannot be stopped; stop or conclude the experiment instead",
        ));
    }
    if arms[1..].iter().all(|a| a.stopped) {
        return Err(invalid(
            "arms",
            "a running experiment needs at least one active treatment arm beside the control; stop or conclude it instead",
        ));
    }
    Ok(())
}

/// An audited arm change of a running experiment: the listed arms (all active) and the
/// reason, which must be given.
pub fn validate_update_arms(update: UpdateArms, latest_version: u32) -> Result<(Vec<Arm>, String)> {
    let reason = update.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(invalid(
            "reason",
            "changing the arms of an experiment changes its analysis; say why",
        ));
    }
    check_display_text("reason", &reason, MAX_REASON_LEN, false)?;
    let arms = validate_arm_specs(&update.arms, latest_version)?;
    validate_running_arms(&arms, latest_version)?;
    Ok((arms, reason))
}

/// A metric spec with its direction filled in.
pub fn validate_metric_spec(field: &str, spec: &MetricSpec) -> Result<MetricSpec> {
    let metric = Metric::parse(&spec.metric).map_err(|e| invalid(&format!("{field}.metric"), e))?;
    Ok(MetricSpec {
        metric: spec.metric.clone(),
        direction: Some(spec.direction.unwrap_or_else(|| metric.default_direction())),
    })
}

fn validate_guardrails(guardrails: &[GuardrailSpec]) -> Result<Vec<GuardrailSpec>> {
    if guardrails.len() > MAX_GUARDRAILS {
        return Err(invalid(
            "guardrails",
            format_args!(
                "at most {MAX_GUARDRAILS} guardrails are allowed, got {}",
                guardrails.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(guardrails.len());
    for (i, g) in guardrails.iter().enumerate() {
        let spec = validate_metric_spec(
            &format!("guardrails[{i}]"),
            &MetricSpec {
                metric: g.metric.clone(),
                direction: g.direction,
            },
        )?;
        if !seen.insert(g.metric.as_str()) {
            return Err(invalid(
                &format!("guardrails[{i}].metric"),
                format_args!("metric '{}' is guarded twice", shorten(&g.metric)),
            ));
        }
        if !(g.tolerance.is_finite() && g.tolerance >= 0.0) {
            return Err(invalid(
                &format!("guardrails[{i}].tolerance"),
                format_args!(
                    "must be a finite number ≥ 0 (a relative regression, 0.05 = 5 %), got {}",
                    g.tolerance
                ),
            ));
        }
        out.push(GuardrailSpec {
            metric: spec.metric,
            direction: spec.direction,
            tolerance: g.tolerance,
        });
    }
    Ok(out)
}

fn validate_prior(prior: &PriorSpec) -> Result<()> {
    if !prior.mean.is_finite() {
        return Err(invalid(
            "prior.mean",
            format_args!("must be a finite number, got {}", prior.mean),
        ));
    }
    positive("prior.stddev", prior.stddev)
}

fn positive(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format_args!("must be a positive finite number, got {value}"),
        ))
    }
}

/// Arm names: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters (they are written on
/// every event and shown in every result).
fn check_arm_name(field: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(invalid(field, "an arm name must not be empty"));
    };
    if !first.is_ascii_alphanumeric() {
        return Err(invalid(
            field,
            format_args!(
                "invalid arm name '{}': it must start with a letter or digit",
                shorten(name)
            ),
        ));
    }
    if name.chars().count() > MAX_ARM_NAME_LEN {
        return Err(invalid(
            field,
            format_args!(
                "invalid arm name '{}': at most {MAX_ARM_NAME_LEN} characters are allowed",
                shorten(name)
            ),
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(
            field,
            format_args!(
                "invalid arm name '{}': character {bad:?} is not allowed; use letters, digits, '.', '_' and '-'",
                shorten(name)
            ),
        ));
    }
    Ok(())
}

/// Free text shown to people: bounded, no control characters except newlines and tabs in
/// long text; `may_be_empty` for optional text.
pub(crate) fn check_display_text(
    field: &str,
    text: &str,
    max_chars: usize,
    may_be_empty: bool,
) -> Result<()> {
    if !may_be_empty && text.trim().is_empty() {
        return Err(invalid(field, "must not be empty or only whitespace"));
    }
    if text.chars().count() > max_chars {
        return Err(invalid(
            field,
            format_args!("at most {max_chars} characters are allowed"),
        ));
    }
    let allowed_control = |c: char| may_be_empty && matches!(c, '\n' | '\t');
    if let Some(bad) = text
        .chars()
        .find(|&c| c.is_control() && !allowed_control(c))
    {
        return Err(invalid(
            field,
            format_args!("control characters ({bad:?}) are not allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use promptstore_types::{Direction, OnConclusion};

    use super::*;

    fn request() -> CreateExperiment {
        serde_json::from_value(json!({
            "name": "Shorter system prompt",
            "prompt": "support/triage",
            "label": "production",
            "arms": [
                {"name": "control", "version": 3, "weight": 1.0},
                {"name": "shorter", "version": 4, "weight": 1.0}
            ],
            "primary_metric": {"metric": "success_rate"},
            "guardrails": [{"metric": "latency_ms", "tolerance": 0.1}]
        }))
        .unwrap()
    }

    #[test]
    fn defaults_are_applied() {
        let e = validate_definition(request(), 4).unwrap();
        assert_eq!(e.alpha, DEFAULT_ALPHA);
        assert_eq!(e.sequential_tuning, DEFAULT_SEQUENTIAL_TUNING);
        assert_eq!(e.min_sample_per_arm, DEFAULT_MIN_SAMPLE_PER_ARM);
        assert_eq!(e.mde, DEFAULT_MDE);
        assert_eq!(e.prior, None);
        assert_eq!(e.on_conclusion, OnConclusion::Nothing);
        assert_eq!(e.primary_metric.direction, Some(Direction::Higher));
        assert_eq!(e.guardrails[0].direction, Some(Direction::Lower));
        assert!(e.arms.iter().all(|a| !a.stopped));
        assert_eq!(e.arms.len(), 2);
    }

    #[test]
    fn explicit_values_are_kept() {
        let mut r = request();
        r.alpha = Some(0.1);
        r.sequential_tuning = Some(20000.0);
        r.min_sample_per_arm = Some(500);
        r.mde = Some(0.02);
        r.max_duration_hours = Some(72);
        r.prior = Some(PriorSpec {
            mean: 0.0,
            stddev: 0.3,
        });
        r.primary_metric.direction = Some(Direction::Lower);
        let e = validate_definition(r, 4).unwrap();
        assert_eq!(
            (e.alpha, e.sequential_tuning, e.min_sample_per_arm, e.mde),
            (0.1, 20000.0, 500, 0.02)
        );
        assert_eq!(e.max_duration_hours, Some(72));
        assert_eq!(e.primary_metric.direction, Some(Direction::Lower));
    }

    /// Each refusal: a change of the valid request, and the field the error must name.
    #[test]
    fn every_refusal_names_its_field() {
        type Edit = fn(&mut serde_json::Value);
        let cases: Vec<(Edit, &str)> = vec![
            (|r| r["name"] = json!("  "), "name"),
            (|r| r["name"] = json!("x".repeat(101)), "name"),
            (|r| r["name"] = json!("a\u{7}b"), "name"),
            (
                |r| r["description"] = json!("d".repeat(10_001)),
                "description",
            ),
            (|r| r["prompt"] = json!("/bad"), "prompt"),
            (|r| r["label"] = json!("Production"), "label"),
            (|r| r["label"] = json!("latest"), "label"),
            (
                |r| r["arms"] = json!([{"name": "a", "version": 1, "weight": 1.0}]),
                "arms",
            ),
            (
                |r| {
                    r["arms"] =
                        json!((0..11)
                        .map(|i| json!({"name": format!("a{i}"), "version": 1, "weight": 1.0}))
                        .collect::<Vec<_>>())
                },
                "arms",
            ),
            (|r| r["arms"][1]["name"] = json!("control"), "arms[1].name"),
            (|r| r["arms"][1]["name"] = json!(""), "arms[1].name"),
            (|r| r["arms"][1]["name"] = json!("-x"), "arms[1].name"),
            (|r| r["arms"][1]["name"] = json!("a b"), "arms[1].name"),
            (
                |r| r["arms"][1]["name"] = json!("a".repeat(65)),
                "arms[1].name",
            ),
            (|r| r["arms"][1]["weight"] = json!(0.0), "arms[1].weight"),
            (|r| r["arms"][0]["weight"] = json!(-1.0), "arms[0].weight"),
            (|r| r["arms"][1]["version"] = json!(5), "arms[1].version"),
            (|r| r["arms"][1]["version"] = json!(0), "arms[1].version"),
            (
                |r| r["primary_metric"]["metric"] = json!("clicks"),
                "primary_metric.metric",
            ),
            (
                |r| r["primary_metric"]["metric"] = json!("score:"),
                "primary_metric.metric",
            ),
            (
                |r| r["guardrails"][0]["metric"] = json!("p95"),
                "guardrails[0].metric",
            ),
            (
                |r| r["guardrails"][0]["tolerance"] = json!(-0.1),
                "guardrails[0].tolerance",
            ),
            (
                |r| r["guardrails"] = json!([{"metric": "cost"}, {"metric": "cost"}]),
                "guardrails[1].metric",
            ),
            (
                |r| r["guardrails"] = json!(vec![json!({"metric": "cost"}); 11]),
                "guardrails",
            ),
            (|r| r["min_sample_per_arm"] = json!(0), "min_sample_per_arm"),
            (|r| r["max_duration_hours"] = json!(0), "max_duration_hours"),
            (|r| r["alpha"] = json!(0.0), "alpha"),
            (|r| r["alpha"] = json!(0.6), "alpha"),
            (|r| r["sequential_tuning"] = json!(0.0), "sequential_tuning"),
            (
                |r| r["prior"] = json!({"mean": 0.0, "stddev": 0.0}),
                "prior.stddev",
            ),
            (
                |r| r["prior"] = json!({"mean": 0.0, "stddev": -1.0}),
                "prior.stddev",
            ),
            (|r| r["mde"] = json!(0.0), "mde"),
            (|r| r["mde"] = json!(-0.1), "mde"),
        ];
        for (edit, field) in cases {
            let mut v = serde_json::to_value(request()).unwrap();
            edit(&mut v);
            let req: CreateExperiment = serde_json::from_value(v.clone()).unwrap();
            let err = validate_definition(req, 4).expect_err(&format!("{v} must be refused"));
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{v}: {err}");
            let body = err.to_body();
            assert_eq!(body.details["field"], json!(field), "{v}: {err}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        // JSON cannot carry NaN/∞, but the typed entry point can.
        let mut r = request();
        r.arms[1].weight = f64::INFINITY;
        assert!(validate_definition(r, 4).is_err());
        let mut r = request();
        r.alpha = Some(f64::NAN);
        assert!(validate_definition(r, 4).is_err());
        let mut r = request();
        r.prior = Some(PriorSpec {
            mean: f64::NAN,
            stddev: 1.0,
        });
        let err = validate_definition(r, 4).unwrap_err();
        assert_eq!(err.to_body().details["field"], json!("prior.mean"));
    }

    #[test]
    fn the_same_version_twice_is_an_a_a_test() {
        let mut r = request();
        r.arms[1].version = 3;
        assert!(validate_definition(r, 4).is_ok());
    }

    #[test]
    fn running_arms_keep_the_control_and_a_treatment() {
        let arm = |name: &str, stopped: bool| Arm {
            name: name.into(),
            version: 1,
            weight: 1.0,
            stopped,
            stopped_reason: None,
        };
        assert!(validate_running_arms(&[arm("a", false), arm("b", false)], 1).is_ok());
        assert!(
            validate_running_arms(&[arm("a", false), arm("b", true), arm("c", false)], 1).is_ok()
        );
        let err = validate_running_arms(&[arm("a", true), arm("b", false)], 1).unwrap_err();
        assert_eq!(err.to_body().details["field"], json!("arms[0].stopped"));
        let err = validate_running_arms(&[arm("a", false), arm("b", true)], 1).unwrap_err();
        assert_eq!(err.to_body().details["field"], json!("arms"));
    }

    #[test]
    fn arm_updates_need_a_reason() {
        let arms = vec![
            ArmSpec {
                name: "a".into(),
                version: 1,
                weight: 1.0,
            },
            ArmSpec {
                name: "b".into(),
                version: 2,
                weight: 3.0,
            },
        ];
        let err = validate_update_arms(
            UpdateArms {
                arms: arms.clone(),
                reason: " ".into(),
            },
            2,
        )
        .unwrap_err();
        assert_eq!(err.to_body().details["field"], json!("reason"));
        let (got, reason) = validate_update_arms(
            UpdateArms {
                arms,
                reason: " ramp up ".into(),
            },
            2,
        )
        .unwrap();
        assert_eq!(reason, "ramp up");
        assert_eq!(got[1].weight, 3.0);
    }
}
