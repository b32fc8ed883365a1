//! What the loop records into the worker's [`MetricsRegistry`]: the handles a session keeps
//! on the stats of its cluster and backend, the gauge of open backend connections, a finished
//! request, and the availability the backend lists give to a snapshot.
//!
//! Handles are taken once, when a session picks its cluster or backend; recording through
//! them is a few `Cell` updates, without lookup, allocation or system call.

use std::cell::RefCell;
use std::rc::Rc;

use sluice_command::metrics::names;
use sluice_command::proto;

use crate::backends::{Backend, BackendMap};
use crate::http::session::RequestLog;
use crate::metrics::{Availability, ClusterAvailability, ProxyStats, TrafficStats};

/// Counts of the worker that the [`MetricsRegistry`](crate::metrics::MetricsRegistry) has no
/// name for; the loop keeps them for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct WorkerCounters {
    /// Backend connects that timed out.
    pub connect_timeouts: u64,
    /// Sessions closed by an idle timeout.
    pub idle_timeouts: u64,
    /// HTTP sessions upgraded to a byte pipe (WebSocket …).
    pub upgrades: u64,
}

/// The stats a session records into: its cluster's, and its backend's once one was chosen.
/// They stay after the backend connection closes, so that the answer that follows (a 502 on
/// a broken connection) is counted for the backend that caused it.
#[derive(Debug, Default)]
pub(crate) struct SessionStats {
    pub(crate) cluster: Option<Rc<TrafficStats>>,
    pub(crate) backend: Option<BackendStats>,
}

/// A chosen backend and its stats.
#[derive(Debug)]
pub(crate) struct BackendStats {
    pub(crate) backend: Rc<RefCell<Backend>>,
    pub(crate) stats: Rc<TrafficStats>,
}

impl SessionStats {
    /// Records into the cluster's stats and the backend's, if known.
    pub(crate) fn each(&self, mut record: impl FnMut(&TrafficStats)) {
        if let Some(cluster) = &self.cluster {
            record(cluster);
        }
        if let Some(backend) = &self.backend {
            record(&backend.stats);
        }
    }
}

/// A backend connection being open: counted as opened when made, and as active until
/// dropped, whichever way the connection ends.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    cluster: Option<Rc<TrafficStats>>,
    backend: Rc<TrafficStats>,
}

impl OpenConnection {
    /// Counts a new connection of `backend` (and of `cluster`).
    pub(crate) fn new(cluster: Option<Rc<TrafficStats>>, backend: Rc<TrafficStats>) -> Self {
        for stats in cluster.iter().chain(Some(&backend)) {
            stats.connections.increment();
            stats.active_connections.increment();
        }
        OpenConnection { cluster, backend }
    }

    /// Counts a kept connection of `backend` taken back into use: active again, but not
    /// a new connection.
    pub(crate) fn reused(cluster: Option<Rc<TrafficStats>>, backend: Rc<TrafficStats>) -> Self {
        for stats in cluster.iter().chain(Some(&backend)) {
            stats.active_connections.increment();
        }
        OpenConnection { cluster, backend }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        for stats in self.cluster.iter().chain(Some(&self.backend)) {
            stats.active_connections.decrement();
        }
    }
}

/// Records a finished HTTP request: into the session's stats when it was routed to a
/// cluster, else as an answer of the worker (a refused or unrouted request).
pub(crate) fn record_request(proxy: &ProxyStats, session: &SessionStats, log: &RequestLog) {
    if !log.routed {
        if log.answered_by_proxy {
            proxy.answers.record(log.status);
            if log.status == 404 {
                proxy.unrouted_requests.increment();
            }
        }
        return;
    }
    session.each(|stats| {
        stats.requests.increment();
        if log.answered_by_proxy {
            stats.record_answer(log.status);
        } else {
            stats.record_status(log.status);
        }
        stats.received_bytes.add(log.bytes_in);
        stats.sent_bytes.add(log.bytes_out);
        // The connect time is recorded when a connect completes: a request on a reused
        // connection did not wait for one.
        stats.record_timings(None, log.response_time, log.total_time);
    });
}

/// The availability the backend lists know, for a snapshot.
pub(crate) struct MapAvailability<'a>(pub(crate) &'a BackendMap);

impl Availability for MapAvailability<'_> {
    fn cluster(&self, cluster_id: &str) -> Option<ClusterAvailability> {
        let list = self.0.cluster(cluster_id)?;
        let backends = list.backends();
        let available = backends.iter().filter(|b| b.borrow().is_available());
        Some(ClusterAvailability {
            available_backends: available.count() as u64,
            total_backends: backends.len() as u64,
        })
    }

    fn backend_healthy(&self, cluster_id: &str, backend_id: &str) -> Option<bool> {
        let list = self.0.cluster(cluster_id)?;
        if !list.settings().health_check {
            return None;
        }
        let backends = list.backends();
        let backend = backends
            .iter()
            .find(|b| b.borrow().backend_id() == backend_id)?;
        let healthy = backend.borrow().health().is_healthy();
        Some(healthy)
    }
}

/// Adds to a snapshot what only the backend lists know of each backend: its retry state and
/// its operator state.
pub(crate) fn add_retry_state(snapshot: &mut proto::WorkerMetrics, backends: &BackendMap) {
    for cluster in &mut snapshot.clusters {
        let Some(list) = backends.cluster(&cluster.cluster_id) else {
            continue;
        };
        for metrics in &mut cluster.backends {
            let found = list
                .backends()
                .iter()
                .find(|b| b.borrow().backend_id() == metrics.backend_id);
            if let Some(backend) = found {
                let backend = backend.borrow();
                metrics.values.push(proto::MetricValue {
                    name: names::RETRY_FAILURES.to_owned(),
                    value: u64::from(backend.retry_policy().failures()),
                    gauge: true,
                });
                metrics.values.push(proto::MetricValue {
                    name: names::ADMIN_STATE.to_owned(),
                    // 0 ready, 1 drain, 2 maint: the proto's numbering.
                    value: u64::try_from(backend.state() as i32).unwrap_or_default(),
                    gauge: true,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn log(status: u16, routed: bool, answered_by_proxy: bool) -> RequestLog {
        let mut log = RequestLog::empty();
        log.status = status;
        log.routed = routed;
        log.answered_by_proxy = answered_by_proxy;
        log.bytes_in = 10;
        log.bytes_out = 100;
        log.response_time = Some(Duration::from_millis(1));
        log.total_time = Duration::from_millis(2);
        log
    }

    fn session() -> SessionStats {
        SessionStats {
            cluster: Some(Rc::default()),
            backend: None,
        }
    }

    #[test]
    fn routed_requests_count_for_the_cluster() {
        let proxy = ProxyStats::default();
        let session = session();
        record_request(&proxy, &session, &log(200, true, false));
        record_request(&proxy, &session, &log(503, true, true));
        record_request(&proxy, &session, &log(503, true, false));
        let cluster = session.cluster.as_ref().expect("cluster stats");
        assert_eq!(cluster.requests.value(), 3);
        assert_eq!(cluster.responses[1].value(), 1);
        assert_eq!(cluster.responses[4].value(), 2);
        assert_eq!(cluster.answers.value(503), 1);
        assert_eq!(cluster.received_bytes.value(), 30);
        assert_eq!(cluster.sent_bytes.value(), 300);
        assert_eq!(cluster.total_request_time.to_proto().count, 3);
        assert_eq!(cluster.connect_time.to_proto().count, 0);
        assert_eq!(proxy.answers.value(503), 0);
    }

    #[test]
    fn unrouted_answers_count_for_the_worker() {
        let proxy = ProxyStats::default();
        let session = session();
        record_request(&proxy, &session, &log(404, false, true));
        record_request(&proxy, &session, &log(400, false, true));
        let cluster = session.cluster.as_ref().expect("cluster stats");
        assert_eq!(cluster.requests.value(), 0);
        assert_eq!(proxy.answers.value(404), 1);
        assert_eq!(proxy.answers.value(400), 1);
        assert_eq!(proxy.unrouted_requests.value(), 1);
    }

    #[test]
    fn an_open_connection_is_active_until_dropped() {
        let cluster: Rc<TrafficStats> = Rc::default();
        let backend: Rc<TrafficStats> = Rc::default();
        let open = OpenConnection::new(Some(Rc::clone(&cluster)), Rc::clone(&backend));
        let second = OpenConnection::new(Some(Rc::clone(&cluster)), Rc::clone(&backend));
        assert_eq!(cluster.active_connections.value(), 2);
        drop(open);
        assert_eq!(cluster.active_connections.value(), 1);
        assert_eq!(backend.active_connections.value(), 1);
        drop(second);
        assert_eq!(backend.active_connections.value(), 0);
        assert_eq!(backend.connections.value(), 2);
        assert_eq!(cluster.connections.value(), 2);
    }

    fn map_with_two_backends(health_check: bool) -> (BackendMap, std::time::Instant) {
        let now = std::time::Instant::now();
        let mut map = BackendMap::with_seed(3);
        map.set_cluster(
            &proto::Cluster {
                cluster_id: "app".to_owned(),
                protocol: proto::ListenerProtocol::Http as i32,
                load_balancing: proto::LoadBalancingAlgorithm::RoundRobin as i32,
                load_metric: proto::LoadMetric::Connections as i32,
                sticky_session: false,
                sticky_cookie_name: None,
                health_check: health_check.then(|| proto::HealthCheckConfig {
                    uri: "/health".to_owned(),
                    interval_ms: 1000,
                    timeout_ms: 500,
                    healthy_threshold: 1,
                    unhealthy_threshold: 1,
                    expected_status_min: None,
                    expected_status_max: None,
                    host: None,
                }),
                answers: Vec::new(),
                max_connect_retries: None,
                prefer_last_backend: None,
            },
            now,
        );
        for port in [1, 2] {
            let backend = proto::Backend {
                cluster_id: "app".to_owned(),
                backend_id: format!("b{port}"),
                address: format!("127.0.0.1:{port}"),
                sticky_id: None,
                weight: 100,
                backup: false,
                state: None,
                resolve_later: None,
                resolved_from: None,
            };
            map.add_backend(&backend, now).expect("valid backend");
        }
        (map, now)
    }

    #[test]
    fn availability_comes_from_the_backend_lists() {
        let (mut map, now) = map_with_two_backends(true);
        let address = "127.0.0.1:2".parse().expect("address");
        map.record_health("app", &address, false, now);
        let availability = MapAvailability(&map);
        assert_eq!(
            availability.cluster("app"),
            Some(ClusterAvailability {
                available_backends: 1,
                total_backends: 2
            })
        );
        assert_eq!(availability.backend_healthy("app", "b1"), Some(true));
        assert_eq!(availability.backend_healthy("app", "b2"), Some(false));
        assert_eq!(availability.backend_healthy("app", "b3"), None);
        assert_eq!(availability.cluster("other"), None);
        let (unchecked, _) = map_with_two_backends(false);
        assert_eq!(
            MapAvailability(&unchecked).backend_healthy("app", "b1"),
            None
        );
    }

    #[test]
    fn snapshots_carry_each_backends_retry_state() {
        let (mut map, now) = map_with_two_backends(false);
        let b2 = map
            .backend("app", &"127.0.0.1:2".parse().expect("address"))
            .expect("b2")
            .clone();
        map.connection_opened(&b2);
        map.connect_failed(&b2, now);
        map.connection_closed(&b2, now);
        let mut registry = crate::metrics::MetricsRegistry::new();
        registry.backend("app", "b1", "127.0.0.1:1");
        registry.backend("app", "b2", "127.0.0.1:2");
        let mut snapshot =
            registry.snapshot(0, &proto::QueryMetrics::default(), &MapAvailability(&map));
        add_retry_state(&mut snapshot, &map);
        let failures: Vec<(String, u64)> = snapshot.clusters[0]
            .backends
            .iter()
            .map(|b| {
                let value = b.values.iter().find(|v| v.name == names::RETRY_FAILURES);
                (b.backend_id.clone(), value.map_or(u64::MAX, |v| v.value))
            })
            .collect();
        assert_eq!(failures, [("b1".to_owned(), 0), ("b2".to_owned(), 1)]);
    }
}
