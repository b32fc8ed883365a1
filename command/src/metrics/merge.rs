//! Merging the metrics of every worker into one total.
//!
//! - Counters add up.
//! - Gauges add up too (each worker owns its own connections, sessions and
//!   buffers), except the availability gauges, which describe backends every
//!   worker shares: see [`names::combine`] (`available_backends` keeps the
//!   smallest value, `total_backends` the largest).
//! - A backend is healthy in the total only if it is healthy in every worker
//!   that reports its health.
//! - Histograms add up bucket by bucket; their maximum is the largest maximum.
//!
//! Clusters and backends are matched by id; one that only some workers know
//! is merged from those. The total lists clusters and backends sorted by id.

use std::collections::BTreeMap;

use super::names::{self, Combine};
use crate::proto;

/// The `worker_id` of [`proto::AggregatedMetrics::total`], which belongs to
/// no worker.
pub const TOTAL_WORKER_ID: u32 = u32::MAX;

/// The metrics of every worker, kept as they are, and their total.
pub fn merge(workers: Vec<proto::WorkerMetrics>) -> proto::AggregatedMetrics {
    let mut proxy = Vec::new();
    let mut clusters: BTreeMap<&str, ClusterTotal<'_>> = BTreeMap::new();
    for worker in &workers {
        merge_values(&mut proxy, &worker.proxy);
        for cluster in &worker.clusters {
            clusters
                .entry(&cluster.cluster_id)
                .or_default()
                .add(cluster);
        }
    }
    let total = proto::WorkerMetrics {
        worker_id: TOTAL_WORKER_ID,
        proxy,
        clusters: clusters
            .into_iter()
            .map(|(id, total)| total.into_proto(id))
            .collect(),
    };
    proto::AggregatedMetrics {
        workers,
        total: Some(total),
    }
}

/// A cluster being summed, its backends by id.
#[derive(Default)]
struct ClusterTotal<'a> {
    values: Vec<proto::MetricValue>,
    histograms: Vec<proto::HistogramValue>,
    backends: BTreeMap<&'a str, proto::BackendMetrics>,
}

impl<'a> ClusterTotal<'a> {
    fn add(&mut self, cluster: &'a proto::ClusterMetrics) {
        merge_values(&mut self.values, &cluster.values);
        merge_histograms(&mut self.histograms, &cluster.histograms);
        for backend in &cluster.backends {
            match self.backends.get_mut(backend.backend_id.as_str()) {
                Some(total) => merge_backend(total, backend),
                None => {
                    self.backends.insert(&backend.backend_id, backend.clone());
                }
            }
        }
    }

    fn into_proto(self, cluster_id: &str) -> proto::ClusterMetrics {
        proto::ClusterMetrics {
            cluster_id: cluster_id.to_owned(),
            values: self.values,
            histograms: self.histograms,
            backends: self.backends.into_values().collect(),
        }
    }
}

fn merge_backend(total: &mut proto::BackendMetrics, backend: &proto::BackendMetrics) {
    merge_values(&mut total.values, &backend.values);
    merge_histograms(&mut total.histograms, &backend.histograms);
    total.healthy = match (total.healthy, backend.healthy) {
        (Some(known), Some(other)) => Some(known && other),
        (known, None) => known,
        (None, other) => other,
    };
}

/// Adds `from` into `total`, name by name (the lists are a few dozen long).
fn merge_values(total: &mut Vec<proto::MetricValue>, from: &[proto::MetricValue]) {
    for (index, value) in from.iter().enumerate() {
        // Workers list the same names in the same order: look at the same place first.
        let at = match total.get(index) {
            Some(known) if known.name == value.name => Some(index),
            _ => total.iter().position(|known| known.name == value.name),
        };
        let Some(known) = at.map(|at| &mut total[at]) else {
            total.push(value.clone());
            continue;
        };
        known.value = match names::combine(&value.name) {
            Combine::Sum => known.value.saturating_add(value.value),
            Combine::Min => known.value.min(value.value),
            Combine::Max => known.value.max(value.value),
        };
    }
}

fn merge_histograms(total: &mut Vec<proto::HistogramValue>, from: &[proto::HistogramValue]) {
    for value in from {
        match total.iter_mut().find(|known| known.name == value.name) {
            Some(known) => merge_histogram(&mut known.histogram, &value.histogram),
            None => total.push(value.clone()),
        }
    }
}

/// Adds `from` into `total` bucket by bucket; the result lists each bound
/// once, in increasing order.
pub fn merge_histogram(total: &mut proto::Histogram, from: &proto::Histogram) {
    let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
    for histogram in [&*total, from] {
        if histogram.bucket_upper_bounds_us.len() != histogram.counts.len() {
            log::warn!(
                "histogram with {} bounds and {} counts: unpaired buckets ignored",
                histogram.bucket_upper_bounds_us.len(),
                histogram.counts.len()
            );
        }
        for (&bound, &count) in histogram
            .bucket_upper_bounds_us
            .iter()
            .zip(&histogram.counts)
        {
            let sum = buckets.entry(bound).or_default();
            *sum = sum.saturating_add(count);
        }
    }
    total.bucket_upper_bounds_us = buckets.keys().copied().collect();
    total.counts = buckets.into_values().collect();
    total.count = total.count.saturating_add(from.count);
    total.sum_us = total.sum_us.saturating_add(from.sum_us);
    total.max_us = total.max_us.max(from.max_us);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(name: &str, value: u64) -> proto::MetricValue {
        proto::MetricValue {
            name: name.to_owned(),
            value,
            gauge: false,
        }
    }

    fn gauge(name: &str, value: u64) -> proto::MetricValue {
        proto::MetricValue {
            name: name.to_owned(),
            value,
            gauge: true,
        }
    }

    fn histogram(buckets: &[(u64, u64)], sum_us: u64, max_us: u64) -> proto::HistogramValue {
        proto::HistogramValue {
            name: names::TOTAL_REQUEST_TIME.to_owned(),
            histogram: proto::Histogram {
                bucket_upper_bounds_us: buckets.iter().map(|&(bound, _)| bound).collect(),
                counts: buckets.iter().map(|&(_, count)| count).collect(),
                count: buckets.iter().map(|&(_, count)| count).sum(),
                sum_us,
                max_us,
            },
        }
    }

    fn backend(id: &str, requests: u64, healthy: Option<bool>) -> proto::BackendMetrics {
        proto::BackendMetrics {
            backend_id: id.to_owned(),
            address: format!("127.0.0.1:80{id}"),
            values: vec![counter(names::REQUESTS, requests)],
            histograms: Vec::new(),
            healthy,
        }
    }

    fn worker(id: u32, clusters: Vec<proto::ClusterMetrics>) -> proto::WorkerMetrics {
        proto::WorkerMetrics {
            worker_id: id,
            proxy: vec![
                counter(names::ACCEPTED_CONNECTIONS, 10 + u64::from(id)),
                gauge(names::ACTIVE_SESSIONS, 2),
            ],
            clusters,
        }
    }

    fn api(
        available: u64,
        total: u64,
        hist: proto::HistogramValue,
        backends: Vec<proto::BackendMetrics>,
    ) -> proto::ClusterMetrics {
        proto::ClusterMetrics {
            cluster_id: "api".to_owned(),
            values: vec![
                counter(names::REQUESTS, 5),
                gauge(names::ACTIVE_CONNECTIONS, 1),
                gauge(names::AVAILABLE_BACKENDS, available),
                gauge(names::TOTAL_BACKENDS, total),
            ],
            histograms: vec![hist],
            backends,
        }
    }

    fn value(values: &[proto::MetricValue], name: &str) -> Option<u64> {
        values
            .iter()
            .find(|value| value.name == name)
            .map(|value| value.value)
    }

    fn two_workers() -> proto::AggregatedMetrics {
        let web = proto::ClusterMetrics {
            cluster_id: "web".to_owned(),
            values: vec![counter(names::REQUESTS, 1)],
            histograms: Vec::new(),
            backends: vec![backend("w1", 1, None)],
        };
        let first = worker(
            0,
            vec![api(
                2,
                2,
                histogram(&[(10, 1), (1_000, 2)], 2_010, 1_000),
                vec![backend("b1", 3, Some(true)), backend("b2", 2, Some(true))],
            )],
        );
        let second = worker(
            1,
            vec![
                web,
                api(
                    1,
                    2,
                    histogram(&[(1_000, 1), (5_000, 4)], 20_900, 4_900),
                    vec![backend("b2", 4, Some(false)), backend("b1", 1, None)],
                ),
            ],
        );
        merge(vec![first, second])
    }

    #[test]
    fn workers_are_kept_and_the_total_sums_them() {
        let merged = two_workers();
        assert_eq!(merged.workers.len(), 2);
        let total = merged.total.expect("a total");
        assert_eq!(total.worker_id, TOTAL_WORKER_ID);
        assert_eq!(value(&total.proxy, names::ACCEPTED_CONNECTIONS), Some(21));
        assert_eq!(value(&total.proxy, names::ACTIVE_SESSIONS), Some(4));
        let ids: Vec<&str> = total
            .clusters
            .iter()
            .map(|c| c.cluster_id.as_str())
            .collect();
        assert_eq!(ids, ["api", "web"]);
        let api = &total.clusters[0];
        assert_eq!(value(&api.values, names::REQUESTS), Some(10));
        assert_eq!(value(&api.values, names::ACTIVE_CONNECTIONS), Some(2));
        assert_eq!(
            value(&api.values, names::AVAILABLE_BACKENDS),
            Some(1),
            "min over workers"
        );
        assert_eq!(
            value(&api.values, names::TOTAL_BACKENDS),
            Some(2),
            "not doubled"
        );
        assert!(api
            .values
            .iter()
            .find(|v| v.name == names::ACTIVE_CONNECTIONS)
            .is_some_and(|v| v.gauge));
        assert_eq!(value(&total.clusters[1].values, names::REQUESTS), Some(1));
    }

    #[test]
    fn backends_merge_by_id_and_health_needs_every_worker() {
        let total = two_workers().total.expect("a total");
        let backends = &total.clusters[0].backends;
        let summary: Vec<(&str, Option<u64>, Option<bool>)> = backends
            .iter()
            .map(|b| {
                (
                    b.backend_id.as_str(),
                    value(&b.values, names::REQUESTS),
                    b.healthy,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("b1", Some(4), Some(true)), ("b2", Some(6), Some(false))]
        );
        assert_eq!(total.clusters[1].backends[0].healthy, None);
    }

    #[test]
    fn histograms_add_bucket_by_bucket() {
        let total = two_workers().total.expect("a total");
        let merged = &total.clusters[0].histograms[0].histogram;
        assert_eq!(merged.bucket_upper_bounds_us, [10, 1_000, 5_000]);
        assert_eq!(merged.counts, [1, 3, 4]);
        assert_eq!(merged.count, 8);
        assert_eq!(merged.sum_us, 22_910);
        assert_eq!(merged.max_us, 4_900);
    }

    #[test]
    fn unpaired_buckets_are_ignored_not_fatal() {
        let mut total = histogram(&[(10, 1)], 5, 5).histogram;
        let mut broken = histogram(&[(10, 1), (20, 1)], 20, 15).histogram;
        broken.counts.pop();
        merge_histogram(&mut total, &broken);
        assert_eq!(total.bucket_upper_bounds_us, [10]);
        assert_eq!(total.counts, [2]);
        assert_eq!(total.max_us, 15);
    }

    #[test]
    fn no_workers_give_an_empty_total() {
        let merged = merge(Vec::new());
        let total = merged.total.expect("a total");
        assert!(total.proxy.is_empty() && total.clusters.is_empty());
    }
}
