//! Required sample size per arm for a minimum detectable effect (two-sided, equal
//! allocation): the closed forms, and the statsmodels `NormalIndPower` / `TTestIndPower`
//! solutions, so an experiment can say up front how many units it needs.

use crate::dist::{nct_cdf, norm_cdf, norm_ppf, t_ppf};
use crate::error::{StatsError, positive, unit_open};

/// How the minimum detectable effect on a rate is stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdeType {
    /// p2 = p1·(1 + mde).
    Relative,
    /// p2 = p1 + mde.
    Absolute,
}

/// Sample sizes per arm to detect p1 → p2 with a two-sided test at `alpha` with `power`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProportionSampleSize {
    pub p1: f64,
    pub p2: f64,
    /// p2 − p1.
    pub abs_effect: f64,
    /// Φ⁻¹(1 − α/2).
    pub z_alpha_2: f64,
    /// Φ⁻¹(power).
    pub z_beta: f64,
    /// Cohen's h = 2·asin√p2 − 2·asin√p1.
    pub cohens_h: f64,
    /// (z_a + z_b)²·(p1q1 + p2q2)/(p2 − p1)².
    pub n_normal_unpooled: f64,
    /// (z_a√(2p̄q̄) + z_b√(p1q1 + p2q2))²/(p2 − p1)², no continuity correction.
    pub n_normal_pooled: f64,
    /// 2·((z_a + z_b)/h)².
    pub n_arcsine: f64,
    /// n where the two-sided normal power on |h| (both rejection tails) equals `power`.
    pub n_normal_ind_power: f64,
    /// That power, evaluated at the solution (≈ `power`).
    pub power_at_solution: f64,
}

/// Sample size per arm for a binomial metric.
pub fn sample_size_proportion(
    baseline_rate: f64,
    mde: f64,
    mde_type: MdeType,
    alpha: f64,
    power: f64,
) -> Result<ProportionSampleSize, StatsError> {
    let p1 = unit_open("baseline rate", baseline_rate)?;
    let alpha = unit_open("alpha", alpha)?;
    let power = unit_open("power", power)?;
    if !mde.is_finite() {
        return Err(StatsError::NotFinite {
            field: "minimum detectable effect",
            value: mde,
        });
    }
    let p2 = match mde_type {
        MdeType::Relative => p1 * (1.0 + mde),
        MdeType::Absolute => p1 + mde,
    };
    if !(p2 > 0.0 && p2 < 1.0) {
        return Err(StatsError::TargetRateOutOfRange { p2 });
    }
    let d = p2 - p1;
    if d == 0.0 {
        return Err(StatsError::ZeroEffect);
    }
    let za = norm_ppf(1.0 - alpha / 2.0);
    let zb = norm_ppf(power);
    let (q1, q2) = (1.0 - p1, 1.0 - p2);
    let var_sum = p1 * q1 + p2 * q2;
    let pbar = (p1 + p2) / 2.0;
    let h = 2.0 * p2.sqrt().asin() - 2.0 * p1.sqrt().asin();
    let n_normal_ind_power = solve_n(|n| normal_ind_power(h.abs(), n, alpha), power, 1.0)?;
    Ok(ProportionSampleSize {
        p1,
        p2,
        abs_effect: d,
        z_alpha_2: za,
        z_beta: zb,
        cohens_h: h,
        n_normal_unpooled: (za + zb).powi(2) * var_sum / d.powi(2),
        n_normal_pooled: (za * (2.0 * pbar * (1.0 - pbar)).sqrt() + zb * var_sum.sqrt()).powi(2)
            / d.powi(2),
        n_arcsine: 2.0 * ((za + zb) / h).powi(2),
        n_normal_ind_power,
        power_at_solution: normal_ind_power(h.abs(), n_normal_ind_power, alpha),
    })
}

/// Sample sizes per arm to detect a shift `mde_abs` in a mean with standard deviation
/// `stddev`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSampleSize {
    /// Cohen's d = δ/σ.
    pub effect_size_d: f64,
    /// 2(z_a + z_b)²/d².
    pub n_normal: f64,
    /// n where the two-sample t test (noncentral t) reaches `power`.
    pub n_t_ind_power: f64,
    pub power_at_solution: f64,
}

/// Sample size per arm for a continuous metric.
pub fn sample_size_mean(
    stddev: f64,
    mde_abs: f64,
    alpha: f64,
    power: f64,
) -> Result<MeanSampleSize, StatsError> {
    let sd = positive("standard deviation", stddev)?;
    let alpha = unit_open("alpha", alpha)?;
    let power = unit_open("power", power)?;
    if !mde_abs.is_finite() {
        return Err(StatsError::NotFinite {
            field: "minimum detectable effect",
            value: mde_abs,
        });
    }
    if mde_abs == 0.0 {
        return Err(StatsError::ZeroEffect);
    }
    let d = mde_abs / sd;
    let za = norm_ppf(1.0 - alpha / 2.0);
    let zb = norm_ppf(power);
    // The t test needs at least 2 units per arm for its degrees of freedom.
    let n_t = solve_n(|n| t_ind_power(d.abs(), n, alpha), power, 2.0)?;
    Ok(MeanSampleSize {
        effect_size_d: d,
        n_normal: 2.0 * (za + zb).powi(2) / d.powi(2),
        n_t_ind_power: n_t,
        power_at_solution: t_ind_power(d.abs(), n_t, alpha),
    })
}

/// Power of the two-sided two-sample z test for effect size `h` with `n` units per arm
/// (statsmodels `NormalIndPower().power(h, n, alpha, ratio=1)`).
pub fn normal_ind_power(h: f64, n: f64, alpha: f64) -> f64 {
    let crit = norm_ppf(1.0 - alpha / 2.0);
    let shift = h * (n / 2.0).sqrt();
    norm_cdf(shift - crit) + norm_cdf(-crit - shift)
}

/// Power of the two-sided two-sample t test for effect size `d` with `n` units per arm
/// (statsmodels `TTestIndPower().power(d, n, alpha, ratio=1)`), via the noncentral t.
pub fn t_ind_power(d: f64, n: f64, alpha: f64) -> f64 {
    let df = 2.0 * n - 2.0;
    let nc = d * (n / 2.0).sqrt();
    let upper = t_ppf(1.0 - alpha / 2.0, df);
    let lower = t_ppf(alpha / 2.0, df);
    (1.0 - nct_cdf(upper, df, nc)) + nct_cdf(lower, df, nc)
}

/// The n ≥ `lo` where the increasing `power_of(n)` reaches `target`, by bisection to
/// relative precision 1e-12.
fn solve_n(power_of: impl Fn(f64) -> f64, target: f64, lo: f64) -> Result<f64, StatsError> {
    const LIMIT: f64 = 1e15;
    let mut lo = lo;
    if power_of(lo) >= target {
        return Ok(lo);
    }
    let mut hi = lo * 2.0;
    while power_of(hi) < target {
        lo = hi;
        hi *= 2.0;
        if hi > LIMIT {
            return Err(StatsError::SampleSizeUnreachable { limit: LIMIT });
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if power_of(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    Ok(0.5 * (lo + hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_grow_as_the_effect_shrinks() {
        let big = sample_size_proportion(0.1, 0.2, MdeType::Relative, 0.05, 0.8).unwrap();
        let small = sample_size_proportion(0.1, 0.1, MdeType::Relative, 0.05, 0.8).unwrap();
        assert!(small.n_normal_unpooled > 3.0 * big.n_normal_unpooled);
        assert!((small.power_at_solution - 0.8).abs() < 1e-9);
    }

    #[test]
    fn impossible_targets_are_errors() {
        assert_eq!(
            sample_size_proportion(0.9, 0.2, MdeType::Relative, 0.05, 0.8),
            Err(StatsError::TargetRateOutOfRange { p2: 0.9 * 1.2 })
        );
        assert_eq!(
            sample_size_mean(1.0, 0.0, 0.05, 0.8),
            Err(StatsError::ZeroEffect)
        );
        assert!(sample_size_mean(0.0, 0.1, 0.05, 0.8).is_err());
        assert!(sample_size_proportion(0.1, 0.1, MdeType::Absolute, 1.5, 0.8).is_err());
    }
}
