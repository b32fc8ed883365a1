//! Every cluster's backends, as the worker's event loop sees them.
//!
//! [`BackendMap`] is sans-IO: the loop tells it what happened (a connect started, succeeded,
//! failed, a connection closed, a health check answered, the configuration changed), always
//! with the current time, and asks it which backend a new connection should go to. It answers,
//! keeps each cluster's latches in step, and queues the events for the main process, which the
//! loop collects with [`BackendMap::take_events`].
//!
//! Life of a connection, as the loop reports it: [`BackendMap::select`] →
//! [`BackendMap::connection_opened`] (the connect starts) → [`BackendMap::connect_succeeded`]
//! or [`BackendMap::connect_failed`] → [`BackendMap::connection_closed`]. Every
//! `connection_opened` must be matched by exactly one `connection_closed`, whatever the outcome
//! of the connect: that is what lets a removed backend leave once its last connection is gone.
//! No method may be called while the caller holds a borrow of a backend.
//!
//! Events (their `worker_id` is left for the worker to fill):
//! - `BackendDown` when a backend stops being up (unhealthy, or its retries exhausted) and
//!   `BackendUp` when it is up again, once per change;
//! - `NoAvailableBackends` and `ClusterRecovered` when a cluster's availability latch flips;
//! - `RemovedBackendHasNoConnections` when a removed backend is gone for good: at once if it had
//!   no connection, else when its last one closes. Removing a cluster removes its backends.

mod availability;
mod backend;
mod health;
mod list;
#[cfg(test)]
mod passive_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod reason_tests;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{AddrParseError, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{info, warn};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sluice_command::proto::{self, EventKind};
use thiserror::Error;

pub use availability::{Availability, AvailabilityLatch};

/// The hasher of the worker's maps keyed by what the operator names (cluster ids,
/// listener addresses), looked up on every request: faster than the default SipHash,
/// which only keys that clients choose need.
pub(crate) type FastHash = foldhash::fast::RandomState;
pub use backend::{Backend, BackendSpec, BackendStatus};
pub use health::{HealthState, Transition};
pub use list::{
    BackendList, ClusterSettings, DEFAULT_HEALTHY_THRESHOLD, DEFAULT_MAX_CONNECT_RETRIES,
    DEFAULT_UNHEALTHY_THRESHOLD,
};

use crate::retry::RetryConfig;
use list::{PickScratch, Removal};

/// Why a backend could not be added, updated or removed.
#[derive(Debug, Error)]
pub enum BackendError {
    /// The address is not `ip:port`.
    #[error("invalid backend address {address:?}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why it does not parse.
        #[source]
        source: AddrParseError,
    },
    /// No cluster has this id.
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// The cluster has no backend at this address.
    #[error("cluster {cluster_id:?} has no backend at {address}")]
    UnknownBackend {
        /// The cluster searched.
        cluster_id: String,
        /// The address asked for.
        address: SocketAddr,
    },
    /// A backend given for one cluster names another.
    #[error("backend {backend_id:?} names cluster {found:?}, expected {expected:?}")]
    WrongCluster {
        /// The backend's id.
        backend_id: String,
        /// The cluster being updated.
        expected: String,
        /// The cluster the backend names.
        found: String,
    },
}

/// Why no backend was selected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectError {
    /// No cluster has this id.
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// No backend of the cluster can be opened now, even failing open (answered 503).
    #[error("no backend available in cluster {0:?}")]
    NoBackendAvailable(String),
}

/// Now, in milliseconds since the Unix epoch: when an event happened.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A broken internal invariant, found by [`BackendMap::check_invariants`].
#[derive(Debug, Error)]
#[error("backend invariant broken: {0}")]
pub struct InvariantViolation(pub String);

/// Counts of what happened, per cluster ([`BackendList::counters`]) and in total
/// ([`BackendMap::counters`], which survives cluster removals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Selections that went to an unhealthy backend because no healthy one could be opened.
    pub fail_open_decisions: u64,
    /// Selections that found no backend at all.
    pub no_backend_available: u64,
    /// Availability latch flips to `AllDown`.
    pub all_down_transitions: u64,
    /// Availability latch flips back to `Available`.
    pub recovered_transitions: u64,
    /// `BackendDown` events.
    pub backends_down: u64,
    /// `BackendUp` events.
    pub backends_up: u64,
}

/// Where events and total counters go until the loop collects them.
#[derive(Debug, Default)]
struct Outbox {
    events: Vec<proto::Event>,
    totals: BackendCounters,
}

impl Outbox {
    fn count(&mut self, cluster: &mut BackendCounters, bump: fn(&mut BackendCounters)) {
        bump(cluster);
        bump(&mut self.totals);
    }

    fn backend_event(&mut self, kind: EventKind, backend: &Backend, reason: Option<String>) {
        self.events.push(proto::Event {
            kind: kind as i32,
            cluster_id: Some(backend.cluster_id().to_owned()),
            backend_id: Some(backend.backend_id().to_owned()),
            address: Some(backend.address().to_string()),
            reason,
            timestamp_ms: Some(unix_millis()),
            ..Default::default()
        });
    }

    fn cluster_event(&mut self, kind: EventKind, cluster_id: &str) {
        self.events.push(proto::Event {
            kind: kind as i32,
            cluster_id: Some(cluster_id.to_owned()),
            timestamp_ms: Some(unix_millis()),
            ..Default::default()
        });
    }

    /// A removed backend without connections: `Closed`, and said so.
    fn retire(&mut self, backend: &Rc<RefCell<Backend>>) {
        let mut backend = backend.borrow_mut();
        backend.status = BackendStatus::Closed;
        info!(
            "cluster {}: removed backend {} ({}) has no connections left",
            backend.cluster_id(),
            backend.backend_id(),
            backend.address()
        );
        self.backend_event(EventKind::RemovedBackendHasNoConnections, &backend, None);
    }
}

/// Every cluster's backends, their selection and their events (see the module docs).
#[derive(Debug)]
pub struct BackendMap {
    /// Boxed: a table's empty slots cost the size of what it holds inline, and 10 000
    /// clusters leave thousands of them.
    clusters: HashMap<String, Box<BackendList>, FastHash>,
    /// Times a backend's retries became exhausted (see [`BackendMap::exhaustion_version`]).
    exhaustions: u64,
    outbox: Outbox,
    rng: StdRng,
    /// The candidates of the selection under way.
    picks: PickScratch,
    retry: RetryConfig,
}

impl Default for BackendMap {
    fn default() -> Self {
        BackendMap::new()
    }
}

impl BackendMap {
    /// An empty map whose random choices are seeded from the OS.
    pub fn new() -> Self {
        BackendMap::with_rng(StdRng::from_entropy())
    }

    /// An empty map with reproducible random choices.
    pub fn with_seed(seed: u64) -> Self {
        BackendMap::with_rng(StdRng::seed_from_u64(seed))
    }

    fn with_rng(rng: StdRng) -> Self {
        BackendMap {
            clusters: HashMap::default(),
            exhaustions: 0,
            outbox: Outbox::default(),
            rng,
            picks: PickScratch::default(),
            retry: RetryConfig::default(),
        }
    }

    /// Sets the backoff of backends added from now on.
    pub fn set_retry_config(&mut self, retry: RetryConfig) {
        self.retry = retry;
    }

    /// Adds a cluster, or updates its settings keeping its backends. Removing its health
    /// check makes every backend healthy again.
    pub fn set_cluster(&mut self, cluster: &proto::Cluster, now: Instant) {
        let settings = ClusterSettings::from_proto(cluster);
        let id = &cluster.cluster_id;
        let health_check_removed = match self.clusters.get_mut(id) {
            Some(list) => {
                let had_check = list.settings().health_check;
                let has_check = settings.health_check;
                list.configure(settings);
                had_check && !has_check
            }
            None => {
                self.clusters
                    .insert(id.clone(), Box::new(BackendList::new(id, settings)));
                false
            }
        };
        if health_check_removed {
            self.reset_health(id, now);
        }
        self.debug_check();
    }

    /// Removes a cluster and its backends (each said gone at once, or when its last
    /// connection closes).
    pub fn remove_cluster(&mut self, cluster_id: &str) {
        if let Some(mut list) = self.clusters.remove(cluster_id) {
            for backend in list.drain() {
                let has_connections = backend.borrow().active_connections > 0;
                if has_connections {
                    backend.borrow_mut().status = BackendStatus::Closing;
                } else {
                    self.outbox.retire(&backend);
                }
            }
        }
        self.debug_check();
    }

    /// Adds a backend to its cluster, or updates the one at the same address keeping its
    /// state.
    pub fn add_backend(
        &mut self,
        backend: &proto::Backend,
        now: Instant,
    ) -> Result<(), BackendError> {
        let spec = parse_backend(backend)?;
        let list = cluster_mut(&mut self.clusters, &spec.cluster_id)?;
        list.upsert(spec, self.retry, now, &mut self.outbox);
        // Its state may have left maint while exhausted: let the recovery prober look.
        self.exhaustions += 1;
        self.debug_check();
        Ok(())
    }

    /// Makes `backends` the cluster's backends: unchanged addresses keep their state, others
    /// are added or removed. Nothing changes if one of them is invalid.
    pub fn update_backends(
        &mut self,
        cluster_id: &str,
        backends: &[proto::Backend],
        now: Instant,
    ) -> Result<(), BackendError> {
        let specs = backends
            .iter()
            .map(parse_backend)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(stray) = specs.iter().find(|s| s.cluster_id != cluster_id) {
            return Err(BackendError::WrongCluster {
                backend_id: stray.backend_id.clone(),
                expected: cluster_id.to_owned(),
                found: stray.cluster_id.clone(),
            });
        }
        let list = cluster_mut(&mut self.clusters, cluster_id)?;
        let gone: Vec<SocketAddr> = list
            .backends()
            .iter()
            .map(|b| b.borrow().address())
            .filter(|address| specs.iter().all(|s| s.address != *address))
            .collect();
        for address in gone {
            self.remove_backend(cluster_id, &address, now)?;
        }
        let list = cluster_mut(&mut self.clusters, cluster_id)?;
        for spec in specs {
            list.upsert(spec, self.retry, now, &mut self.outbox);
        }
        self.debug_check();
        Ok(())
    }

    /// Removes a backend: at once if it has no connection, else it turns `Closing` (never
    /// selected) until its last connection closes.
    pub fn remove_backend(
        &mut self,
        cluster_id: &str,
        address: &SocketAddr,
        now: Instant,
    ) -> Result<(), BackendError> {
        let list = cluster_mut(&mut self.clusters, cluster_id)?;
        match list.remove(address, now, &mut self.outbox) {
            Removal::NotFound => {
                return Err(BackendError::UnknownBackend {
                    cluster_id: cluster_id.to_owned(),
                    address: *address,
                })
            }
            Removal::Closing => info!(
                "cluster {cluster_id}: backend {address} removed, closing after its connections"
            ),
            Removal::Removed(backend) => self.outbox.retire(&backend),
        }
        self.debug_check();
        Ok(())
    }

    /// Selects the backend for a new connection: the one `sticky_id` names if it can be
    /// opened, else by the cluster's algorithm (non-backup, then backup, then failing open).
    /// A backend that is backing off gets one trial connection (see [`crate::retry`]).
    pub fn select(
        &mut self,
        cluster_id: &str,
        sticky_id: Option<&str>,
        now: Instant,
    ) -> Result<Rc<RefCell<Backend>>, SelectError> {
        self.select_keeping(cluster_id, sticky_id, None, now)
    }

    /// The outcome of a selection in `cluster_id`: the backend starts its trial if it
    /// was backing off.
    fn chosen(
        &mut self,
        cluster_id: &str,
        chosen: Option<Rc<RefCell<Backend>>>,
        now: Instant,
    ) -> Result<Rc<RefCell<Backend>>, SelectError> {
        let Some(backend) = chosen else {
            self.debug_check();
            return Err(SelectError::NoBackendAvailable(cluster_id.to_owned()));
        };
        backend.borrow_mut().retry_policy.start_trial(now);
        self.debug_check();
        Ok(backend)
    }

    /// Selects the backend for the next request of an HTTP session whose backend connection
    /// goes to `last`: like [`BackendMap::select`], except that a cluster with
    /// `prefer_last_backend` keeps `last` while it is available and no sticky id names
    /// another backend. Every request is balanced otherwise, so that added, recovered or
    /// reweighted backends take their share from clients that never reconnect.
    pub fn select_for_request(
        &mut self,
        cluster_id: &str,
        sticky_id: Option<&str>,
        last: &Rc<RefCell<Backend>>,
        now: Instant,
    ) -> Result<Rc<RefCell<Backend>>, SelectError> {
        self.select_keeping(cluster_id, sticky_id, Some(last), now)
    }

    /// [`BackendMap::select`], keeping `last` instead when the cluster prefers the last
    /// backend, no sticky id is given and `last` is available in this cluster.
    fn select_keeping(
        &mut self,
        cluster_id: &str,
        sticky_id: Option<&str>,
        last: Option<&Rc<RefCell<Backend>>>,
        now: Instant,
    ) -> Result<Rc<RefCell<Backend>>, SelectError> {
        let list = self
            .clusters
            .get_mut(cluster_id)
            .ok_or_else(|| SelectError::UnknownCluster(cluster_id.to_owned()))?;
        if let Some(last) =
            last.filter(|_| list.settings().prefer_last_backend && sticky_id.is_none())
        {
            let usable = {
                let backend = last.borrow();
                backend.is_available() && backend.cluster_id() == cluster_id
            };
            if usable {
                return Ok(Rc::clone(last));
            }
        }
        let chosen = list.next_for(
            sticky_id,
            now,
            &mut self.rng,
            &mut self.picks,
            &mut self.outbox,
        );
        self.chosen(cluster_id, chosen, now)
    }

    /// A connection to `backend` starts (before the connect completes).
    pub fn connection_opened(&mut self, backend: &Rc<RefCell<Backend>>) {
        backend.borrow_mut().active_connections += 1;
        self.debug_check();
    }

    /// The connect to `backend` succeeded after `connect_time`: its backoff is forgotten.
    pub fn connect_succeeded(
        &mut self,
        backend: &Rc<RefCell<Backend>>,
        connect_time: Duration,
        now: Instant,
    ) {
        {
            let mut backend = backend.borrow_mut();
            // A backend that accepts connections but breaks them stays in its backoff until
            // it answers a request (see `record_passive_failure`).
            if backend.passive_failures == 0 {
                backend.retry_policy.succeed();
            }
            backend.connection_time.observe(connect_time, now);
        }
        self.refresh_cluster_of(backend, now);
    }

    /// The connect to `backend` failed: it backs off.
    pub fn connect_failed(&mut self, backend: &Rc<RefCell<Backend>>, now: Instant) {
        self.connect_failed_since(backend, now, now);
    }

    /// The connect to `backend` started at `started` failed at `now`: it backs off, unless
    /// the connect was under way when its last failure was counted (then it fails with that
    /// one, see [`crate::retry`]).
    pub fn connect_failed_since(
        &mut self,
        backend: &Rc<RefCell<Backend>>,
        started: Instant,
        now: Instant,
    ) {
        {
            let mut backend = backend.borrow_mut();
            backend.failures += 1;
            let (wait, counted) = backend
                .retry_policy
                .fail_attempt(started, now, &mut self.rng);
            if !counted {
                log::debug!(
                    "cluster {}: connect to backend {} failed with the one before",
                    backend.cluster_id(),
                    backend.address()
                );
                return;
            }
            if backend.retry_policy.is_exhausted() {
                self.exhaustions += 1;
            }
            warn!(
                "cluster {}: connect to backend {} ({}) failed, {} in a row, next try in {wait:?}",
                backend.cluster_id(),
                backend.backend_id(),
                backend.address(),
                backend.retry_policy.failures()
            );
        }
        self.refresh_cluster_of(backend, now);
    }

    /// An established connection to `backend` broke before its response was complete (reset,
    /// early close, invalid response: the client got a 502). This passive check counts like a
    /// failed connect: the backend backs off, and a streak of such failures exhausts its retries
    /// (`BackendDown`), so a backend that accepts connections but cannot answer leaves the
    /// rotation within seconds even without an active health check. Only a response from the
    /// backend ([`BackendMap::record_passive_success`]) ends the streak, not a connect.
    pub fn record_passive_failure(&mut self, backend: &Rc<RefCell<Backend>>, now: Instant) {
        self.record_passive_failure_since(backend, now, now);
    }

    /// Like [`BackendMap::record_passive_failure`], for an exchange started at `started`: one
    /// under way when the backend's last failure was counted fails with that one.
    pub fn record_passive_failure_since(
        &mut self,
        backend: &Rc<RefCell<Backend>>,
        started: Instant,
        now: Instant,
    ) {
        {
            let mut backend = backend.borrow_mut();
            backend.failures += 1;
            backend.passive_failures = backend.passive_failures.saturating_add(1);
            let (wait, counted) = backend
                .retry_policy
                .fail_attempt(started, now, &mut self.rng);
            if !counted {
                return;
            }
            if backend.retry_policy.is_exhausted() {
                self.exhaustions += 1;
            }
            warn!(
                "cluster {}: backend {} ({}) broke a connection, {} failures in a row, next try in {wait:?}",
                backend.cluster_id(),
                backend.backend_id(),
                backend.address(),
                backend.retry_policy.failures()
            );
        }
        self.refresh_cluster_of(backend, now);
    }

    /// `backend` answered a request: a streak of passive failures, if any, is over.
    pub fn record_passive_success(&mut self, backend: &Rc<RefCell<Backend>>, now: Instant) {
        {
            let mut backend = backend.borrow_mut();
            if backend.passive_failures == 0 {
                return;
            }
            backend.passive_failures = 0;
            backend.retry_policy.succeed();
        }
        self.refresh_cluster_of(backend, now);
    }

    /// Backends whose retries are exhausted, as `(cluster, address)`: those a recovery probe
    /// tries (see `crate::health_check`). Costs the number of backends.
    pub fn needing_recovery(&self) -> Vec<(String, SocketAddr)> {
        self.clusters
            .values()
            .flat_map(|list| {
                list.needing_recovery()
                    .map(|address| (list.cluster_id().to_owned(), address))
            })
            .collect()
    }

    /// A number that changes whenever a backend's retries become exhausted, so that the
    /// recovery prober looks for backends to probe only then (and while it probes some).
    pub fn exhaustion_version(&self) -> u64 {
        self.exhaustions
    }

    /// A recovery probe connected to the backend at `address`: its backoff and streak of
    /// failures are forgotten and it is back in rotation (`BackendUp`). Unknown backends, and
    /// backends that no longer need it, are ignored.
    pub fn recovered(&mut self, cluster_id: &str, address: &SocketAddr, now: Instant) {
        let Some(list) = self.clusters.get_mut(cluster_id) else {
            return;
        };
        {
            let Some(backend) = list.find(address) else {
                return;
            };
            let mut backend = backend.borrow_mut();
            if !backend.retry_policy.is_exhausted() {
                return;
            }
            info!(
                "cluster {cluster_id}: backend {} ({address}) accepts connections again",
                backend.backend_id()
            );
            backend.passive_failures = 0;
            backend.retry_policy.succeed();
        }
        list.refresh(now, &mut self.outbox);
        self.debug_check();
    }

    /// A connection to `backend` closed; a removed backend whose last connection this was
    /// leaves for good.
    pub fn connection_closed(&mut self, backend: &Rc<RefCell<Backend>>, now: Instant) {
        let leaves = {
            let mut backend = backend.borrow_mut();
            backend.active_connections = backend.active_connections.saturating_sub(1);
            backend.status == BackendStatus::Closing && backend.active_connections == 0
        };
        if leaves {
            let cluster_id = backend.borrow().cluster_id().to_owned();
            self.outbox.retire(backend);
            if let Some(list) = self.clusters.get_mut(&cluster_id) {
                list.detach(backend, now, &mut self.outbox);
            }
        }
        self.debug_check();
    }

    /// A request starts on a connection to `backend`.
    pub fn request_started(&mut self, backend: &Rc<RefCell<Backend>>) {
        backend.borrow_mut().active_requests += 1;
        self.debug_check();
    }

    /// A request on a connection to `backend` ended.
    pub fn request_finished(&mut self, backend: &Rc<RefCell<Backend>>) {
        {
            let mut backend = backend.borrow_mut();
            backend.active_requests = backend.active_requests.saturating_sub(1);
        }
        self.debug_check();
    }

    /// Records an active health check's result with the cluster's thresholds; returns the
    /// health transition it caused, if any. Unknown clusters and backends are ignored (the
    /// check raced with their removal).
    pub fn record_health(
        &mut self,
        cluster_id: &str,
        address: &SocketAddr,
        success: bool,
        now: Instant,
    ) -> Option<Transition> {
        let list = self.clusters.get_mut(cluster_id)?;
        let settings = list.settings().clone();
        let transition = {
            let mut backend = list.find(address)?.borrow_mut();
            let transition = if success {
                backend.check_failure = None;
                backend.health.record_success(settings.healthy_threshold)
            } else {
                backend.health.record_failure(settings.unhealthy_threshold)
            };
            if let Some(transition) = transition {
                info!(
                    "cluster {cluster_id}: backend {} ({address}) {}",
                    backend.backend_id(),
                    transition
                );
            }
            transition
        };
        list.refresh(now, &mut self.outbox);
        self.debug_check();
        transition
    }

    /// Notes why the last active health check of a backend failed (`HTTP 503 on /health`):
    /// the reason its `BackendDown` event gives. Call before [`BackendMap::record_health`].
    pub fn note_check_failure(&mut self, cluster_id: &str, address: &SocketAddr, reason: &str) {
        if let Some(backend) = self
            .clusters
            .get(cluster_id)
            .and_then(|list| list.find(address))
        {
            backend.borrow_mut().check_failure = Some(reason.into());
        }
    }

    /// Makes every backend of the cluster healthy (its health check was removed) and
    /// publishes what that changes.
    pub fn reset_health(&mut self, cluster_id: &str, now: Instant) {
        if let Some(list) = self.clusters.get_mut(cluster_id) {
            for backend in list.backends() {
                backend.borrow_mut().health.reset();
            }
            list.refresh(now, &mut self.outbox);
        }
        self.debug_check();
    }

    /// Connect attempts on other backends before a session gives up; the default (3) for an
    /// unknown cluster.
    pub fn max_connect_retries(&self, cluster_id: &str) -> u32 {
        self.clusters
            .get(cluster_id)
            .map_or(DEFAULT_MAX_CONNECT_RETRIES, |l| {
                l.settings().max_connect_retries
            })
    }

    /// One cluster.
    pub fn cluster(&self, cluster_id: &str) -> Option<&BackendList> {
        self.clusters.get(cluster_id).map(Box::as_ref)
    }

    /// Every cluster, in no particular order.
    pub fn clusters(&self) -> impl Iterator<Item = &BackendList> {
        self.clusters.values().map(Box::as_ref)
    }

    /// The backend at `address` in a cluster.
    pub fn backend(&self, cluster_id: &str, address: &SocketAddr) -> Option<&Rc<RefCell<Backend>>> {
        self.clusters.get(cluster_id)?.find(address)
    }

    /// Takes the events queued since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<proto::Event> {
        std::mem::take(&mut self.outbox.events)
    }

    /// Counts over every cluster, removed ones included.
    pub fn counters(&self) -> &BackendCounters {
        &self.outbox.totals
    }

    /// Checks the internal invariants: no backend listed twice or in the wrong cluster, no
    /// `Closed` backend listed, no `Closing` one without connections, every up/down change
    /// reported, every availability latch up to date. Runs at the end of every entry point in
    /// debug builds.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for (id, list) in &self.clusters {
            if id != list.cluster_id() {
                return Err(InvariantViolation(format!(
                    "cluster {} filed under {id}",
                    list.cluster_id()
                )));
            }
            list.check_invariants()?;
        }
        Ok(())
    }

    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(violation) = self.check_invariants() {
            panic!("{violation}");
        }
    }

    /// Publishes what a change of `backend` did to its cluster; a backend that left its
    /// cluster has nothing left to publish.
    fn refresh_cluster_of(&mut self, backend: &Rc<RefCell<Backend>>, now: Instant) {
        let cluster_id = backend.borrow().cluster_id().to_owned();
        if let Some(list) = self.clusters.get_mut(&cluster_id) {
            if list.backends().iter().any(|b| Rc::ptr_eq(b, backend)) {
                list.refresh(now, &mut self.outbox);
            }
        }
        self.debug_check();
    }
}

fn cluster_mut<'a>(
    clusters: &'a mut HashMap<String, Box<BackendList>, FastHash>,
    cluster_id: &str,
) -> Result<&'a mut BackendList, BackendError> {
    clusters
        .get_mut(cluster_id)
        .map(Box::as_mut)
        .ok_or_else(|| BackendError::UnknownCluster(cluster_id.to_owned()))
}

fn parse_backend(backend: &proto::Backend) -> Result<BackendSpec, BackendError> {
    let address = backend
        .address
        .parse()
        .map_err(|source| BackendError::InvalidAddress {
            address: backend.address.clone(),
            source,
        })?;
    Ok(BackendSpec {
        cluster_id: backend.cluster_id.clone(),
        backend_id: backend.backend_id.clone(),
        address,
        sticky_id: backend.sticky_id.clone(),
        weight: backend.weight,
        backup: backend.backup,
        state: backend.state(),
    })
}
