//! Bayesian engine: a Gaussian posterior on the effect with a flat or proper Gaussian prior,
//! chance to beat control, credible interval and expected loss, in closed form exactly as
//! gbstats 0.8.0 `EffectBayesianABTest` (no Monte Carlo).

use crate::dist::{norm_cdf, norm_pdf, norm_ppf};
use crate::effect::{DifferenceType, effect};
use crate::engine_error::EngineError;
use crate::error::{StatsError, finite, positive, unit_open};
use crate::summary::ArmStats;

/// A Gaussian prior on the **relative** effect; rescaled by the control mean for absolute
/// effects. `proper = false` (gbstats' default) means a flat prior, whatever mean/variance say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianPrior {
    pub mean: f64,
    pub variance: f64,
    pub proper: bool,
}

impl Default for GaussianPrior {
    /// gbstats' metric default: mean 0, sd 0.1, not proper (flat).
    fn default() -> Self {
        Self {
            mean: 0.0,
            variance: 0.01,
            proper: false,
        }
    }
}

impl GaussianPrior {
    /// The GrowthBook app's prior when a user turns it on: N(0, 0.3²), proper.
    pub fn app_default_proper() -> Self {
        Self {
            mean: 0.0,
            variance: 0.09,
            proper: true,
        }
    }
}

/// Settings of the Bayesian engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesianConfig {
    /// The credible interval has level 1 − alpha.
    pub alpha: f64,
    pub difference_type: DifferenceType,
    /// Lower is better (latency, cost, error rate): flips chance to win and swaps the risks.
    pub inverse: bool,
    pub prior: GaussianPrior,
}

impl Default for BayesianConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            difference_type: DifferenceType::Relative,
            inverse: false,
            prior: GaussianPrior::default(),
        }
    }
}

/// The posterior summary for one treatment against control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesianResult {
    /// Posterior mean of the effect.
    pub expected: f64,
    /// Posterior standard deviation.
    pub uplift_stddev: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    /// P(treatment is better): P(effect > 0), or P(effect < 0) for inverse metrics.
    pub chance_to_win: f64,
    /// Expected loss of keeping the control (gbstats `risk[0]`).
    pub risk_control: f64,
    /// Expected loss of shipping the treatment (gbstats `risk[1]`).
    pub risk_treatment: f64,
    /// The unit of the risks: the difference type.
    pub risk_type: DifferenceType,
    pub error: Option<EngineError>,
}

impl BayesianResult {
    fn placeholder(error: EngineError, risk_type: DifferenceType) -> Self {
        Self {
            expected: 0.0,
            uplift_stddev: 0.0,
            ci_lower: 0.0,
            ci_upper: 0.0,
            chance_to_win: 0.5,
            risk_control: 0.0,
            risk_treatment: 0.0,
            risk_type,
            error: Some(error),
        }
    }
}

/// The Bayesian comparison of `treatment` with `control`.
pub fn bayesian_test(
    control: &ArmStats,
    treatment: &ArmStats,
    config: &BayesianConfig,
) -> Result<BayesianResult, StatsError> {
    let alpha = unit_open("alpha", config.alpha)?;
    let diff = config.difference_type;
    if config.prior.proper {
        finite("prior mean", config.prior.mean)?;
        positive("prior variance", config.prior.variance)?;
    }
    if diff == DifferenceType::Relative && control.mean() == 0.0 {
        return Ok(BayesianResult::placeholder(
            EngineError::ZeroNegativeBaselineVariation,
            diff,
        ));
    }
    if control.n() == 0 || treatment.n() == 0 {
        return Ok(BayesianResult::placeholder(
            EngineError::NoUnitsInVariation,
            diff,
        ));
    }
    if control.variance() <= 0.0 || treatment.variance() <= 0.0 {
        return Ok(BayesianResult::placeholder(
            EngineError::ZeroNegativeVariance,
            diff,
        ));
    }
    if config.prior.proper && diff == DifferenceType::Absolute && control.mean() == 0.0 {
        // A relative prior cannot be rescaled to absolute units by a zero baseline
        // (gbstats would divide by a zero prior variance and return NaN).
        return Ok(BayesianResult::placeholder(
            EngineError::ZeroNegativeBaselineVariation,
            diff,
        ));
    }
    let eff = effect(control, treatment, diff);
    let (mu, sigma) = posterior(
        eff.estimate,
        eff.variance,
        &config.prior,
        diff,
        control.mean(),
    );
    let z = norm_ppf(1.0 - alpha / 2.0);
    let win = norm_cdf(mu / sigma);
    let chance_to_win = if config.inverse {
        norm_cdf(-mu / sigma)
    } else {
        win
    };
    let (gain, loss) = expected_losses(mu, sigma);
    let (risk_control, risk_treatment) = if config.inverse {
        (loss, gain)
    } else {
        (gain, loss)
    };
    Ok(BayesianResult {
        expected: mu,
        uplift_stddev: sigma,
        ci_lower: mu - z * sigma,
        ci_upper: mu + z * sigma,
        chance_to_win,
        risk_control,
        risk_treatment,
        risk_type: diff,
        error: None,
    })
}

/// Posterior (mean, sd) of the effect given the estimate, its variance and the prior.
fn posterior(
    estimate: f64,
    variance: f64,
    prior: &GaussianPrior,
    diff: DifferenceType,
    control_mean: f64,
) -> (f64, f64) {
    if !prior.proper {
        return (estimate, variance.sqrt());
    }
    // The prior is stated on the relative scale; an absolute effect rescales it.
    let (m0, v0) = match diff {
        DifferenceType::Relative => (prior.mean, prior.variance),
        DifferenceType::Absolute => (
            prior.mean * control_mean.abs(),
            prior.variance * control_mean.powi(2),
        ),
    };
    let precision = 1.0 / variance + 1.0 / v0;
    let mean = (estimate / variance + m0 / v0) / precision;
    (mean, (1.0 / precision).sqrt())
}

/// (E[max(D, 0)], E[max(−D, 0)]) for D ~ N(mu, sigma²): the loss of keeping the control
/// when the treatment is better, and of shipping the treatment when it is worse.
fn expected_losses(mu: f64, sigma: f64) -> (f64, f64) {
    let r = mu / sigma;
    let density = sigma * norm_pdf(r);
    (mu * norm_cdf(r) + density, -mu * norm_cdf(-r) + density)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_losses_differ_by_the_mean() {
        // E[max(D,0)] − E[max(−D,0)] = E[D] = mu.
        let (g, l) = expected_losses(0.3, 0.7);
        assert!((g - l - 0.3).abs() < 1e-15);
        let (g, l) = expected_losses(0.0, 1.0);
        assert!((g - l).abs() < 1e-15 && (g - norm_pdf(0.0)).abs() < 1e-15);
    }

    #[test]
    fn inverse_flips_chance_to_win_and_swaps_risks() {
        let a = ArmStats::proportion(1000, 80).unwrap();
        let b = ArmStats::proportion(1000, 60).unwrap();
        let plain = bayesian_test(&a, &b, &BayesianConfig::default()).unwrap();
        let inv = bayesian_test(
            &a,
            &b,
            &BayesianConfig {
                inverse: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!((plain.chance_to_win + inv.chance_to_win - 1.0).abs() < 1e-12);
        assert_eq!(plain.risk_control, inv.risk_treatment);
        assert_eq!(plain.risk_treatment, inv.risk_control);
        assert!(inv.chance_to_win > 0.9);
    }

    #[test]
    fn proper_prior_shrinks_towards_its_mean() {
        let a = ArmStats::proportion(100, 10).unwrap();
        let b = ArmStats::proportion(100, 20).unwrap();
        let flat = bayesian_test(&a, &b, &BayesianConfig::default()).unwrap();
        let cfg = BayesianConfig {
            prior: GaussianPrior::app_default_proper(),
            ..Default::default()
        };
        let shrunk = bayesian_test(&a, &b, &cfg).unwrap();
        assert!(shrunk.expected < flat.expected && shrunk.expected > 0.0);
        assert!(shrunk.uplift_stddev < flat.uplift_stddev);
    }

    #[test]
    fn invalid_prior_is_an_error() {
        let a = ArmStats::proportion(100, 10).unwrap();
        let cfg = BayesianConfig {
            prior: GaussianPrior {
                mean: 0.0,
                variance: 0.0,
                proper: true,
            },
            ..Default::default()
        };
        assert!(bayesian_test(&a, &a, &cfg).is_err());
    }

    #[test]
    fn absolute_proper_prior_with_zero_baseline_is_a_placeholder() {
        let a = ArmStats::sample_mean(2, 0.0, 2.0).unwrap(); // values −1 and 1
        let b = ArmStats::sample_mean(2, 2.0, 4.0).unwrap(); // values 0 and 2
        let cfg = BayesianConfig {
            difference_type: DifferenceType::Absolute,
            prior: GaussianPrior::app_default_proper(),
            ..Default::default()
        };
        let r = bayesian_test(&a, &b, &cfg).unwrap();
        assert_eq!(r.error, Some(EngineError::ZeroNegativeBaselineVariation));
        // With the flat prior the absolute effect is still defined.
        let flat = BayesianConfig {
            difference_type: DifferenceType::Absolute,
            ..Default::default()
        };
        let r = bayesian_test(&a, &b, &flat).unwrap();
        assert_eq!((r.error, r.expected), (None, 1.0));
    }
}
