use std::time::Duration;

use sluice_command::metrics::names;
use sluice_command::proto;

use super::*;

/// Availability for cluster "api" only; backend "b1" healthy, "b2" not.
struct Fixed;

impl Availability for Fixed {
    fn cluster(&self, cluster_id: &str) -> Option<ClusterAvailability> {
        (cluster_id == "api").then_some(ClusterAvailability {
            available_backends: 1,
            total_backends: 2,
        })
    }

    fn backend_healthy(&self, _cluster_id: &str, backend_id: &str) -> Option<bool> {
        match backend_id {
            "b1" => Some(true),
            "b2" => Some(false),
            _ => None,
        }
    }
}

fn value(values: &[proto::MetricValue], name: &str) -> Option<(u64, bool)> {
    values
        .iter()
        .find(|value| value.name == name)
        .map(|value| (value.value, value.gauge))
}

fn no_filter() -> proto::QueryMetrics {
    proto::QueryMetrics {
        cluster_id: None,
        backend_id: None,
    }
}

fn registry_with_traffic() -> MetricsRegistry {
    let mut registry = MetricsRegistry::new();
    let b1 = registry.backend("api", "b1", "127.0.0.1:8001");
    let b2 = registry.backend("api", "b2", "127.0.0.1:8002");
    registry.backend("web", "w1", "127.0.0.1:9001");
    let api = registry.cluster("api");
    for _ in 0..3 {
        api.requests.increment();
        b1.requests.increment();
    }
    b2.connect_errors.increment();
    b1.record_timings(
        Some(Duration::from_micros(300)),
        None,
        Duration::from_millis(4),
    );
    registry.proxy().accepted_connections.add(5);
    registry
}

#[test]
fn handles_share_the_registered_stats() {
    let mut registry = MetricsRegistry::new();
    let first = registry.backend("api", "b1", "127.0.0.1:8001");
    let second = registry.backend("api", "b1", "127.0.0.1:8001");
    first.requests.increment();
    assert_eq!(second.requests.value(), 1);
    assert!(Rc::ptr_eq(
        &registry.cluster("api"),
        &registry.cluster("api")
    ));
}

#[test]
fn snapshot_holds_every_level_and_the_callers_availability() {
    let registry = registry_with_traffic();
    let snapshot = registry.snapshot(7, &no_filter(), &Fixed);
    assert_eq!(snapshot.worker_id, 7);
    assert_eq!(
        value(&snapshot.proxy, names::ACCEPTED_CONNECTIONS),
        Some((5, false))
    );
    let ids: Vec<&str> = snapshot
        .clusters
        .iter()
        .map(|c| c.cluster_id.as_str())
        .collect();
    assert_eq!(ids, ["api", "web"]);

    let api = &snapshot.clusters[0];
    assert_eq!(value(&api.values, names::REQUESTS), Some((3, false)));
    assert_eq!(
        value(&api.values, names::AVAILABLE_BACKENDS),
        Some((1, true))
    );
    assert_eq!(value(&api.values, names::TOTAL_BACKENDS), Some((2, true)));
    let b1 = &api.backends[0];
    assert_eq!(
        (b1.backend_id.as_str(), b1.address.as_str()),
        ("b1", "127.0.0.1:8001")
    );
    assert_eq!(b1.healthy, Some(true));
    assert_eq!(value(&b1.values, names::REQUESTS), Some((3, false)));
    let total_time = b1
        .histograms
        .iter()
        .find(|h| h.name == names::TOTAL_REQUEST_TIME);
    assert_eq!(total_time.map(|h| h.histogram.count), Some(1));
    assert_eq!(api.backends[1].healthy, Some(false));
    assert_eq!(
        value(&api.backends[1].values, names::CONNECT_ERRORS),
        Some((1, false))
    );

    let web = &snapshot.clusters[1];
    assert_eq!(value(&web.values, names::AVAILABLE_BACKENDS), None);
    assert_eq!(web.backends[0].healthy, None);
}

#[test]
fn filters_narrow_the_snapshot() {
    let registry = registry_with_traffic();
    let by_cluster = proto::QueryMetrics {
        cluster_id: Some("web".into()),
        backend_id: None,
    };
    let snapshot = registry.snapshot(0, &by_cluster, &NoAvailability);
    assert!(snapshot.proxy.is_empty());
    assert_eq!(snapshot.clusters.len(), 1);
    assert_eq!(snapshot.clusters[0].cluster_id, "web");

    let by_backend = proto::QueryMetrics {
        cluster_id: None,
        backend_id: Some("b2".into()),
    };
    let snapshot = registry.snapshot(0, &by_backend, &NoAvailability);
    assert_eq!(snapshot.clusters.len(), 1);
    let backends: Vec<&str> = snapshot.clusters[0]
        .backends
        .iter()
        .map(|b| b.backend_id.as_str())
        .collect();
    assert_eq!(backends, ["b2"]);

    let unknown = proto::QueryMetrics {
        cluster_id: Some("nope".into()),
        backend_id: None,
    };
    assert!(registry
        .snapshot(0, &unknown, &NoAvailability)
        .clusters
        .is_empty());
}

#[test]
fn removal_forgets_stats_and_a_new_address_is_kept() {
    let mut registry = registry_with_traffic();
    assert!(registry.remove_backend("api", "b2"));
    assert!(!registry.remove_backend("api", "b2"));
    assert!(!registry.remove_backend("nope", "b1"));
    assert!(registry.remove_cluster("web"));
    assert!(!registry.remove_cluster("web"));

    let moved = registry.backend("api", "b1", "127.0.0.1:8011");
    assert_eq!(moved.requests.value(), 3, "stats survive an address change");
    let snapshot = registry.snapshot(0, &no_filter(), &NoAvailability);
    assert_eq!(snapshot.clusters.len(), 1);
    let backends = &snapshot.clusters[0].backends;
    assert_eq!(backends.len(), 1);
    assert_eq!(backends[0].address, "127.0.0.1:8011");
}

/// The real stats of two workers, merged and rendered, pass promtool's check
/// (the names the worker reports are what the renderer expects).
#[test]
fn snapshots_render_to_valid_prometheus_text() {
    let mut registry = registry_with_traffic();
    registry.cluster("api").record_answer(503);
    let workers = vec![
        registry.snapshot(0, &no_filter(), &Fixed),
        registry.snapshot(1, &no_filter(), &NoAvailability),
    ];
    let mut text = String::new();
    sluice_command::metrics::prometheus::render(
        &sluice_command::metrics::merge(workers),
        &mut text,
    );
    assert!(
        text.contains("sluice_cluster_answers_503_total{worker=\"0\",cluster=\"api\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sluice_backend_healthy{worker=\"0\",cluster=\"api\",backend=\"b2\"} 0\n"),
        "{text}"
    );

    sluice_command::metrics::promtool::assert_promtool_accepts("merged worker snapshots", &text);
}

#[test]
fn known_backend_finds_only_registered_backends() {
    let mut registry = MetricsRegistry::new();
    assert!(registry.known_backend("app", "b1").is_none());
    let registered = registry.backend("app", "b1", "127.0.0.1:1");
    let found = registry.known_backend("app", "b1").expect("registered");
    assert!(Rc::ptr_eq(&registered, &found));
    assert!(registry.known_backend("app", "b2").is_none());
    assert!(registry.known_backend("other", "b1").is_none());
}

#[test]
fn a_registered_backend_is_listed_without_values_until_it_sees_traffic() {
    let mut registry = MetricsRegistry::new();
    registry.register_backend("api", "b1", "127.0.0.1:1");
    assert!(registry.known_backend("api", "b1").is_none());
    let snapshot = registry.snapshot(0, &no_filter(), &NoAvailability);
    let cluster = &snapshot.clusters[0];
    assert_eq!(cluster.backends[0].backend_id, "b1");
    assert_eq!(cluster.backends[0].address, "127.0.0.1:1");
    // Idle: listed, with no value (all zeros), so that idle routes cost little.
    assert!(cluster.backends[0].values.is_empty());
    assert!(cluster.backends[0].histograms.is_empty());
    assert_eq!(value(&cluster.values, names::REQUESTS), None);
    registry
        .backend("api", "b1", "127.0.0.1:1")
        .requests
        .increment();
    let stats = registry
        .known_backend("api", "b1")
        .expect("allocated on first use");
    assert_eq!(stats.requests.value(), 1);
    registry.register_backend("api", "b1", "127.0.0.1:2");
    assert_eq!(
        registry
            .known_backend("api", "b1")
            .map(|s| s.requests.value()),
        Some(1),
        "registering again keeps the stats"
    );
}
