//! `--json` answers: plain JSON documents made for `jq`, one per answer.
//!
//! Every document is an object. A success without data is `{"message": "…"}`;
//! a failure is `{"error": "…"}` (and ctl exits 1). Lists are arrays of flat
//! objects (`{"clusters": [{"id": …, "backends": [...]}]}`), metrics are
//! objects keyed by name (`.clusters.api.backends.web1.requests`), and
//! enumerations are written as the configuration spells them
//! (`round_robin`, `http`, `backend_down`). No protocol envelope and no
//! `{"http": null, "tcp": {…}}` unions.

use serde_json::{json, Map, Value};
use sluice_command::metrics::{names, table::percentile_us};
use sluice_command::proto::{self, response_content::ContentType, Response};

use super::{cluster::ClusterCommand, output::rfc3339_millis, CtlCommand};

/// The answer to `command` as one JSON document.
pub(crate) fn document(command: &CtlCommand, response: &Response) -> Value {
    if response.status == proto::ResponseStatus::Failure as i32 {
        return error(&response.message);
    }
    let content = response
        .content
        .as_ref()
        .and_then(|c| c.content_type.as_ref());
    let mut document = match content {
        Some(ContentType::Workers(workers)) => {
            let mut document = json!({
                "main_pid": workers.main_pid,
                "generation": workers.generation,
                "workers": workers_json(workers),
            });
            if let (Some(source), Value::Object(fields)) = (&workers.source, &mut document) {
                let source = serde_json::to_value(source).unwrap_or_default();
                fields.insert("source".to_owned(), source);
            }
            document
        }
        Some(ContentType::Clusters(list)) => {
            let clusters: Vec<Value> = list.clusters.iter().map(cluster_json).collect();
            match (command, clusters.as_slice()) {
                (CtlCommand::Cluster(ClusterCommand::Show { .. }), [one]) => {
                    json!({ "cluster": one })
                }
                _ => match list.matched {
                    Some(matched) => json!({ "clusters": clusters, "matched": matched }),
                    None => json!({ "clusters": clusters }),
                },
            }
        }
        Some(ContentType::Frontends(list)) => json!({ "frontends": frontends_json(list) }),
        Some(ContentType::Listeners(list)) => {
            let listeners: Vec<Value> = list.listeners.iter().filter_map(listener_json).collect();
            json!({ "listeners": listeners })
        }
        Some(ContentType::Reload(summary)) => json!({
            "added": summary.added,
            "removed": summary.removed,
            "changed": summary.changed,
        }),
        Some(ContentType::Metrics(metrics)) => metrics_json(metrics),
        Some(ContentType::WorkerMetrics(metrics)) => worker_metrics_json(metrics),
        Some(ContentType::Event(event)) => event_json(event),
        Some(ContentType::State(dump)) => json!({ "requests": dump.requests.len() }),
        Some(ContentType::Certificates(list)) => json!({
            "certificates": list.certificates.iter().map(certificate_json).collect::<Vec<_>>()
        }),
        None => json!({}),
    };
    if !response.message.is_empty() {
        if let Value::Object(fields) = &mut document {
            fields.insert("message".to_owned(), Value::from(response.message.clone()));
        }
    }
    document
}

/// `{"error": "…"}`.
pub(crate) fn error(message: &str) -> Value {
    json!({ "error": message })
}

/// One event as a flat object: `kind` in lower case, `time` in RFC 3339.
pub(crate) fn event_json(event: &proto::Event) -> Value {
    let kind = proto::EventKind::try_from(event.kind)
        .map(|k| k.as_str_name().to_lowercase())
        .unwrap_or_else(|_| format!("unknown_{}", event.kind));
    let mut fields = Map::new();
    fields.insert("kind".to_owned(), Value::from(kind));
    if let Some(millis) = event.timestamp_ms {
        fields.insert("time".to_owned(), Value::from(rfc3339_millis(millis)));
        fields.insert("timestamp_ms".to_owned(), Value::from(millis));
    }
    let optional = [
        ("cluster", event.cluster_id.clone()),
        ("backend", event.backend_id.clone()),
        ("address", event.address.clone()),
        ("reason", event.reason.clone()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            fields.insert(key.to_owned(), Value::from(value));
        }
    }
    if let Some(worker) = event.worker_id {
        fields.insert("worker".to_owned(), Value::from(worker));
    }
    Value::Object(fields)
}

fn workers_json(workers: &proto::WorkerStatuses) -> Vec<Value> {
    workers
        .workers
        .iter()
        .map(|worker| {
            let state = proto::WorkerRunState::try_from(worker.state)
                .map(|s| s.as_str_name().to_lowercase())
                .unwrap_or_else(|_| format!("unknown_{}", worker.state));
            json!({
                "id": worker.id,
                "pid": worker.pid,
                "state": state,
                "restarts": worker.restarts,
                "sessions": worker.sessions,
            })
        })
        .collect()
}

fn cluster_json(info: &proto::ClusterInformation) -> Value {
    let cluster = &info.cluster;
    let health_check = cluster.health_check.as_ref().map(|check| {
        json!({
            "uri": check.uri,
            "interval_ms": check.interval_ms,
            "timeout_ms": check.timeout_ms,
            "healthy_threshold": check.healthy_threshold,
            "unhealthy_threshold": check.unhealthy_threshold,
            "expected_status_min": check.expected_status_min.unwrap_or(200),
            "expected_status_max": check.expected_status_max.unwrap_or(399),
            "host": check.host,
        })
    });
    let answers: Vec<u32> = cluster.answers.iter().map(|a| a.status).collect();
    let backends: Vec<Value> = info.backends.iter().map(backend_json).collect();
    let frontends = frontends_json(&proto::FrontendList {
        http_frontends: info.http_frontends.clone(),
        tcp_frontends: info.tcp_frontends.clone(),
    });
    json!({
        "id": cluster.cluster_id,
        "protocol": enum_name(proto::ListenerProtocol::try_from(cluster.protocol).map(|p| p.as_str_name())),
        "load_balancing": enum_name(
            proto::LoadBalancingAlgorithm::try_from(cluster.load_balancing).map(|a| a.as_str_name()),
        ),
        "load_metric": enum_name(proto::LoadMetric::try_from(cluster.load_metric).map(|m| m.as_str_name())),
        "sticky_session": cluster.sticky_session,
        "sticky_cookie_name": cluster.sticky_cookie_name,
        "max_connect_retries": cluster.max_connect_retries,
        "health_check": health_check,
        "custom_answers": answers,
        "backends": backends,
        "frontends": frontends,
    })
}

fn backend_json(backend: &proto::Backend) -> Value {
    json!({
        "id": backend.backend_id,
        "address": backend.address,
        "weight": backend.weight,
        "backup": backend.backup,
        "sticky_id": backend.sticky_id,
        "state": backend.state().as_str_name().to_lowercase(),
        "resolved_from": backend.resolved_from,
    })
}

fn frontends_json(list: &proto::FrontendList) -> Vec<Value> {
    let http = list.http_frontends.iter().map(|frontend| {
        json!({
            "protocol": "http",
            "listener": frontend.address,
            "hostname": frontend.hostname,
            "path": frontend.path.value,
            "path_type": enum_name(proto::PathRuleKind::try_from(frontend.path.kind).map(|k| k.as_str_name())),
            "method": frontend.method,
            "cluster": frontend.cluster_id,
        })
    });
    let tcp = list.tcp_frontends.iter().map(|frontend| {
        json!({
            "protocol": "tcp",
            "listener": frontend.address,
            "cluster": frontend.cluster_id,
        })
    });
    http.chain(tcp).collect()
}

fn listener_json(info: &proto::ListenerInformation) -> Option<Value> {
    let mut fields = match (&info.http, &info.tcp) {
        (Some(http), _) => json!({
            "protocol": "http",
            "address": http.address,
            "active": info.active,
            "expect_proxy": http.expect_proxy,
            "max_request_body": http.max_request_body.filter(|&limit| limit > 0),
            "sticky_cookie_name": http.sticky_cookie_name,
            "custom_answers": http.answers.iter().map(|a| a.status).collect::<Vec<_>>(),
            "timeouts": timeouts_json(&http.timeouts),
        }),
        (None, Some(tcp)) => json!({
            "protocol": "tcp",
            "address": tcp.address,
            "active": info.active,
            "expect_proxy": tcp.expect_proxy,
            "timeouts": timeouts_json(&tcp.timeouts),
        }),
        (None, None) => return None,
    };
    if let Value::Object(map) = &mut fields {
        map.retain(|_, value| !value.is_null());
    }
    Some(fields)
}

fn timeouts_json(timeouts: &proto::Timeouts) -> Value {
    json!({
        "front_ms": timeouts.front_timeout_ms,
        "back_ms": timeouts.back_timeout_ms,
        "connect_ms": timeouts.connect_timeout_ms,
        "request_ms": timeouts.request_timeout_ms,
    })
}

/// The merged totals at the top (`proxy`, `clusters`), then each worker's own
/// figures under `workers`.
fn metrics_json(metrics: &proto::AggregatedMetrics) -> Value {
    let merged;
    let metrics = match metrics.total {
        Some(_) => metrics,
        None => {
            merged = sluice_command::metrics::merge(metrics.workers.clone());
            &merged
        }
    };
    let mut document = match &metrics.total {
        Some(total) => figures_json(total),
        None => Map::new(),
    };
    let workers: Vec<Value> = metrics
        .workers
        .iter()
        .map(|worker| {
            let mut fields = Map::new();
            fields.insert("id".to_owned(), Value::from(worker.worker_id));
            fields.extend(figures_json(worker));
            Value::Object(fields)
        })
        .collect();
    document.insert("workers".to_owned(), Value::from(workers));
    Value::Object(document)
}

fn worker_metrics_json(metrics: &proto::WorkerMetrics) -> Value {
    let mut fields = Map::new();
    fields.insert("id".to_owned(), Value::from(metrics.worker_id));
    fields.extend(figures_json(metrics));
    Value::Object(fields)
}

/// `{"proxy": {name: value}, "clusters": {id: {name: value, "backends": {id: {…}}}}}`.
fn figures_json(metrics: &proto::WorkerMetrics) -> Map<String, Value> {
    let mut clusters = Map::new();
    for cluster in &metrics.clusters {
        let mut fields = values_json(&cluster.values, &cluster.histograms);
        fill_traffic_zeros(&mut fields);
        let mut backends = Map::new();
        for backend in &cluster.backends {
            let mut backend_fields = Map::new();
            backend_fields.insert("address".to_owned(), Value::from(backend.address.clone()));
            if let Some(healthy) = backend.healthy {
                backend_fields.insert("healthy".to_owned(), Value::from(healthy));
            }
            backend_fields.extend(values_json(&backend.values, &backend.histograms));
            fill_traffic_zeros(&mut backend_fields);
            backends.insert(backend.backend_id.clone(), Value::Object(backend_fields));
        }
        fields.insert("backends".to_owned(), Value::Object(backends));
        clusters.insert(cluster.cluster_id.clone(), Value::Object(fields));
    }
    let mut document = Map::new();
    document.insert(
        "proxy".to_owned(),
        Value::Object(values_json(&metrics.proxy, &[])),
    );
    document.insert("clusters".to_owned(), Value::Object(clusters));
    document
}

/// Writes the traffic counters an idle cluster or backend was sent without (see
/// [`names::traffic_values`]) as zeros, so that every document has the same keys.
fn fill_traffic_zeros(fields: &mut Map<String, Value>) {
    for (name, _) in names::traffic_values() {
        fields.entry(name).or_insert(Value::from(0u64));
    }
}

/// Counters and gauges as `name: value`; each histogram as `name: {count,
/// mean_ms, p50_ms, p90_ms, p99_ms, max_ms}` (percentiles `null` when empty).
fn values_json(
    values: &[proto::MetricValue],
    histograms: &[proto::HistogramValue],
) -> Map<String, Value> {
    let mut fields = Map::new();
    for value in values {
        fields.insert(value.name.clone(), Value::from(value.value));
    }
    for named in histograms {
        let histogram = &named.histogram;
        let ms = |us: Option<u64>| us.map(|us| us as f64 / 1000.0);
        let mean = (histogram.count > 0).then(|| histogram.sum_us / histogram.count);
        fields.insert(
            named.name.clone(),
            json!({
                "count": histogram.count,
                "mean_ms": ms(mean),
                "p50_ms": ms(percentile_us(histogram, 50.0)),
                "p90_ms": ms(percentile_us(histogram, 90.0)),
                "p99_ms": ms(percentile_us(histogram, 99.0)),
                "max_ms": ms((histogram.count > 0).then_some(histogram.max_us)),
            }),
        );
    }
    fields
}

fn enum_name<E>(name: Result<&'static str, E>) -> String {
    name.map(str::to_lowercase)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// One certificate: `not_after` as seconds since the Unix epoch, `not_after_date` in UTC.
fn certificate_json(certificate: &proto::CertificateSummary) -> Value {
    json!({
        "fingerprint": certificate.fingerprint,
        "names": certificate.names,
        "not_after": certificate.not_after_unix,
        "not_after_date": sluice_command::certificate::format_unix_date(certificate.not_after_unix),
        "listeners": certificate.listeners,
        "default": certificate.default,
        "certificate_path": certificate.certificate_path,
    })
}
