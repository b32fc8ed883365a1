//! `frontends = [ … ]` of a cluster: which listener, hostname, path and
//! method route to it. Checked against the listeners and against every other
//! cluster's frontends, so that each route leads to exactly one cluster.

use std::collections::HashMap;

use super::{
    defaults::{DEFAULT_HOSTNAME, DEFAULT_PATH},
    error::ConfigError,
    listeners::{ParsedListener, Protocol},
    reader::{Field, KeyPath},
    root::optional,
    validate,
};
use crate::proto;

/// Keys of an HTTP frontend.
const HTTP_KEYS: &[&str] = &[
    "address",
    "hostname",
    "path",
    "path_type",
    "method",
    "redirect",
    "hsts",
];
/// Keys of a TCP frontend: a TCP listener sends every connection to one cluster.
const TCP_KEYS: &[&str] = &["address"];

pub(crate) const PATH_TYPES: &[(&str, proto::PathRuleKind)] = &[
    ("prefix", proto::PathRuleKind::Prefix),
    ("exact", proto::PathRuleKind::Exact),
    ("regex", proto::PathRuleKind::Regex),
];

/// `redirect = "https"`: the only redirect there is.
const REDIRECTS: &[(&str, bool)] = &[("https", true)];

/// What makes two HTTP frontends the same route: address, hostname, path
/// rule and method.
type RouteKey = (String, String, (i32, String), Option<String>);

/// Routes already taken by earlier frontends, with the key path that took
/// them; indexed, so that checking a file is linear in its frontends.
#[derive(Default)]
pub(crate) struct Routes<'a> {
    http: HashMap<RouteKey, KeyPath<'a>>,
    /// Listener address → (cluster id, key path).
    tcp: HashMap<String, (String, KeyPath<'a>)>,
}

/// A cluster's frontends of either protocol.
#[derive(Default)]
pub(crate) struct Frontends {
    pub(crate) http: Vec<proto::HttpFrontend>,
    pub(crate) tcp: Vec<proto::TcpFrontend>,
}

/// Parses the `frontends` array of cluster `cluster_id`.
pub(crate) fn parse_frontends<'a>(
    field: Option<Field<'a>>,
    cluster_id: &str,
    protocol: Protocol,
    listeners: &[ParsedListener<'_>],
    routes: &mut Routes<'a>,
) -> Result<Frontends, ConfigError> {
    let mut frontends = Frontends::default();
    let Some(field) = field else {
        return Ok(frontends);
    };
    for item in field.array()? {
        match protocol {
            Protocol::Http => {
                for frontend in http_frontends(&item, cluster_id, listeners)? {
                    let key = (
                        frontend.address.clone(),
                        frontend.hostname.clone(),
                        (frontend.path.kind, frontend.path.value.clone()),
                        frontend.method.clone(),
                    );
                    if let Some(first) = routes.http.get(&key) {
                        return Err(item.error(format!(
                            "duplicate route, already defined by {first} \
                         (same address, hostname, path, path_type and method)"
                        )));
                    }
                    routes.http.insert(key, item.key_path());
                    frontends.http.push(frontend);
                }
            }
            Protocol::Tcp => {
                for frontend in tcp_frontends(&item, cluster_id, listeners)? {
                    if let Some((other_cluster, first)) = routes.tcp.get(&frontend.address) {
                        let address = item.map()?.get("address").unwrap_or_else(|| item.clone());
                        return Err(address.error(format!(
                            "listener {} already sends its connections to cluster {other_cluster} \
                         ({first}), expected one tcp frontend per listener",
                            frontend.address
                        )));
                    }
                    routes.tcp.insert(
                        frontend.address.clone(),
                        (frontend.cluster_id.clone(), item.key_path()),
                    );
                    frontends.tcp.push(frontend);
                }
            }
        }
    }
    Ok(frontends)
}

/// The frontend an item describes: on the listener its `address` names, or, without
/// `address`, on every listener of the cluster's protocol (so that one etcd document
/// serves instances that listen on different addresses).
fn http_frontends(
    item: &Field<'_>,
    cluster_id: &str,
    listeners: &[ParsedListener<'_>],
) -> Result<Vec<proto::HttpFrontend>, ConfigError> {
    let table = item.table(HTTP_KEYS)?;
    let addresses = addresses(item, &table, cluster_id, Protocol::Http, listeners)?;
    let hostname = optional(&table, "hostname", |f| f.str_with(validate::hostname))?
        .unwrap_or_else(|| DEFAULT_HOSTNAME.to_owned());
    let kind = optional(&table, "path_type", |f| f.choice(PATH_TYPES))?
        .unwrap_or(proto::PathRuleKind::Prefix);
    let check_path = match kind {
        proto::PathRuleKind::Regex => validate::regex_path,
        proto::PathRuleKind::Prefix | proto::PathRuleKind::Exact => validate::plain_path,
    };
    let path = optional(&table, "path", |f| f.str_with(check_path))?
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let method = optional(&table, "method", |f| f.str_with(validate::method))?;
    let hsts = optional(&table, "hsts", |f| f.str_with(validate::hsts))?;
    let redirect_https = optional(&table, "redirect", |f| f.choice(REDIRECTS))?;
    Ok(addresses
        .into_iter()
        .map(|address| proto::HttpFrontend {
            hsts: hsts.clone(),
            redirect_https,
            address,
            hostname: hostname.clone(),
            path: proto::PathRule {
                kind: kind as i32,
                value: path.clone(),
            },
            method: method.clone(),
            cluster_id: Some(cluster_id.to_owned()),
        })
        .collect())
}

fn tcp_frontends(
    item: &Field<'_>,
    cluster_id: &str,
    listeners: &[ParsedListener<'_>],
) -> Result<Vec<proto::TcpFrontend>, ConfigError> {
    let table = item.table(TCP_KEYS)?;
    let addresses = addresses(item, &table, cluster_id, Protocol::Tcp, listeners)?;
    Ok(addresses
        .into_iter()
        .map(|address| proto::TcpFrontend {
            address,
            cluster_id: cluster_id.to_owned(),
        })
        .collect())
}

/// The listener `address` names, or every listener of `protocol` when it is absent.
fn addresses(
    item: &Field<'_>,
    table: &super::reader::Table<'_>,
    cluster_id: &str,
    protocol: Protocol,
    listeners: &[ParsedListener<'_>],
) -> Result<Vec<String>, ConfigError> {
    if let Some(address) = table.get("address") {
        return Ok(vec![listener_address(
            &address, cluster_id, protocol, listeners,
        )?]);
    }
    let all: Vec<String> = listeners
        .iter()
        .filter(|l| l.protocol == protocol)
        .map(|l| l.config.address().to_owned())
        .collect();
    if all.is_empty() {
        return Err(item.error(format!(
            "no address and no {} listener to route from, expected \"address\" or {} listener",
            protocol.name(),
            protocol.with_article()
        )));
    }
    Ok(all)
}

/// The canonical address of the listener named by `field`, which must exist
/// and speak the cluster's protocol.
fn listener_address(
    field: &Field<'_>,
    cluster_id: &str,
    protocol: Protocol,
    listeners: &[ParsedListener<'_>],
) -> Result<String, ConfigError> {
    let address = field.socket_addr()?;
    let Some(listener) = listeners.iter().find(|l| l.address == address) else {
        let known: Vec<String> = listeners.iter().map(|l| l.address.to_string()).collect();
        let expected = if known.is_empty() {
            "no listeners are defined".to_owned()
        } else {
            format!("expected the address of a listener: {}", known.join(", "))
        };
        return Err(field.error(format!("no listener on {address}, {expected}")));
    };
    if listener.protocol != protocol {
        return Err(field.error(format!(
            "listener {address} ({}) is {} but cluster {cluster_id} is {}, \
             expected the address of {} listener",
            listener.path,
            listener.protocol.name(),
            protocol.name(),
            protocol.with_article(),
        )));
    }
    Ok(listener.config.address().to_owned())
}
