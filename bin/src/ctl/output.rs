//! Human-readable rendering of answers: aligned tables and one-line events.

use sluice_command::config::format_duration;
use sluice_command::proto::{self, response_content::ContentType, Response};

use super::{cluster::ClusterCommand, CtlCommand};

/// A text table whose columns are as wide as their widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are blank, extra cells are dropped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, one line per row, columns separated by two spaces.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, width)| {
                    let cell = row.get(i).map(String::as_str).unwrap_or("");
                    format!("{cell:<width$}")
                })
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text
    }
}

/// The answer to `command` as text; empty when there is nothing to say.
pub(crate) fn render(command: &CtlCommand, response: &Response) -> String {
    let content = response
        .content
        .as_ref()
        .and_then(|c| c.content_type.as_ref());
    match content {
        Some(ContentType::Workers(workers)) => {
            let main = match (workers.main_pid, workers.generation) {
                (Some(pid), Some(generation)) => {
                    format!("main pid {pid}, generation {generation}\n")
                }
                _ => String::new(),
            };
            main + &workers_table(workers)
        }
        Some(ContentType::Clusters(list)) => match command {
            CtlCommand::Cluster(ClusterCommand::Show { .. }) => clusters_detail(list),
            _ => clusters_table(list),
        },
        Some(ContentType::Frontends(list)) => frontends_table(list),
        Some(ContentType::Listeners(list)) => listeners_table(list),
        Some(ContentType::Reload(summary)) => reload_summary(&response.message, summary),
        Some(ContentType::Metrics(metrics)) => metrics_table(metrics),
        Some(ContentType::WorkerMetrics(metrics)) => metrics_table(&proto::AggregatedMetrics {
            workers: vec![metrics.clone()],
            total: None,
        }),
        Some(ContentType::Event(event)) => format!("{}\n", event_line(event)),
        Some(ContentType::State(dump)) => {
            format!("{} ({} requests)\n", response.message, dump.requests.len())
        }
        Some(ContentType::Certificates(list)) => certificates_table(list),
        None if response.message.is_empty() => String::new(),
        None => format!("{}\n", response.message),
    }
}

/// `certificate list`: the not-after date in UTC.
pub(crate) fn certificates_table(list: &proto::CertificateList) -> String {
    let mut table = Table::new(&["FINGERPRINT", "NAMES", "NOT AFTER", "LISTENERS", "DEFAULT"]);
    for certificate in &list.certificates {
        let listeners = if certificate.listeners.is_empty() {
            "all".to_owned()
        } else {
            certificate.listeners.join(",")
        };
        table.row(vec![
            certificate.fingerprint.clone(),
            certificate.names.join(","),
            sluice_command::certificate::format_unix_date(certificate.not_after_unix),
            listeners,
            if certificate.default { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table.render()
}

/// `status`.
pub(crate) fn workers_table(workers: &proto::WorkerStatuses) -> String {
    let mut table = Table::new(&["WORKER", "PID", "STATE", "RESTARTS", "SESSIONS"]);
    for worker in &workers.workers {
        let state = proto::WorkerRunState::try_from(worker.state)
            .map(|s| s.as_str_name().to_lowercase().replace('_', " "))
            .unwrap_or_else(|_| format!("unknown ({})", worker.state));
        table.row(vec![
            worker.id.to_string(),
            worker.pid.to_string(),
            state,
            worker.restarts.to_string(),
            worker.sessions.to_string(),
        ]);
    }
    let mut text = table.render();
    if let Some(source) = &workers.source {
        text.push_str(&super::export::source_lines(source));
    }
    text
}

/// `cluster list`.
pub(crate) fn clusters_table(list: &proto::ClusterList) -> String {
    let mut table = Table::new(&["CLUSTER", "PROTOCOL", "LB", "BACKENDS", "FRONTENDS"]);
    for info in &list.clusters {
        let backends: Vec<String> = info.backends.iter().map(backend_cell).collect();
        let frontends: Vec<String> = info
            .http_frontends
            .iter()
            .map(http_route)
            .chain(info.tcp_frontends.iter().map(|f| f.address.clone()))
            .collect();
        table.row(vec![
            info.cluster.cluster_id.clone(),
            protocol_name(info.cluster.protocol),
            algorithm_name(info.cluster.load_balancing),
            dash_if_empty(backends.join(", ")),
            dash_if_empty(frontends.join(", ")),
        ]);
    }
    let mut text = table.render();
    if let Some(matched) = list.matched {
        if matched as usize != list.clusters.len() {
            text.push_str(&format!(
                "({} of {matched} matching clusters shown)\n",
                list.clusters.len()
            ));
        }
    }
    text
}

/// `cluster show ID`.
fn clusters_detail(list: &proto::ClusterList) -> String {
    let mut text = String::new();
    for info in &list.clusters {
        let cluster = &info.cluster;
        text.push_str(&format!("cluster {}\n", cluster.cluster_id));
        text.push_str(&format!(
            "  protocol:       {}\n",
            protocol_name(cluster.protocol)
        ));
        text.push_str(&format!(
            "  load balancing: {}\n",
            algorithm_name(cluster.load_balancing)
        ));
        text.push_str(&format!("  sticky session: {}\n", cluster.sticky_session));
        text.push_str(&format!(
            "  prefer last backend: {}\n",
            cluster.prefer_last_backend.unwrap_or(false)
        ));
        if let Some(check) = &cluster.health_check {
            let probe = if check.uri.is_empty() {
                "TCP connect".to_owned()
            } else {
                format!("GET {}", check.uri)
            };
            text.push_str(&format!(
                "  health check:   {probe} every {} (timeout {}, up after {}, down after {})\n",
                millis(check.interval_ms),
                millis(check.timeout_ms),
                check.healthy_threshold,
                check.unhealthy_threshold
            ));
        }
        let mut backends = Table::new(&[
            "BACKEND",
            "ADDRESS",
            "WEIGHT",
            "STATE",
            "BACKUP",
            "STICKY ID",
        ]);
        for backend in &info.backends {
            backends.row(vec![
                backend.backend_id.clone(),
                match &backend.resolved_from {
                    Some(name) => format!("{} (from {name})", backend.address),
                    None => backend.address.clone(),
                },
                backend.weight.to_string(),
                backend.state().as_str_name().to_lowercase(),
                backend.backup.to_string(),
                backend.sticky_id.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        text.push_str(&indent(&backends.render()));
        let frontends = proto::FrontendList {
            http_frontends: info.http_frontends.clone(),
            tcp_frontends: info.tcp_frontends.clone(),
        };
        text.push_str(&indent(&frontends_table(&frontends)));
    }
    text
}

/// `frontend list`.
pub(crate) fn frontends_table(list: &proto::FrontendList) -> String {
    let mut table = Table::new(&[
        "PROTOCOL", "LISTENER", "HOSTNAME", "PATH", "METHOD", "CLUSTER",
    ]);
    for frontend in &list.http_frontends {
        table.row(vec![
            "http".to_owned(),
            frontend.address.clone(),
            frontend.hostname.clone(),
            path_rule(&frontend.path),
            frontend.method.clone().unwrap_or_else(|| "*".to_owned()),
            frontend
                .cluster_id
                .clone()
                .unwrap_or_else(|| "(deny)".to_owned()),
        ]);
    }
    for frontend in &list.tcp_frontends {
        table.row(vec![
            "tcp".to_owned(),
            frontend.address.clone(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            frontend.cluster_id.clone(),
        ]);
    }
    table.render()
}

/// `listener list`.
pub(crate) fn listeners_table(list: &proto::ListenerList) -> String {
    let mut table = Table::new(&[
        "PROTOCOL", "ADDRESS", "ACTIVE", "FRONT", "BACK", "CONNECT", "REQUEST", "MAX BODY",
    ]);
    for info in &list.listeners {
        let (protocol, address, timeouts, max_body) = match (&info.http, &info.tcp) {
            (Some(http), _) => (
                "http",
                &http.address,
                &http.timeouts,
                http.max_request_body.filter(|&limit| limit > 0),
            ),
            (None, Some(tcp)) => ("tcp", &tcp.address, &tcp.timeouts, None),
            (None, None) => continue,
        };
        table.row(vec![
            protocol.to_owned(),
            address.clone(),
            if info.active { "yes" } else { "no" }.to_owned(),
            millis(timeouts.front_timeout_ms),
            millis(timeouts.back_timeout_ms),
            millis(timeouts.connect_timeout_ms),
            millis(timeouts.request_timeout_ms),
            max_body.map_or_else(|| "-".to_owned(), |limit| format!("{limit}B")),
        ]);
    }
    table.render()
}

fn reload_summary(message: &str, summary: &proto::ReloadSummary) -> String {
    let mut text = format!("{message}\n");
    for added in &summary.added {
        text.push_str(&format!("  + {added}\n"));
    }
    for removed in &summary.removed {
        text.push_str(&format!("  - {removed}\n"));
    }
    for changed in &summary.changed {
        text.push_str(&format!("  ~ {changed}\n"));
    }
    text
}

/// The worker-wide totals on one line each, then one table per cluster.
fn metrics_table(metrics: &proto::AggregatedMetrics) -> String {
    let merged;
    let metrics = match metrics.total {
        Some(_) => metrics,
        None => {
            merged = sluice_command::metrics::merge(metrics.workers.clone());
            &merged
        }
    };
    let mut text = String::new();
    if let Some(total) = metrics.total.as_ref().filter(|t| !t.proxy.is_empty()) {
        let mut table = Table::new(&["PROXY", "VALUE"]);
        for value in &total.proxy {
            table.row(vec![value.name.clone(), value.value.to_string()]);
        }
        text.push_str(&table.render());
        text.push('\n');
    }
    sluice_command::metrics::table::render_tables(metrics, &mut text);
    text
}

/// One event on one line: when (RFC 3339, UTC, milliseconds), its kind, then what it
/// concerns as `key=value`, and why (`reason="…"`) when it says.
pub(crate) fn event_line(event: &proto::Event) -> String {
    let kind = proto::EventKind::try_from(event.kind)
        .map(|k| k.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("UNKNOWN_{}", event.kind));
    let mut line = match event.timestamp_ms.map(rfc3339_millis) {
        Some(when) => format!("{when} {kind}"),
        None => kind,
    };
    let fields = [
        ("cluster", event.cluster_id.clone()),
        ("backend", event.backend_id.clone()),
        ("address", event.address.clone()),
        ("worker", event.worker_id.map(|id| id.to_string())),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            line.push_str(&format!(" {key}={value}"));
        }
    }
    if let Some(reason) = &event.reason {
        line.push_str(&format!(" reason=\"{reason}\""));
    }
    line
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC time: `2026-12-02T18:40:00.123Z`.
pub(crate) fn rfc3339_millis(millis: u64) -> String {
    let millis = i64::try_from(millis).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(when) => format!("{when:.3}"),
        Err(_) => format!("@{millis}ms"),
    }
}

fn backend_cell(backend: &proto::Backend) -> String {
    if backend.backend_id == backend.address {
        backend.address.clone()
    } else {
        format!("{} ({})", backend.backend_id, backend.address)
    }
}

fn http_route(frontend: &proto::HttpFrontend) -> String {
    format!("{}{}", frontend.hostname, frontend.path.value)
}

fn path_rule(rule: &proto::PathRule) -> String {
    match proto::PathRuleKind::try_from(rule.kind) {
        Ok(proto::PathRuleKind::Exact) => format!("={}", rule.value),
        Ok(proto::PathRuleKind::Regex) => format!("~{}", rule.value),
        _ => rule.value.clone(),
    }
}

fn protocol_name(protocol: i32) -> String {
    proto::ListenerProtocol::try_from(protocol)
        .map(|p| p.as_str_name().to_lowercase())
        .unwrap_or_else(|_| protocol.to_string())
}

/// A duration in milliseconds as the configuration writes it (`60s`, `250ms`).
fn millis(ms: u32) -> String {
    format_duration(std::time::Duration::from_millis(u64::from(ms)))
}

/// An algorithm's name as the configuration spells it (`round_robin`).
fn algorithm_name(algorithm: i32) -> String {
    proto::LoadBalancingAlgorithm::try_from(algorithm)
        .map(|a| a.as_str_name().to_lowercase())
        .unwrap_or_else(|_| algorithm.to_string())
}

fn dash_if_empty(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}
