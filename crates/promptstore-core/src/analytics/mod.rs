//! Usage analytics: validating events, pricing them, folding them into mergeable aggregate
//! cells, and turning cells into the numbers a team steers by (summaries, breakdowns, time
//! series, version comparisons, recommendations, alerts). Pure, except for the
//! `AnalyticsStore` contract that backends implement.

pub mod alerts;
pub mod audit;
pub mod compare;
pub mod cost;
pub mod metrics;
pub mod model;
pub mod range;
pub mod recommend;
pub mod rollup;
pub mod store;
#[cfg(feature = "testing")]
pub mod store_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testutil;
pub mod timeseries;
pub mod top;
pub mod validate;
