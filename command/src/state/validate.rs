//! Checks of a request's own fields, independent of the current state. Each
//! function returns the normalized value the state stores, so that checked
//! input is the only input the state ever holds.

use std::net::SocketAddr;

use std::ops::RangeInclusive;
use std::time::Duration;

use super::{HttpFrontendKey, StateError};
use crate::config::defaults::{MAX_HEALTH_THRESHOLD, MAX_MAX_CONNECT_RETRIES, MAX_WEIGHT};
use crate::config::validate as shared;
use crate::proto::{
    self, BackendState, ListenerProtocol, LoadBalancingAlgorithm, LoadMetric, PathRuleKind,
};

/// Timeouts and health check durations: more than 0, at most a day (as in the file).
const DURATION_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=crate::config::defaults::MAX_DURATION;

pub(super) fn address(what: &'static str, address: &str) -> Result<SocketAddr, StateError> {
    address
        .parse()
        .map_err(|source| StateError::InvalidAddress {
            what,
            address: address.to_owned(),
            source,
        })
}

/// Stores `parsed` in its canonical form (`SocketAddr`'s display) in `address`, which
/// held the spelling it was parsed from. An IPv4 address already in that form, the usual
/// case, is left as it is without formatting: a state of 10 000 clusters spells some
/// 30 000 addresses, and formatting them was a good part of applying it.
fn normalize_address(address: &mut String, parsed: SocketAddr) {
    let SocketAddr::V4(v4) = parsed else {
        *address = parsed.to_string();
        return;
    };
    // "255.255.255.255:65535" is 21 bytes.
    let mut canonical = [0u8; 21];
    let mut len = 0;
    let mut push = |byte: u8| {
        canonical[len] = byte;
        len += 1;
    };
    for (index, octet) in v4.ip().octets().into_iter().enumerate() {
        if index > 0 {
            push(b'.');
        }
        push_decimal(&mut push, u32::from(octet));
    }
    push(b':');
    push_decimal(&mut push, u32::from(v4.port()));
    if address.as_bytes() != &canonical[..len] {
        *address = parsed.to_string();
    }
}

/// Writes `value` in decimal, byte by byte.
fn push_decimal(push: &mut impl FnMut(u8), value: u32) {
    let mut divisor = 1;
    while value / divisor >= 10 {
        divisor *= 10;
    }
    while divisor > 0 {
        // A decimal digit: below 10, so the cast keeps it whole.
        push(b'0' + (value / divisor % 10) as u8);
        divisor /= 10;
    }
}

fn invalid(field: &'static str, value: impl ToString, reason: impl ToString) -> StateError {
    StateError::InvalidField {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A listener, cluster or frontend protocol.
pub(super) fn protocol(field: &'static str, value: i32) -> Result<ListenerProtocol, StateError> {
    match ListenerProtocol::try_from(value) {
        Ok(protocol) => Ok(protocol),
        Err(_) => Err(invalid(field, value, "unknown protocol")),
    }
}

/// A listener's TLS settings: a known minimum version, known cipher suite names (with a
/// TLS 1.3 one when the minimum is 1.3), ALPN ids of 1 to 255 bytes.
fn tls_settings(tls: Option<&proto::TlsSettings>) -> Result<(), StateError> {
    let Some(tls) = tls else {
        return Ok(());
    };
    let min_version = match tls.min_version {
        None => proto::TlsVersion::Tls12,
        Some(value) => proto::TlsVersion::try_from(value)
            .map_err(|_| invalid("tls.min_version", value, "unknown TLS version"))?,
    };
    let known = crate::certificate::cipher_suite_names();
    if let Some(unknown) = tls
        .cipher_suites
        .iter()
        .find(|name| !known.contains(&name.as_str()))
    {
        return Err(invalid(
            "tls.cipher_suites",
            unknown,
            format!("unknown cipher suite, expected one of {}", known.join(", ")),
        ));
    }
    if min_version == proto::TlsVersion::Tls13
        && !tls.cipher_suites.is_empty()
        && !tls
            .cipher_suites
            .iter()
            .any(|name| name.starts_with("TLS13_"))
    {
        return Err(invalid(
            "tls.cipher_suites",
            tls.cipher_suites.join(","),
            "no TLS 1.3 cipher suite for a TLS 1.3 listener",
        ));
    }
    if let Some(bad) = tls
        .alpn_protocols
        .iter()
        .find(|id| id.is_empty() || id.len() > 255)
    {
        return Err(invalid(
            "tls.alpn_protocols",
            bad,
            "an ALPN protocol is 1 to 255 bytes",
        ));
    }
    Ok(())
}

/// A name a certificate answers: exact or `*.` wildcard, lower case.
pub(super) fn certificate_name(name: &str) -> Result<String, StateError> {
    let normalized = checked("certificate.names", name, shared::hostname(name))?;
    if normalized == "*" {
        return Err(invalid(
            "certificate.names",
            name,
            "expected a name like example.com or *.example.com (default = true answers unknown names)",
        ));
    }
    Ok(normalized)
}

/// A check shared with the configuration file, its message kept as the reason.
fn checked<T>(
    field: &'static str,
    value: impl ToString,
    check: Result<T, String>,
) -> Result<T, StateError> {
    check.map_err(|reason| invalid(field, value, reason))
}

fn cluster_id(field: &'static str, value: &str) -> Result<(), StateError> {
    checked(field, value, shared::cluster_name(value)).map(|_| ())
}

fn number_in(
    field: &'static str,
    value: u32,
    range: RangeInclusive<u64>,
) -> Result<(), StateError> {
    checked(field, value, shared::number_in(i128::from(value), range)).map(|_| ())
}

fn millis(field: &'static str, value: u32) -> Result<(), StateError> {
    checked(field, value, shared::millis_in(value, &DURATION_RANGE)).map(|_| ())
}

pub(super) fn cluster(cluster: &proto::Cluster) -> Result<proto::Cluster, StateError> {
    cluster_id("cluster_id", &cluster.cluster_id)?;
    let protocol = protocol("cluster.protocol", cluster.protocol)?;
    if protocol == ListenerProtocol::Https {
        return Err(invalid(
            "cluster.protocol",
            "https",
            "a cluster is http or tcp (an http cluster serves https listeners too)",
        ));
    }
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
        checked(
            "cluster.sticky_cookie_name",
            name,
            shared::cookie_name(name),
        )?;
    }
    if let Some(retries) = cluster.max_connect_retries {
        number_in(
            "cluster.max_connect_retries",
            retries,
            0..=u64::from(MAX_MAX_CONNECT_RETRIES),
        )?;
    }
    if let Some(check) = &cluster.health_check {
        health_check(check, protocol == ListenerProtocol::Tcp)?;
    }
    answers("cluster.answers", &cluster.answers)?;
    Ok(cluster.clone())
}

/// A health check of a cluster; `tcp`: the cluster is TCP, so the check is a connect,
/// without uri.
pub(super) fn health_check(check: &proto::HealthCheckConfig, tcp: bool) -> Result<(), StateError> {
    checked(
        "health_check.uri",
        &check.uri,
        shared::probe_uri_for(tcp, &check.uri),
    )?;
    if !tcp {
        checked(
            "health_check.uri",
            &check.uri,
            shared::probe_uri(&check.uri),
        )?;
    }
    millis("health_check.interval", check.interval_ms)?;
    millis("health_check.timeout", check.timeout_ms)?;
    checked(
        "health_check.timeout",
        check.timeout_ms,
        shared::probe_timeout_within(
            Duration::from_millis(u64::from(check.timeout_ms)),
            Duration::from_millis(u64::from(check.interval_ms)),
        ),
    )?;
    let thresholds = 1..=u64::from(MAX_HEALTH_THRESHOLD);
    number_in(
        "health_check.healthy_threshold",
        check.healthy_threshold,
        thresholds.clone(),
    )?;
    number_in(
        "health_check.unhealthy_threshold",
        check.unhealthy_threshold,
        thresholds,
    )?;
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
    cluster_id("cluster_id", &backend.cluster_id)?;
    checked(
        "backend_id",
        &backend.backend_id,
        shared::backend_id(&backend.backend_id),
    )?;
    if let Some(sticky_id) = &backend.sticky_id {
        checked(
            "backend.sticky_id",
            sticky_id,
            shared::backend_id(sticky_id),
        )?;
    }
    number_in("backend.weight", backend.weight, 0..=u64::from(MAX_WEIGHT))?;
    let parsed = address("backend", &backend.address)?;
    let mut normalized = backend.clone();
    normalize_address(&mut normalized.address, parsed);
    normalized.state = backend_state(backend.state)?;
    Ok((parsed, normalized))
}

/// A backend's operator state, `None` for ready (the default, one spelling).
pub(super) fn backend_state(state: Option<i32>) -> Result<Option<i32>, StateError> {
    match state.map(BackendState::try_from) {
        None | Some(Ok(BackendState::Ready)) => Ok(None),
        Some(Ok(state)) => Ok(Some(state as i32)),
        Some(Err(_)) => Err(invalid(
            "backend.state",
            state.unwrap_or_default(),
            "unknown state, expected ready, drain or maint",
        )),
    }
}

fn timeouts(timeouts: &proto::Timeouts) -> Result<(), StateError> {
    millis("listener.front_timeout", timeouts.front_timeout_ms)?;
    millis("listener.back_timeout", timeouts.back_timeout_ms)?;
    millis("listener.connect_timeout", timeouts.connect_timeout_ms)?;
    millis("listener.request_timeout", timeouts.request_timeout_ms)
}

pub(super) fn http_listener(
    listener: &proto::HttpListener,
) -> Result<(SocketAddr, proto::HttpListener), StateError> {
    let parsed = address("listener", &listener.address)?;
    timeouts(&listener.timeouts)?;
    tls_settings(listener.tls.as_ref())?;
    answers("listener.answers", &listener.answers)?;
    if let Some(name) = &listener.sticky_cookie_name {
        checked(
            "listener.sticky_cookie_name",
            name,
            shared::cookie_name(name),
        )?;
    }
    let mut normalized = listener.clone();
    normalize_address(&mut normalized.address, parsed);
    Ok((parsed, normalized))
}

pub(super) fn tcp_listener(
    listener: &proto::TcpListener,
) -> Result<(SocketAddr, proto::TcpListener), StateError> {
    let parsed = address("listener", &listener.address)?;
    timeouts(&listener.timeouts)?;
    tls_settings(listener.tls.as_ref())?;
    let mut normalized = listener.clone();
    normalize_address(&mut normalized.address, parsed);
    Ok((parsed, normalized))
}

pub(super) fn tcp_frontend(
    frontend: &proto::TcpFrontend,
) -> Result<(SocketAddr, proto::TcpFrontend), StateError> {
    let parsed = address("frontend", &frontend.address)?;
    cluster_id("cluster_id", &frontend.cluster_id)?;
    let mut normalized = frontend.clone();
    normalize_address(&mut normalized.address, parsed);
    Ok((parsed, normalized))
}

pub(super) fn http_frontend(
    frontend: &proto::HttpFrontend,
) -> Result<(HttpFrontendKey, proto::HttpFrontend), StateError> {
    let parsed = address("frontend", &frontend.address)?;
    let hostname = hostname(&frontend.hostname)?;
    path_rule(&frontend.path)?;
    if let Some(method) = &frontend.method {
        checked("frontend.method", method, shared::method(method))?;
    }
    if let Some(id) = &frontend.cluster_id {
        cluster_id("cluster_id", id)?;
    }
    let mut normalized = frontend.clone();
    normalize_address(&mut normalized.address, parsed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_stored_in_their_canonical_form() {
        let cases = [
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("0.0.0.0:0", "0.0.0.0:0"),
            ("255.255.255.255:65535", "255.255.255.255:65535"),
            ("10.0.0.1:080", "10.0.0.1:80"),
            ("[::1]:8080", "[::1]:8080"),
            ("[0:0::1]:8080", "[::1]:8080"),
            ("[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.1]:1"),
        ];
        for (given, canonical) in cases {
            let parsed: SocketAddr = given.parse().unwrap();
            let mut address = given.to_owned();
            normalize_address(&mut address, parsed);
            assert_eq!(address, canonical, "{given}");
            assert_eq!(address, parsed.to_string(), "{given}");
        }
    }
}
