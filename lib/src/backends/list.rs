//! The backends of one cluster, how one is selected, and the cluster's latches.

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use log::{info, warn};
use rand::Rng;
use sluice_command::proto::{self, BackendState, EventKind, LoadBalancingAlgorithm, LoadMetric};

use super::availability::{Availability, AvailabilityLatch};
use super::backend::{Backend, BackendSpec, BackendStatus};
use super::{BackendCounters, InvariantViolation, Outbox};
use crate::load_balancing::{Balancer, Candidate};
use crate::retry::RetryConfig;

/// Connect attempts on other backends before a session gives up, when the cluster sets none.
pub const DEFAULT_MAX_CONNECT_RETRIES: u32 = 3;
/// Successful checks in a row that bring an unhealthy backend back, when unset.
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Failed checks in a row that take a healthy backend out, when unset.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;

/// The parts of a `proto::Cluster` that backend selection needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// How a backend is picked.
    pub algorithm: LoadBalancingAlgorithm,
    /// The load that least loaded and power of two choices compare.
    pub metric: LoadMetric,
    /// Whether sessions stick to a backend through a cookie.
    pub sticky_session: bool,
    /// Whether the cluster has an active health check.
    pub health_check: bool,
    /// Successful checks in a row that bring a backend back.
    pub healthy_threshold: u32,
    /// Failed checks in a row that take a backend out.
    pub unhealthy_threshold: u32,
    /// Connect attempts on other backends before a session gives up.
    pub max_connect_retries: u32,
    /// HTTP: a request stays on its session's backend while that backend is available,
    /// instead of being balanced.
    pub prefer_last_backend: bool,
}

impl ClusterSettings {
    /// Reads the settings of a cluster; an algorithm or metric this worker does not know (a
    /// newer main process) falls back to round robin or connections, with a warning.
    pub fn from_proto(cluster: &proto::Cluster) -> Self {
        let algorithm =
            LoadBalancingAlgorithm::try_from(cluster.load_balancing).unwrap_or_else(|_| {
                warn!(
                    "cluster {}: unknown load balancing algorithm {}, using round robin",
                    cluster.cluster_id, cluster.load_balancing
                );
                LoadBalancingAlgorithm::RoundRobin
            });
        let metric = LoadMetric::try_from(cluster.load_metric).unwrap_or_else(|_| {
            warn!(
                "cluster {}: unknown load metric {}, using connections",
                cluster.cluster_id, cluster.load_metric
            );
            LoadMetric::Connections
        });
        let check = cluster.health_check.as_ref();
        ClusterSettings {
            algorithm,
            metric,
            sticky_session: cluster.sticky_session,
            health_check: check.is_some(),
            healthy_threshold: check.map_or(DEFAULT_HEALTHY_THRESHOLD, |c| c.healthy_threshold),
            unhealthy_threshold: check
                .map_or(DEFAULT_UNHEALTHY_THRESHOLD, |c| c.unhealthy_threshold),
            max_connect_retries: cluster
                .max_connect_retries
                .unwrap_or(DEFAULT_MAX_CONNECT_RETRIES),
            prefer_last_backend: cluster.prefer_last_backend.unwrap_or(false),
        }
    }
}

impl Default for ClusterSettings {
    /// Round robin on connections, no stickiness, no health check.
    fn default() -> Self {
        ClusterSettings {
            algorithm: LoadBalancingAlgorithm::RoundRobin,
            metric: LoadMetric::Connections,
            sticky_session: false,
            health_check: false,
            healthy_threshold: DEFAULT_HEALTHY_THRESHOLD,
            unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            max_connect_retries: DEFAULT_MAX_CONNECT_RETRIES,
            prefer_last_backend: false,
        }
    }
}

/// What removing a backend from a list did.
#[derive(Debug)]
pub(super) enum Removal {
    /// No backend at that address.
    NotFound,
    /// Connections are open: the backend is `Closing` and stays until they close.
    Closing,
    /// The backend had no connection and left the list.
    Removed(Rc<RefCell<Backend>>),
}

/// The backends of one cluster, its algorithm and its two latches: fail-open (are we sending
/// traffic to unhealthy backends?) and availability (is any backend left?).
#[derive(Debug)]
pub struct BackendList {
    cluster_id: String,
    settings: ClusterSettings,
    backends: Vec<Rc<RefCell<Backend>>>,
    balancer: Balancer,
    failing_open: bool,
    availability: AvailabilityLatch,
    counters: BackendCounters,
}

impl BackendList {
    /// An empty cluster.
    pub fn new(cluster_id: &str, settings: ClusterSettings) -> Self {
        BackendList {
            cluster_id: cluster_id.to_owned(),
            balancer: Balancer::new(settings.algorithm, settings.metric),
            settings,
            backends: Vec::new(),
            failing_open: false,
            availability: AvailabilityLatch::default(),
            counters: BackendCounters::default(),
        }
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The cluster's settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// Every backend still attached, `Closing` ones included.
    pub fn backends(&self) -> &[Rc<RefCell<Backend>>] {
        &self.backends
    }

    /// The backend at `address`, if attached.
    pub fn find(&self, address: &SocketAddr) -> Option<&Rc<RefCell<Backend>>> {
        self.backends
            .iter()
            .find(|b| b.borrow().address() == *address)
    }

    /// The published availability and when it was reached.
    pub fn availability(&self) -> &AvailabilityLatch {
        &self.availability
    }

    /// Whether the last selection went to unhealthy backends because no healthy one could be
    /// opened.
    pub fn is_failing_open(&self) -> bool {
        self.failing_open
    }

    /// What happened in this cluster.
    pub fn counters(&self) -> &BackendCounters {
        &self.counters
    }

    pub(super) fn configure(&mut self, settings: ClusterSettings) {
        self.balancer.configure(settings.algorithm, settings.metric);
        self.settings = settings;
    }

    /// Adds a backend, or updates the one at the same address keeping its connections, health
    /// and backoff (a `Closing` one goes back into rotation).
    pub(super) fn upsert(
        &mut self,
        spec: BackendSpec,
        retry: RetryConfig,
        now: Instant,
        outbox: &mut Outbox,
    ) {
        match self.find(&spec.address) {
            Some(existing) => {
                let mut backend = existing.borrow_mut();
                let state_changed = backend.spec.state != spec.state;
                backend.spec = spec;
                if state_changed {
                    announce_state(&self.cluster_id, &backend, outbox);
                }
                if backend.status == BackendStatus::Closing {
                    info!(
                        "cluster {}: backend {} re-added while closing, back in rotation",
                        self.cluster_id,
                        backend.address()
                    );
                    backend.status = BackendStatus::Normal;
                }
            }
            None => self
                .backends
                .push(Rc::new(RefCell::new(Backend::new(spec, retry)))),
        }
        self.refresh(now, outbox);
    }

    /// Every backend whose retries are exhausted and that a recovery probe may bring back.
    pub(super) fn needing_recovery(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.backends
            .iter()
            .map(|b| b.borrow())
            .filter(|b| b.needs_recovery_probe())
            .map(|b| b.address())
    }

    /// Removes the backend at `address`, at once if it has no connection, else by moving it
    /// to `Closing`.
    pub(super) fn remove(
        &mut self,
        address: &SocketAddr,
        now: Instant,
        outbox: &mut Outbox,
    ) -> Removal {
        let Some(index) = self
            .backends
            .iter()
            .position(|b| b.borrow().address() == *address)
        else {
            return Removal::NotFound;
        };
        let removal = if self.backends[index].borrow().active_connections > 0 {
            self.backends[index].borrow_mut().status = BackendStatus::Closing;
            Removal::Closing
        } else {
            let backend = self.backends.remove(index);
            self.balancer.forget(address);
            Removal::Removed(backend)
        };
        self.refresh(now, outbox);
        removal
    }

    /// Takes a `Closing` backend whose last connection closed out of the list.
    pub(super) fn detach(
        &mut self,
        backend: &Rc<RefCell<Backend>>,
        now: Instant,
        outbox: &mut Outbox,
    ) {
        if let Some(index) = self.backends.iter().position(|b| Rc::ptr_eq(b, backend)) {
            let removed = self.backends.remove(index);
            self.balancer.forget(&removed.borrow().address());
            self.refresh(now, outbox);
        }
    }

    /// Takes every backend out of the list (the cluster is being removed).
    pub(super) fn drain(&mut self) -> Vec<Rc<RefCell<Backend>>> {
        std::mem::take(&mut self.backends)
    }

    /// Selects a backend: a non-backup one that can be opened, else a backup one, else
    /// (fail-open) any backend in rotation that its backoff allows, whatever its health.
    pub(super) fn next_available<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        scratch: &mut PickScratch,
        outbox: &mut Outbox,
    ) -> Option<Rc<RefCell<Backend>>> {
        let healthy = self
            .pick(rng, scratch, |b| !b.is_backup() && b.can_open(now))
            .or_else(|| self.pick(rng, scratch, |b| b.is_backup() && b.can_open(now)));
        if let Some(backend) = healthy {
            self.leave_fail_open();
            return Some(backend);
        }
        let Some(backend) = self.pick(rng, scratch, |b| b.can_open_ignoring_health(now)) else {
            outbox.count(&mut self.counters, |c| c.no_backend_available += 1);
            return None;
        };
        self.enter_fail_open();
        outbox.count(&mut self.counters, |c| c.fail_open_decisions += 1);
        Some(backend)
    }

    /// The next backend for a client that asked for `sticky_id`, if any: see
    /// [`BackendList::next_available_sticky`] and [`BackendList::next_available`].
    pub(super) fn next_for<R: Rng + ?Sized>(
        &mut self,
        sticky_id: Option<&str>,
        now: Instant,
        rng: &mut R,
        scratch: &mut PickScratch,
        outbox: &mut Outbox,
    ) -> Option<Rc<RefCell<Backend>>> {
        match sticky_id {
            Some(id) => self.next_available_sticky(id, now, rng, scratch, outbox),
            None => self.next_available(now, rng, scratch, outbox),
        }
    }

    /// Selects the backend whose sticky name is `sticky_id` if it can be opened (even with
    /// weight 0 or in drain: a drained backend keeps its sticky sessions), else like
    /// [`BackendList::next_available`].
    pub(super) fn next_available_sticky<R: Rng + ?Sized>(
        &mut self,
        sticky_id: &str,
        now: Instant,
        rng: &mut R,
        scratch: &mut PickScratch,
        outbox: &mut Outbox,
    ) -> Option<Rc<RefCell<Backend>>> {
        let pinned = self
            .backends
            .iter()
            .find(|b| {
                let backend = b.borrow();
                backend.sticky_name() == sticky_id && backend.can_open_pinned(now)
            })
            .cloned();
        match pinned {
            Some(backend) => {
                self.leave_fail_open();
                Some(backend)
            }
            None => self.next_available(now, rng, scratch, outbox),
        }
    }

    /// Publishes what changed: `BackendDown`/`BackendUp` for each backend whose
    /// [`Backend::is_up`] changed, then the availability latch.
    pub(super) fn refresh(&mut self, now: Instant, outbox: &mut Outbox) {
        for backend in &self.backends {
            let mut backend = backend.borrow_mut();
            let up = backend.is_up();
            if up == backend.reported_up {
                continue;
            }
            backend.reported_up = up;
            if up {
                info!(
                    "cluster {}: backend {} ({}) is up",
                    self.cluster_id,
                    backend.backend_id(),
                    backend.address()
                );
                outbox.count(&mut self.counters, |c| c.backends_up += 1);
                outbox.backend_event(EventKind::BackendUp, &backend, None);
            } else {
                let reason = backend.down_reason();
                warn!(
                    "cluster {}: backend {} ({}) is down: {}",
                    self.cluster_id,
                    backend.backend_id(),
                    backend.address(),
                    reason.as_deref().unwrap_or("unknown reason")
                );
                outbox.count(&mut self.counters, |c| c.backends_down += 1);
                outbox.backend_event(EventKind::BackendDown, &backend, reason);
            }
        }
        self.publish_availability(now, outbox);
    }

    fn publish_availability(&mut self, now: Instant, outbox: &mut Outbox) {
        let Some((state, lasted)) = self.availability.update(&self.backends, now) else {
            return;
        };
        match state {
            Availability::AllDown => {
                warn!("cluster {}: no backend available", self.cluster_id);
                outbox.count(&mut self.counters, |c| c.all_down_transitions += 1);
                outbox.cluster_event(EventKind::NoAvailableBackends, &self.cluster_id);
            }
            Availability::Available => {
                info!(
                    "cluster {}: backends available again after {:?}",
                    self.cluster_id,
                    lasted.unwrap_or_default()
                );
                outbox.count(&mut self.counters, |c| c.recovered_transitions += 1);
                outbox.cluster_event(EventKind::ClusterRecovered, &self.cluster_id);
            }
        }
    }

    fn pick<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        scratch: &mut PickScratch,
        eligible: impl Fn(&Backend) -> bool,
    ) -> Option<Rc<RefCell<Backend>>> {
        let metric = self.settings.metric;
        scratch.indices.clear();
        scratch.candidates.clear();
        for (index, backend) in self.backends.iter().enumerate() {
            let backend = backend.borrow();
            if backend.weight() > 0 && eligible(&backend) {
                scratch.indices.push(index);
                scratch.candidates.push(Candidate {
                    address: backend.address(),
                    weight: backend.weight(),
                    load: backend.load(metric),
                });
            }
        }
        let chosen = self.balancer.choose(&scratch.candidates, rng)?;
        scratch
            .indices
            .get(chosen)
            .and_then(|index| self.backends.get(*index))
            .cloned()
    }

    fn enter_fail_open(&mut self) {
        if !self.failing_open {
            self.failing_open = true;
            warn!(
                "cluster {}: no healthy backend can be opened, failing open to unhealthy backends",
                self.cluster_id
            );
        }
    }

    fn leave_fail_open(&mut self) {
        if self.failing_open {
            self.failing_open = false;
            info!(
                "cluster {}: healthy backends are back, no longer failing open",
                self.cluster_id
            );
        }
    }

    /// Checks what must hold after every entry point of `BackendMap`.
    pub(super) fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |what: String| Err(InvariantViolation(format!("{}: {what}", self.cluster_id)));
        let mut addresses = HashSet::new();
        for backend in &self.backends {
            let backend = backend.try_borrow().map_err(|_| {
                InvariantViolation(format!("{}: a backend is borrowed", self.cluster_id))
            })?;
            let name = backend.address();
            if backend.cluster_id() != self.cluster_id {
                return fail(format!("{name} belongs to {}", backend.cluster_id()));
            }
            if !addresses.insert(name) {
                return fail(format!("{name} is listed twice"));
            }
            match backend.status() {
                BackendStatus::Closed => return fail(format!("{name} is closed but listed")),
                BackendStatus::Closing if backend.active_connections() == 0 => {
                    return fail(format!("{name} is closing without connections"))
                }
                _ => {}
            }
            if backend.reported_up != backend.is_up() {
                return fail(format!("{name}: up/down change not reported"));
            }
        }
        if Availability::of(&self.backends) != self.availability.state() {
            return fail("availability latch out of date".to_owned());
        }
        Ok(())
    }
}

/// Logs and reports a backend's new operator state.
fn announce_state(cluster_id: &str, backend: &Backend, outbox: &mut Outbox) {
    let (kind, words) = match backend.state() {
        BackendState::Ready => (EventKind::BackendReady, "ready: back in rotation"),
        BackendState::Drain => (
            EventKind::BackendDraining,
            "draining: no new traffic except sticky clients",
        ),
        BackendState::Maint => (
            EventKind::BackendMaintenance,
            "in maintenance: no traffic, no health checks",
        ),
    };
    info!(
        "cluster {cluster_id}: backend {} ({}) {words}",
        backend.backend_id(),
        backend.address()
    );
    outbox.backend_event(kind, backend, None);
}

/// Where a selection lists the candidates it chooses from, kept from one selection to the
/// next (one per worker, shared by its clusters), so that choosing a backend for a request
/// allocates nothing once the lists have grown to the largest cluster.
#[derive(Debug, Default)]
pub(crate) struct PickScratch {
    indices: Vec<usize>,
    candidates: Vec<Candidate>,
}
