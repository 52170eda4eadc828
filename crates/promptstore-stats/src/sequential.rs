//! Sequential (always-valid) engine: the asymptotic confidence sequence of Waudby-Smith et
//! al. (2023) as gbstats 0.8.0 `SequentialTwoSidedTTest` implements it, so results may be
//! looked at after every batch without inflating the false-positive rate.

use crate::effect::{DifferenceType, effect};
use crate::error::{StatsError, positive, unit_open};
use crate::frequentist::{FrequentistResult, check_arms};
use crate::summary::ArmStats;

/// gbstats' default tuning parameter τ: the total sample size at which the confidence
/// sequence is tightest.
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;

/// Settings of the sequential test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialConfig {
    pub alpha: f64,
    pub difference_type: DifferenceType,
    /// τ > 0, default [`DEFAULT_SEQUENTIAL_TUNING`].
    pub tuning: f64,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            difference_type: DifferenceType::Relative,
            tuning: DEFAULT_SEQUENTIAL_TUNING,
        }
    }
}

/// A sequential result: the frequentist fields (`dof` is always None: no t distribution
/// is involved) plus ρ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialResult {
    pub result: FrequentistResult,
    /// ρ = √((−2 ln α + ln(−2 ln α + 1))/τ); depends only on alpha and τ.
    pub rho: f64,
}

/// ρ of the normal mixture for level alpha and tuning τ.
pub fn sequential_rho(alpha: f64, tuning: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    ((l + (l + 1.0).ln()) / tuning).sqrt()
}

/// The always-valid two-sided test: CI = Δ ± half-width of the confidence sequence and
/// p = min(1, 1/E) with E the mixture e-value; p < alpha exactly when the CI excludes 0.
pub fn sequential_test(
    control: &ArmStats,
    treatment: &ArmStats,
    config: &SequentialConfig,
) -> Result<SequentialResult, StatsError> {
    let alpha = unit_open("alpha", config.alpha)?;
    let tuning = positive("sequential tuning parameter", config.tuning)?;
    let rho = sequential_rho(alpha, tuning);
    if let Some(error) = check_arms(control, treatment) {
        return Ok(SequentialResult {
            result: FrequentistResult::placeholder(error),
            rho,
        });
    }
    let eff = effect(control, treatment, config.difference_type);
    let n = control.nf() + treatment.nf();
    let rho2 = rho * rho;
    let s2 = eff.variance * n;
    let width_factor =
        (2.0 * (n * rho2 + 1.0) * ((n * rho2 + 1.0).sqrt() / alpha).ln() / (n * n * rho2)).sqrt();
    let half = s2.sqrt() * width_factor;
    let e_value = (rho2 * (eff.estimate.powi(2) * n / eff.variance) / (2.0 * (n * rho2 + 1.0)))
        .exp()
        / (n * rho2 + 1.0).sqrt();
    let p_value = (1.0 / e_value).min(1.0);
    Ok(SequentialResult {
        result: FrequentistResult {
            expected: eff.estimate,
            ci_lower: eff.estimate - half,
            ci_upper: eff.estimate + half,
            p_value,
            uplift_stddev: eff.variance.sqrt(),
            dof: None,
            error: None,
        },
        rho,
    })
}
