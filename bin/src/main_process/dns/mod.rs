//! Backends given by host name (`address = "api.internal:8080"`): the main process
//! keeps each as configured (a *template*, never sent to the workers), resolves its
//! name, and gives the workers one ordinary backend per address (see `expand`).
//!
//! - Start, reload and state load resolve the names they bring that never resolved;
//!   one that does not is an error naming it and where it was written, unless its
//!   backend says `resolve_later = true`.
//! - A `dns-refresh` thread looks every name up again every `dns_refresh`, or when
//!   its answer expires if sooner, and applies the difference as one batch through
//!   the normal change path: a removed address drains like any removed backend, an
//!   unchanged one is not touched.
//! - A name that stops resolving keeps its last addresses; it is reported once (log,
//!   `BACKEND_NAME_UNRESOLVED` event) and shown by `/status` and `/metrics` until it
//!   resolves again (`BACKEND_NAME_RESOLVED`).
//! - Lookups run on the `dns` thread (`resolver`), the only one with an async runtime.
//! - The clusters etcd manages bring theirs through `sourced`: kept apart from the
//!   file's, so that a reload or a state load leaves them to etcd.
//!
//! Locking order: `changes`, then the registry here, then `state`.

mod ctl;
mod expand;
mod names;
mod resolver;
mod saved;
mod sourced;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use log::{info, warn};
use sluice_command::config::{check_named_backend, parse_backend_address, Config};
use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::ConfigState;

pub(crate) use ctl::intercept as intercept_ctl;
pub(crate) use expand::Template;
pub(crate) use names::NameTable;
pub(crate) use saved::{read_state, save_state};
pub(crate) use sourced::{expand_cluster, take_named, unresolved};

use super::changes::apply_serialized;
use super::{lock, MainProcess};
use expand::reconcile;
use names::Outcome;
use resolver::ResolverHandle;

/// Cluster id → its backends given by host name, in the order written.
pub(crate) type Templates = BTreeMap<String, Vec<Template>>;

/// A state built from a file, and the backends by host name it holds.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The state, with one backend per address of every name that resolved.
    pub(crate) state: ConfigState,
    /// Its backends given by host name, for [`Dns::commit`] once the state is applied.
    pub(crate) templates: Templates,
}

/// The backends given by host name and what their names resolve to.
#[derive(Debug, Default)]
struct Registry {
    /// Those of the file's clusters and of ctl's.
    templates: Templates,
    /// Those of the clusters etcd manages: a commit of the file's leaves them.
    sourced: Templates,
    names: NameTable,
    refresh: Duration,
    servers: Vec<SocketAddr>,
}

impl Registry {
    /// Forgets the names no backend uses any more (they are no longer looked up), and
    /// has a name used but unknown (forgotten meanwhile) looked up now.
    fn sync_names(&mut self) {
        let used: std::collections::BTreeSet<String> = self
            .templates
            .values()
            .chain(self.sourced.values())
            .flatten()
            .map(|t| t.host.clone())
            .collect();
        self.names.retain(|name| used.contains(name));
        let now = Instant::now();
        for name in &used {
            self.names.ensure(name, now);
        }
    }
}

/// Backends by host name: the main process's part (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Dns {
    registry: Mutex<Registry>,
    /// Wakes the refresh thread when names or the refresh interval change.
    changed: Condvar,
    /// Started when the first name needs resolving.
    resolver: Mutex<Option<ResolverHandle>>,
}

/// Whether `backend` is given by host name.
pub(crate) fn is_named(backend: &proto::Backend) -> bool {
    parse_backend_address(&backend.address).is_ok_and(|address| address.host().is_some())
}

/// The backend given by host name that `request` adds, if it adds one.
fn named_addition(request: &Request) -> Option<&proto::Backend> {
    match &request.request_type {
        Some(RequestType::AddBackend(add)) if is_named(&add.backend) => Some(&add.backend),
        _ => None,
    }
}

impl Dns {
    /// Takes `config`'s DNS settings (`dns_servers`, `dns_refresh`).
    pub(crate) fn configure(&self, config: &Config) -> Result<(), String> {
        let mut registry = lock(&self.registry);
        registry.refresh = config.dns_refresh;
        if registry.servers != config.dns_servers {
            registry.servers = config.dns_servers.clone();
            if let Some(resolver) = lock(&self.resolver).as_ref() {
                resolver.set_servers(&config.dns_servers)?;
            }
        }
        self.changed.notify_all();
        Ok(())
    }

    /// The state `config` describes: its requests applied in order, backends by host
    /// name set aside and expanded into one backend per address. A name that never
    /// resolved is an error naming where it was written, unless `resolve_later`.
    pub(crate) fn prepare_config(&self, config: &Config) -> Result<Prepared, String> {
        let (prepared, requests) = self.prepare(config, config.to_requests())?;
        super::drop_aside::drop_aside(requests);
        Ok(prepared)
    }

    /// [`Dns::prepare_config`], moving `config`'s clusters into the state instead of
    /// copying them (a start's, which needs them no more): `clusters` is left empty.
    /// Also gives the requests the state was built from, when they build all of it (no
    /// backend is given by host name): applied in order to an empty state, they make it
    /// again, as a start's workers do.
    pub(crate) fn prepare_config_taking(
        &self,
        config: &mut Config,
    ) -> Result<(Prepared, Option<Vec<Request>>), String> {
        let requests = config.take_requests();
        let (prepared, requests) = self.prepare(config, requests)?;
        if prepared.templates.is_empty() {
            return Ok((prepared, Some(requests)));
        }
        super::drop_aside::drop_aside(requests);
        Ok((prepared, None))
    }

    /// The state of `config`'s settings and of `requests`, its requests, and the
    /// requests it was built from (those without backends given by host name).
    fn prepare(
        &self,
        config: &Config,
        mut requests: Vec<Request>,
    ) -> Result<(Prepared, Vec<Request>), String> {
        self.configure(config)?;
        let origin = |backend: &proto::Backend| {
            config
                .backend_names
                .iter()
                .find(|o| o.cluster_id == backend.cluster_id && o.backend_id == backend.backend_id)
                .map(|o| o.location.clone())
                .unwrap_or_else(|| format!("clusters.{}", backend.cluster_id))
        };
        let mut templates = Templates::new();
        for backend in requests.iter().filter_map(named_addition) {
            add_template(&mut templates, backend)
                .map_err(|e| format!("{}: {e}", origin(backend)))?;
        }
        requests.retain(|request| named_addition(request).is_none());
        // Built without an undo journal: at thousands of clusters, that is most of a
        // start's or a reload's time.
        let state = ConfigState::from_requests(&requests);
        let state = match state {
            Ok(state) => state,
            Err(error) => {
                super::drop_aside::drop_aside(requests);
                return Err(format!("invalid config: {error}"));
            }
        };
        let prepared = self.resolve_and_expand(state, templates, &origin)?;
        Ok((prepared, requests))
    }

    /// Like [`Dns::prepare_config`] for the requests of a state file.
    pub(crate) fn prepare_requests(
        &self,
        requests: Vec<(usize, Request)>,
    ) -> Result<Prepared, String> {
        let mut state = ConfigState::default();
        let mut templates = Templates::new();
        let mut lines = BTreeMap::new();
        for (line, request) in requests {
            if let Some(backend) = named_addition(&request) {
                add_template(&mut templates, backend).map_err(|e| format!("line {line}: {e}"))?;
                lines.insert(
                    (backend.cluster_id.clone(), backend.backend_id.clone()),
                    line,
                );
            } else if let Err(error) = state.apply(&request) {
                return Err(format!("line {line}: {error}"));
            }
        }
        if state.is_empty() && templates.is_empty() {
            return Err("the file holds no state".to_owned());
        }
        let origin = |backend: &proto::Backend| {
            let key = (backend.cluster_id.clone(), backend.backend_id.clone());
            format!("line {}", lines.get(&key).copied().unwrap_or_default())
        };
        self.resolve_and_expand(state, templates, &origin)
    }

    fn resolve_and_expand(
        &self,
        mut state: ConfigState,
        templates: Templates,
        origin: &dyn Fn(&proto::Backend) -> String,
    ) -> Result<Prepared, String> {
        for cluster_id in templates.keys() {
            if state.cluster(cluster_id).is_none() {
                return Err(format!("unknown cluster `{cluster_id}`"));
            }
        }
        self.resolve_new(templates.values().flatten(), origin)?;
        let registry = lock(&self.registry);
        for (cluster_id, cluster_templates) in &templates {
            for request in reconcile(&state, cluster_id, cluster_templates, &registry.names) {
                state
                    .apply(&request)
                    .map_err(|error| format!("{}: {error}", ConfigState::summary_of(&request)))?;
            }
        }
        Ok(Prepared { state, templates })
    }

    /// Looks up the names of `templates` that never resolved; fails on the first that
    /// still does not, unless its backend may resolve later.
    fn resolve_new<'a>(
        &self,
        templates: impl Iterator<Item = &'a Template> + Clone,
        origin: &dyn Fn(&proto::Backend) -> String,
    ) -> Result<(), String> {
        let names = self.lookup_unknown(templates.clone())?;
        for template in templates {
            if let Some(error) = unresolved(&names, template) {
                return Err(format!("{}: {error}", origin(&template.backend)));
            }
        }
        Ok(())
    }

    /// Looks up, in one go, the names of `templates` that never resolved, and records
    /// the answers; returns what every name resolves to then (a copy: a commit may
    /// forget names not used yet before the caller uses them).
    pub(crate) fn lookup_unknown<'a>(
        &self,
        templates: impl Iterator<Item = &'a Template>,
    ) -> Result<NameTable, String> {
        let mut new: Vec<String> = {
            let registry = lock(&self.registry);
            templates
                .map(|t| t.host.clone())
                .filter(|host| !registry.names.ever_resolved(host))
                .collect()
        };
        new.sort();
        new.dedup();
        if new.is_empty() {
            return Ok(lock(&self.registry).names.clone());
        }
        let lookups = self.resolver()?.lookup(&new);
        let mut registry = lock(&self.registry);
        let refresh = registry.refresh;
        let now = Instant::now();
        for (name, lookup) in new.iter().zip(lookups) {
            if let Err(error) = &lookup {
                warn!("backend host name {name} does not resolve: {error}");
            }
            registry.names.record(name, lookup, now, refresh);
        }
        self.changed.notify_all();
        Ok(registry.names.clone())
    }

    /// Makes `prepared`'s backends by host name the current ones (its state was applied).
    pub(crate) fn commit(&self, prepared_templates: Templates) {
        let mut registry = lock(&self.registry);
        registry.templates = prepared_templates;
        registry.sync_names();
        self.changed.notify_all();
    }

    /// The resolver thread, started at the first need.
    fn resolver(&self) -> Result<ResolverHandle, String> {
        // Read first: `configure` holds the registry, then the resolver.
        let servers = lock(&self.registry).servers.clone();
        let mut resolver = lock(&self.resolver);
        if let Some(handle) = resolver.as_ref() {
            return Ok(handle.clone());
        }
        let handle = ResolverHandle::start(&servers).map_err(|error| error.to_string())?;
        *resolver = Some(handle.clone());
        Ok(handle)
    }

    /// Looks up the names that are due and applies what changed; returns when the
    /// next lookup is due.
    fn refresh_due(&self, main: &MainProcess) -> Option<Instant> {
        let due = lock(&self.registry).names.due(Instant::now());
        if !due.is_empty() {
            match self.resolver() {
                Ok(resolver) => {
                    let lookups = resolver.lookup(&due);
                    self.apply_lookups(main, &due, lookups);
                }
                Err(error) => warn!("cannot refresh backend host names: {error}"),
            }
        }
        lock(&self.registry).names.next_due()
    }

    /// Records `lookups` and brings the clusters that use these names in line, as
    /// one batch.
    fn apply_lookups(&self, main: &MainProcess, due: &[String], lookups: Vec<resolver::Lookup>) {
        let _serial = main.lock_changes();
        let mut registry = lock(&self.registry);
        let refresh = registry.refresh;
        let now = Instant::now();
        for (name, lookup) in due.iter().zip(lookups) {
            let outcome = registry.names.record(name, lookup, now, refresh);
            report(main, name, &outcome, registry.names.addresses(name));
        }
        let requests: Vec<Request> = {
            let state = lock(&main.state);
            registry
                .templates
                .iter()
                .chain(&registry.sourced)
                .filter(|(_, templates)| templates.iter().any(|t| due.contains(&t.host)))
                .filter(|(cluster_id, _)| state.cluster(cluster_id).is_some())
                .flat_map(|(cluster_id, templates)| {
                    reconcile(&state, cluster_id, templates, &registry.names)
                })
                .collect()
        };
        drop(registry);
        if requests.is_empty() {
            return;
        }
        match apply_serialized(main, &requests) {
            Ok(()) => info!(
                "backend host names: {}",
                requests
                    .iter()
                    .map(ConfigState::summary_of)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(error) => warn!("backend host names: changes refused: {error}"),
        }
    }
}

/// Logs and publishes what a lookup changed for a name.
fn report(main: &MainProcess, name: &str, outcome: &Outcome, addresses: &[std::net::IpAddr]) {
    let listed = || {
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (kind, reason) = match outcome {
        Outcome::Unchanged | Outcome::StillFailing => return,
        Outcome::Changed => {
            info!("backend host name {name} resolves to {}", listed());
            return;
        }
        Outcome::StoppedResolving(error) => {
            warn!(
                "backend host name {name} stopped resolving ({error}); keeping its last \
                 addresses: {}",
                listed()
            );
            (proto::EventKind::BackendNameUnresolved, error.clone())
        }
        Outcome::Recovered { .. } => {
            info!("backend host name {name} resolves again, to {}", listed());
            (proto::EventKind::BackendNameResolved, listed())
        }
    };
    main.events.publish(proto::Event {
        kind: kind as i32,
        address: Some(name.to_owned()),
        reason: Some(reason),
        ..Default::default()
    });
}

/// Adds a checked template to `templates`; refuses a second one with its address or id.
fn add_template(templates: &mut Templates, backend: &proto::Backend) -> Result<(), String> {
    let (backend, address) = check_named_backend(backend)?;
    let (Some(host), sluice_command::config::BackendAddress::Name { port, .. }) =
        (address.host(), &address)
    else {
        return Err(format!("{} is not a host name", backend.address));
    };
    let cluster = templates.entry(backend.cluster_id.clone()).or_default();
    if let Some(other) = cluster.iter().find(|t| {
        t.backend.address == backend.address || t.backend.backend_id == backend.backend_id
    }) {
        return Err(format!(
            "backend {} at {} in cluster {} clashes with backend {} at {}",
            backend.backend_id,
            backend.address,
            backend.cluster_id,
            other.backend.backend_id,
            other.backend.address
        ));
    }
    cluster.push(Template {
        host: host.to_owned(),
        port: *port,
        backend,
    });
    Ok(())
}

/// Starts the thread that keeps the names fresh for as long as `main` runs.
pub(crate) fn spawn_refresher(main: &Arc<MainProcess>) -> std::io::Result<()> {
    let weak = Arc::downgrade(main);
    std::thread::Builder::new()
        .name("dns-refresh".into())
        .spawn(move || loop {
            let Some(main) = weak.upgrade() else {
                return;
            };
            if main.stop_requested() {
                return;
            }
            let next = main.dns.refresh_due(&main);
            let registry = lock(&main.dns.registry);
            // Woken early when names change; at least once a second to see a stop.
            let wait = next
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            let dns = &main.dns;
            drop(
                dns.changed
                    .wait_timeout(registry, wait)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        })
        .map(drop)
}

/// What `/status` shows of the names: each with its addresses and whether it resolves.
pub(crate) fn status_json(main: &MainProcess) -> serde_json::Value {
    let registry = lock(&main.dns.registry);
    let names: Vec<serde_json::Value> = registry
        .names
        .iter()
        .map(|(name, entry)| {
            serde_json::json!({
                "name": name,
                "resolving": entry.error.is_none() && entry.addresses.is_some(),
                "addresses": entry.addresses.iter().flatten().map(ToString::to_string).collect::<Vec<_>>(),
                "error": entry.error,
                "failed_lookups": entry.failures,
            })
        })
        .collect();
    serde_json::Value::Array(names)
}

/// `/metrics` lines of the names: `sluice_dns_name_resolving`, `sluice_dns_name_addresses`
/// and `sluice_dns_failed_lookups_total`, labelled by `name`.
pub(crate) fn write_metrics(main: &MainProcess, out: &mut String) {
    use std::fmt::Write;
    let registry = lock(&main.dns.registry);
    if registry.names.iter().next().is_none() {
        return;
    }
    let families = [
        (
            "sluice_dns_name_resolving",
            "gauge",
            "1 while the backend host name resolves",
        ),
        (
            "sluice_dns_name_addresses",
            "gauge",
            "addresses the backend host name resolves to",
        ),
        (
            "sluice_dns_failed_lookups_total",
            "counter",
            "lookups of the backend host name that failed",
        ),
    ];
    for (family, kind, help) in families {
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
        for (name, entry) in registry.names.iter() {
            let value = match family {
                "sluice_dns_name_resolving" => {
                    u64::from(entry.error.is_none() && entry.addresses.is_some())
                }
                "sluice_dns_name_addresses" => entry.addresses.as_ref().map_or(0, Vec::len) as u64,
                _ => entry.failures,
            };
            let _ = writeln!(out, "{family}{{name=\"{name}\"}} {value}");
        }
    }
}
