//! The calculator's readable report: per arm, per comparison (lifts with intervals,
//! p-values, sequential, Bayesian chance to beat and risks, z and Welch tests), the SRM
//! warning, and a one-line summary per comparison. Rendered from the reference-shaped
//! results, so both outputs always show the same numbers.

use std::fmt::Write;

use serde_json::Value;

use super::{CalcCase, CalcInput, MetricCase};
use crate::experiments::format::{level, num, p_clause, pct, share};

pub(super) fn render(out: &mut String, case: &CalcCase, expected: &Value) {
    match &case.input {
        CalcInput::Metric(m) => metric(out, &case.id, m, expected),
        CalcInput::Srm(s) => {
            let _ = writeln!(out, "{} — sample-ratio mismatch check", case.id);
            srm(out, &expected["srm"], &s.users);
        }
        CalcInput::SampleSizeProportion(p) => {
            let e = expected;
            let _ = writeln!(
                out,
                "{} — sample size per arm for a rate: {} → {} ({} {}), alpha {}, power {}, two-sided",
                case.id,
                share(f(&e["p1"])),
                share(f(&e["p2"])),
                match p.mde_type {
                    promptstore_stats::power::MdeType::Relative => "relative change",
                    promptstore_stats::power::MdeType::Absolute => "absolute change",
                },
                match p.mde_type {
                    promptstore_stats::power::MdeType::Relative => pct(p.mde),
                    promptstore_stats::power::MdeType::Absolute => signed(p.mde),
                },
                p.alpha,
                p.power
            );
            let _ = writeln!(
                out,
                "  {} (normal approximation), {} (pooled variance), {} (arcsine), {} (statsmodels NormalIndPower); Cohen's h = {}",
                int(&e["n_per_arm_normal_unpooled_ceil"]),
                int(&e["n_per_arm_normal_pooled_ceil"]),
                int(&e["n_per_arm_arcsine_closed_form_ceil"]),
                int(&e["n_per_arm_statsmodels_normalindpower_ceil"]),
                num(f(&e["cohens_h"]))
            );
        }
        CalcInput::SampleSizeMean(m) => {
            let e = expected;
            let _ = writeln!(
                out,
                "{} — sample size per arm for a mean: shift {} with standard deviation {} (d = {}), alpha {}, power {}, two-sided",
                case.id,
                m.mde_abs,
                m.stddev,
                num(f(&e["effect_size_d"])),
                m.alpha,
                m.power
            );
            let _ = writeln!(
                out,
                "  {} (normal approximation), {} (t test, statsmodels TTestIndPower)",
                int(&e["n_per_arm_normal_ceil"]),
                int(&e["n_per_arm_statsmodels_ttestindpower_ceil"])
            );
        }
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn int(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "undefined".to_owned(), |n| n.to_string())
}

fn signed(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", num(x))
    } else {
        num(x)
    }
}

fn srm(out: &mut String, s: &Value, observed: &[u64]) {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| format!("{:.0}", f(x)))
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_default()
    };
    let observed: Vec<String> = observed.iter().map(u64::to_string).collect();
    let stat = s["chisq_stat"]
        .as_f64()
        .map_or("undefined (no units)".to_owned(), |c| format!("{c:.2}"));
    let flagged = s["srm_flag_p_lt_0_001"].as_bool().unwrap_or(false);
    let _ = writeln!(
        out,
        "  SRM: {} units observed, {} expected from the weights; chi² = {stat}, df {}, {} → {}",
        observed.join(" / "),
        list(&s["expected_counts"]),
        s["df"],
        p_clause(f(&s["gbstats_srm_p"])),
        if flagged {
            "MISMATCH (p < 0.001): the split does not match the weights; no result of this test can be trusted"
        } else {
            "ok"
        }
    );
}

/// Why a gbstats block holds placeholders, in words.
fn engine_reason(code: &str) -> &'static str {
    match code {
        "ZERO_NEGATIVE_BASELINE_VARIATION" => "the control's mean is 0, so no lift can be measured",
        "ZERO_NEGATIVE_VARIANCE" => {
            "an arm has zero variance (0% or 100%, one unit, or all values equal)"
        }
        "NO_UNITS_IN_VARIATION" => "an arm has no units",
        _ => "the data does not support this test",
    }
}

fn error_of(block: &Value) -> Option<&str> {
    block["error_message"].as_str()
}

/// `+20.0% [95% CI -10.1% to +50.1%], p = 0.1924` (relative) or the absolute equivalent.
fn interval(block: &Value, alpha: f64, relative: bool) -> String {
    if let Some(code) = error_of(block) {
        return format!("undefined: {}", engine_reason(code));
    }
    let show = |x: f64| if relative { pct(x) } else { signed(x) };
    let mut s = format!(
        "{} [{}% CI {} to {}]",
        show(f(&block["expected"])),
        level(alpha),
        show(f(&block["ci_lower"])),
        show(f(&block["ci_upper"]))
    );
    if block["p_value"].is_number() {
        s.push_str(&format!(", {}", p_clause(f(&block["p_value"]))));
    }
    s
}

fn bayes(block: &Value, alpha: f64) -> String {
    if let Some(code) = error_of(block) {
        return format!("undefined: {}", engine_reason(code));
    }
    format!(
        "lift {}; chance to beat the control {}; expected loss of keeping the control {}, of shipping the treatment {} (relative)",
        interval(block, alpha, true),
        share(f(&block["chance_to_win"])),
        pct(f(&block["risk_control"])).trim_start_matches('+'),
        pct(f(&block["risk_treatment"])).trim_start_matches('+'),
    )
}

fn metric(out: &mut String, id: &str, m: &MetricCase, e: &Value) {
    let name = m.metric_name.as_deref().unwrap_or("metric");
    let _ = writeln!(
        out,
        "{id} — {name} ({}; {} is better), alpha {}, sequential tuning {}",
        if m.binomial { "rate" } else { "mean" },
        if m.inverse { "lower" } else { "higher" },
        m.alpha,
        num(m.sequential_tuning)
    );
    let width = m
        .arms
        .iter()
        .map(|a| a.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "  {:<width$} {:>10} {:>12} {:>12}",
        "arm", "n", "mean", "sd"
    );
    for (a, block) in m
        .arms
        .iter()
        .zip(e["arms"].as_array().into_iter().flatten())
    {
        let sd = block["variance_sample"]
            .as_f64()
            .map_or("undefined".to_owned(), |v| num(v.max(0.0).sqrt()));
        let _ = writeln!(
            out,
            "  {:<width$} {:>10} {:>12} {:>12}",
            a.name,
            a.stats.n(),
            num(f(&block["mean"])),
            sd
        );
    }
    let users: Vec<u64> = m.arms.iter().map(|a| a.stats.n()).collect();
    srm(out, &e["srm"], &users);
    let control = &m.arms[0].name;
    for c in e["comparisons"].as_array().into_iter().flatten() {
        let j = c["treatment"].as_u64().unwrap_or(0) as usize;
        let treatment = m.arms.get(j).map_or("?", |a| a.name.as_str());
        let _ = writeln!(out, "  {treatment} vs {control}:");
        let rel = c["rel_diff"]
            .as_f64()
            .map_or("undefined (the control's mean is 0)".to_owned(), pct);
        let _ = writeln!(
            out,
            "    difference    {} absolute, {rel} relative",
            signed(f(&c["abs_diff"]))
        );
        let _ = writeln!(
            out,
            "    frequentist   relative {}; absolute {}",
            interval(&c["gbstats_freq_rel"], m.alpha, true),
            interval(&c["gbstats_freq_abs"], m.alpha, false)
        );
        let _ = writeln!(
            out,
            "    sequential    relative {} (always valid: may be checked at any time)",
            interval(&c["gbstats_seq_rel"], m.alpha, true)
        );
        let _ = writeln!(
            out,
            "    Bayesian      {}",
            bayes(&c["gbstats_bayes_rel"], m.alpha)
        );
        let prior = &m.prior_proper;
        let _ = writeln!(
            out,
            "    Bayesian, prior N({}, {}²): {}",
            prior.mean,
            prior.variance.sqrt(),
            bayes(&c["gbstats_bayes_rel_proper_prior"], m.alpha)
        );
        let cl = &c["classical"];
        if m.binomial {
            let z = |stat: &Value, p: &Value| match stat.as_f64() {
                Some(z) => format!("z = {z:.3}, {}", p_clause(f(p))),
                None => "undefined (standard error 0)".to_owned(),
            };
            let _ = writeln!(
                out,
                "    z tests       pooled {}; unpooled {}",
                z(&cl["z_pooled_stat"], &cl["z_pooled_p"]),
                z(&cl["z_unpooled_stat"], &cl["z_unpooled_p"])
            );
        }
        let welch = match cl["welch_t_stat"].as_f64() {
            Some(t) => format!(
                "t = {t:.3}, df = {}, {}",
                num(f(&cl["welch_df"])),
                p_clause(f(&cl["welch_p"]))
            ),
            None => "undefined (an arm has fewer than two units or no variance)".to_owned(),
        };
        let _ = writeln!(out, "    Welch t test  {welch}");
        let _ = writeln!(out, "    → {}", summary(m, treatment, control, c));
    }
}

/// One line per comparison: the fixed-horizon call with the direction applied, the
/// sequential call beside it.
fn summary(m: &MetricCase, treatment: &str, control: &str, c: &Value) -> String {
    let freq = &c["gbstats_freq_rel"];
    if let Some(code) = error_of(freq) {
        let z = &c["classical"]["z_unpooled_p"];
        let classical = match (m.binomial, z.as_f64()) {
            (true, Some(p)) => format!(
                "; the classical unpooled z test, which allows a 0% arm, gives {}",
                p_clause(p)
            ),
            _ => String::new(),
        };
        return format!(
            "no gbstats test possible: {}{classical}",
            engine_reason(code)
        );
    }
    let p = f(&freq["p_value"]);
    let lift = f(&freq["expected"]);
    let better = (lift > 0.0) != m.inverse;
    let seq = &c["gbstats_seq_rel"];
    let seq_significant = error_of(seq).is_none() && f(&seq["p_value"]) < m.alpha;
    let chance = c["gbstats_bayes_rel"]["chance_to_win"]
        .as_f64()
        .map(|x| format!(", chance to beat the control {}", share(x)))
        .unwrap_or_default();
    if p < m.alpha {
        format!(
            "{treatment} is {} than {control} ({}, {}, below alpha {}){chance}; the always-valid test {}",
            if better { "better" } else { "worse" },
            pct(lift),
            p_clause(p),
            m.alpha,
            if seq_significant {
                "agrees"
            } else {
                "is not yet conclusive: keep collecting data if you peeked"
            }
        )
    } else {
        format!(
            "no significant difference at alpha {} ({}, {}){chance}",
            m.alpha,
            pct(lift),
            p_clause(p)
        )
    }
}
