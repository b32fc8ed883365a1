//! One backend server of a cluster, shared by the sessions connected to it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use sluice_command::proto::{BackendState, LoadMetric};

use super::health::HealthState;
use crate::load_balancing::PeakEwma;
use crate::metrics::TrafficStats;
use crate::retry::{RetryConfig, RetryPolicy};

/// Where a backend is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendStatus {
    /// In rotation.
    Normal,
    /// Removed while connections were open: never selected, waits for them to close.
    Closing,
    /// Removed and without connections; no longer in any cluster.
    Closed,
}

/// The configured identity of a backend, parsed from a `proto::Backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The cluster the backend serves.
    pub cluster_id: String,
    /// Name of the backend (in events and metrics).
    pub backend_id: String,
    /// Where to connect.
    pub address: SocketAddr,
    /// Value of the sticky-session cookie pinning clients to this backend; the backend id
    /// when absent.
    pub sticky_id: Option<String>,
    /// Relative share of the traffic; 0 drains it (only sticky sessions reach it).
    pub weight: u32,
    /// Used only when no other backend can be opened.
    pub backup: bool,
    /// What the operator lets it take: ready (in rotation), drain (sticky clients only) or
    /// maint (nothing, not even health checks).
    pub state: BackendState,
}

/// A backend and everything the worker knows of it.
///
/// Sessions hold it as `Rc<RefCell<Backend>>`; every change goes through `BackendMap`, which
/// keeps the cluster's latch and events in step.
#[derive(Debug, Clone)]
pub struct Backend {
    pub(super) spec: BackendSpec,
    pub(super) status: BackendStatus,
    pub(super) retry_policy: RetryPolicy,
    pub(super) active_connections: usize,
    pub(super) active_requests: usize,
    pub(super) failures: u64,
    /// Established connections that broke in a row before their response was complete; while
    /// non-zero, a successful connect does not end the backoff (only a response does).
    pub(super) passive_failures: u32,
    pub(super) connection_time: PeakEwma,
    pub(super) health: HealthState,
    /// Whether the last event sent about this backend said it was up, so that `BackendDown`
    /// and `BackendUp` go out exactly once per change of [`Backend::is_up`].
    pub(super) reported_up: bool,
    /// Why its last active health check failed (`HTTP 503 on /health`), until one passes.
    pub(super) check_failure: Option<Box<str>>,
    /// Its traffic stats in the worker's metrics, kept once it saw traffic so that a
    /// request sent to it looks nothing up.
    traffic: Option<Rc<TrafficStats>>,
}

impl Backend {
    /// A new backend: healthy, in rotation, without failures.
    pub fn new(spec: BackendSpec, retry: RetryConfig) -> Self {
        Backend {
            spec,
            status: BackendStatus::Normal,
            retry_policy: RetryPolicy::new(retry),
            active_connections: 0,
            active_requests: 0,
            failures: 0,
            passive_failures: 0,
            connection_time: PeakEwma::default(),
            health: HealthState::default(),
            reported_up: true,
            check_failure: None,
            traffic: None,
        }
    }

    /// Its traffic stats, once it saw traffic.
    pub fn traffic(&self) -> Option<&Rc<TrafficStats>> {
        self.traffic.as_ref()
    }

    /// Keeps its traffic stats (the metrics registry's handle for it).
    pub fn keep_traffic(&mut self, stats: Rc<TrafficStats>) {
        self.traffic = Some(stats);
    }

    /// The cluster it serves.
    pub fn cluster_id(&self) -> &str {
        &self.spec.cluster_id
    }

    /// Its name.
    pub fn backend_id(&self) -> &str {
        &self.spec.backend_id
    }

    /// Where to connect.
    pub fn address(&self) -> SocketAddr {
        self.spec.address
    }

    /// The configured sticky id, if any.
    pub fn sticky_id(&self) -> Option<&str> {
        self.spec.sticky_id.as_deref()
    }

    /// The value a sticky-session cookie carries for this backend: its sticky id, or else its
    /// backend id.
    pub fn sticky_name(&self) -> &str {
        self.sticky_id().unwrap_or(&self.spec.backend_id)
    }

    /// Relative share of the traffic.
    pub fn weight(&self) -> u32 {
        self.spec.weight
    }

    /// Whether it is a backup backend.
    pub fn is_backup(&self) -> bool {
        self.spec.backup
    }

    /// Its operator state.
    pub fn state(&self) -> BackendState {
        self.spec.state
    }

    /// Its life status.
    pub fn status(&self) -> BackendStatus {
        self.status
    }

    /// Its connection backoff.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry_policy
    }

    /// Connections open or being opened to it.
    pub fn active_connections(&self) -> usize {
        self.active_connections
    }

    /// Requests being served by it.
    pub fn active_requests(&self) -> usize {
        self.active_requests
    }

    /// Failed connects since it was added.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Peak EWMA of its connect times.
    pub fn connection_time(&self) -> &PeakEwma {
        &self.connection_time
    }

    /// Its health as judged by active checks.
    pub fn health(&self) -> &HealthState {
        &self.health
    }

    /// Whether a new connection may be opened to it at `now`: healthy, in rotation, and its
    /// retry policy allows a try now.
    /// An exhausted backend can be opened again once its capped wait is over: that trial is
    /// how a restarted backend is found without a health check.
    pub fn can_open(&self, now: Instant) -> bool {
        self.health.is_healthy() && self.can_open_ignoring_health(now)
    }

    /// Whether it counts for the cluster's availability: healthy, in rotation and its retries
    /// not exhausted. A backend waiting out a backoff is still available. It does not depend on
    /// the time, so the latch only moves when something happens.
    pub fn is_available(&self) -> bool {
        self.is_up() && self.status == BackendStatus::Normal && self.state() == BackendState::Ready
    }

    /// Whether it may be chosen when failing open: in rotation (ready) and allowed a try now,
    /// whatever its health. A backend whose retries are exhausted is not: only a recovery
    /// probe brings it back (see `crate::health_check`), so no client request is spent on it.
    pub fn can_open_ignoring_health(&self, now: Instant) -> bool {
        self.state() == BackendState::Ready && self.can_take_connections(now)
    }

    /// Whether a client that a sticky cookie pins to it may open a connection to it at `now`:
    /// like [`Backend::can_open`], but a drained backend keeps its sticky clients.
    pub fn can_open_pinned(&self, now: Instant) -> bool {
        self.health.is_healthy()
            && self.state() != BackendState::Maint
            && self.can_take_connections(now)
    }

    /// Whether it needs a recovery probe: its retries are exhausted, it is in rotation and
    /// not in maintenance.
    pub fn needs_recovery_probe(&self) -> bool {
        self.retry_policy.is_exhausted()
            && self.status == BackendStatus::Normal
            && self.state() != BackendState::Maint
    }

    fn can_take_connections(&self, now: Instant) -> bool {
        self.status == BackendStatus::Normal
            && !self.retry_policy.is_exhausted()
            && self.retry_policy.can_try(now)
    }

    /// Whether it is up, as `BackendUp`/`BackendDown` events report: healthy and its retries
    /// not exhausted.
    pub fn is_up(&self) -> bool {
        self.health.is_healthy() && !self.retry_policy.is_exhausted()
    }

    /// Why it is down, in words, when it is: the failing health check, or the failures in a
    /// row that exhausted its retries.
    pub fn down_reason(&self) -> Option<String> {
        if !self.health.is_healthy() {
            let check = self
                .check_failure
                .as_deref()
                .unwrap_or("failing health checks");
            return Some(check.to_owned());
        }
        if !self.retry_policy.is_exhausted() {
            return None;
        }
        let failures = self.retry_policy.failures();
        Some(if self.passive_failures > 0 {
            format!(
                "{failures} failures in a row, the last a connection broken before its response"
            )
        } else {
            format!("{failures} failed connects")
        })
    }

    /// Its load by `metric`, normalised by its weight (see `load_balancing::Candidate::load`).
    pub fn load(&self, metric: LoadMetric) -> f64 {
        let weight = f64::from(self.spec.weight.max(1));
        let connections = self.active_connections as f64 + 1.0;
        match metric {
            LoadMetric::Connections => connections / weight,
            LoadMetric::Requests => (self.active_requests as f64 + 1.0) / weight,
            LoadMetric::ConnectTime => self.connection_time.nanos() * connections / weight,
        }
    }
}
