//! `sluice-lib` is the Sluice worker: one single-threaded `mio` poll loop that
//! owns its listeners, sessions and per-cluster backends, and applies the
//! configuration requests the main process sends over its channel.
//!
//! Protocol logic is sans-IO ([`pipe`] for TCP, [`http`] for HTTP/1.1); the [`server`]
//! loop does the I/O; [`backends`] holds selection, retries and availability;
//! [`metrics`] what the worker counts.

// Denied rather than forbidden so that `sys`, the one module of OS calls, can allow it.
#![deny(unsafe_code)]

pub mod access_log;
pub mod backends;
pub mod health_check;
pub mod http;
pub mod load_balancing;
pub mod metrics;
pub mod pipe;
pub mod pool;
pub mod proxy_protocol;
pub mod retry;
pub mod server;
#[allow(unsafe_code)]
pub mod sys;
pub mod timer;
pub(crate) mod tls;
pub(crate) mod transport;
pub mod worker;
