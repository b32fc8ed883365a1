//! One cluster as a TOML document of its own: the body of a `[clusters.ID]` table of the
//! file, without the table header. This is what an etcd key `<prefix>clusters/ID` holds,
//! what `sluice ctl cluster export ID` prints and what `sluice etcd push` writes.
//!
//! Parsing goes through the same readers as the file, so a document is refused with the
//! same words, its errors carrying the line and column within the document.

use std::{collections::BTreeSet, path::Path, time::Duration};

use toml::{Table as TomlTable, Value};

use super::{
    clusters::{parse_cluster, ALGORITHMS, BACKEND_STATES, METRICS},
    duration::format_duration,
    error::ConfigError,
    frontends::{Routes, PATH_TYPES},
    listeners::{ParsedListener, Protocol},
    node::parse_document,
    reader::{Field, Source},
    root::syntax_error,
    validate, BackendNameOrigin, ListenerConfig,
};
use crate::proto;

/// Parses the document `text` of cluster `cluster_id`, named `name` in errors (an etcd
/// key), against the local `listeners`. Answer files are resolved against `base_dir`.
pub fn parse_cluster_document(
    text: &str,
    name: &str,
    cluster_id: &str,
    listeners: &[ListenerConfig],
    base_dir: &Path,
) -> Result<proto::ClusterInformation, ConfigError> {
    parse_located_cluster_document(text, name, cluster_id, listeners, base_dir)
        .map(|(cluster, _)| cluster)
}

/// Like [`parse_cluster_document`], with where each backend given by host name was
/// written (`NAME:LINE:COLUMN: backends[N].address`), as [`Config::backend_names`]
/// says for the file.
///
/// [`Config::backend_names`]: super::Config::backend_names
pub fn parse_located_cluster_document(
    text: &str,
    name: &str,
    cluster_id: &str,
    listeners: &[ListenerConfig],
    base_dir: &Path,
) -> Result<(proto::ClusterInformation, Vec<BackendNameOrigin>), ConfigError> {
    let document = parse_document(text).map_err(|error| syntax_error(text, name, &error))?;
    let src = Source {
        file: name,
        text,
        base_dir,
    };
    let root = Field::root(&src, &document);
    let cluster_id = validate::cluster_name(cluster_id).map_err(|message| root.error(message))?;
    let parsed: Vec<ParsedListener<'_>> = listeners
        .iter()
        .enumerate()
        .filter_map(|(index, config)| {
            Some(ParsedListener {
                address: config.address().parse().ok()?,
                protocol: match config {
                    ListenerConfig::Http(_) => Protocol::Http,
                    ListenerConfig::Tcp(_) => Protocol::Tcp,
                },
                tls: match config {
                    ListenerConfig::Http(listener) => listener.tls.is_some(),
                    ListenerConfig::Tcp(listener) => listener.tls.is_some(),
                },
                path: format!("listeners[{index}]"),
                config: config.clone(),
                field: root.clone(),
            })
        })
        .collect();
    let mut names = Vec::new();
    let cluster = parse_cluster(
        &root,
        cluster_id,
        &parsed,
        &mut Routes::default(),
        &mut names,
    )?;
    Ok((cluster, names))
}

/// `cluster` as the document [`parse_cluster_document`] reads back on a machine with
/// `listeners`. A route present on every listener of the cluster's protocol is written
/// once, without `address`, so that the document serves instances that listen on other
/// addresses. Custom answers are files on each machine, not part of the document: a
/// comment says which were left out.
pub fn cluster_document(
    cluster: &proto::ClusterInformation,
    listeners: &[ListenerConfig],
) -> String {
    let mut table = cluster_settings(&cluster.cluster);
    let addresses_of = |protocol: proto::ListenerProtocol| -> BTreeSet<&str> {
        listeners
            .iter()
            // An HTTP cluster's routes serve the HTTPS listeners too.
            .filter(|l| match l.protocol() {
                proto::ListenerProtocol::Https => protocol == proto::ListenerProtocol::Http,
                other => other == protocol,
            })
            .map(ListenerConfig::address)
            .collect()
    };
    let mut frontends = http_frontends(
        &cluster.http_frontends,
        &addresses_of(proto::ListenerProtocol::Http),
    );
    let tcp_listeners = addresses_of(proto::ListenerProtocol::Tcp);
    let tcp: BTreeSet<&str> = cluster
        .tcp_frontends
        .iter()
        .map(|f| f.address.as_str())
        .collect();
    if !tcp.is_empty() && tcp == tcp_listeners {
        frontends.push(Value::Table(TomlTable::new()));
    } else {
        frontends.extend(tcp.into_iter().map(|address| {
            let mut table = TomlTable::new();
            table.insert("address".into(), address.into());
            Value::Table(table)
        }));
    }
    if !frontends.is_empty() {
        table.insert("frontends".into(), Value::Array(frontends));
    }
    let backends: Vec<Value> = as_written(&cluster.backends).iter().map(backend).collect();
    if !backends.is_empty() {
        table.insert("backends".into(), Value::Array(backends));
    }
    let mut text = String::new();
    if !cluster.cluster.answers.is_empty() {
        let statuses: Vec<String> = cluster
            .cluster
            .answers
            .iter()
            .map(|a| a.status.to_string())
            .collect();
        text.push_str(&format!(
            "# custom answers not exported (they name files): {}\n",
            statuses.join(", ")
        ));
    }
    // A table of strings, numbers, booleans and arrays of tables always serializes.
    text.push_str(&toml::to_string(&table).unwrap_or_default());
    text
}

fn name_of<T: PartialEq + Copy>(choices: &[(&'static str, T)], value: T) -> Option<&'static str> {
    choices.iter().find(|(_, v)| *v == value).map(|(n, _)| *n)
}

fn cluster_settings(cluster: &proto::Cluster) -> TomlTable {
    let mut table = TomlTable::new();
    let protocol = proto::ListenerProtocol::try_from(cluster.protocol)
        .unwrap_or(proto::ListenerProtocol::Http);
    let http = protocol == proto::ListenerProtocol::Http;
    table.insert("protocol".into(), if http { "http" } else { "tcp" }.into());
    let algorithm = proto::LoadBalancingAlgorithm::try_from(cluster.load_balancing)
        .ok()
        .and_then(|a| name_of(ALGORITHMS, a));
    if let Some(algorithm) = algorithm {
        table.insert("load_balancing".into(), algorithm.into());
    }
    let metric = proto::LoadMetric::try_from(cluster.load_metric)
        .ok()
        .and_then(|m| name_of(METRICS, m));
    if let Some(metric) = metric {
        table.insert("load_metric".into(), metric.into());
    }
    if let Some(retries) = cluster.max_connect_retries {
        table.insert("max_connect_retries".into(), i64::from(retries).into());
    }
    if http {
        table.insert("sticky_session".into(), cluster.sticky_session.into());
        if let Some(cookie) = &cluster.sticky_cookie_name {
            table.insert("sticky_cookie".into(), cookie.clone().into());
        }
        if cluster.prefer_last_backend == Some(true) {
            table.insert("prefer_last_backend".into(), true.into());
        }
    }
    if let Some(check) = &cluster.health_check {
        table.insert("health_check".into(), health_check(check, http).into());
    }
    table
}

fn health_check(check: &proto::HealthCheckConfig, http: bool) -> TomlTable {
    let mut table = TomlTable::new();
    let duration = |ms: u32| format_duration(Duration::from_millis(u64::from(ms)));
    if http {
        table.insert("uri".into(), check.uri.clone().into());
        if let (Some(min), Some(max)) = (check.expected_status_min, check.expected_status_max) {
            table.insert("expected_status".into(), format!("{min}-{max}").into());
        }
        if let Some(host) = &check.host {
            table.insert("host".into(), host.clone().into());
        }
    }
    table.insert("interval".into(), duration(check.interval_ms).into());
    table.insert("timeout".into(), duration(check.timeout_ms).into());
    table.insert(
        "healthy_threshold".into(),
        i64::from(check.healthy_threshold).into(),
    );
    table.insert(
        "unhealthy_threshold".into(),
        i64::from(check.unhealthy_threshold).into(),
    );
    table
}

/// HTTP frontends grouped by route: a route on every listener in `listeners` is written
/// once without `address`, the others once per address.
fn http_frontends(frontends: &[proto::HttpFrontend], listeners: &BTreeSet<&str>) -> Vec<Value> {
    let mut routes: Vec<(RouteOf<'_>, BTreeSet<&str>)> = Vec::new();
    for frontend in frontends {
        let route = RouteOf(frontend);
        match routes.iter_mut().find(|(r, _)| *r == route) {
            Some((_, addresses)) => {
                addresses.insert(&frontend.address);
            }
            None => routes.push((route, BTreeSet::from([frontend.address.as_str()]))),
        }
    }
    let mut values = Vec::new();
    for (route, addresses) in routes {
        if &addresses == listeners {
            values.push(http_frontend(route.0, None));
        } else {
            values.extend(
                addresses
                    .into_iter()
                    .map(|a| http_frontend(route.0, Some(a))),
            );
        }
    }
    values
}

/// A frontend compared by its route (hostname, path, method) and what it adds (HTTPS
/// redirect, HSTS), not by its address.
#[derive(Clone, Copy)]
struct RouteOf<'a>(&'a proto::HttpFrontend);

impl PartialEq for RouteOf<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.0.hostname == other.0.hostname)
            && (self.0.path == other.0.path)
            && (self.0.method == other.0.method)
            && (self.0.redirect_https == other.0.redirect_https)
            && (self.0.hsts == other.0.hsts)
    }
}

fn http_frontend(frontend: &proto::HttpFrontend, address: Option<&str>) -> Value {
    let mut table = TomlTable::new();
    if let Some(address) = address {
        table.insert("address".into(), address.into());
    }
    table.insert("hostname".into(), frontend.hostname.clone().into());
    table.insert("path".into(), frontend.path.value.clone().into());
    let kind = proto::PathRuleKind::try_from(frontend.path.kind)
        .ok()
        .and_then(|kind| name_of(PATH_TYPES, kind));
    if let Some(kind) = kind {
        table.insert("path_type".into(), kind.into());
    }
    if let Some(method) = &frontend.method {
        table.insert("method".into(), method.clone().into());
    }
    if frontend.redirect_https == Some(true) {
        table.insert("redirect".into(), "https".into());
    }
    if let Some(hsts) = &frontend.hsts {
        table.insert("hsts".into(), hsts.clone().into());
    }
    Value::Table(table)
}

/// `backends` as they were written: the backends resolved from a host name give back
/// the one backend given by that name (`web@10.0.0.5:8080` at 10.0.0.5:8080, resolved
/// from `api.internal:8080`, is `web` at `api.internal:8080`).
fn as_written(backends: &[proto::Backend]) -> Vec<proto::Backend> {
    let mut written: Vec<proto::Backend> = Vec::new();
    for resolved in backends {
        let Some(name) = &resolved.resolved_from else {
            written.push(resolved.clone());
            continue;
        };
        if written.iter().any(|b| &b.address == name) {
            continue;
        }
        let suffix = format!("@{}", resolved.address);
        let unsuffixed = |id: &str| id.strip_suffix(&suffix).unwrap_or(id).to_owned();
        written.push(proto::Backend {
            backend_id: unsuffixed(&resolved.backend_id),
            sticky_id: resolved.sticky_id.as_deref().map(unsuffixed),
            address: name.clone(),
            resolved_from: None,
            ..resolved.clone()
        });
    }
    written
}

fn backend(backend: &proto::Backend) -> Value {
    let mut table = TomlTable::new();
    table.insert("address".into(), backend.address.clone().into());
    table.insert("id".into(), backend.backend_id.clone().into());
    table.insert("weight".into(), i64::from(backend.weight).into());
    if backend.backup {
        table.insert("backup".into(), true.into());
    }
    if let Some(sticky_id) = &backend.sticky_id {
        table.insert("sticky_id".into(), sticky_id.clone().into());
    }
    let state = backend
        .state
        .and_then(|s| proto::BackendState::try_from(s).ok())
        .and_then(|s| name_of(BACKEND_STATES, s));
    if let Some(state) = state {
        table.insert("state".into(), state.into());
    }
    if backend.resolve_later == Some(true) {
        table.insert("resolve_later".into(), true.into());
    }
    Value::Table(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const FILE: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"

[[listeners]]
protocol = "tcp"
address = "127.0.0.1:9000"

[clusters.api]
load_balancing = "power_of_two"
load_metric = "requests"
sticky_session = true
prefer_last_backend = true
health_check = { uri = "/health", interval = "2s", timeout = "500ms", expected_status = "200-299", host = "api.internal" }
frontends = [
    { address = "127.0.0.1:8080", hostname = "api.example.com", path = "/v1", method = "GET" },
    { address = "127.0.0.1:8080", hostname = "*.example.com", path = "^/x/[0-9]+$", path_type = "regex" },
]
backends = [
    { address = "127.0.0.1:3000", weight = 10, id = "one" },
    { address = "127.0.0.1:3001", backup = true, sticky_id = "s2", state = "drain" },
]

[clusters.db]
protocol = "tcp"
frontends = [{ address = "127.0.0.1:9000" }]
backends = [{ address = "127.0.0.1:5432" }]
"#;

    fn config() -> Config {
        Config::parse(FILE, "sluice.toml", Path::new("/")).expect("valid test config")
    }

    #[test]
    fn a_document_reads_back_as_the_cluster_it_was_written_from() {
        let config = config();
        for cluster in &config.clusters {
            let text = cluster_document(cluster, &config.listeners);
            let id = &cluster.cluster.cluster_id;
            let read = parse_cluster_document(&text, "key", id, &config.listeners, Path::new("/"))
                .unwrap_or_else(|e| panic!("{text}\n{e}"));
            assert_eq!(&read, cluster, "{text}");
        }
    }

    #[test]
    fn a_route_on_every_listener_is_written_without_address() {
        let two = "[[listeners]]\naddress = \"127.0.0.1:8080\"\n\
                   [[listeners]]\naddress = \"127.0.0.1:8081\"\n";
        let config = Config::parse(two, "t", Path::new("/")).expect("valid");
        let text = "frontends = [{ hostname = \"a.test\" }, { address = \"127.0.0.1:8081\", hostname = \"b.test\" }]\n";
        let cluster = parse_cluster_document(text, "k", "web", &config.listeners, Path::new("/"))
            .expect("valid");
        assert_eq!(cluster.http_frontends.len(), 3);
        let written = cluster_document(&cluster, &config.listeners);
        let without_address = written
            .split("[[frontends]]")
            .filter(|f| !f.contains("address"))
            .count();
        // The header part before the first frontend has no address either.
        assert_eq!(without_address, 2, "{written}");
        let read = parse_cluster_document(&written, "k", "web", &config.listeners, Path::new("/"))
            .expect("reads back");
        assert_eq!(read, cluster);
    }

    #[test]
    fn errors_carry_the_key_line_and_column_within_the_document() {
        let config = config();
        let text = "backends = [\n  { address = \"127.0.0.1:3000\", weight = -1 },\n]\n";
        let error = parse_cluster_document(
            text,
            "/sluice/clusters/web",
            "web",
            &config.listeners,
            Path::new("/"),
        )
        .expect_err("a negative weight");
        assert_eq!(error.position(), Some((2, 42)), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("/sluice/clusters/web:2:42: backends[0].weight:"),
            "{error}"
        );
        let syntax = parse_cluster_document(
            "backends = [",
            "k",
            "web",
            &config.listeners,
            Path::new("/"),
        )
        .expect_err("not TOML");
        assert!(
            matches!(syntax, ConfigError::Syntax { line: 1, .. }),
            "{syntax}"
        );
    }

    #[test]
    fn backends_given_by_host_name_are_located_and_written_back_by_name() {
        let config = config();
        let text = "backends = [\n  { address = \"127.0.0.1:3000\" },\n  \
                    { id = \"web\", address = \"API.test:8080\", resolve_later = true },\n]\n";
        let (cluster, names) = parse_located_cluster_document(
            text,
            "/s/clusters/web",
            "web",
            &config.listeners,
            Path::new("/"),
        )
        .expect("a host name is allowed");
        assert_eq!(cluster.backends[1].address, "api.test:8080");
        assert_eq!(cluster.backends[1].resolve_later, Some(true));
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].backend_id, "web");
        assert_eq!(
            names[0].location,
            "/s/clusters/web:3:27: backends[1].address"
        );

        // Main shows the name's backends one per address: the document gives the name back.
        let mut shown = cluster.clone();
        let named = shown.backends.pop().expect("the named backend");
        for ip in ["10.0.0.1", "10.0.0.2"] {
            let address = format!("{ip}:8080");
            shown.backends.push(proto::Backend {
                backend_id: format!("web@{address}"),
                sticky_id: Some(format!("web@{address}")),
                address,
                resolve_later: None,
                resolved_from: Some(named.address.clone()),
                ..named.clone()
            });
        }
        let written = cluster_document(&shown, &config.listeners);
        assert!(!written.contains("10.0.0."), "{written}");
        let read = parse_cluster_document(&written, "k", "web", &config.listeners, Path::new("/"))
            .expect("reads back");
        assert_eq!(read.backends.len(), 2, "{written}");
        assert_eq!(read.backends[1].address, "api.test:8080");
        assert_eq!(read.backends[1].backend_id, "web");
        assert_eq!(read.backends[1].sticky_id.as_deref(), Some("web"));
    }

    #[test]
    fn a_frontend_must_name_a_local_listener() {
        let config = config();
        let text = "frontends = [{ address = \"127.0.0.1:1\" }]\n";
        let error = parse_cluster_document(text, "k", "web", &config.listeners, Path::new("/"))
            .expect_err("unknown listener");
        assert!(
            error.to_string().contains("no listener on 127.0.0.1:1"),
            "{error}"
        );
    }

    #[test]
    fn the_cluster_id_comes_from_the_key_and_is_checked() {
        let config = config();
        let error = parse_cluster_document("", "k", "a b", &config.listeners, Path::new("/"))
            .expect_err("a space in the id");
        assert!(
            error.to_string().contains("invalid cluster name"),
            "{error}"
        );
        let empty = parse_cluster_document("", "k", "web", &config.listeners, Path::new("/"))
            .expect("an empty document is a cluster with defaults");
        assert_eq!(empty.cluster.cluster_id, "web");
    }
}
