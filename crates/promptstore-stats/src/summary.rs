//! Per-arm summary statistics from sufficient statistics (n, Σx, Σx²), as gbstats defines
//! them: the arms' means and variances feed every engine.

use crate::error::{StatsError, finite};

/// How an arm's variance is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// 0/1 outcomes (conversion, success, error rate): variance p(1−p), the MLE with no
    /// n/(n−1) correction (gbstats `ProportionStatistic`).
    Proportion,
    /// Counts or continuous values (latency, cost, scores): the sample variance
    /// (Σx² − (Σx)²/n)/(n−1), or 0 when n ≤ 1 (gbstats `SampleMeanStatistic`).
    Mean,
}

/// One arm's sufficient statistics, validated: n units, the sum of their values and the
/// sum of their squared values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmStats {
    kind: MetricKind,
    n: u64,
    sum: f64,
    sum_squares: f64,
}

impl ArmStats {
    /// A binomial arm: `successes` of `n` units converted.
    pub fn proportion(n: u64, successes: u64) -> Result<Self, StatsError> {
        if successes > n {
            return Err(StatsError::SuccessesExceedUnits { successes, n });
        }
        let s = successes as f64;
        Ok(Self {
            kind: MetricKind::Proportion,
            n,
            sum: s,
            sum_squares: s,
        })
    }

    /// A count or continuous arm from n, Σx and Σx².
    pub fn sample_mean(n: u64, sum: f64, sum_squares: f64) -> Result<Self, StatsError> {
        finite("sum", sum)?;
        finite("sum_squares", sum_squares)?;
        if sum_squares < 0.0 {
            return Err(StatsError::Negative {
                field: "sum_squares",
                value: sum_squares,
            });
        }
        Ok(Self {
            kind: MetricKind::Mean,
            n,
            sum,
            sum_squares,
        })
    }

    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    /// n as a float, for the formulas.
    pub(crate) fn nf(&self) -> f64 {
        self.n as f64
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn sum_squares(&self) -> f64 {
        self.sum_squares
    }

    /// Σx / n, or 0 for an empty arm (as gbstats).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.nf()
        }
    }

    /// The variance the A/B engines use: p(1−p) for proportions, the sample variance
    /// (0 when n ≤ 1) for means.
    pub fn variance(&self) -> f64 {
        match self.kind {
            MetricKind::Proportion => {
                let m = self.mean();
                m * (1.0 - m)
            }
            MetricKind::Mean => self.sample_variance().unwrap_or(0.0),
        }
    }

    /// The unbiased sample variance (Σx² − (Σx)²/n)/(n−1); undefined (None) when n ≤ 1.
    pub fn sample_variance(&self) -> Option<f64> {
        if self.n <= 1 {
            return None;
        }
        let n = self.nf();
        Some((self.sum_squares - self.sum * self.sum / n) / (n - 1.0))
    }

    /// √[`variance`](Self::variance), or 0 when the variance is not positive.
    pub fn stddev(&self) -> f64 {
        let v = self.variance();
        if v <= 0.0 { 0.0 } else { v.sqrt() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportion_uses_mle_variance() {
        let a = ArmStats::proportion(1000, 100).unwrap();
        assert_eq!(a.mean(), 0.1);
        assert!((a.variance() - 0.09).abs() < 1e-15);
        let sv = a.sample_variance().unwrap();
        assert!((sv - 0.09 * 1000.0 / 999.0).abs() < 1e-15);
    }

    #[test]
    fn sample_mean_handles_tiny_arms() {
        let one = ArmStats::sample_mean(1, 7.5, 56.25).unwrap();
        assert_eq!(one.variance(), 0.0);
        assert_eq!(one.sample_variance(), None);
        let empty = ArmStats::sample_mean(0, 0.0, 0.0).unwrap();
        assert_eq!(empty.mean(), 0.0);
        let four = ArmStats::sample_mean(4, 10.0, 30.0).unwrap();
        assert!((four.variance() - 5.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn bad_input_is_rejected_with_the_field_named() {
        assert_eq!(
            ArmStats::proportion(10, 11),
            Err(StatsError::SuccessesExceedUnits {
                successes: 11,
                n: 10
            })
        );
        let err = ArmStats::sample_mean(3, f64::NAN, 1.0).unwrap_err();
        assert!(err.to_string().contains("sum"), "{err}");
        assert!(ArmStats::sample_mean(3, 1.0, -1.0).is_err());
    }
}
