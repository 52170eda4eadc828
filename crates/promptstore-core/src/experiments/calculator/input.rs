//! Reading calculator input: the accepted shapes, kind inference, defaults, and refusals
//! that name the path of the offending value.

use promptstore_stats::bayesian::GaussianPrior;
use promptstore_stats::power::MdeType;
use promptstore_stats::summary::ArmStats;
use serde_json::{Map, Value};

use super::{
    CalcArm, CalcCase, CalcInput, MeanSizeCase, MetricCase, ProportionSizeCase, SrmCase,
    check_unique_ids,
};
use crate::error::{Error, Result};
use crate::experiments::definition::invalid;

/// Most cases in one request.
pub const MAX_CASES: usize = 10_000;
/// Most arms in one case.
pub const MAX_ARMS: usize = 100;

const CASE_FIELDS: &[&str] = &["id", "kind", "input", "tags", "description", "expected"];
const METRIC_FIELDS: &[&str] = &[
    "metric_type",
    "metric_name",
    "inverse",
    "arms",
    "weights",
    "alpha",
    "sequential_tuning_parameter",
    "prior_default",
    "prior_proper",
];
const ARM_FIELDS: &[&str] = &["name", "n", "successes", "sum", "sum_squares"];
const PRIOR_FIELDS: &[&str] = &["mean", "stddev", "proper"];
const SRM_FIELDS: &[&str] = &["users", "weights"];
const PROPORTION_FIELDS: &[&str] = &[
    "baseline_rate",
    "mde",
    "mde_type",
    "alpha",
    "power",
    "alternative",
    "ratio",
];
const MEAN_FIELDS: &[&str] = &[
    "stddev",
    "mde_abs",
    "alpha",
    "power",
    "alternative",
    "ratio",
];

/// Parse the calculator's input (see the module docs for the shapes).
pub fn parse_cases(doc: &Value) -> Result<Vec<CalcCase>> {
    let cases = match doc {
        Value::Object(o) if o.contains_key("cases") => {
            let Some(items) = o.get("cases").and_then(Value::as_array) else {
                return Err(invalid("cases", "must be a list of cases"));
            };
            items
                .iter()
                .enumerate()
                .map(|(i, c)| parse_case(c, &format!("cases[{i}]"), i))
                .collect::<Result<Vec<_>>>()?
        }
        Value::Object(_) => vec![parse_case(doc, "", 0)?],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| parse_case(c, &format!("[{i}]"), i))
            .collect::<Result<Vec<_>>>()?,
        _ => {
            return Err(invalid(
                "(document)",
                "expected a case object, a list of cases, or {\"cases\": [...]}",
            ));
        }
    };
    if cases.is_empty() {
        return Err(invalid("cases", "there is nothing to analyse"));
    }
    if cases.len() > MAX_CASES {
        return Err(invalid(
            "cases",
            format_args!(
                "at most {MAX_CASES} cases are analysed at once, got {}",
                cases.len()
            ),
        ));
    }
    check_unique_ids(&cases)?;
    Ok(cases)
}

/// `prefix.key`, or `key` at the top level.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else if key.starts_with('[') {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

/// An object and its path, with typed field readers that name the path on refusal.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str, what: &str) -> Result<Obj<'a>> {
        match v.as_object() {
            Some(map) => Ok(Obj {
                map,
                path: path.to_owned(),
            }),
            None => Err(invalid(
                if path.is_empty() { "(document)" } else { path },
                format_args!("must be an object ({what})"),
            )),
        }
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn err(&self, key: &str, message: impl std::fmt::Display) -> Error {
        invalid(&self.at(key), message)
    }

    fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.err(
                k,
                format_args!("unknown field; the fields here are {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn f64_or(&self, key: &str, default: Option<f64>) -> Result<f64> {
        match self.get(key) {
            None => default.ok_or_else(|| self.err(key, "is required")),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.err(key, format_args!("must be a finite number, got {v}"))),
        }
    }

    fn f64(&self, key: &str) -> Result<f64> {
        self.f64_or(key, None)
    }

    fn count(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| count_value(v, &self.at(key)))
            .transpose()
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(key, format_args!("must be true or false, got {v}"))),
        }
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(key, format_args!("must be a string, got {v}"))),
        }
    }

    fn array(&self, key: &str) -> Result<&'a Vec<Value>> {
        match self.get(key) {
            None => Err(self.err(key, "is required")),
            Some(v) => v.as_array().ok_or_else(|| self.err(key, "must be a list")),
        }
    }
}

/// A non-negative whole number (JSON `1000` or `1000.0`).
fn count_value(v: &Value, path: &str) -> Result<u64> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 => Ok(x as u64),
        _ => Err(invalid(
            path,
            format_args!("must be a whole number ≥ 0, got {v}"),
        )),
    }
}

fn parse_case(v: &Value, path: &str, index: usize) -> Result<CalcCase> {
    let obj = Obj::new(v, path, "a case")?;
    let (id, kind, input_obj) = if obj.has("input") {
        obj.only(CASE_FIELDS)?;
        let id = obj.str("id")?.map(str::to_owned);
        let kind = obj.str("kind")?;
        (
            id,
            kind,
            Obj::new(&obj.map["input"], &obj.at("input"), "the case's input")?,
        )
    } else {
        // A bare input: its own fields, no id, no kind.
        (None, None, Obj::new(v, path, "an input")?)
    };
    let id = id.unwrap_or_else(|| format!("case-{}", index + 1));
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(obj.err(
            "id",
            "must be 1 to 200 characters without control characters",
        ));
    }
    let kind = match kind {
        Some(k) => k.to_owned(),
        None => infer_kind(&input_obj)?.to_owned(),
    };
    let input = match kind.as_str() {
        "metric" => CalcInput::Metric(metric_case(&input_obj)?),
        "srm" => CalcInput::Srm(srm_case(&input_obj)?),
        "sample_size_proportion" => CalcInput::SampleSizeProportion(proportion_case(&input_obj)?),
        "sample_size_mean" => CalcInput::SampleSizeMean(mean_case(&input_obj)?),
        other => {
            return Err(obj.err(
                "kind",
                format_args!(
                    "unknown kind '{}'; use metric, srm, sample_size_proportion or sample_size_mean",
                    crate::experiments::metric::shorten(other)
                ),
            ));
        }
    };
    Ok(CalcCase {
        id,
        path: path.to_owned(),
        input,
    })
}

fn infer_kind(input: &Obj<'_>) -> Result<&'static str> {
    if input.has("arms") {
        Ok("metric")
    } else if input.has("users") {
        Ok("srm")
    } else if input.has("baseline_rate") {
        Ok("sample_size_proportion")
    } else if input.has("mde_abs") || input.has("stddev") {
        Ok("sample_size_mean")
    } else {
        Err(invalid(
            if input.path.is_empty() {
                "(document)"
            } else {
                &input.path
            },
            "cannot tell what to compute: give `kind`, or `arms` (a metric), `users` (SRM), `baseline_rate` (sample size of a rate) or `stddev` + `mde_abs` (sample size of a mean)",
        ))
    }
}

fn alpha(obj: &Obj<'_>, key: &str, default: f64) -> Result<f64> {
    let a = obj.f64_or(key, Some(default))?;
    if a > 0.0 && a < 1.0 {
        Ok(a)
    } else {
        Err(obj.err(
            key,
            format_args!("must be strictly between 0 and 1, got {a}"),
        ))
    }
}

fn positive(obj: &Obj<'_>, key: &str, default: Option<f64>) -> Result<f64> {
    let x = obj.f64_or(key, default)?;
    if x > 0.0 {
        Ok(x)
    } else {
        Err(obj.err(key, format_args!("must be a positive number, got {x}")))
    }
}

fn weights(obj: &Obj<'_>, arms: usize) -> Result<Vec<f64>> {
    if !obj.has("weights") {
        return Ok(vec![1.0; arms]);
    }
    let items = obj.array("weights")?;
    if items.len() != arms {
        return Err(obj.err(
            "weights",
            format_args!(
                "needs one weight per arm: {arms} arms, {} weights",
                items.len()
            ),
        ));
    }
    let path = obj.at("weights");
    let w = items
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(invalid(
                &format!("{path}[{i}]"),
                format_args!("must be a finite number ≥ 0, got {v}"),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    if w.iter().all(|x| *x == 0.0) {
        return Err(obj.err("weights", "must not all be 0"));
    }
    Ok(w)
}

fn prior(obj: &Obj<'_>, key: &str, default: GaussianPrior) -> Result<GaussianPrior> {
    let Some(v) = obj.get(key) else {
        return Ok(default);
    };
    let p = Obj::new(v, &obj.at(key), "a prior {mean, stddev, proper}")?;
    p.only(PRIOR_FIELDS)?;
    let mean = p.f64_or("mean", Some(default.mean))?;
    let stddev = positive(&p, "stddev", Some(default.variance.sqrt()))?;
    Ok(GaussianPrior {
        mean,
        variance: stddev * stddev,
        proper: p.bool_or("proper", default.proper)?,
    })
}

fn metric_case(obj: &Obj<'_>) -> Result<MetricCase> {
    obj.only(METRIC_FIELDS)?;
    let raw_arms = obj.array("arms")?;
    if !(2..=MAX_ARMS).contains(&raw_arms.len()) {
        return Err(obj.err(
            "arms",
            format_args!(
                "needs 2 to {MAX_ARMS} arms (the first is the control), got {}",
                raw_arms.len()
            ),
        ));
    }
    let binomial = match obj.str("metric_type")? {
        Some("binomial") => true,
        Some("continuous") => false,
        Some(other) => {
            return Err(obj.err(
                "metric_type",
                format_args!(
                    "unknown metric type '{}'; use binomial or continuous",
                    crate::experiments::metric::shorten(other)
                ),
            ));
        }
        // Counts of successes make a rate; sums make a mean.
        None => raw_arms
            .first()
            .and_then(Value::as_object)
            .is_some_and(|a| a.contains_key("successes")),
    };
    let arms_path = obj.at("arms");
    let arms = raw_arms
        .iter()
        .enumerate()
        .map(|(i, v)| arm(v, &format!("{arms_path}[{i}]"), i, binomial))
        .collect::<Result<Vec<_>>>()?;
    Ok(MetricCase {
        binomial,
        metric_name: obj.str("metric_name")?.map(str::to_owned),
        inverse: obj.bool_or("inverse", false)?,
        weights: weights(obj, arms.len())?,
        arms,
        alpha: alpha(obj, "alpha", 0.05)?,
        sequential_tuning: positive(obj, "sequential_tuning_parameter", Some(5000.0))?,
        prior_default: prior(obj, "prior_default", GaussianPrior::default())?,
        prior_proper: prior(obj, "prior_proper", GaussianPrior::app_default_proper())?,
    })
}

fn arm(v: &Value, path: &str, index: usize, binomial: bool) -> Result<CalcArm> {
    let a = Obj::new(v, path, "an arm")?;
    a.only(ARM_FIELDS)?;
    let name = match a.str("name")? {
        Some(n) => n.to_owned(),
        None if index == 0 => "control".to_owned(),
        None => format!("treatment {index}"),
    };
    let Some(n) = a.count("n")? else {
        return Err(a.err("n", "is required (the number of units)"));
    };
    if binomial {
        let successes = match (a.count("successes")?, a.count("sum")?) {
            (Some(s), _) => s,
            (None, Some(s)) => s,
            (None, None) => return Err(a.err("successes", "is required for a binomial arm")),
        };
        if successes > n {
            return Err(a.err(
                "successes",
                format_args!("cannot exceed n: {successes} successes of {n} units"),
            ));
        }
        // For 0/1 outcomes Σx = Σx² = successes; other sums mean the data is not binomial.
        for key in ["sum", "sum_squares"] {
            if let Some(v) = a.get(key).filter(|v| v.as_f64() != Some(successes as f64)) {
                return Err(a.err(
                    key,
                    format_args!(
                        "a binomial arm's {key} equals its successes ({successes}), got {v}"
                    ),
                ));
            }
        }
        let stats = ArmStats::proportion(n, successes).map_err(|e| a.err("successes", e))?;
        Ok(CalcArm {
            name,
            stats,
            successes: Some(successes),
        })
    } else {
        let sum = a.f64("sum")?;
        let sum_squares = a.f64("sum_squares")?;
        if sum_squares < 0.0 {
            return Err(a.err(
                "sum_squares",
                format_args!("a sum of squares cannot be negative, got {sum_squares}"),
            ));
        }
        let stats = ArmStats::sample_mean(n, sum, sum_squares).map_err(|e| a.err("sum", e))?;
        Ok(CalcArm {
            name,
            stats,
            successes: None,
        })
    }
}

fn srm_case(obj: &Obj<'_>) -> Result<SrmCase> {
    obj.only(SRM_FIELDS)?;
    let raw = obj.array("users")?;
    if !(2..=MAX_ARMS).contains(&raw.len()) {
        return Err(obj.err(
            "users",
            format_args!("needs 2 to {MAX_ARMS} arms, got {}", raw.len()),
        ));
    }
    let path = obj.at("users");
    let users = raw
        .iter()
        .enumerate()
        .map(|(i, v)| count_value(v, &format!("{path}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SrmCase {
        weights: weights(obj, users.len())?,
        users,
    })
}

/// Only the two-sided, equal-allocation designs are computed.
fn check_design(obj: &Obj<'_>) -> Result<()> {
    if let Some(alt) = obj.str("alternative")?.filter(|a| *a != "two-sided") {
        return Err(obj.err(
            "alternative",
            format_args!("only two-sided sample sizes are computed, got '{alt}'"),
        ));
    }
    let ratio = obj.f64_or("ratio", Some(1.0))?;
    if ratio != 1.0 {
        return Err(obj.err(
            "ratio",
            format_args!("only equal allocation (ratio 1) is computed, got {ratio}"),
        ));
    }
    Ok(())
}

fn proportion_case(obj: &Obj<'_>) -> Result<ProportionSizeCase> {
    obj.only(PROPORTION_FIELDS)?;
    check_design(obj)?;
    let baseline_rate = obj.f64("baseline_rate")?;
    if !(baseline_rate > 0.0 && baseline_rate < 1.0) {
        return Err(obj.err(
            "baseline_rate",
            format_args!("must be strictly between 0 and 1, got {baseline_rate}"),
        ));
    }
    let mde_type = match obj.str("mde_type")? {
        None | Some("relative") => MdeType::Relative,
        Some("absolute") => MdeType::Absolute,
        Some(other) => {
            return Err(obj.err(
                "mde_type",
                format_args!(
                    "unknown mde type '{}'; use relative or absolute",
                    crate::experiments::metric::shorten(other)
                ),
            ));
        }
    };
    let mde = obj.f64("mde")?;
    let p2 = match mde_type {
        MdeType::Relative => baseline_rate * (1.0 + mde),
        MdeType::Absolute => baseline_rate + mde,
    };
    if mde == 0.0 || !(p2 > 0.0 && p2 < 1.0) {
        return Err(obj.err(
            "mde",
            format_args!(
                "must move the rate to another rate strictly between 0 and 1; {baseline_rate} becomes {p2}"
            ),
        ));
    }
    Ok(ProportionSizeCase {
        baseline_rate,
        mde,
        mde_type,
        alpha: alpha(obj, "alpha", 0.05)?,
        power: alpha(obj, "power", 0.8)?,
    })
}

fn mean_case(obj: &Obj<'_>) -> Result<MeanSizeCase> {
    obj.only(MEAN_FIELDS)?;
    check_design(obj)?;
    let mde_abs = obj.f64("mde_abs")?;
    if mde_abs == 0.0 {
        return Err(obj.err("mde_abs", "must not be 0"));
    }
    Ok(MeanSizeCase {
        stddev: positive(obj, "stddev", None)?,
        mde_abs,
        alpha: alpha(obj, "alpha", 0.05)?,
        power: alpha(obj, "power", 0.8)?,
    })
}
