//! Shared pieces of the benchmark programs in `src/bin/`: the benchmark workload (one
//! realistic chat prompt), fast seeding of a data directory, a minimal HTTP/1.1 client for
//! timing the first answer of a fresh process, process control and small statistics.
//!
//! Nothing here asserts a timing: the programs print measurements and `bench/run.sh` turns
//! them into ratios against a baseline measured in the same run (see BENCHMARKS.md).

pub mod args;
pub mod http;
pub mod process;
pub mod seed;
pub mod stats;
pub mod workload;

// Analytics and A/B benchmarks (bench/analytics.sh).
pub mod eventgen;
pub mod eventsdb;
pub mod loadgen;
pub mod pinned;
pub mod querybench;
