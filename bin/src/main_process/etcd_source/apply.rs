//! Turning a batch of etcd keys into one change of main's state, applied like a reload:
//! one batch to each worker, rolled back if any refuses. Each key is checked alone first
//! (its document parsed against the local listeners, its backend host names resolved,
//! its requests tried on main's state), so that an invalid document, or one naming a
//! host that never resolved, is refused alone and the other keys of the batch apply.
//! The cost is that of the keys in the batch, never a copy of the whole state.
//!
//! After an upgrade, the clusters the previous main process handed over are etcd's or
//! ctl's: a key naming one takes it over (its version in the state is the old one), and
//! the first read of etcd ends that; those no key named stay, as ctl's.
//!
//! Backends given by host name are resolved like the file's (`dns`): the batch's new
//! names are looked up in one go, each becomes one backend per address, and once the
//! batch is applied its templates go to the DNS refreshes (a deleted key's leave them).

use std::collections::BTreeMap;

use log::{error, info, warn};
use sluice_command::config::parse_located_cluster_document;
use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::ConfigState;

use super::super::changes::apply_serialized;
use super::super::dns::{self, NameTable, Template};
use super::super::{lock, MainProcess};
use super::{cache, EtcdSource};

/// What etcd said: some keys changed (a watch batch), or every key as it is now (a read
/// of the whole prefix, which also says which keys are gone).
#[derive(Debug)]
pub(crate) enum Batch {
    /// Key → its new document, `None` when deleted.
    Changes(Vec<(String, Option<String>)>),
    /// Every key under the prefix with its document.
    Full(BTreeMap<String, String>),
}

/// Where the batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Etcd,
    Cache,
}

/// One key's accepted change.
struct Planned {
    cluster_id: String,
    key: String,
    /// The new document, `None` when the cluster goes away.
    document: Option<String>,
    /// Its backends given by host name.
    templates: Vec<Template>,
}

/// One key's document, read.
struct Read {
    cluster_id: String,
    /// The cluster without its backends given by host name, `None` when deleted.
    cluster: Option<proto::ClusterInformation>,
    /// Its backends given by host name, each with where it was written.
    templates: Vec<(Template, String)>,
}

/// Applies `batch`, read at `revision`, as one change; returns how many keys it changed.
pub(crate) fn apply(main: &MainProcess, batch: Batch, revision: i64, origin: Origin) -> usize {
    let Some(source) = main.etcd.get() else {
        return 0;
    };
    let full_read = matches!(batch, Batch::Full(_)) && origin == Origin::Etcd;
    let changes = match batch {
        Batch::Changes(changes) => changes,
        Batch::Full(documents) => changes_to_reach(source, documents),
    };
    let _serial = main.lock_changes();
    let read: Vec<_> = changes
        .into_iter()
        .map(|(key, document)| {
            let read = read_key(source, &key, document.as_deref());
            (key, document, read)
        })
        .collect();
    let names = resolve(
        main,
        read.iter().filter_map(|(_, _, read)| read.as_ref().ok()),
    );
    let mut planned = Vec::new();
    let mut refused = Vec::new();
    let mut requests = Vec::new();
    {
        let mut state = lock(&main.state);
        let base = listeners_only(&state);
        let mut undo = sluice_command::state::Undo::new();
        for (key, document, read) in read {
            let mark = undo.len();
            let mut templates = Vec::new();
            let outcome = read.and_then(|read| {
                templates = read.templates.iter().map(|(t, _)| t.clone()).collect();
                plan_key(source, &state, &base, &key, read, &names)
            });
            let outcome = outcome.and_then(|(cluster_id, key_requests)| {
                for request in &key_requests {
                    if let Err(error) = state.apply_recorded(request, &mut undo) {
                        let mine = undo.split_off(mark);
                        state.revert(mine);
                        return Err(format!("{key}: {error}"));
                    }
                }
                Ok((cluster_id, key_requests))
            });
            match outcome {
                Ok((cluster_id, key_requests)) => {
                    requests.extend(key_requests);
                    planned.push(Planned {
                        cluster_id,
                        key,
                        document,
                        templates,
                    });
                }
                Err(reason) => refused.push((key, reason)),
            }
        }
        state.revert(undo);
    }
    if let Err(reason) = apply_serialized(main, &requests) {
        let message = format!("etcd revision {revision} refused, nothing changed: {reason}");
        error!("{message}");
        main.events
            .publish(event(proto::EventKind::SourceRefused, message));
        // The names looked up for the batch and used by no backend are not kept.
        main.dns.set_sourced(std::iter::empty());
        return 0;
    }
    let changed = planned.len();
    record(main, source, planned, &refused, revision, origin);
    if full_read {
        lock(&source.state).handed_over.clear();
    }
    if changed > 0 || !refused.is_empty() {
        let message = format!(
            "etcd revision {revision}{}: {changed} keys applied, {} refused, {} changes in one batch",
            if origin == Origin::Cache {
                " (from the cache)"
            } else {
                ""
            },
            refused.len(),
            requests.len()
        );
        info!("{message}");
        main.events
            .publish(event(proto::EventKind::SourceApplied, message));
    }
    changed
}

/// The changes that turn what main applied into `documents`: keys gone, keys new or
/// changed, and keys refused before (a reason to refuse them may have gone).
fn changes_to_reach(
    source: &EtcdSource,
    mut documents: BTreeMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let state = lock(&source.state);
    let mut changes = Vec::new();
    for (key, document) in state.applied.values() {
        match documents.remove(key) {
            None => changes.push((key.clone(), None)),
            Some(now) if &now != document => changes.push((key.clone(), Some(now))),
            Some(_) => {}
        }
    }
    for key in state.refused.keys() {
        if !documents.contains_key(key) {
            changes.push((key.clone(), None));
        }
    }
    changes.extend(documents.into_iter().map(|(key, text)| (key, Some(text))));
    changes
}

/// The cluster a key names and its document read, or why not.
fn read_key(source: &EtcdSource, key: &str, document: Option<&str>) -> Result<Read, String> {
    let prefix = source.config.clusters_prefix();
    let cluster_id = key
        .strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| format!("{key}: not a cluster key, expected {prefix}ID"))?;
    let Some(text) = document else {
        return Ok(Read {
            cluster_id: cluster_id.to_owned(),
            cluster: None,
            templates: Vec::new(),
        });
    };
    let (mut cluster, origins) =
        parse_located_cluster_document(text, key, cluster_id, &source.listeners, &source.base_dir)
            .map_err(|error| error.to_string())?;
    let templates = dns::take_named(&mut cluster).map_err(|error| format!("{key}: {error}"))?;
    let templates = templates
        .into_iter()
        .map(|template| {
            let origin = origins
                .iter()
                .find(|o| o.backend_id == template.backend.backend_id)
                .map_or_else(|| key.to_owned(), |o| o.location.clone());
            (template, origin)
        })
        .collect();
    Ok(Read {
        cluster_id: cluster_id.to_owned(),
        cluster: Some(cluster),
        templates,
    })
}

/// Looks up in one go the host names of `read` that never resolved; returns what
/// every name resolves to now.
fn resolve<'a>(main: &MainProcess, read: impl Iterator<Item = &'a Read>) -> NameTable {
    let templates = read.flat_map(|read| read.templates.iter().map(|(template, _)| template));
    main.dns.lookup_unknown(templates).unwrap_or_else(|error| {
        warn!("cannot look up the backend host names of etcd's clusters: {error}");
        main.dns.names()
    })
}

/// The requests that bring the cluster of `read` to its document, or why not.
fn plan_key(
    source: &EtcdSource,
    state: &ConfigState,
    base: &ConfigState,
    key: &str,
    read: Read,
    names: &NameTable,
) -> Result<(String, Vec<Request>), String> {
    let cluster_id = read.cluster_id.as_str();
    let managed = {
        let source = lock(&source.state);
        source.applied.contains_key(cluster_id) || source.handed_over.contains(cluster_id)
    };
    if read.cluster.is_some() && !managed && state.cluster(cluster_id).is_some() {
        return Err(format!(
            "{key}: cluster {cluster_id} is also defined by the config file (or by ctl); \
             a cluster has one source"
        ));
    }
    for (template, origin) in &read.templates {
        if let Some(why) = dns::unresolved(names, template) {
            return Err(format!("{origin}: {why}"));
        }
    }
    let old = managed
        .then(|| state.cluster_information(cluster_id))
        .flatten();
    let from = with_cluster(base, old.as_ref())?;
    let mut to =
        with_cluster(base, read.cluster.as_ref()).map_err(|error| format!("{key}: {error}"))?;
    if read.cluster.is_some() {
        let templates: Vec<Template> = read.templates.into_iter().map(|(t, _)| t).collect();
        dns::expand_cluster(&mut to, cluster_id, &templates, names)
            .map_err(|error| format!("{key}: {error}"))?;
    }
    Ok((read.cluster_id, from.diff(&to)))
}

/// `base` with `cluster` added.
fn with_cluster(
    base: &ConfigState,
    cluster: Option<&proto::ClusterInformation>,
) -> Result<ConfigState, String> {
    let mut state = base.clone();
    for request in cluster.map(cluster_requests).unwrap_or_default() {
        state.apply(&request).map_err(|error| error.to_string())?;
    }
    Ok(state)
}

/// A state holding only `state`'s listeners (inactive): what a cluster's frontends need.
fn listeners_only(state: &ConfigState) -> ConfigState {
    let mut base = ConfigState::default();
    let http = state
        .http_listeners()
        .map(|l| RequestType::AddHttpListener(l.clone()));
    let tcp = state
        .tcp_listeners()
        .map(|l| RequestType::AddTcpListener(l.clone()));
    for request_type in http.chain(tcp) {
        let request = Request {
            request_type: Some(request_type),
        };
        if let Err(error) = base.apply(&request) {
            warn!("cannot copy a listener for etcd's clusters: {error}");
        }
    }
    base
}

/// The requests that add `cluster` (settings, backends, frontends) to a state.
pub(crate) fn cluster_requests(cluster: &proto::ClusterInformation) -> Vec<Request> {
    let settings = std::iter::once(RequestType::AddCluster(cluster.cluster.clone()));
    let backends = cluster.backends.iter().map(|backend| {
        RequestType::AddBackend(proto::AddBackend {
            backend: backend.clone(),
        })
    });
    let http = cluster
        .http_frontends
        .iter()
        .cloned()
        .map(RequestType::AddHttpFrontend);
    let tcp = cluster
        .tcp_frontends
        .iter()
        .cloned()
        .map(RequestType::AddTcpFrontend);
    settings
        .chain(backends)
        .chain(http)
        .chain(tcp)
        .map(|request_type| Request {
            request_type: Some(request_type),
        })
        .collect()
}

/// Remembers what was applied and refused, writes the cache and reports the refusals.
fn record(
    main: &MainProcess,
    source: &EtcdSource,
    planned: Vec<Planned>,
    refused: &[(String, String)],
    revision: i64,
    origin: Origin,
) {
    let mut templates = Vec::new();
    let cached = {
        let mut state = lock(&source.state);
        state.revision = state.revision.max(revision);
        state.from_cache = origin == Origin::Cache;
        for change in planned {
            templates.push((change.cluster_id.clone(), change.templates));
            state.handed_over.remove(&change.cluster_id);
            state.refused.remove(&change.key);
            match change.document {
                Some(document) => {
                    state
                        .applied
                        .insert(change.cluster_id, (change.key, document));
                }
                None => {
                    state.applied.remove(&change.cluster_id);
                }
            }
        }
        for (key, reason) in refused {
            state.refused.insert(key.clone(), reason.clone());
        }
        cache::Cached {
            revision: state.revision,
            documents: state.applied.values().cloned().collect(),
        }
    };
    main.dns.set_sourced(templates);
    for (key, reason) in refused {
        error!("etcd key refused, its previous version stays: {reason}");
        debug_assert!(reason.starts_with(key.as_str()), "{reason}");
        main.events
            .publish(event(proto::EventKind::SourceRefused, reason.clone()));
    }
    if origin == Origin::Etcd {
        if let Some(path) = &source.config.cache {
            if let Err(error) = cache::write(path, &cached) {
                warn!("cannot write the etcd cache: {error}");
            }
        }
    }
}

/// An event of the etcd source.
pub(crate) fn event(kind: proto::EventKind, reason: String) -> proto::Event {
    proto::Event {
        kind: kind as i32,
        reason: Some(reason),
        ..Default::default()
    }
}
