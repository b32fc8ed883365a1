//! Recovery probes: a backend taken out by passive checks (its retries exhausted by failed
//! connects or broken exchanges) is tried with a plain TCP connect every second, and the
//! first connect that succeeds puts it back in rotation ([`BackendMap::recovered`]). No
//! client request is spent on trying it: selection skips exhausted backends.
//!
//! Which backends: those [`BackendMap::needing_recovery`] lists, looked up again whenever
//! [`BackendMap::exhaustion_version`] changes and every second while some are probed, so that
//! a quiet worker costs nothing. Each backend has one [`Schedule`] slot (one probe in flight at
//! most, the next one a second after the last started); the probes share the checker's token
//! range and slab.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::schedule::Schedule;
use crate::backends::BackendMap;

/// Time between two recovery probes of a backend, and how long one may take.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// The recovery slots of every cluster with an exhausted backend.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    clusters: HashMap<String, Schedule>,
    /// The [`BackendMap::exhaustion_version`] last looked at.
    synced_version: Option<u64>,
    /// When the backends are looked up again while some are probed.
    next_sync: Option<Instant>,
}

impl Recovery {
    /// When [`Recovery::sync`] or a probe is next due, if ever.
    pub(crate) fn next_deadline(&self, backends: &BackendMap, now: Instant) -> Option<Instant> {
        if self.synced_version != Some(backends.exhaustion_version()) {
            return Some(now);
        }
        self.clusters
            .values()
            .filter_map(Schedule::next_deadline)
            .chain(self.next_sync)
            .min()
    }

    /// Follows the backends that need probing, if they may have changed; returns the keys of
    /// the probes of backends that no longer need them, for the caller to drop.
    pub(crate) fn sync(&mut self, backends: &BackendMap, now: Instant) -> Vec<usize> {
        let version = backends.exhaustion_version();
        let changed = self.synced_version != Some(version);
        if !changed && self.next_sync.is_none_or(|at| now < at) {
            return Vec::new();
        }
        self.synced_version = Some(version);
        let mut wanted: HashMap<String, Vec<SocketAddr>> = HashMap::new();
        for (cluster_id, address) in backends.needing_recovery() {
            wanted.entry(cluster_id).or_default().push(address);
        }
        let mut dropped = Vec::new();
        self.clusters.retain(|cluster_id, schedule| {
            let kept = wanted.contains_key(cluster_id);
            if !kept {
                dropped.extend(schedule.sync(&[], now));
            }
            kept
        });
        for (cluster_id, addresses) in wanted {
            self.clusters
                .entry(cluster_id)
                .or_insert_with(|| Schedule::new(RECOVERY_INTERVAL, RECOVERY_INTERVAL))
                // The first probe a second after the backend went down, at the latest.
                .sync_into(&addresses, now + RECOVERY_INTERVAL / 2, &mut dropped);
        }
        self.next_sync = (!self.clusters.is_empty()).then(|| now + RECOVERY_INTERVAL);
        dropped
    }

    /// The cluster ids with slots.
    pub(crate) fn cluster_ids(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// The schedule of a cluster's recovery probes.
    pub(crate) fn schedule_mut(&mut self, cluster_id: &str) -> Option<&mut Schedule> {
        self.clusters.get_mut(cluster_id)
    }

    /// The schedule of a cluster's recovery probes.
    pub(crate) fn schedule(&self, cluster_id: &str) -> Option<&Schedule> {
        self.clusters.get(cluster_id)
    }

    /// Every schedule, with its cluster id.
    pub(crate) fn schedules(&self) -> impl Iterator<Item = (&String, &Schedule)> {
        self.clusters.iter()
    }
}
