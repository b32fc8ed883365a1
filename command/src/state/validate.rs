//! Checks of a request's own fields, independent of the current state. Each
//! function returns the normalized value the state stores, so that checked
//! input is the only input the state ever holds.

use std::net::SocketAddr;

use super::{HttpFrontendKey, StateError};
use crate::proto::{self, ListenerProtocol, LoadBalancingAlgorithm, LoadMetric, PathRuleKind};

pub(super) fn address(what: &'static str, address: &str) -> Result<SocketAddr, StateError> {
    address
        .parse()
        .map_err(|source| StateError::InvalidAddress {
            what,
            address: address.to_owned(),
            source,
        })
}

fn invalid(field: &'static str, value: impl ToString, reason: impl ToString) -> StateError {
    StateError::InvalidField {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Ids and names show up in logs, metrics and CLI tables: keep them one word.
fn identifier(field: &'static str, value: &str) -> Result<(), StateError> {
    if value.is_empty() {
        return Err(invalid(field, value, "must not be empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(field, value, "must not contain spaces"));
    }
    Ok(())
}

/// A listener, cluster or frontend protocol; HTTPS is reserved.
pub(super) fn protocol(
    field: &'static str,
    value: i32,
    what: &'static str,
) -> Result<ListenerProtocol, StateError> {
    match ListenerProtocol::try_from(value) {
        Ok(ListenerProtocol::Https) => Err(StateError::Unsupported(what)),
        Ok(protocol) => Ok(protocol),
        Err(_) => Err(invalid(field, value, "unknown protocol")),
    }
}

pub(super) fn cluster(cluster: &proto::Cluster) -> Result<proto::Cluster, StateError> {
    identifier("cluster_id", &cluster.cluster_id)?;
    protocol("cluster.protocol", cluster.protocol, "an https cluster")?;
    LoadBalancingAlgorithm::try_from(cluster.load_balancing).map_err(|_| {
        invalid(
            "cluster.load_balancing",
            cluster.load_balancing,
            "unknown algorithm",
        )
    })?;
    LoadMetric::try_from(cluster.load_metric)
        .map_err(|_| invalid("cluster.load_metric", cluster.load_metric, "unknown metric"))?;
    if let Some(name) = &cluster.sticky_cookie_name {
        identifier("cluster.sticky_cookie_name", name)?;
    }
    if let Some(check) = &cluster.health_check {
        health_check(check)?;
    }
    answers("cluster.answers", &cluster.answers)?;
    Ok(cluster.clone())
}

pub(super) fn health_check(check: &proto::HealthCheckConfig) -> Result<(), StateError> {
    if !check.uri.starts_with('/') {
        return Err(invalid("health_check.uri", &check.uri, "must start with /"));
    }
    if check.interval_ms == 0 {
        return Err(invalid("health_check.interval_ms", 0, "must be positive"));
    }
    if check.timeout_ms == 0 {
        return Err(invalid("health_check.timeout_ms", 0, "must be positive"));
    }
    if check.healthy_threshold == 0 {
        return Err(invalid(
            "health_check.healthy_threshold",
            0,
            "must be at least 1",
        ));
    }
    if check.unhealthy_threshold == 0 {
        return Err(invalid(
            "health_check.unhealthy_threshold",
            0,
            "must be at least 1",
        ));
    }
    let min = check.expected_status_min.unwrap_or(200);
    let max = check.expected_status_max.unwrap_or(399);
    for (field, status) in [
        ("health_check.expected_status_min", min),
        ("health_check.expected_status_max", max),
    ] {
        if !(100..=599).contains(&status) {
            return Err(invalid(field, status, "must be an HTTP status (100-599)"));
        }
    }
    if min > max {
        return Err(invalid(
            "health_check.expected_status_min",
            min,
            format!("must not exceed expected_status_max {max}"),
        ));
    }
    Ok(())
}

fn answers(field: &'static str, answers: &[proto::CustomAnswer]) -> Result<(), StateError> {
    for answer in answers {
        if !(100..=599).contains(&answer.status) {
            return Err(invalid(
                field,
                answer.status,
                "must be an HTTP status (100-599)",
            ));
        }
        if answer.content.is_empty() {
            return Err(invalid(field, answer.status, "the answer is empty"));
        }
    }
    Ok(())
}

pub(super) fn backend(
    backend: &proto::Backend,
) -> Result<(SocketAddr, proto::Backend), StateError> {
    identifier("cluster_id", &backend.cluster_id)?;
    identifier("backend_id", &backend.backend_id)?;
    if let Some(sticky_id) = &backend.sticky_id {
        identifier("backend.sticky_id", sticky_id)?;
    }
    let parsed = address("backend", &backend.address)?;
    let mut normalized = backend.clone();
    normalized.address = parsed.to_string();
    Ok((parsed, normalized))
}

pub(super) fn http_listener(
    listener: &proto::HttpListener,
) -> Result<(SocketAddr, proto::HttpListener), StateError> {
    let parsed = address("listener", &listener.address)?;
    answers("listener.answers", &listener.answers)?;
    if let Some(name) = &listener.sticky_cookie_name {
        identifier("listener.sticky_cookie_name", name)?;
    }
    let mut normalized = listener.clone();
    normalized.address = parsed.to_string();
    Ok((parsed, normalized))
}

pub(super) fn tcp_listener(
    listener: &proto::TcpListener,
) -> Result<(SocketAddr, proto::TcpListener), StateError> {
    let parsed = address("listener", &listener.address)?;
    let mut normalized = listener.clone();
    normalized.address = parsed.to_string();
    Ok((parsed, normalized))
}

pub(super) fn tcp_frontend(
    frontend: &proto::TcpFrontend,
) -> Result<(SocketAddr, proto::TcpFrontend), StateError> {
    let parsed = address("frontend", &frontend.address)?;
    identifier("cluster_id", &frontend.cluster_id)?;
    let mut normalized = frontend.clone();
    normalized.address = parsed.to_string();
    Ok((parsed, normalized))
}

pub(super) fn http_frontend(
    frontend: &proto::HttpFrontend,
) -> Result<(HttpFrontendKey, proto::HttpFrontend), StateError> {
    let parsed = address("frontend", &frontend.address)?;
    let hostname = hostname(&frontend.hostname)?;
    path_rule(&frontend.path)?;
    if let Some(method) = &frontend.method {
        let is_token = !method.is_empty()
            && method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !is_token {
            return Err(invalid("frontend.method", method, "not an HTTP method"));
        }
    }
    if let Some(cluster_id) = &frontend.cluster_id {
        identifier("cluster_id", cluster_id)?;
    }
    let mut normalized = frontend.clone();
    normalized.address = parsed.to_string();
    normalized.hostname = hostname.clone();
    let key = HttpFrontendKey {
        address: parsed,
        hostname,
        path_kind: frontend.path.kind,
        path: frontend.path.value.clone(),
        method: frontend.method.clone(),
    };
    Ok((key, normalized))
}

/// A hostname, exact or with a leading `*.` wildcard label, in lower case.
fn hostname(hostname: &str) -> Result<String, StateError> {
    if hostname == "*" {
        return Ok(hostname.to_owned());
    }
    let exact = hostname.strip_prefix("*.").unwrap_or(hostname);
    let valid = !exact.is_empty()
        && exact
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid {
        return Err(invalid(
            "frontend.hostname",
            hostname,
            "expected a hostname such as example.com, *.example.com or *",
        ));
    }
    Ok(hostname.to_ascii_lowercase())
}

fn path_rule(rule: &proto::PathRule) -> Result<(), StateError> {
    let kind = PathRuleKind::try_from(rule.kind)
        .map_err(|_| invalid("frontend.path.kind", rule.kind, "unknown path rule kind"))?;
    match kind {
        PathRuleKind::Prefix if !rule.value.is_empty() && !rule.value.starts_with('/') => Err(
            invalid("frontend.path", &rule.value, "a prefix must start with /"),
        ),
        PathRuleKind::Exact if !rule.value.starts_with('/') => Err(invalid(
            "frontend.path",
            &rule.value,
            "an exact path must start with /",
        )),
        PathRuleKind::Regex => regex::Regex::new(&rule.value)
            .map(|_| ())
            .map_err(|error| invalid("frontend.path", &rule.value, error)),
        _ => Ok(()),
    }
}
