//! Fixed-horizon frequentist engine: Welch t test on the absolute or relative effect, as
//! gbstats 0.8.0 `TwoSidedTTest` computes it (including its p-value underflow).

use crate::dist::{t_cdf, t_ppf};
use crate::effect::{DifferenceType, effect};
use crate::engine_error::EngineError;
use crate::error::{StatsError, unit_open};
use crate::summary::ArmStats;

/// Settings of the fixed-horizon test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrequentistConfig {
    /// Significance level; the CI has level 1 − alpha. Default 0.05.
    pub alpha: f64,
    pub difference_type: DifferenceType,
}

impl Default for FrequentistConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            difference_type: DifferenceType::Relative,
        }
    }
}

/// The outcome of a frequentist (or sequential) comparison of one treatment with control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrequentistResult {
    /// The effect estimate Δ (0 in placeholders).
    pub expected: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    /// Two-sided p-value (1 in placeholders).
    pub p_value: f64,
    /// Standard error of Δ.
    pub uplift_stddev: f64,
    /// Welch–Satterthwaite degrees of freedom; None in placeholders.
    pub dof: Option<f64>,
    /// Set when the numbers are gbstats' placeholders rather than statistics.
    pub error: Option<EngineError>,
}

impl FrequentistResult {
    pub(crate) fn placeholder(error: EngineError) -> Self {
        Self {
            expected: 0.0,
            ci_lower: 0.0,
            ci_upper: 0.0,
            p_value: 1.0,
            uplift_stddev: 0.0,
            dof: None,
            error: Some(error),
        }
    }
}

/// The frequentist engines' precondition checks, in gbstats' order.
pub(crate) fn check_arms(control: &ArmStats, treatment: &ArmStats) -> Option<EngineError> {
    if control.mean() == 0.0 {
        Some(EngineError::ZeroNegativeBaselineVariation)
    } else if control.variance() <= 0.0 || treatment.variance() <= 0.0 {
        Some(EngineError::ZeroNegativeVariance)
    } else {
        None
    }
}

/// Welch–Satterthwaite degrees of freedom from the absolute variances (also for relative
/// effects, as gbstats).
pub fn welch_dof(control: &ArmStats, treatment: &ArmStats) -> f64 {
    let (va, na) = (control.variance(), control.nf());
    let (vb, nb) = (treatment.variance(), treatment.nf());
    (vb / nb + va / na).powi(2)
        / (vb.powi(2) / (nb.powi(2) * (nb - 1.0)) + va.powi(2) / (na.powi(2) * (na - 1.0)))
}

/// Two-sided Welch t test of treatment against control (gbstats `TwoSidedTTest`).
///
/// The p-value is `2·(1 − F_t(|t|))` exactly as gbstats writes it, so it is 0.0 once |t| is
/// beyond about 8.3; the CI is Δ ± t_{1−α/2,ν}·SE, symmetric also for relative effects.
pub fn two_sided_t_test(
    control: &ArmStats,
    treatment: &ArmStats,
    config: &FrequentistConfig,
) -> Result<FrequentistResult, StatsError> {
    let alpha = unit_open("alpha", config.alpha)?;
    if let Some(error) = check_arms(control, treatment) {
        return Ok(FrequentistResult::placeholder(error));
    }
    let eff = effect(control, treatment, config.difference_type);
    let se = eff.variance.sqrt();
    let dof = welch_dof(control, treatment);
    let t = eff.estimate / se;
    let p_value = 2.0 * (1.0 - t_cdf(t.abs(), dof));
    let half = t_ppf(1.0 - alpha / 2.0, dof) * se;
    Ok(FrequentistResult {
        expected: eff.estimate,
        ci_lower: eff.estimate - half,
        ci_upper: eff.estimate + half,
        p_value,
        uplift_stddev: se,
        dof: Some(dof),
        error: None,
    })
}
