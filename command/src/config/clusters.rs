//! `[clusters.NAME]`: groups of interchangeable backends, how traffic is
//! spread over them, how they are health-checked and which frontends lead
//! to them.

use std::collections::HashMap;

use super::{
    answers::parse_answers,
    backend_address::{named_id, parse_backend_address, BackendAddress},
    defaults::*,
    duration::millis_u32,
    error::ConfigError,
    frontends::{parse_frontends, Routes},
    listeners::{ParsedListener, Protocol, TIMEOUT_RANGE},
    reader::{Field, KeyPath, Table},
    root::optional,
    validate, BackendNameOrigin,
};
use crate::proto;

/// Keys of an HTTP cluster.
const HTTP_KEYS: &[&str] = &[
    "protocol",
    "load_balancing",
    "load_metric",
    "sticky_session",
    "sticky_cookie",
    "max_connect_retries",
    "prefer_last_backend",
    "answers",
    "health_check",
    "frontends",
    "backends",
];

/// Keys of a TCP cluster: no cookies, answers or HTTP probes at layer 4.
const TCP_KEYS: &[&str] = &[
    "protocol",
    "load_balancing",
    "load_metric",
    "max_connect_retries",
    "health_check",
    "frontends",
    "backends",
];

const BACKEND_KEYS: &[&str] = &[
    "address",
    "weight",
    "backup",
    "sticky_id",
    "id",
    "state",
    "resolve_later",
];

/// Operator states of a backend.
pub(crate) const BACKEND_STATES: &[(&str, proto::BackendState)] = &[
    ("ready", proto::BackendState::Ready),
    ("drain", proto::BackendState::Drain),
    ("maint", proto::BackendState::Maint),
];

const HEALTH_CHECK_KEYS: &[&str] = &[
    "uri",
    "interval",
    "timeout",
    "healthy_threshold",
    "unhealthy_threshold",
    "expected_status",
    "host",
];

/// Keys of a TCP cluster's check, a TCP connect: `uri` is listed so that it is
/// refused with the message every source gives.
const TCP_HEALTH_CHECK_KEYS: &[&str] = &[
    "uri",
    "interval",
    "timeout",
    "healthy_threshold",
    "unhealthy_threshold",
];

pub(crate) const ALGORITHMS: &[(&str, proto::LoadBalancingAlgorithm)] = &[
    ("round_robin", proto::LoadBalancingAlgorithm::RoundRobin),
    ("random", proto::LoadBalancingAlgorithm::Random),
    ("least_loaded", proto::LoadBalancingAlgorithm::LeastLoaded),
    ("power_of_two", proto::LoadBalancingAlgorithm::PowerOfTwo),
];

pub(crate) const METRICS: &[(&str, proto::LoadMetric)] = &[
    ("connections", proto::LoadMetric::Connections),
    ("requests", proto::LoadMetric::Requests),
    ("connect_time", proto::LoadMetric::ConnectTime),
];

/// Parses every cluster, in file order.
pub(crate) fn parse_clusters(
    field: Option<Field<'_>>,
    listeners: &[ParsedListener<'_>],
    names: &mut Vec<BackendNameOrigin>,
) -> Result<Vec<proto::ClusterInformation>, ConfigError> {
    let Some(field) = field else {
        return Ok(Vec::new());
    };
    let mut routes = Routes::default();
    let mut clusters = Vec::new();
    for (name, key_span, value) in field.map()?.entries() {
        let cluster_id = validate::cluster_name(name)
            .map_err(|message| value.source().invalid(key_span, &value.path(), message))?;
        clusters.push(parse_cluster(
            &value,
            cluster_id,
            listeners,
            &mut routes,
            names,
        )?);
    }
    Ok(clusters)
}

pub(crate) fn parse_cluster<'a>(
    field: &Field<'a>,
    cluster_id: String,
    listeners: &[ParsedListener<'_>],
    routes: &mut Routes<'a>,
    names: &mut Vec<BackendNameOrigin>,
) -> Result<proto::ClusterInformation, ConfigError> {
    let protocol = Protocol::of(field)?;
    let table = field.table(match protocol {
        Protocol::Http => HTTP_KEYS,
        Protocol::Tcp => TCP_KEYS,
    })?;
    let cluster = proto::Cluster {
        cluster_id: cluster_id.clone(),
        protocol: protocol.to_proto() as i32,
        load_balancing: optional(&table, "load_balancing", |f| f.choice(ALGORITHMS))?
            .unwrap_or(proto::LoadBalancingAlgorithm::RoundRobin) as i32,
        load_metric: optional(&table, "load_metric", |f| f.choice(METRICS))?
            .unwrap_or(proto::LoadMetric::Connections) as i32,
        sticky_session: optional(&table, "sticky_session", Field::bool)?.unwrap_or(false),
        sticky_cookie_name: Some(
            optional(&table, "sticky_cookie", |f| {
                f.str_with(validate::cookie_name)
            })?
            .unwrap_or_else(|| DEFAULT_STICKY_COOKIE.to_owned()),
        ),
        health_check: optional(&table, "health_check", |f| parse_health_check(f, protocol))?,
        answers: optional(&table, "answers", parse_answers)?.unwrap_or_default(),
        max_connect_retries: Some(
            optional(&table, "max_connect_retries", |f| {
                f.u32_in(0..=MAX_MAX_CONNECT_RETRIES)
            })?
            .unwrap_or(DEFAULT_MAX_CONNECT_RETRIES),
        ),
        prefer_last_backend: optional(&table, "prefer_last_backend", Field::bool)?
            .filter(|prefer| *prefer),
    };
    let backends = parse_backends(&table, &cluster_id, names)?;
    let frontends = parse_frontends(
        table.get("frontends"),
        &cluster_id,
        protocol,
        listeners,
        routes,
    )?;
    Ok(proto::ClusterInformation {
        cluster,
        backends,
        http_frontends: frontends.http,
        tcp_frontends: frontends.tcp,
    })
}

fn parse_health_check(
    field: &Field<'_>,
    protocol: Protocol,
) -> Result<proto::HealthCheckConfig, ConfigError> {
    let tcp = protocol == Protocol::Tcp;
    let table = field.table(if tcp {
        TCP_HEALTH_CHECK_KEYS
    } else {
        HEALTH_CHECK_KEYS
    })?;
    let interval = optional(&table, "interval", |f| f.duration_in(TIMEOUT_RANGE))?
        .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL);
    let timeout = match table.get("timeout") {
        Some(field) => {
            let timeout = field.duration_in(TIMEOUT_RANGE)?;
            validate::probe_timeout_within(timeout, interval)
                .map_err(|message| field.error(message))?;
            timeout
        }
        // A short interval shortens the default timeout with it.
        None => DEFAULT_HEALTH_CHECK_TIMEOUT.min(interval),
    };
    let threshold = |key: &str, default: u32| -> Result<u32, ConfigError> {
        Ok(optional(&table, key, |f| f.u32_in(1..=MAX_HEALTH_THRESHOLD))?.unwrap_or(default))
    };
    let (min, max) = optional(&table, "expected_status", |f| {
        f.str_with(validate::status_range)
    })?
    .unwrap_or((DEFAULT_EXPECTED_STATUS_MIN, DEFAULT_EXPECTED_STATUS_MAX));
    let uri = match table.get("uri") {
        Some(field) => {
            let uri = field.str()?;
            validate::probe_uri_for(tcp, uri).map_err(|message| field.error(message))?;
            field.str_with(validate::probe_uri)?
        }
        None if tcp => String::new(),
        None => table.require("uri")?.str_with(validate::probe_uri)?,
    };
    Ok(proto::HealthCheckConfig {
        uri,
        interval_ms: millis_u32(interval),
        timeout_ms: millis_u32(timeout),
        healthy_threshold: threshold("healthy_threshold", DEFAULT_HEALTHY_THRESHOLD)?,
        unhealthy_threshold: threshold("unhealthy_threshold", DEFAULT_UNHEALTHY_THRESHOLD)?,
        expected_status_min: Some(min),
        expected_status_max: Some(max),
        host: optional(&table, "host", |f| f.str_with(probe_host))?,
    })
}

fn probe_host(text: &str) -> Result<String, String> {
    match validate::hostname(text) {
        Ok(host) if !host.contains('*') => Ok(host),
        _ => Err(format!(
            "invalid host {text:?}, expected a host name like api.example.com"
        )),
    }
}

/// Addresses, ids and sticky ids are each unique within a cluster: two
/// backends on one address would be counted twice, and a shared id would
/// make removal and stickiness ambiguous.
#[derive(Default)]
struct Taken<'a> {
    addresses: HashMap<BackendAddress, KeyPath<'a>>,
    ids: HashMap<String, KeyPath<'a>>,
    sticky_ids: HashMap<String, KeyPath<'a>>,
}

fn parse_backends(
    cluster: &Table<'_>,
    cluster_id: &str,
    names: &mut Vec<BackendNameOrigin>,
) -> Result<Vec<proto::Backend>, ConfigError> {
    let Some(field) = cluster.get("backends") else {
        return Ok(Vec::new());
    };
    let mut taken = Taken::default();
    let mut backends = Vec::new();
    for item in field.array()? {
        let backend = parse_backend(&item, cluster_id, &mut taken)?;
        if parse_backend_address(&backend.address).is_ok_and(|a| a.host().is_some()) {
            let at = item.table(BACKEND_KEYS)?.require("address")?;
            names.push(BackendNameOrigin {
                cluster_id: cluster_id.to_owned(),
                backend_id: backend.backend_id.clone(),
                location: at.location(),
            });
        }
        backends.push(backend);
    }
    Ok(backends)
}

fn parse_backend<'a>(
    item: &Field<'a>,
    cluster_id: &str,
    taken: &mut Taken<'a>,
) -> Result<proto::Backend, ConfigError> {
    let table = item.table(BACKEND_KEYS)?;
    let address_field = table.require("address")?;
    let address = address_field.str_with(parse_backend_address)?;
    let named = address.host().is_some();
    // Resolved backends' ids append `@IP:PORT` to the named backend's.
    let check_id = if named {
        named_id
    } else {
        validate::backend_id
    };
    let path = item.key_path();
    if let Some(first) = taken.addresses.insert(address.clone(), path.clone()) {
        return Err(address_field.error(format!(
            "duplicate backend address {address} in cluster {cluster_id}, already used by {first}"
        )));
    }
    let id_field = table.get("id");
    let backend_id = match &id_field {
        Some(field) => field.str_with(check_id)?,
        // The address is stable when backends are reordered, so a reload
        // sees the same backend under the same id.
        None if named => address_field.str_with(|_| named_id(&address.to_string()))?,
        None => address.to_string(),
    };
    if let Some(first) = taken.ids.insert(backend_id.clone(), path.clone()) {
        let at = id_field.as_ref().unwrap_or(&address_field);
        return Err(at.error(format!(
            "duplicate backend id {backend_id:?} in cluster {cluster_id}, already used by {first}"
        )));
    }
    let sticky_field = table.get("sticky_id");
    let sticky_id = match &sticky_field {
        Some(field) => field.str_with(check_id)?,
        None => backend_id.clone(),
    };
    if let Some(first) = taken.sticky_ids.insert(sticky_id.clone(), path) {
        let at = sticky_field
            .as_ref()
            .or(id_field.as_ref())
            .unwrap_or(&address_field);
        return Err(at.error(format!(
            "duplicate sticky_id {sticky_id:?} in cluster {cluster_id}, already used by {first}"
        )));
    }
    Ok(proto::Backend {
        cluster_id: cluster_id.to_owned(),
        backend_id,
        address: address.to_string(),
        sticky_id: Some(sticky_id),
        weight: optional(&table, "weight", |f| f.u32_in(0..=MAX_WEIGHT))?.unwrap_or(DEFAULT_WEIGHT),
        backup: optional(&table, "backup", Field::bool)?.unwrap_or(false),
        // Ready is the default, stored as absent so that both spellings are one state.
        state: optional(&table, "state", |f| f.choice(BACKEND_STATES))?
            .filter(|state| *state != proto::BackendState::Ready)
            .map(|state| state as i32),
        resolve_later: resolve_later(&table, named)?,
        resolved_from: None,
    })
}

/// `resolve_later`, which only a backend given by host name may set.
fn resolve_later(backend: &Table<'_>, named: bool) -> Result<Option<bool>, ConfigError> {
    let Some(field) = backend.get("resolve_later") else {
        return Ok(None);
    };
    let value = field.bool()?;
    if !named {
        return Err(field.error(
            "resolve_later applies to backends given by host name, expected an address \
             like api.internal:8080",
        ));
    }
    Ok(Some(value).filter(|later| *later))
}
