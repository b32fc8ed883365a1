//! What a worker counts, and the snapshot it sends to the main process.
//!
//! The worker is single-threaded, so metrics are plain [`std::cell::Cell`]
//! counters behind `Rc` handles: a session asks the [`MetricsRegistry`] once
//! for the [`TrafficStats`] of its cluster and of its backend, keeps the
//! handles, and records without any lookup. Histograms have a fixed size
//! (see [`histogram`]); recording never allocates nor calls the system.
//!
//! The registry knows nothing of backend health: the availability gauges
//! (`available_backends`, `total_backends`) and each backend's `healthy` flag
//! are given by the caller of [`MetricsRegistry::snapshot`] through an
//! [`Availability`], because the loop's backend lists hold that state.
//!
//! The main process merges the snapshots of every worker and renders them
//! (`sluice_command::metrics`); metric names live in
//! `sluice_command::metrics::names`, shared by both sides.

pub mod histogram;
pub mod stats;

use std::collections::HashMap;
use std::rc::Rc;

use sluice_command::metrics::names;
use sluice_command::proto;

use crate::backends::FastHash;

pub use histogram::{Histogram, HistogramError};
pub use stats::{AnswerCounters, Counter, Gauge, ProxyStats, TrafficStats};

/// Availability of a cluster's backends, as the loop sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterAvailability {
    /// Backends that can take traffic now.
    pub available_backends: u64,
    /// Backends configured in the cluster.
    pub total_backends: u64,
}

/// Health and availability that the loop fills into a snapshot.
pub trait Availability {
    /// Availability of the backends of `cluster_id`; `None` leaves the
    /// cluster's availability gauges out of the snapshot.
    fn cluster(&self, cluster_id: &str) -> Option<ClusterAvailability>;

    /// Whether a backend passes its health checks; `None` when its cluster
    /// has no health check (the snapshot then leaves `healthy` unset).
    fn backend_healthy(&self, cluster_id: &str, backend_id: &str) -> Option<bool>;
}

/// An [`Availability`] that knows nothing: snapshots without availability.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAvailability;

impl Availability for NoAvailability {
    fn cluster(&self, _cluster_id: &str) -> Option<ClusterAvailability> {
        None
    }

    fn backend_healthy(&self, _cluster_id: &str, _backend_id: &str) -> Option<bool> {
        None
    }
}

/// Stats of one backend and the address it was registered with; the stats
/// are allocated on first use (a backend without traffic shows zeros).
#[derive(Debug)]
struct BackendEntry {
    address: String,
    stats: Option<Rc<TrafficStats>>,
}

/// Stats of one cluster (allocated on first use) and of its backends, by
/// backend id.
#[derive(Debug, Default)]
struct ClusterEntry {
    stats: Option<Rc<TrafficStats>>,
    backends: BackendEntries,
}

/// A cluster's backends by id, as a sorted vector: a cluster has a few, and
/// a worker may have 10 000 clusters, where a map's first node alone would
/// cost more than the entries it holds.
#[derive(Debug, Default)]
struct BackendEntries(Vec<(String, BackendEntry)>);

impl BackendEntries {
    fn position(&self, backend_id: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(id, _)| id.as_str().cmp(backend_id))
    }

    fn get(&self, backend_id: &str) -> Option<&BackendEntry> {
        let at = self.position(backend_id).ok()?;
        Some(&self.0[at].1)
    }

    fn get_mut(&mut self, backend_id: &str) -> Option<&mut BackendEntry> {
        let at = self.position(backend_id).ok()?;
        Some(&mut self.0[at].1)
    }

    fn insert(&mut self, backend_id: &str, entry: BackendEntry) {
        match self.position(backend_id) {
            Ok(at) => self.0[at].1 = entry,
            Err(at) => {
                if self.0.len() == self.0.capacity() {
                    self.0.reserve_exact(self.0.len() / 2 + 1);
                }
                self.0.insert(at, (backend_id.to_owned(), entry));
            }
        }
    }

    fn remove(&mut self, backend_id: &str) -> Option<BackendEntry> {
        let at = self.position(backend_id).ok()?;
        Some(self.0.remove(at).1)
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &BackendEntry)> + '_ {
        self.0.iter().map(|(id, entry)| (id, entry))
    }
}

/// Every metric of one worker: its [`ProxyStats`], and [`TrafficStats`] per
/// cluster and per backend, created on first use.
///
/// Removing a cluster or backend only forgets its stats: sessions still
/// holding a handle go on recording into it, unseen. The loop should remove a
/// backend's stats when the backend is gone for good (closed, with no
/// connection left), not when it starts closing.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    proxy: ProxyStats,
    /// Hashed, not ordered: looked up for every backend a change adds (a replay adds
    /// tens of thousands); a snapshot sorts what it lists.
    clusters: HashMap<String, ClusterEntry, FastHash>,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The worker-wide stats.
    pub fn proxy(&self) -> &ProxyStats {
        &self.proxy
    }

    /// The stats of a cluster, created on first use.
    pub fn cluster(&mut self, cluster_id: &str) -> Rc<TrafficStats> {
        Rc::clone(self.cluster_entry(cluster_id).stats.get_or_insert_default())
    }

    /// Makes a backend known, so that snapshots list it (with zeros until it
    /// sees traffic), without allocating its stats yet: a worker may hold
    /// tens of thousands of backends that never see a request. A known
    /// backend registered again with another address takes the new address.
    pub fn register_backend(&mut self, cluster_id: &str, backend_id: &str, address: &str) {
        let cluster = self.cluster_entry(cluster_id);
        match cluster.backends.get_mut(backend_id) {
            Some(entry) => {
                if entry.address != address {
                    address.clone_into(&mut entry.address);
                }
            }
            None => cluster.backends.insert(
                backend_id,
                BackendEntry {
                    address: address.to_owned(),
                    stats: None,
                },
            ),
        }
    }

    /// The stats of a backend, created on first use (its cluster's too). A
    /// known backend registered again with another address keeps its stats
    /// and takes the new address.
    pub fn backend(
        &mut self,
        cluster_id: &str,
        backend_id: &str,
        address: &str,
    ) -> Rc<TrafficStats> {
        self.register_backend(cluster_id, backend_id, address);
        let entry = self
            .cluster_entry(cluster_id)
            .backends
            .get_mut(backend_id)
            .expect("backend registered just above");
        Rc::clone(entry.stats.get_or_insert_default())
    }

    /// The stats of a backend that already has some, without registering it: a lookup
    /// that allocates nothing, for the hot path (`None` the first time a backend sees
    /// traffic; [`MetricsRegistry::backend`] then allocates them).
    pub fn known_backend(&self, cluster_id: &str, backend_id: &str) -> Option<Rc<TrafficStats>> {
        let cluster = self.clusters.get(cluster_id)?;
        cluster
            .backends
            .get(backend_id)
            .and_then(|entry| entry.stats.clone())
    }

    /// Forgets a cluster's stats and its backends'; true if it was known.
    pub fn remove_cluster(&mut self, cluster_id: &str) -> bool {
        self.clusters.remove(cluster_id).is_some()
    }

    /// Forgets a backend's stats; true if it was known.
    pub fn remove_backend(&mut self, cluster_id: &str, backend_id: &str) -> bool {
        self.clusters
            .get_mut(cluster_id)
            .is_some_and(|cluster| cluster.backends.remove(backend_id).is_some())
    }

    /// Everything this worker counted, narrowed by `filter`, with the
    /// availability the loop knows.
    ///
    /// Filtering: a `cluster_id` keeps only that cluster; a `backend_id`
    /// keeps, in each remaining cluster, only that backend, and drops the
    /// clusters that do not have it. With any filter the worker-wide values
    /// are left out, since they belong to no cluster.
    pub fn snapshot(
        &self,
        worker_id: u32,
        filter: &proto::QueryMetrics,
        availability: &dyn Availability,
    ) -> proto::WorkerMetrics {
        let unfiltered = filter.cluster_id.is_none() && filter.backend_id.is_none();
        let mut listed: Vec<(&String, &ClusterEntry)> = self
            .clusters
            .iter()
            .filter(|(id, _)| {
                filter
                    .cluster_id
                    .as_ref()
                    .is_none_or(|wanted| wanted == *id)
            })
            .collect();
        listed.sort_unstable_by_key(|(id, _)| *id);
        let clusters = listed
            .into_iter()
            .filter_map(|(id, entry)| cluster_metrics(id, entry, filter, availability))
            .collect();
        proto::WorkerMetrics {
            worker_id,
            proxy: if unfiltered {
                self.proxy.values()
            } else {
                Vec::new()
            },
            clusters,
        }
    }

    fn cluster_entry(&mut self, cluster_id: &str) -> &mut ClusterEntry {
        // Looked up by `&str` first so that a known cluster, the common
        // case, costs no key allocation (`entry` would need an owned key).
        if !self.clusters.contains_key(cluster_id) {
            self.clusters
                .insert(cluster_id.to_owned(), ClusterEntry::default());
        }
        self.clusters
            .get_mut(cluster_id)
            .expect("cluster inserted just above")
    }
}

fn cluster_metrics(
    cluster_id: &str,
    entry: &ClusterEntry,
    filter: &proto::QueryMetrics,
    availability: &dyn Availability,
) -> Option<proto::ClusterMetrics> {
    let backends: Vec<proto::BackendMetrics> = entry
        .backends
        .iter()
        .filter(|(id, _)| {
            filter
                .backend_id
                .as_ref()
                .is_none_or(|wanted| wanted == *id)
        })
        .map(|(backend_id, backend)| {
            // Stats never allocated (no traffic yet) are all zeros: they are left out,
            // so that 10 000 idle clusters cost a few bytes each, not 30 named zeros.
            let stats = backend.stats.as_deref();
            proto::BackendMetrics {
                backend_id: backend_id.clone(),
                address: backend.address.clone(),
                values: stats.map(TrafficStats::values).unwrap_or_default(),
                histograms: stats.map(TrafficStats::histograms).unwrap_or_default(),
                healthy: availability.backend_healthy(cluster_id, backend_id),
            }
        })
        .collect();
    if filter.backend_id.is_some() && backends.is_empty() {
        return None;
    }
    let stats = entry.stats.as_deref();
    let mut values = stats.map(TrafficStats::values).unwrap_or_default();
    if let Some(cluster) = availability.cluster(cluster_id) {
        values.extend([
            gauge(names::AVAILABLE_BACKENDS, cluster.available_backends),
            gauge(names::TOTAL_BACKENDS, cluster.total_backends),
        ]);
    }
    Some(proto::ClusterMetrics {
        cluster_id: cluster_id.to_owned(),
        values,
        histograms: stats.map(TrafficStats::histograms).unwrap_or_default(),
        backends,
    })
}

fn gauge(name: &str, value: u64) -> proto::MetricValue {
    proto::MetricValue {
        name: name.to_owned(),
        value,
        gauge: true,
    }
}

#[cfg(test)]
mod tests;
