//! `sluice ctl` changes that concern backends given by host name: adding one
//! (its name resolved first), changing or removing one by its id or `NAME:PORT`
//! (its resolved backends follow), and refusing changes to a single resolved
//! backend, which the next refresh would undo.

use sluice_command::proto::{self, request::RequestType, BackendState, Request, Response};

use super::super::changes::apply_serialized;
use super::super::ctl_changes;
use super::super::dispatch::{failure, ok};
use super::super::{lock, MainProcess};
use super::{add_template, is_named, reconcile, Template, Templates};

/// The answer to `request` if it concerns backends given by host name; `None` for
/// the normal path.
pub(crate) fn intercept(main: &MainProcess, request: &Request) -> Option<Response> {
    match &request.request_type {
        Some(RequestType::AddBackend(add)) if is_named(&add.backend) => {
            Some(add_named(main, &add.backend))
        }
        Some(RequestType::ChangeBackend(change)) => {
            let target = named_target(
                main,
                &change.cluster_id,
                change.address.as_deref(),
                change.backend_id.as_deref(),
            )?;
            Some(
                target
                    .and_then(|index| change_named(main, change, index))
                    .unwrap_or_else(|e| failure(&e)),
            )
        }
        Some(RequestType::RemoveBackend(remove)) => {
            let address = Some(remove.address.as_str()).filter(|a| !a.is_empty());
            let target = named_target(
                main,
                &remove.cluster_id,
                address,
                remove.backend_id.as_deref(),
            )?;
            if remove.when_drained == Some(true) {
                return Some(failure(
                    "--when-drained is not supported for a backend given by host name: set its \
                     state to drain, then remove it once its connections are gone",
                ));
            }
            Some(
                target
                    .and_then(|index| remove_named(main, &remove.cluster_id, index))
                    .unwrap_or_else(|e| failure(&e)),
            )
        }
        Some(RequestType::RemoveCluster(cluster_id)) => {
            let response = ctl_changes::apply(main, request);
            if response.status == proto::ResponseStatus::Ok as i32 {
                lock(&main.dns.registry).templates.remove(cluster_id);
                main.dns.changed.notify_all();
            }
            Some(response)
        }
        _ => None,
    }
}

/// The index of the backend given by host name that `address` or `id` names in the
/// cluster: `None` when neither names one nor one of its resolved backends (the normal
/// path), an error when they name a resolved backend.
fn named_target(
    main: &MainProcess,
    cluster_id: &str,
    address: Option<&str>,
    id: Option<&str>,
) -> Option<Result<usize, String>> {
    {
        let registry = lock(&main.dns.registry);
        let templates = registry
            .templates
            .get(cluster_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let found = templates.iter().position(|t| {
            address.is_some_and(|a| a.eq_ignore_ascii_case(&t.backend.address))
                || id.is_some_and(|id| id == t.backend.backend_id)
        });
        if let Some(index) = found {
            return Some(Ok(index));
        }
    }
    let state = lock(&main.state);
    let resolved = state.backends(cluster_id).find(|b| {
        b.resolved_from.is_some()
            && (address == Some(b.address.as_str()) || id == Some(b.backend_id.as_str()))
    })?;
    Some(Err(format!(
        "backend {} is resolved from {}: change the backend given by host name, whose \
         settings apply to each of its addresses",
        resolved.backend_id,
        resolved.resolved_from.as_deref().unwrap_or_default()
    )))
}

fn add_named(main: &MainProcess, backend: &proto::Backend) -> Response {
    let _serial = main.lock_changes();
    let cluster_id = backend.cluster_id.clone();
    {
        let state = lock(&main.state);
        if state.cluster(&cluster_id).is_none() {
            return failure(&format!("unknown cluster `{cluster_id}`"));
        }
        if state
            .backends(&cluster_id)
            .any(|b| b.backend_id == backend.backend_id)
        {
            return failure(&format!(
                "duplicate backend id `{}` in cluster `{cluster_id}`",
                backend.backend_id
            ));
        }
    }
    let mut templates: Templates = Templates::new();
    templates.insert(cluster_id.clone(), current(main, &cluster_id));
    if let Err(error) = add_template(&mut templates, backend) {
        return failure(&error);
    }
    let cluster_templates = templates.remove(&cluster_id).unwrap_or_default();
    let added = cluster_templates.last().cloned();
    let Some(added) = added else {
        return failure("internal error: the backend was not registered");
    };
    let origin = |_: &proto::Backend| "backend add".to_owned();
    if let Err(error) = main.dns.resolve_new(std::iter::once(&added), &origin) {
        return failure(&error);
    }
    let answer = match apply_templates(main, &cluster_id, cluster_templates) {
        Ok(()) => addresses_of(main, &added),
        Err(error) => return failure(&error),
    };
    ok(&format!(
        "added backend {cluster_id}/{} at {}: {answer}",
        added.backend.backend_id, added.backend.address
    ))
}

fn change_named(
    main: &MainProcess,
    change: &proto::BackendChanges,
    index: usize,
) -> Result<Response, String> {
    let _serial = main.lock_changes();
    let mut templates = current(main, &change.cluster_id);
    let template = templates.get_mut(index).ok_or("the backend is gone")?;
    if let Some(weight) = change.weight {
        template.backend.weight = weight;
    }
    if let Some(state) = change.state {
        template.backend.state = Some(state).filter(|s| *s != BackendState::Ready as i32);
    }
    let (checked, _) = sluice_command::config::check_named_backend(&template.backend)?;
    template.backend = checked;
    let changed = template.clone();
    apply_templates(main, &change.cluster_id, templates)?;
    Ok(ok(&format!(
        "updated backend {}/{} at {}: weight {}, state {} (each of its addresses)",
        change.cluster_id,
        changed.backend.backend_id,
        changed.backend.address,
        changed.backend.weight,
        ctl_changes::state_name(changed.backend.state())
    )))
}

fn remove_named(main: &MainProcess, cluster_id: &str, index: usize) -> Result<Response, String> {
    let _serial = main.lock_changes();
    let mut templates = current(main, cluster_id);
    if index >= templates.len() {
        return Err("the backend is gone".into());
    }
    let removed = templates.remove(index);
    apply_templates(main, cluster_id, templates)?;
    Ok(ok(&format!(
        "removed backend {cluster_id}/{} at {} and its addresses",
        removed.backend.backend_id, removed.backend.address
    )))
}

/// The cluster's backends given by host name now.
fn current(main: &MainProcess, cluster_id: &str) -> Vec<Template> {
    lock(&main.dns.registry)
        .templates
        .get(cluster_id)
        .cloned()
        .unwrap_or_default()
}

/// Makes `templates` the cluster's backends given by host name, applying the
/// difference in its resolved backends as one batch. The caller holds `changes`.
fn apply_templates(
    main: &MainProcess,
    cluster_id: &str,
    templates: Vec<Template>,
) -> Result<(), String> {
    let mut registry = lock(&main.dns.registry);
    let requests = reconcile(&lock(&main.state), cluster_id, &templates, &registry.names);
    apply_serialized(main, &requests).map_err(|error| error.to_string())?;
    if templates.is_empty() {
        registry.templates.remove(cluster_id);
    } else {
        registry.templates.insert(cluster_id.to_owned(), templates);
    }
    main.dns.changed.notify_all();
    Ok(())
}

/// "10.0.0.5:8080, 10.0.0.6:8080", or that the name does not resolve yet.
fn addresses_of(main: &MainProcess, template: &Template) -> String {
    let state = lock(&main.state);
    let addresses: Vec<&str> = state
        .backends(&template.backend.cluster_id)
        .filter(|b| b.resolved_from.as_deref() == Some(template.backend.address.as_str()))
        .map(|b| b.address.as_str())
        .collect();
    if addresses.is_empty() {
        format!("{} does not resolve yet", template.host)
    } else {
        addresses.join(", ")
    }
}
