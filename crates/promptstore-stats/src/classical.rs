//! Classical two-sample tests (statsmodels/scipy conventions): pooled and unpooled
//! two-proportion z tests, Wald/Newcombe/Katz intervals, Yates' chi-square, Fisher's exact
//! test, Welch's and Student's t tests, and a delta-method interval on the relative lift.
//! They complement the gbstats engines with the textbook numbers analysts expect.

use crate::dist::{chi2_sf, norm_cdf, norm_ppf, t_ppf, t_sf};
use crate::effect::relative_variance;
use crate::error::{StatsError, unit_open};
use crate::summary::{ArmStats, MetricKind};

/// A binomial arm for the classical tests: `successes` out of `n ≥ 1` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    successes: u64,
    n: u64,
}

impl Counts {
    pub fn new(successes: u64, n: u64) -> Result<Self, StatsError> {
        if n == 0 {
            return Err(StatsError::NoUnits { field: "counts" });
        }
        if successes > n {
            return Err(StatsError::SuccessesExceedUnits { successes, n });
        }
        Ok(Self { successes, n })
    }

    pub fn successes(&self) -> u64 {
        self.successes
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    pub fn failures(&self) -> u64 {
        self.n - self.successes
    }

    /// successes / n.
    pub fn rate(&self) -> f64 {
        self.successes as f64 / self.n as f64
    }

    fn x(&self) -> f64 {
        self.successes as f64
    }

    fn nf(&self) -> f64 {
        self.n as f64
    }
}

/// A z test of p_B − p_A = 0: its standard error, and the statistic and two-sided p-value
/// (None when the standard error is 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTest {
    pub se: f64,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
}

fn z_test(diff: f64, se: f64) -> ZTest {
    if se > 0.0 {
        let z = diff / se;
        ZTest {
            se,
            statistic: Some(z),
            p_value: Some(2.0 * norm_cdf(-z.abs())),
        }
    } else {
        ZTest {
            se,
            statistic: None,
            p_value: None,
        }
    }
}

/// Pooled two-proportion z test (statsmodels `proportions_ztest`): the variance under H0
/// uses p̄ = (x_A + x_B)/(n_A + n_B).
pub fn z_test_pooled(control: Counts, treatment: Counts) -> ZTest {
    let pbar = (control.x() + treatment.x()) / (control.nf() + treatment.nf());
    let se = (pbar * (1.0 - pbar) * (1.0 / control.nf() + 1.0 / treatment.nf())).sqrt();
    z_test(treatment.rate() - control.rate(), se)
}

/// Unpooled (Wald) two-proportion z test (statsmodels `test_proportions_2indep`, wald).
pub fn z_test_unpooled(control: Counts, treatment: Counts) -> ZTest {
    z_test(
        treatment.rate() - control.rate(),
        unpooled_se(control, treatment),
    )
}

fn unpooled_se(a: Counts, b: Counts) -> f64 {
    let (pa, pb) = (a.rate(), b.rate());
    (pa * (1.0 - pa) / a.nf() + pb * (1.0 - pb) / b.nf()).sqrt()
}

/// z_{1−α/2}, after checking alpha.
fn z_crit(alpha: f64) -> Result<f64, StatsError> {
    Ok(norm_ppf(1.0 - unit_open("alpha", alpha)? / 2.0))
}

/// Wald interval for p_B − p_A at level 1 − alpha: Δ ∓ z·SE_unpooled.
pub fn wald_diff_ci(
    control: Counts,
    treatment: Counts,
    alpha: f64,
) -> Result<(f64, f64), StatsError> {
    let z = z_crit(alpha)?;
    let d = treatment.rate() - control.rate();
    let h = z * unpooled_se(control, treatment);
    Ok((d - h, d + h))
}

/// Wilson score interval for one proportion (no continuity correction).
pub fn wilson_interval(counts: Counts, alpha: f64) -> Result<(f64, f64), StatsError> {
    let z = z_crit(alpha)?;
    Ok(wilson(counts, z))
}

fn wilson(c: Counts, z: f64) -> (f64, f64) {
    let (p, n) = (c.rate(), c.nf());
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    (center - half, center + half)
}

/// Newcombe's hybrid score interval for p_B − p_A (statsmodels `method="newcomb"`), built
/// from the two Wilson intervals; well behaved at 0% and 100%.
pub fn newcombe_diff_ci(
    control: Counts,
    treatment: Counts,
    alpha: f64,
) -> Result<(f64, f64), StatsError> {
    let z = z_crit(alpha)?;
    let (la, ua) = wilson(control, z);
    let (lb, ub) = wilson(treatment, z);
    let (pa, pb) = (control.rate(), treatment.rate());
    let d = pb - pa;
    Ok((
        d - ((pb - lb).powi(2) + (ua - pa).powi(2)).sqrt(),
        d + ((ub - pb).powi(2) + (pa - la).powi(2)).sqrt(),
    ))
}

/// Katz log interval on the risk ratio p_B/p_A, minus 1 (an interval on the relative lift);
/// None when either arm has no successes.
pub fn katz_log_relative_ci(
    control: Counts,
    treatment: Counts,
    alpha: f64,
) -> Result<Option<(f64, f64)>, StatsError> {
    let z = z_crit(alpha)?;
    if control.successes == 0 || treatment.successes == 0 {
        return Ok(None);
    }
    let rr = treatment.rate() / control.rate();
    let se = (1.0 / treatment.x() - 1.0 / treatment.nf() + 1.0 / control.x() - 1.0 / control.nf())
        .sqrt();
    Ok(Some((
        rr * (-z * se).exp() - 1.0,
        rr * (z * se).exp() - 1.0,
    )))
}

/// p-value of the 2×2 chi-square test of independence with Yates' continuity correction
/// (scipy `chi2_contingency`); None when an expected cell is 0 (a column is all zero).
pub fn chi2_yates_p(control: Counts, treatment: Counts) -> Option<f64> {
    let table = [
        [treatment.x(), treatment.failures() as f64],
        [control.x(), control.failures() as f64],
    ];
    let rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]];
    let cols = [table[0][0] + table[1][0], table[0][1] + table[1][1]];
    let total = rows[0] + rows[1];
    let mut stat = 0.0;
    for (i, row) in table.iter().enumerate() {
        for (j, &observed) in row.iter().enumerate() {
            let expected = rows[i] * cols[j] / total;
            if expected == 0.0 {
                return None;
            }
            // Move each observation half a unit towards its expectation, never past it.
            let diff = expected - observed;
            let corrected = observed + diff.signum() * diff.abs().min(0.5);
            stat += (corrected - expected).powi(2) / expected;
        }
    }
    Some(chi2_sf(stat, 1.0))
}

/// Fisher's exact test, two-sided as scipy defines it: the total probability of the tables
/// (with the observed margins) no more likely than the observed one.
///
/// Probabilities are built by the hypergeometric recurrence from the mode, so no factorials
/// overflow; a table counts as "no more likely" within a relative 1e-7, so that tables tied
/// in exact arithmetic are not split by rounding (R's `fisher.test` does the same).
pub fn fisher_exact_p(control: Counts, treatment: Counts) -> f64 {
    let r1 = treatment.n; // row 1: treatment
    let r2 = control.n; // row 2: control
    let c1 = treatment.successes + control.successes; // column 1: successes
    let total = r1 + r2;
    if c1 == 0 || c1 == total {
        return 1.0;
    }
    let lo = c1.saturating_sub(r2);
    let hi = c1.min(r1);
    let observed = treatment.successes;
    // Mode of the hypergeometric distribution.
    let mode = (((c1 as u128 + 1) * (r1 as u128 + 1)) / (total as u128 + 2)) as u64;
    let mode = mode.clamp(lo, hi);
    let (r1f, r2f, c1f) = (r1 as f64, r2 as f64, c1 as f64);
    // ratio(k) = pmf(k+1)/pmf(k)
    let ratio = |k: f64| (r1f - k) * (c1f - k) / ((k + 1.0) * (r2f - c1f + k + 1.0));

    let mut weights_above = Vec::new(); // pmf(mode+1..), relative to pmf(mode) = 1
    let mut w = 1.0;
    let mut k = mode;
    while k < hi {
        w *= ratio(k as f64);
        k += 1;
        if w == 0.0 {
            break;
        }
        weights_above.push(w);
    }
    let mut weights_below = Vec::new(); // pmf(mode-1), pmf(mode-2), ...
    let mut w = 1.0;
    let mut k = mode;
    while k > lo {
        w /= ratio((k - 1) as f64);
        k -= 1;
        if w == 0.0 {
            break;
        }
        weights_below.push(w);
    }
    let weight_of = |k: u64| -> f64 {
        if k == mode {
            1.0
        } else if k > mode {
            weights_above
                .get((k - mode - 1) as usize)
                .copied()
                .unwrap_or(0.0)
        } else {
            weights_below
                .get((mode - k - 1) as usize)
                .copied()
                .unwrap_or(0.0)
        }
    };
    let threshold = weight_of(observed) * (1.0 + 1e-7);
    let mut sum_all = 1.0;
    let mut sum_tail = if 1.0 <= threshold { 1.0 } else { 0.0 };
    for &w in weights_above.iter().chain(weights_below.iter()) {
        sum_all += w;
        if w <= threshold {
            sum_tail += w;
        }
    }
    (sum_tail / sum_all).min(1.0)
}

/// A two-sample t test on the difference of means m_B − m_A.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTestResult {
    pub statistic: f64,
    pub df: f64,
    /// Two-sided, 2·sf(|t|).
    pub p_value: f64,
    /// Standard error of m_B − m_A.
    pub se: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
}

/// Welch's unequal-variance t test from sufficient statistics (scipy
/// `ttest_ind_from_stats(equal_var=False)`), using the unbiased sample variances; None when
/// either arm has n ≤ 1 or both variances are 0.
pub fn welch_t_test(
    control: &ArmStats,
    treatment: &ArmStats,
    alpha: f64,
) -> Result<Option<TTestResult>, StatsError> {
    let alpha = unit_open("alpha", alpha)?;
    let (Some(va), Some(vb)) = (control.sample_variance(), treatment.sample_variance()) else {
        return Ok(None);
    };
    let (na, nb) = (control.nf(), treatment.nf());
    let (qa, qb) = (va / na, vb / nb);
    let se2 = qa + qb;
    if se2 <= 0.0 {
        return Ok(None);
    }
    let df = se2.powi(2) / (qa.powi(2) / (na - 1.0) + qb.powi(2) / (nb - 1.0));
    Ok(Some(t_result(
        treatment.mean() - control.mean(),
        se2.sqrt(),
        df,
        alpha,
    )))
}

/// Student's pooled-variance t test (scipy `ttest_ind_from_stats(equal_var=True)`); None when
/// either arm has n ≤ 1 or the pooled variance is 0.
pub fn student_t_test(
    control: &ArmStats,
    treatment: &ArmStats,
    alpha: f64,
) -> Result<Option<TTestResult>, StatsError> {
    let alpha = unit_open("alpha", alpha)?;
    let (Some(va), Some(vb)) = (control.sample_variance(), treatment.sample_variance()) else {
        return Ok(None);
    };
    let (na, nb) = (control.nf(), treatment.nf());
    let df = na + nb - 2.0;
    let pooled = ((na - 1.0) * va + (nb - 1.0) * vb) / df;
    if pooled <= 0.0 {
        return Ok(None);
    }
    let se = (pooled * (1.0 / na + 1.0 / nb)).sqrt();
    Ok(Some(t_result(
        treatment.mean() - control.mean(),
        se,
        df,
        alpha,
    )))
}

fn t_result(diff: f64, se: f64, df: f64, alpha: f64) -> TTestResult {
    let t = diff / se;
    let half = t_ppf(1.0 - alpha / 2.0, df) * se;
    TTestResult {
        statistic: t,
        df,
        p_value: 2.0 * t_sf(t.abs(), df),
        se,
        ci_lower: diff - half,
        ci_upper: diff + half,
    }
}

/// The delta-method standard error of the relative lift (m_B − m_A)/m_A and its normal
/// interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeDelta {
    /// None when the control mean is 0 or a continuous arm has n ≤ 1.
    pub se: Option<f64>,
    /// None when the standard error is undefined or 0.
    pub ci: Option<(f64, f64)>,
}

/// Delta-method interval on the relative lift at level 1 − alpha, with the proportion
/// variance p(1−p) for binomial arms and the sample variance for continuous ones.
pub fn relative_delta_ci(
    control: &ArmStats,
    treatment: &ArmStats,
    alpha: f64,
) -> Result<RelativeDelta, StatsError> {
    let z = z_crit(alpha)?;
    let variance = |arm: &ArmStats| match arm.kind() {
        MetricKind::Proportion => Some(arm.variance()),
        MetricKind::Mean => arm.sample_variance(),
    };
    let (ma, mb) = (control.mean(), treatment.mean());
    let se = match (variance(control), variance(treatment)) {
        (Some(va), Some(vb)) if ma != 0.0 => {
            Some(relative_variance(ma, va, control.nf(), mb, vb, treatment.nf()).sqrt())
        }
        _ => None,
    };
    let ci = match se {
        Some(se) if se > 0.0 => {
            let rel = (mb - ma) / ma;
            Some((rel - z * se, rel + z * se))
        }
        _ => None,
    };
    Ok(RelativeDelta { se, ci })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x: u64, n: u64) -> Counts {
        Counts::new(x, n).unwrap()
    }

    #[test]
    fn fisher_matches_scipy_on_small_tables() {
        // scipy.stats.fisher_exact([[3, 7], [1, 9]]).pvalue = 0.5820433436532507
        let p = fisher_exact_p(c(1, 10), c(3, 10));
        assert!((p - 0.5820433436532507).abs() < 1e-12, "{p}");
        // A table at the mode has p = 1.
        assert!((fisher_exact_p(c(5, 10), c(5, 10)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn counts_reject_impossible_tables() {
        assert!(Counts::new(1, 0).is_err());
        assert!(Counts::new(11, 10).is_err());
    }

    #[test]
    fn yates_is_undefined_for_an_all_zero_column() {
        assert_eq!(chi2_yates_p(c(0, 10), c(0, 20)), None);
    }
}
