//! Pure statistics for promptstore's analytics and A/B tests: numbers in, numbers out.
//!
//! No I/O, no async, no serde: the domain crate maps these types to its wire types.
//!
//! - [`summary`]: per-arm mean and variance from sufficient statistics (n, Σx, Σx²).
//! - [`frequentist`], [`sequential`], [`bayesian`]: the three A/B engines, reproducing
//!   GrowthBook's gbstats 0.8.0 (checked against its reference outputs in
//!   `tests/reference_cases.rs`), with gbstats' placeholder outcomes as [`EngineError`].
//! - [`classical`]: textbook two-sample tests (z, Wald, Newcombe, Katz, Yates, Fisher,
//!   Welch, Student) as scipy and statsmodels compute them.
//! - [`srm`]: the sample-ratio-mismatch check; [`power`]: required sample sizes.
//! - [`sketch`]: a mergeable quantile sketch for latency percentiles.
//! - [`assign`]: deterministic, sticky arm assignment.

pub mod assign;
pub mod bayesian;
pub mod classical;
pub mod dist;
pub mod effect;
pub mod engine_error;
pub mod error;
pub mod frequentist;
pub mod power;
pub mod sequential;
pub mod sketch;
pub mod srm;
pub mod summary;

pub use assign::{ArmWeights, assign_arm};
pub use bayesian::{BayesianConfig, BayesianResult, GaussianPrior, bayesian_test};
pub use effect::{DifferenceType, Effect, effect};
pub use engine_error::EngineError;
pub use error::StatsError;
pub use frequentist::{FrequentistConfig, FrequentistResult, two_sided_t_test};
pub use sequential::{SequentialConfig, SequentialResult, sequential_test};
pub use sketch::{QuantileSketch, SketchError};
pub use srm::{DEFAULT_SRM_THRESHOLD, SrmResult, srm_test};
pub use summary::{ArmStats, MetricKind};
