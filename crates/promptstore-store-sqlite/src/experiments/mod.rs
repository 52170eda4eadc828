//! Experiments (A/B tests) in the registry file: their rows, the writes `Store::apply` runs
//! for `CreateExperiment`, `UpdateExperiment` and `DeleteExperiment` (and for the experiments
//! of a deleted prompt), and the reads.
//!
//! Architecture invariant: at most one experiment runs per prompt + label. The write checks
//! it first, to name the other experiment in the refusal, and the partial unique index
//! `experiments_one_running` holds it even if that check were bypassed.

pub(crate) mod read;
mod rows;
pub(crate) mod write;
