//! Metrics on the main side: the names every worker reports under
//! ([`names`]), merging the snapshots of all workers ([`merge()`]), and
//! rendering them for Prometheus ([`prometheus`]) and as human tables
//! ([`table`]).
//!
//! Workers count (see `sluice_lib::metrics`) and answer a
//! [`crate::proto::QueryMetrics`] with a [`crate::proto::WorkerMetrics`]; the
//! main process gathers one per worker and uses the pure functions here.

pub mod merge;
pub mod names;
pub mod prometheus;
pub mod promtool;
pub mod table;

pub use merge::merge;
