//! Usage analytics in the server: reading event batches, costing and committing them
//! through the group-commit writer, the per-project price books, and the background
//! workers (alert evaluation, retention, metrics upkeep).

pub mod alerts;
pub mod body;
pub mod ingest;
pub mod prices;
pub mod workers;
pub mod writer;
