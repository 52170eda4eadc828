//! Deterministic, sticky arm assignment: hash(experiment, unit) → arm, identical on every
//! call, every server instance and every client that reimplements the documented algorithm.

use sha2::{Digest, Sha256};

use crate::error::StatsError;

/// Validated traffic weights: at least one arm, every weight finite and ≥ 0, not all zero.
/// Weights need not sum to 1; only their proportions matter.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmWeights {
    weights: Vec<f64>,
}

impl ArmWeights {
    pub fn new(weights: &[f64]) -> Result<Self, StatsError> {
        if weights.is_empty() {
            return Err(StatsError::TooFewArms { min: 1, got: 0 });
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
        if weights.iter().all(|&w| w == 0.0) {
            return Err(StatsError::AllWeightsZero);
        }
        Ok(Self {
            weights: weights.to_vec(),
        })
    }

    /// The number of arms.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Always false: there is at least one arm.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The arm of `unit_id` in `experiment_id`; see [`assign_arm`] for the algorithm.
    pub fn assign(&self, experiment_id: &str, unit_id: &str) -> usize {
        self.arm_for(unit_position(experiment_id, unit_id))
    }

    /// The arm whose cumulative-weight interval holds `u` in [0, 1).
    fn arm_for(&self, u: f64) -> usize {
        let total: f64 = self.weights.iter().sum();
        let target = u * total;
        let mut cumulative = 0.0;
        let mut last_positive = 0;
        for (i, &w) in self.weights.iter().enumerate() {
            cumulative += w;
            if w > 0.0 {
                last_positive = i;
                if target < cumulative {
                    return i;
                }
            }
        }
        // Only reachable when rounding leaves u·total at the very top of the range.
        last_positive
    }
}

/// The unit's position in [0, 1) for an experiment: the top 53 bits of the first 8 bytes
/// (big-endian) of SHA-256(`"{experiment_id}:{unit_id}"`), divided by 2⁵³.
pub fn unit_position(experiment_id: &str, unit_id: &str) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(experiment_id.as_bytes());
    hasher.update(b":");
    hasher.update(unit_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let x = u64::from_be_bytes(first);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Assign `unit_id` to an arm of `experiment_id` with traffic `weights`.
///
/// The algorithm, exactly (so that any client can reproduce it):
///
/// 1. `bytes` = the UTF-8 bytes of `experiment_id`, then `:`, then `unit_id`.
/// 2. `h` = SHA-256(`bytes`); `x` = the first 8 bytes of `h` as a big-endian u64.
/// 3. `u` = (`x` >> 11) / 2⁵³, a double in [0, 1), exactly representable.
/// 4. `total` = the weights summed left to right in IEEE double; `target` = `u · total`.
/// 5. Walk the arms in order keeping the running sum `c` (left to right, double); return the
///    first arm with a positive weight and `target < c`. If rounding leaves none, return the
///    last arm with a positive weight.
///
/// Zero-weight arms are never chosen. The same inputs always give the same arm (sticky);
/// over many units, the arms' shares converge to the weights' proportions. Changing the
/// weights of a running experiment moves only the units whose position crosses a boundary.
///
/// Python: `u = (int.from_bytes(sha256(f"{e}:{unit}".encode()).digest()[:8], "big") >> 11) / 2**53`.
pub fn assign_arm(
    experiment_id: &str,
    unit_id: &str,
    weights: &[f64],
) -> Result<usize, StatsError> {
    Ok(ArmWeights::new(weights)?.assign(experiment_id, unit_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_python_implementation() {
        // Computed with Python's hashlib from the algorithm in the doc comment.
        let cases: &[(&str, &str, &[f64], f64, usize)] = &[
            ("exp-1", "user-1", &[0.5, 0.5], 0.5797495389174229, 1),
            ("exp-1", "user-2", &[0.5, 0.5], 0.7571246902589146, 1),
            ("exp-1", "user-3", &[1.0, 1.0, 1.0], 0.7463098113676744, 2),
            ("checkout", "alice", &[0.9, 0.1], 0.06350899403795851, 0),
            ("checkout", "bob", &[0.2, 0.3, 0.5], 0.14638762457913856, 0),
            ("checkout", "carol", &[0.2, 0.3, 0.5], 0.9508173950216983, 2),
        ];
        for &(e, unit, w, u, arm) in cases {
            assert_eq!(unit_position(e, unit), u, "{e}:{unit}");
            assert_eq!(assign_arm(e, unit, w).unwrap(), arm, "{e}:{unit}");
        }
    }

    #[test]
    fn boundaries_and_zero_weights() {
        let w = ArmWeights::new(&[0.0, 1.0, 0.0, 1.0, 0.0]).unwrap();
        assert_eq!(w.arm_for(0.0), 1);
        assert_eq!(w.arm_for(0.4999), 1);
        assert_eq!(w.arm_for(0.5), 3);
        assert_eq!(w.arm_for(0.999_999_999_999_999_9), 3);
    }

    #[test]
    fn invalid_weights_are_rejected() {
        assert_eq!(
            assign_arm("e", "u", &[]),
            Err(StatsError::TooFewArms { min: 1, got: 0 })
        );
        assert_eq!(
            assign_arm("e", "u", &[0.0, 0.0]),
            Err(StatsError::AllWeightsZero)
        );
        assert!(assign_arm("e", "u", &[1.0, f64::NAN]).is_err());
        assert!(assign_arm("e", "u", &[1.0, -0.5]).is_err());
        assert!(assign_arm("e", "u", &[1.0, f64::INFINITY]).is_err());
    }
}
