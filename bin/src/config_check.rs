//! `sluice config check FILE`: load a configuration as `sluice start` would
//! and print what it sets up, or the precise error.

use std::{fmt::Write as _, path::Path, process::ExitCode, time::Duration};

use sluice_command::{
    config::{format_duration, Config, ListenerConfig},
    proto,
};

/// Checks `file`; the summary goes to stdout, an error to stderr.
pub(crate) fn run(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            if let Err(error) = crate::stdout::print(&summary(&config)) {
                eprintln!("error: cannot print the summary: {error}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// A human-readable description of everything the config sets up.
fn summary(config: &Config) -> String {
    let mut out = String::new();
    let name = config
        .path
        .as_deref()
        .map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{name}: valid");
    let _ = writeln!(
        out,
        "workers: {}, max_connections: {} per worker, buffer_size: {} bytes, log_level: {}, access_log: {}",
        config.worker_count,
        config.max_connections,
        config.buffer_size,
        config.log_level,
        config.access_log,
    );
    let _ = writeln!(out, "command_socket: {}", config.command_socket.display());
    if let Some(address) = config.metrics_address {
        let _ = writeln!(out, "metrics: http://{address}/metrics");
    }
    let _ = writeln!(
        out,
        "shutdown_grace_period: {}",
        format_duration(config.shutdown_grace_period)
    );
    let _ = writeln!(out, "listeners: {}", config.listeners.len());
    for listener in &config.listeners {
        write_listener(&mut out, listener);
    }
    if !config.certificates.is_empty() {
        let _ = writeln!(out, "certificates: {}", config.certificates.len());
        for certificate in &config.certificates {
            write_certificate(&mut out, certificate);
        }
    }
    let _ = writeln!(out, "clusters: {}", config.clusters.len());
    for cluster in &config.clusters {
        write_cluster(&mut out, cluster);
    }
    out
}

/// `  FINGERPRINT names a.test,*.b.test, not after DATE, listeners all, default`.
fn write_certificate(out: &mut String, pem: &proto::CertificateAndKey) {
    // Checked when the file was read.
    let Ok(info) = sluice_command::certificate::inspect(pem) else {
        return;
    };
    let listeners = if pem.listeners.is_empty() {
        "all".to_owned()
    } else {
        pem.listeners.join(",")
    };
    let _ = writeln!(
        out,
        "  {} names {}, not after {}, listeners {}{}",
        info.fingerprint,
        pem.names.join(","),
        sluice_command::certificate::format_unix_date(info.not_after_unix),
        listeners,
        if pem.default == Some(true) {
            ", default"
        } else {
            ""
        },
    );
}

fn write_listener(out: &mut String, listener: &ListenerConfig) {
    let t = listener.timeouts();
    let ms = |millis: u32| format_duration(Duration::from_millis(u64::from(millis)));
    let _ = write!(
        out,
        "  {} {} (front {}, back {}, connect {}",
        name(listener.protocol().as_str_name()),
        listener.address(),
        ms(t.front_timeout_ms),
        ms(t.back_timeout_ms),
        ms(t.connect_timeout_ms),
    );
    if let ListenerConfig::Http(http) = listener {
        let _ = write!(out, ", request {}", ms(t.request_timeout_ms));
        if !http.answers.is_empty() {
            let _ = write!(out, ", custom answers {}", statuses(&http.answers));
        }
    }
    let proxy = match listener {
        ListenerConfig::Http(http) => http.expect_proxy,
        ListenerConfig::Tcp(tcp) => tcp.expect_proxy,
    };
    let _ = writeln!(out, "{})", if proxy { ", expects PROXY" } else { "" });
}

fn write_cluster(out: &mut String, info: &proto::ClusterInformation) {
    let cluster = &info.cluster;
    let protocol = proto::ListenerProtocol::try_from(cluster.protocol).unwrap_or_default();
    let algorithm =
        proto::LoadBalancingAlgorithm::try_from(cluster.load_balancing).unwrap_or_default();
    let _ = write!(
        out,
        "  {}: {}, {}",
        cluster.cluster_id,
        name(protocol.as_str_name()),
        name(algorithm.as_str_name())
    );
    if matches!(
        algorithm,
        proto::LoadBalancingAlgorithm::LeastLoaded | proto::LoadBalancingAlgorithm::PowerOfTwo
    ) {
        let metric = proto::LoadMetric::try_from(cluster.load_metric).unwrap_or_default();
        let _ = write!(out, " by {}", name(metric.as_str_name()));
    }
    if cluster.sticky_session {
        let cookie = cluster.sticky_cookie_name.as_deref().unwrap_or_default();
        let _ = write!(out, ", sticky cookie {cookie}");
    }
    if !cluster.answers.is_empty() {
        let _ = write!(out, ", custom answers {}", statuses(&cluster.answers));
    }
    let _ = writeln!(out);
    if let Some(check) = &cluster.health_check {
        let ms = |millis: u32| format_duration(Duration::from_millis(u64::from(millis)));
        let _ = writeln!(
            out,
            "    health check GET {} every {} (timeout {}, up after {}, down after {})",
            check.uri,
            ms(check.interval_ms),
            ms(check.timeout_ms),
            check.healthy_threshold,
            check.unhealthy_threshold,
        );
    }
    for backend in &info.backends {
        let _ = write!(
            out,
            "    backend {} weight {}",
            backend.address, backend.weight
        );
        if backend.backend_id != backend.address {
            let _ = write!(out, " id {}", backend.backend_id);
        }
        let _ = writeln!(out, "{}", if backend.backup { " backup" } else { "" });
    }
    for frontend in &info.http_frontends {
        write_http_frontend(out, frontend);
    }
    for frontend in &info.tcp_frontends {
        let _ = writeln!(out, "    frontend {}", frontend.address);
    }
}

fn write_http_frontend(out: &mut String, frontend: &proto::HttpFrontend) {
    let kind = proto::PathRuleKind::try_from(frontend.path.kind).unwrap_or_default();
    let _ = write!(
        out,
        "    frontend {} host {} path {} {}",
        frontend.address,
        frontend.hostname,
        name(kind.as_str_name()),
        frontend.path.value
    );
    if let Some(method) = &frontend.method {
        let _ = write!(out, " method {method}");
    }
    let _ = writeln!(out);
}

/// Protobuf enum names (`ROUND_ROBIN`) as the file spells them (`round_robin`).
fn name(proto_name: &str) -> String {
    proto_name.to_ascii_lowercase()
}

fn statuses(answers: &[proto::CustomAnswer]) -> String {
    let statuses: Vec<String> = answers.iter().map(|a| a.status.to_string()).collect();
    statuses.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_summary_names_everything() {
        let summary = summary(&Config::default_embedded());
        let expected = "configuration: valid
workers: 2, max_connections: 10000 per worker, buffer_size: 16384 bytes, log_level: info, access_log: stdout
command_socket: sluice.sock
shutdown_grace_period: 30s
listeners: 1
  http 127.0.0.1:8080 (front 1m, back 30s, connect 3s, request 10s)
clusters: 1
  demo: http, round_robin
    backend 127.0.0.1:8081 weight 100
    backend 127.0.0.1:8082 weight 100
    frontend 127.0.0.1:8080 host * path prefix /
";
        assert_eq!(summary, expected);
    }
}
