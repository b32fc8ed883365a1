use std::collections::HashSet;

use super::*;
use crate::metrics::merge::merge;

fn value(name: &str, value: u64, gauge: bool) -> proto::MetricValue {
    proto::MetricValue {
        name: name.to_owned(),
        value,
        gauge,
    }
}

fn latency(buckets: &[(u64, u64)], sum_us: u64) -> proto::HistogramValue {
    let count = buckets.iter().map(|&(_, count)| count).sum();
    proto::HistogramValue {
        name: names::TOTAL_REQUEST_TIME.to_owned(),
        histogram: proto::Histogram {
            bucket_upper_bounds_us: buckets.iter().map(|&(bound, _)| bound).collect(),
            counts: buckets.iter().map(|&(_, count)| count).collect(),
            count,
            sum_us,
            max_us: buckets.last().map_or(0, |&(bound, _)| bound),
        },
    }
}

fn worker(id: u32, backend_id: &str) -> proto::WorkerMetrics {
    let backend = proto::BackendMetrics {
        backend_id: backend_id.to_owned(),
        address: "127.0.0.1:8080".to_owned(),
        values: vec![
            value(names::REQUESTS, 3, false),
            value(names::ACTIVE_CONNECTIONS, 1, true),
        ],
        histograms: vec![latency(&[(700, 1), (1_007, 1), (3_000_000, 1)], 3_001_707)],
        healthy: Some(id == 0),
    };
    proto::WorkerMetrics {
        worker_id: id,
        proxy: vec![
            value(names::ACCEPTED_CONNECTIONS, 9, false),
            value(names::ACTIVE_SESSIONS, 2, true),
        ],
        clusters: vec![proto::ClusterMetrics {
            cluster_id: "api".to_owned(),
            values: vec![
                value(names::REQUESTS, 3, false),
                value("answers_503", 1, false),
                value(names::AVAILABLE_BACKENDS, 1, true),
            ],
            histograms: vec![latency(&[(40, 2)], 80)],
            backends: vec![backend],
        }],
    }
}

fn rendered() -> String {
    let mut out = String::new();
    render(
        &merge(vec![worker(0, "b1"), worker(1, "b\"odd\\\nid")]),
        &mut out,
    );
    out
}

#[test]
fn counters_gauges_and_labels() {
    let text = rendered();
    for line in [
        "# TYPE sluice_accepted_connections_total counter",
        "sluice_accepted_connections_total{worker=\"0\"} 9",
        "# TYPE sluice_active_sessions gauge",
        "sluice_active_sessions{worker=\"1\"} 2",
        "sluice_cluster_requests_total{worker=\"0\",cluster=\"api\"} 3",
        "sluice_cluster_answers_503_total{worker=\"1\",cluster=\"api\"} 1",
        "sluice_cluster_available_backends{worker=\"0\",cluster=\"api\"} 1",
        "sluice_backend_requests_total{worker=\"0\",cluster=\"api\",backend=\"b1\"} 3",
        "sluice_backend_active_connections{worker=\"0\",cluster=\"api\",backend=\"b1\"} 1",
        "sluice_backend_healthy{worker=\"0\",cluster=\"api\",backend=\"b1\"} 1",
        "sluice_backend_healthy{worker=\"1\",cluster=\"api\",backend=\"b\\\"odd\\\\\\nid\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }
    assert!(
        !text.contains("4294967295"),
        "the total must not be rendered:\n{text}"
    );
}

#[test]
fn histograms_are_cumulative_in_seconds() {
    let text = rendered();
    let family = "sluice_backend_total_request_time_seconds";
    let labels = "worker=\"0\",cluster=\"api\",backend=\"b1\"";
    for line in [
        format!("# TYPE {family} histogram"),
        format!("{family}_bucket{{{labels},le=\"0.0005\"}} 0"),
        format!("{family}_bucket{{{labels},le=\"0.001\"}} 1"),
        format!("{family}_bucket{{{labels},le=\"0.0025\"}} 2"),
        format!("{family}_bucket{{{labels},le=\"2.5\"}} 2"),
        format!("{family}_bucket{{{labels},le=\"5\"}} 3"),
        format!("{family}_bucket{{{labels},le=\"+Inf\"}} 3"),
        format!("{family}_sum{{{labels}}} 3.001707"),
        format!("{family}_count{{{labels}}} 3"),
        "sluice_cluster_total_request_time_seconds_sum{worker=\"1\",cluster=\"api\"} 0.00008"
            .to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }
}

#[test]
fn one_help_and_type_per_family_and_families_contiguous() {
    let text = rendered();
    let mut seen = HashSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default().to_owned();
            assert!(seen.insert(name.clone()), "family {name} opened twice");
            current = Some(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert_eq!(
                rest.split(' ').next(),
                current.as_deref(),
                "TYPE without its HELP"
            );
        } else {
            let family = current.as_deref().expect("sample before any HELP");
            let sample = line.split(['{', ' ']).next().unwrap_or_default();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| sample.strip_suffix(suffix).filter(|base| *base == family));
            assert!(
                sample == family || base.is_some(),
                "{sample} outside its family {family}"
            );
        }
    }
    assert!(seen.len() > 8, "too few families:\n{text}");
}

#[test]
fn a_family_reported_with_two_kinds_keeps_the_first() {
    let mut metrics = merge(vec![worker(0, "b1")]);
    metrics.workers[0]
        .proxy
        .push(value("accepted_connections_total", 1, true));
    let mut text = String::new();
    render(&metrics, &mut text);
    assert_eq!(
        text.matches("# TYPE sluice_accepted_connections_total ")
            .count(),
        1
    );
    assert!(text.contains("# TYPE sluice_accepted_connections_total counter"));
    assert!(!text
        .lines()
        .any(|l| l == "sluice_accepted_connections_total{worker=\"0\"} 1"));
}

#[test]
fn odd_metric_names_are_sanitized() {
    let mut metrics = merge(Vec::new());
    metrics.workers.push(proto::WorkerMetrics {
        worker_id: 3,
        proxy: vec![value("bad-name.x", 1, false)],
        clusters: Vec::new(),
    });
    let mut text = String::new();
    render(&metrics, &mut text);
    assert!(
        text.contains("\nsluice_bad_name_x_total{worker=\"3\"} 1\n"),
        "{text}"
    );
}

#[test]
fn promtool_accepts_the_output() {
    crate::metrics::promtool::assert_promtool_accepts("the rendered metrics", &rendered());
}
