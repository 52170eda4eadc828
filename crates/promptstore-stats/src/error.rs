//! The one error type for bad input to the statistics: every variant names what is wrong.

/// Invalid input to a statistics function. Statistical outcomes that gbstats reports as
/// placeholders (zero variance, zero baseline) are not errors: see [`crate::EngineError`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{field} must be a finite number, got {value}")]
    NotFinite { field: &'static str, value: f64 },
    #[error("{field} must not be negative, got {value}")]
    Negative { field: &'static str, value: f64 },
    #[error("successes ({successes}) cannot exceed the number of units ({n})")]
    SuccessesExceedUnits { successes: u64, n: u64 },
    #[error("{field} needs at least one unit, got n = 0")]
    NoUnits { field: &'static str },
    #[error("{field} must be strictly between 0 and 1, got {value}")]
    OutOfUnitInterval { field: &'static str, value: f64 },
    #[error("{field} must be a positive finite number, got {value}")]
    NotPositive { field: &'static str, value: f64 },
    #[error("{left} and {right} must have the same length, got {left_len} and {right_len}")]
    LengthMismatch {
        left: &'static str,
        right: &'static str,
        left_len: usize,
        right_len: usize,
    },
    #[error("at least {min} arms are needed, got {got}")]
    TooFewArms { min: usize, got: usize },
    #[error("the weights must not all be zero")]
    AllWeightsZero,
    #[error("the effect leaves the probability range: p2 = {p2} is not strictly between 0 and 1")]
    TargetRateOutOfRange { p2: f64 },
    #[error("the minimum detectable effect must not be zero")]
    ZeroEffect,
    #[error("no sample size below {limit} reaches the requested power")]
    SampleSizeUnreachable { limit: f64 },
}

/// Check that `value` is finite.
pub(crate) fn finite(field: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(StatsError::NotFinite { field, value })
    }
}

/// Check that `value` is a probability-like level strictly inside (0, 1).
pub(crate) fn unit_open(field: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfUnitInterval { field, value })
    }
}

/// Check that `value` is finite and > 0.
pub(crate) fn positive(field: &'static str, value: f64) -> Result<f64, StatsError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(StatsError::NotPositive { field, value })
    }
}
