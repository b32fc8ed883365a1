//! `sluice-lib` is the Sluice worker: one single-threaded `mio` poll loop that
//! owns its listeners, sessions and per-cluster backends, and applies the
//! configuration requests the main process sends over its channel.

pub mod backends;
pub mod http;
pub mod load_balancing;
pub mod retry;
