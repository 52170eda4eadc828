//! gbstats' "no statistic" outcomes: inputs that are valid but for which the engines return
//! placeholder numbers instead of a test (zero baseline, zero variance, an empty arm).

/// Why an engine returned placeholders rather than statistics. The codes are gbstats'
/// `error_message` strings, so results can be compared with GrowthBook's directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    /// The control mean is 0: the relative lift is undefined (gbstats applies this to
    /// absolute frequentist effects too).
    ZeroNegativeBaselineVariation,
    /// An arm's variance is ≤ 0 (e.g. 0 or 100% conversions, or a single unit).
    ZeroNegativeVariance,
    /// An arm has no units (Bayesian engine).
    NoUnitsInVariation,
}

impl EngineError {
    /// gbstats' `error_message` string.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ZeroNegativeBaselineVariation => "ZERO_NEGATIVE_BASELINE_VARIATION",
            Self::ZeroNegativeVariance => "ZERO_NEGATIVE_VARIANCE",
            Self::NoUnitsInVariation => "NO_UNITS_IN_VARIATION",
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
