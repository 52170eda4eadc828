//! A/B tests inside label resolution: experiment definitions and their rules, sticky arm
//! assignment, the statistical results and verdicts, the automatic decisions, and the
//! calculator that analyses data from anywhere. Pure; storage is reached through `Store`
//! and `AnalyticsStore`.

pub mod audit;
pub mod model;
#[cfg(feature = "testing")]
pub mod store_tests;

pub mod calculator;
pub mod decision;
pub mod definition;
pub mod lifecycle;
pub mod metric;
pub mod metric_data;
pub mod results;

mod format;
#[cfg(test)]
mod testutil;
