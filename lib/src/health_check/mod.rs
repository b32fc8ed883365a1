//! Active health checks: probes that the worker's poll loop runs against every backend of the
//! clusters that have a check, feeding the results to [`BackendMap::record_health`].
//!
//! HTTP (and HTTPS) clusters are probed with an HTTP/1.1 `GET` whose status must fall in the
//! expected range (2xx–3xx by default); TCP clusters with a connect. Probes are non-blocking
//! sockets registered with the worker's poll under tokens from [`PROBE_BASE`]; no threads, no
//! blocking call. Each backend has at most one probe in flight; a cluster's probes are spread
//! over its interval. A probe fails when the connect fails, the timeout passes, the connection
//! closes before a status line, or the status line is bad or outside the expected range.
//!
//! The health transitions themselves (thresholds, `BackendDown`/`BackendUp`, the availability
//! latch, the log line) belong to [`BackendMap`]; the thresholds it applies are those of the
//! cluster's `proto::Cluster::health_check` given to [`BackendMap::set_cluster`]. So a change of
//! check is applied to both: `BackendMap::set_cluster` with the updated cluster (which, when the
//! check is removed, makes the backends healthy again and re-publishes availability) and
//! [`HealthChecker::set_cluster`] here (which starts, changes or stops the probes).
//!
//! How the loop drives it:
//! - a socket event whose token `t` is in `PROBE_BASE..PROBE_BASE + MAX_PROBES` goes to
//!   [`HealthChecker::ready`] with `key = t - PROBE_BASE`;
//! - [`HealthChecker::run_due`] runs when [`HealthChecker::next_deadline`] has passed: it picks
//!   up added and removed backends from the [`BackendMap`], times out late probes and starts
//!   due ones. Calling it after backends changed picks them up at once; otherwise that
//!   happens within an interval.

mod config;
mod recovery;
mod response;
mod schedule;
mod socket;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use log::{debug, error, warn};
use mio::{Registry, Token};
use slab::Slab;
use sluice_command::proto;
use thiserror::Error;

pub use config::{CheckConfig, CheckConfigError, ProbeKind};
use recovery::Recovery;
pub use recovery::RECOVERY_INTERVAL;
pub use response::{classify_status, ProbeFailure, StatusReader, MAX_STATUS_LINE};
use schedule::{Schedule, Slot};
use socket::{ProbeAnswer, ProbeSocket};

use crate::backends::{BackendMap, BackendStatus};

/// First poll token of the probes: token `PROBE_BASE + key` is the probe `key`.
pub const PROBE_BASE: usize = 1 << 19;
/// Most probes in flight at once in one worker (the size of the probe token range).
pub const MAX_PROBES: usize = 1 << 19;

/// A broken internal invariant, found by [`HealthChecker::check_invariants`].
#[derive(Debug, Error)]
#[error("health check invariant broken: {0}")]
pub struct InvariantViolation(pub String);

/// One cluster's check and where its probes are.
#[derive(Debug)]
struct ClusterCheck {
    config: CheckConfig,
    schedule: Schedule,
    /// When the cluster's backends are next compared with the schedule, so that a backend
    /// added to an idle cluster is noticed within an interval.
    next_sync: Instant,
}

/// What a probe is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The cluster's active health check.
    Check,
    /// A connect that may bring back a backend taken out by passive checks.
    Recovery,
}

/// A probe in flight.
#[derive(Debug)]
struct Probe {
    cluster_id: String,
    address: SocketAddr,
    socket: ProbeSocket,
    purpose: Purpose,
}

/// The health checks of every cluster of a worker and their probes in flight.
#[derive(Debug, Default)]
pub struct HealthChecker {
    clusters: HashMap<String, ClusterCheck>,
    recovery: Recovery,
    probes: Slab<Probe>,
}

impl HealthChecker {
    /// A checker without checks.
    pub fn new() -> Self {
        HealthChecker::default()
    }

    /// Sets (`Some`) or removes (`None`) the check of a cluster: an HTTP/1.1 `GET` probe for
    /// HTTP and HTTPS clusters, a connect probe for TCP ones. Setting the same check again
    /// changes nothing; a different one drops the probes in flight and starts over. A check
    /// that cannot be used (see [`CheckConfigError`]) is logged and removes the cluster's check.
    pub fn set_cluster(
        &mut self,
        cluster_id: &str,
        protocol: proto::ListenerProtocol,
        config: Option<&proto::HealthCheckConfig>,
        registry: &Registry,
        now: Instant,
    ) {
        let Some(config) = config else {
            self.remove_cluster(cluster_id, registry);
            return;
        };
        let config = match CheckConfig::from_proto(ProbeKind::of(protocol), config) {
            Ok(config) => config,
            Err(err) => {
                error!("cluster {cluster_id}: health check not started: {err}");
                self.remove_cluster(cluster_id, registry);
                return;
            }
        };
        if self
            .clusters
            .get(cluster_id)
            .is_some_and(|check| check.config == config)
        {
            return;
        }
        self.remove_cluster(cluster_id, registry);
        let check = ClusterCheck {
            schedule: Schedule::new(config.interval, config.timeout),
            config,
            next_sync: now,
        };
        self.clusters.insert(cluster_id.to_owned(), check);
        self.debug_check();
    }

    /// Removes the check of a cluster and drops its probes in flight. Making its backends
    /// healthy again is [`BackendMap::set_cluster`]'s part (see the module docs).
    pub fn remove_cluster(&mut self, cluster_id: &str, registry: &Registry) {
        if let Some(check) = self.clusters.remove(cluster_id) {
            for key in check.schedule.in_flight() {
                self.drop_probe(key, registry);
            }
        }
        self.debug_check();
    }

    /// Whether the cluster has a check.
    pub fn is_checked(&self, cluster_id: &str) -> bool {
        self.clusters.contains_key(cluster_id)
    }

    /// Probes in flight.
    pub fn probes_in_flight(&self) -> usize {
        self.probes.len()
    }

    /// A socket event for the probe `key` (its token minus [`PROBE_BASE`]). The probe makes
    /// what progress its socket allows (the event's flags are not needed: the socket says);
    /// a finished probe is recorded in `backends`. Unknown keys are ignored.
    pub fn ready(
        &mut self,
        key: usize,
        _event: &mio::event::Event,
        backends: &mut BackendMap,
        registry: &Registry,
        now: Instant,
    ) {
        let Some(probe) = self.probes.get_mut(key) else {
            return;
        };
        let Some(answer) = probe.socket.advance() else {
            return;
        };
        let probe = self.probes.remove(key);
        probe.socket.close(registry);
        if probe.purpose == Purpose::Recovery {
            let (cluster_id, address) = (&probe.cluster_id, probe.address);
            self.recovery_finished(cluster_id, address, key, answer.is_ok(), backends, now);
            return;
        }
        let Some(check) = self.clusters.get_mut(&probe.cluster_id) else {
            return;
        };
        if !check.schedule.finish(&probe.address, key, now) {
            return;
        }
        let result = answer.and_then(|answer| match answer {
            ProbeAnswer::Connected => Ok(()),
            ProbeAnswer::Status(status) => classify_status(status, &check.config.expected_status),
        });
        let target = check.config.target();
        record(
            backends,
            &probe.cluster_id,
            probe.address,
            result,
            target,
            now,
        );
        self.debug_check();
    }

    /// Follows the backends of every checked cluster, times out late probes and starts the
    /// due ones.
    pub fn run_due(&mut self, backends: &mut BackendMap, registry: &Registry, now: Instant) {
        let cluster_ids: Vec<String> = self.clusters.keys().cloned().collect();
        for cluster_id in cluster_ids {
            self.sync_cluster(&cluster_id, backends, registry, now);
            self.time_out_late(&cluster_id, backends, registry, now);
            self.start_due(&cluster_id, backends, registry, now);
        }
        self.debug_check();
    }

    /// When [`HealthChecker::run_due`] must run next; `None` without checks.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clusters
            .values()
            .map(|check| match check.schedule.next_deadline() {
                Some(deadline) => deadline.min(check.next_sync),
                None => check.next_sync,
            })
            .min()
    }

    fn sync_cluster(
        &mut self,
        cluster_id: &str,
        backends: &BackendMap,
        registry: &Registry,
        now: Instant,
    ) {
        let Some(check) = self.clusters.get_mut(cluster_id) else {
            return;
        };
        let addresses = probed_addresses(backends, cluster_id);
        let dropped = check.schedule.sync(&addresses, now);
        check.next_sync = now + check.config.interval;
        for key in dropped {
            self.drop_probe(key, registry);
        }
    }

    fn time_out_late(
        &mut self,
        cluster_id: &str,
        backends: &mut BackendMap,
        registry: &Registry,
        now: Instant,
    ) {
        let Some(check) = self.clusters.get_mut(cluster_id) else {
            return;
        };
        for (address, key) in check.schedule.late(now) {
            check.schedule.finish(&address, key, now);
            if let Some(probe) = self.probes.try_remove(key) {
                probe.socket.close(registry);
            }
            record(
                backends,
                cluster_id,
                address,
                Err(ProbeFailure::Timeout),
                check.config.target(),
                now,
            );
        }
    }

    fn start_due(
        &mut self,
        cluster_id: &str,
        backends: &mut BackendMap,
        registry: &Registry,
        now: Instant,
    ) {
        let Some(check) = self.clusters.get_mut(cluster_id) else {
            return;
        };
        for address in check.schedule.due(now) {
            if self.probes.len() >= MAX_PROBES {
                warn!("cluster {cluster_id}: {MAX_PROBES} probes in flight, probe of {address} postponed");
                check.schedule.postpone(&address, now);
                continue;
            }
            let request = match check.config.kind {
                ProbeKind::Http => Some(check.config.request(address)),
                ProbeKind::Connect => None,
            };
            let entry = self.probes.vacant_entry();
            let key = entry.key();
            match ProbeSocket::start(address, request, Token(PROBE_BASE + key), registry) {
                Ok(socket) => {
                    entry.insert(Probe {
                        cluster_id: cluster_id.to_owned(),
                        address,
                        socket,
                        purpose: Purpose::Check,
                    });
                    check.schedule.start(address, key, now);
                }
                // The worker's fault, not the backend's: its health is left alone.
                Err(failure @ ProbeFailure::Register(_)) => {
                    warn!("cluster {cluster_id}: probe of {address} not started: {failure}");
                    check.schedule.postpone(&address, now);
                }
                Err(failure) => {
                    check.schedule.postpone(&address, now);
                    let target = check.config.target();
                    record(backends, cluster_id, address, Err(failure), target, now);
                }
            }
        }
    }

    /// When [`HealthChecker::run_recovery`] must run next; `None` while no backend is down
    /// for passive failures.
    pub fn next_recovery_deadline(&self, backends: &BackendMap, now: Instant) -> Option<Instant> {
        self.recovery.next_deadline(backends, now)
    }

    /// Follows the backends taken out by passive checks, times out late recovery probes and
    /// starts the due ones (see `recovery.rs`).
    pub fn run_recovery(&mut self, backends: &mut BackendMap, registry: &Registry, now: Instant) {
        for key in self.recovery.sync(backends, now) {
            self.drop_probe(key, registry);
        }
        for cluster_id in self.recovery.cluster_ids() {
            let Some(schedule) = self.recovery.schedule_mut(&cluster_id) else {
                continue;
            };
            for (address, key) in schedule.late(now) {
                schedule.finish(&address, key, now);
                if let Some(probe) = self.probes.try_remove(key) {
                    probe.socket.close(registry);
                }
            }
            for address in schedule.due(now) {
                if self.probes.len() >= MAX_PROBES {
                    schedule.postpone(&address, now);
                    continue;
                }
                let entry = self.probes.vacant_entry();
                let key = entry.key();
                match ProbeSocket::start(address, None, Token(PROBE_BASE + key), registry) {
                    Ok(socket) => {
                        entry.insert(Probe {
                            cluster_id: cluster_id.clone(),
                            address,
                            socket,
                            purpose: Purpose::Recovery,
                        });
                        schedule.start(address, key, now);
                    }
                    Err(failure) => {
                        debug!("cluster {cluster_id}: recovery probe of {address}: {failure}");
                        schedule.postpone(&address, now);
                    }
                }
            }
        }
        self.debug_check();
    }

    /// A recovery probe ended: a connect puts its backend back in rotation.
    fn recovery_finished(
        &mut self,
        cluster_id: &str,
        address: SocketAddr,
        key: usize,
        connected: bool,
        backends: &mut BackendMap,
        now: Instant,
    ) {
        let Some(schedule) = self.recovery.schedule_mut(cluster_id) else {
            return;
        };
        if !schedule.finish(&address, key, now) {
            return;
        }
        if connected {
            backends.recovered(cluster_id, &address, now);
        }
        self.debug_check();
    }

    /// Checks that every probe in flight is the one its backend's slot names, and that every
    /// slot that names a probe has it. Runs at the end of every entry point in debug builds.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for (key, probe) in &self.probes {
            let slot = match probe.purpose {
                Purpose::Check => self
                    .clusters
                    .get(&probe.cluster_id)
                    .and_then(|check| check.schedule.slot(&probe.address)),
                Purpose::Recovery => self
                    .recovery
                    .schedule(&probe.cluster_id)
                    .and_then(|schedule| schedule.slot(&probe.address)),
            };
            if !matches!(slot, Some(Slot::Probing { key: k, .. }) if *k == key) {
                return Err(InvariantViolation(format!(
                    "probe {key} of {} in cluster {} is not in its slot ({slot:?})",
                    probe.address, probe.cluster_id
                )));
            }
        }
        let schedules = self
            .clusters
            .iter()
            .map(|(cluster_id, check)| (cluster_id, &check.schedule))
            .chain(self.recovery.schedules());
        for (cluster_id, schedule) in schedules {
            if let Some(key) = schedule.in_flight().find(|k| !self.probes.contains(*k)) {
                return Err(InvariantViolation(format!(
                    "cluster {cluster_id}: slot names probe {key}, which is gone"
                )));
            }
        }
        Ok(())
    }

    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(violation) = self.check_invariants() {
            panic!("{violation}");
        }
    }

    fn drop_probe(&mut self, key: usize, registry: &Registry) {
        if let Some(probe) = self.probes.try_remove(key) {
            probe.socket.close(registry);
        }
    }
}

/// The backends of a cluster worth probing: those in rotation (a removed backend that waits
/// for its connections to close is not), drained ones included, not those in maintenance.
fn probed_addresses(backends: &BackendMap, cluster_id: &str) -> Vec<SocketAddr> {
    let Some(list) = backends.cluster(cluster_id) else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    list.backends()
        .iter()
        .map(|backend| backend.borrow())
        .filter(|backend| backend.status() == BackendStatus::Normal)
        // Maintenance stops the health checks.
        .filter(|backend| backend.state() != proto::BackendState::Maint)
        .map(|backend| backend.address())
        .filter(|address| seen.insert(*address))
        .collect()
}

/// Hands a probe's result to the backends, which apply the thresholds and publish (and log)
/// any transition.
fn record(
    backends: &mut BackendMap,
    cluster_id: &str,
    address: SocketAddr,
    result: Result<(), ProbeFailure>,
    target: &str,
    now: Instant,
) {
    if let Err(failure) = &result {
        debug!("cluster {cluster_id}: health probe of {address} failed: {failure}");
        backends.note_check_failure(cluster_id, &address, &failure.summary(target));
    }
    backends.record_health(cluster_id, &address, result.is_ok(), now);
}
