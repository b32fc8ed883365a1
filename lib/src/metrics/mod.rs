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

use std::collections::BTreeMap;
use std::rc::Rc;

use sluice_command::metrics::names;
use sluice_command::proto;

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

/// Stats of one backend and the address it was registered with.
#[derive(Debug)]
struct BackendEntry {
    address: String,
    stats: Rc<TrafficStats>,
}

/// Stats of one cluster and of its backends, by backend id.
#[derive(Debug, Default)]
struct ClusterEntry {
    stats: Rc<TrafficStats>,
    backends: BTreeMap<String, BackendEntry>,
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
    clusters: BTreeMap<String, ClusterEntry>,
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
        Rc::clone(&self.cluster_entry(cluster_id).stats)
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
        let cluster = self.cluster_entry(cluster_id);
        if let Some(entry) = cluster.backends.get_mut(backend_id) {
            if entry.address != address {
                address.clone_into(&mut entry.address);
            }
            return Rc::clone(&entry.stats);
        }
        let stats = Rc::new(TrafficStats::default());
        let entry = BackendEntry {
            address: address.to_owned(),
            stats: Rc::clone(&stats),
        };
        cluster.backends.insert(backend_id.to_owned(), entry);
        stats
    }

    /// The stats of a known backend, without registering it: a lookup that allocates
    /// nothing, for the hot path (backends are registered when they are added).
    pub fn known_backend(&self, cluster_id: &str, backend_id: &str) -> Option<Rc<TrafficStats>> {
        let cluster = self.clusters.get(cluster_id)?;
        cluster
            .backends
            .get(backend_id)
            .map(|entry| Rc::clone(&entry.stats))
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
        let clusters = self
            .clusters
            .iter()
            .filter(|(id, _)| {
                filter
                    .cluster_id
                    .as_ref()
                    .is_none_or(|wanted| wanted == *id)
            })
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
        .map(|(backend_id, backend)| proto::BackendMetrics {
            backend_id: backend_id.clone(),
            address: backend.address.clone(),
            values: backend.stats.values(),
            histograms: backend.stats.histograms(),
            healthy: availability.backend_healthy(cluster_id, backend_id),
        })
        .collect();
    if filter.backend_id.is_some() && backends.is_empty() {
        return None;
    }
    let mut values = entry.stats.values();
    if let Some(cluster) = availability.cluster(cluster_id) {
        values.extend([
            gauge(names::AVAILABLE_BACKENDS, cluster.available_backends),
            gauge(names::TOTAL_BACKENDS, cluster.total_backends),
        ]);
    }
    Some(proto::ClusterMetrics {
        cluster_id: cluster_id.to_owned(),
        values,
        histograms: entry.stats.histograms(),
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
