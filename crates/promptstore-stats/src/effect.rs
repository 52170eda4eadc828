//! The treatment-vs-control effect and its variance (gbstats `frequentist_diff` /
//! `frequentist_variance`), shared by the frequentist, sequential and Bayesian engines.

use crate::summary::ArmStats;

/// Whether effects are reported as differences of means or as lifts relative to control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DifferenceType {
    /// (m_B − m_A)/m_A, with a delta-method variance. gbstats' default.
    #[default]
    Relative,
    /// m_B − m_A.
    Absolute,
}

impl DifferenceType {
    /// gbstats' name: `"relative"` or `"absolute"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Relative => "relative",
            Self::Absolute => "absolute",
        }
    }
}

/// A point estimate of the effect and the variance of that estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    pub estimate: f64,
    pub variance: f64,
}

/// The effect of `treatment` over `control`. Undefined (division by zero) for relative
/// effects with a zero control mean: callers check that first, as gbstats does.
pub fn effect(control: &ArmStats, treatment: &ArmStats, difference: DifferenceType) -> Effect {
    let (ma, va, na) = (control.mean(), control.variance(), control.nf());
    let (mb, vb, nb) = (treatment.mean(), treatment.variance(), treatment.nf());
    match difference {
        DifferenceType::Absolute => Effect {
            estimate: mb - ma,
            variance: vb / nb + va / na,
        },
        DifferenceType::Relative => Effect {
            estimate: (mb - ma) / ma,
            variance: relative_variance(ma, va, na, mb, vb, nb),
        },
    }
}

/// Delta-method variance of (m_B − m_A)/m_A: v_B/(m_A² n_B) + v_A m_B²/(m_A⁴ n_A).
pub(crate) fn relative_variance(ma: f64, va: f64, na: f64, mb: f64, vb: f64, nb: f64) -> f64 {
    vb / (ma.powi(2) * nb) + va * mb.powi(2) / (ma.powi(4) * na)
}
