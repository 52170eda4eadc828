//! Sample-ratio mismatch: Pearson's chi-square goodness of fit of the observed units per arm
//! against the configured traffic weights (gbstats `check_srm`). A tiny p-value means the
//! assignment or the logging is broken, and no other result of the experiment can be trusted.

use crate::dist::chi2_sf;
use crate::error::StatsError;

/// The GrowthBook app's threshold: flag an SRM when p < 0.001.
pub const DEFAULT_SRM_THRESHOLD: f64 = 0.001;

/// The SRM check's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct SrmResult {
    /// w_i/Σw · Σusers.
    pub expected_counts: Vec<f64>,
    /// k − 1, with k the number of arms (zero-weight arms included).
    pub df: usize,
    /// Σ (o_i − e_i)²/e_i over the arms with a positive weight; None when there are no units.
    pub statistic: Option<f64>,
    /// The chi-square upper tail; 1 when there are no units (as gbstats).
    pub p_value: f64,
}

impl SrmResult {
    /// True when p < `threshold` (use [`DEFAULT_SRM_THRESHOLD`]).
    pub fn is_mismatch(&self, threshold: f64) -> bool {
        self.p_value < threshold
    }
}

/// Check the observed `users` per arm against `weights` (any positive scale; zero-weight
/// arms are skipped in the sum but still count in the degrees of freedom, as gbstats).
pub fn srm_test(users: &[u64], weights: &[f64]) -> Result<SrmResult, StatsError> {
    if users.len() != weights.len() {
        return Err(StatsError::LengthMismatch {
            left: "users",
            right: "weights",
            left_len: users.len(),
            right_len: weights.len(),
        });
    }
    if users.len() < 2 {
        return Err(StatsError::TooFewArms {
            min: 2,
            got: users.len(),
        });
    }
    for &w in weights {
        if !w.is_finite() {
            return Err(StatsError::NotFinite {
                field: "weight",
                value: w,
            });
        }
        if w < 0.0 {
            return Err(StatsError::Negative {
                field: "weight",
                value: w,
            });
        }
    }
    let weight_total: f64 = weights.iter().sum();
    if weight_total <= 0.0 {
        return Err(StatsError::AllWeightsZero);
    }
    let total: f64 = users.iter().map(|&u| u as f64).sum();
    let expected_counts: Vec<f64> = weights.iter().map(|w| w / weight_total * total).collect();
    let df = users.len() - 1;
    if total == 0.0 {
        return Ok(SrmResult {
            expected_counts,
            df,
            statistic: None,
            p_value: 1.0,
        });
    }
    let statistic: f64 = users
        .iter()
        .zip(&expected_counts)
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|((&o, &e), _)| (o as f64 - e).powi(2) / e)
        .sum();
    Ok(SrmResult {
        expected_counts,
        df,
        statistic: Some(statistic),
        p_value: chi2_sf(statistic, df as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_weight_arm_is_skipped_but_counts_in_df() {
        let r = srm_test(&[500, 500, 0], &[1.0, 1.0, 0.0]).unwrap();
        assert_eq!(r.df, 2);
        assert_eq!(r.statistic, Some(0.0));
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn bad_input_is_named() {
        assert!(matches!(
            srm_test(&[1, 2], &[1.0]),
            Err(StatsError::LengthMismatch { .. })
        ));
        assert_eq!(
            srm_test(&[1, 2], &[0.0, 0.0]),
            Err(StatsError::AllWeightsZero)
        );
        assert!(srm_test(&[1, 2], &[-1.0, 2.0]).is_err());
        assert!(srm_test(&[1], &[1.0]).is_err());
    }

    #[test]
    fn a_broken_split_is_flagged() {
        let r = srm_test(&[3500, 3300, 3200], &[1.0, 1.0, 1.0]).unwrap();
        assert!(r.is_mismatch(DEFAULT_SRM_THRESHOLD));
        let ok = srm_test(&[5000, 4990], &[0.5, 0.5]).unwrap();
        assert!(!ok.is_mismatch(DEFAULT_SRM_THRESHOLD));
    }
}
