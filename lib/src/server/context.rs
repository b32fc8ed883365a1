//! The worker's shared parts: what every driver of a session uses besides the session
//! itself (buffers, backends and their connections, health checks, timers, metrics,
//! routes, the access log). They are one value, apart from the sessions' slab, so that a
//! driver borrows a session and the context at once and passes the context `&mut` down to
//! whatever steps the session (a TCP pipe, an HTTP session's context, a connect).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use super::backend_connections::{BackendConnections, IdleConnections};
use super::http_driver::HttpRoutes;
use super::metrics::WorkerCounters;
use super::TimerEvent;
use crate::access_log::AccessLog;
use crate::backends::{BackendMap, FastHash};
use crate::health_check::HealthChecker;
use crate::http::rewrite::RequestIds;
use crate::http::session::SessionOutput;
use crate::metrics::MetricsRegistry;
use crate::pool::BufferPool;
use crate::timer::Timer;
use crate::tls::metrics::TlsStats;
use crate::tls::TlsListeners;

/// Everything a session's driver shares with the other sessions of the worker.
#[derive(Debug)]
pub(crate) struct WorkerContext {
    /// Buffers lent to sessions while they hold bytes.
    pub(crate) pool: BufferPool,
    /// Clusters and their backends, with selection, health and retry state.
    pub(crate) backends: BackendMap,
    /// Every backend connection, by key (its token), with its state.
    pub(crate) connections: BackendConnections,
    /// Keys of the idle backend connections kept for reuse.
    pub(crate) idle: IdleConnections,
    /// When the next sweep of `idle` is scheduled, if any.
    pub(crate) idle_sweep_at: Option<Instant>,
    /// Active health checks.
    pub(crate) health: HealthChecker,
    /// The cluster of each TCP listener.
    pub(crate) tcp_frontends: HashMap<SocketAddr, String, FastHash>,
    /// The routes of each HTTP listener.
    pub(crate) http_routes: HashMap<SocketAddr, HttpRoutes, FastHash>,
    /// Routes of sessions whose listener was removed: nothing matches.
    pub(crate) empty_routes: HttpRoutes,
    /// Clusters with sticky sessions.
    pub(crate) sticky_clusters: HashSet<String, FastHash>,
    /// Where request ids come from.
    pub(crate) request_ids: RequestIds,
    /// What the last step of an HTTP session asked, reused from step to step (no
    /// session is driven from inside another's step, so one is enough).
    pub(crate) session_output: SessionOutput,
    /// Where lingering sessions read the input they drop.
    pub(crate) scratch: Vec<u8>,
    pub(crate) access_log: AccessLog,
    /// Sessions' deadlines and the idle pool's sweeps.
    pub(crate) timer: Timer<TimerEvent>,
    /// Counters without a metric name (timeouts, upgrades).
    pub(crate) counters: WorkerCounters,
    pub(crate) metrics: MetricsRegistry,
    /// TLS listeners' settings, certificates and ticket keys.
    pub(crate) tls: TlsListeners,
    pub(crate) tls_stats: TlsStats,
}
