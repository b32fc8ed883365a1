//! Changes asked by `sluice ctl`, before they are applied like any other: `cluster add` on an
//! existing id is refused (it would overwrite the cluster, use `cluster update`), partial
//! changes (`backend set`, `cluster update`, `listener update`, a backend named by id) are
//! resolved against the state into the whole in-place request, and `backend remove
//! --when-drained` drains the backend and removes it once its last connection has closed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use log::{info, warn};
use sluice_command::metrics::names::ACTIVE_CONNECTIONS;
use sluice_command::proto::{self, request::RequestType, BackendState, Request, Response};
use sluice_command::state::{ConfigState, StateError};

use super::changes::apply_serialized;
use super::dispatch::{failure, ok};
use super::{lock, MainProcess};

/// How often a backend removed `--when-drained` is checked for connections left.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Whether `request` is a partial change that only the main process understands.
pub(crate) fn is_partial_change(request: &Request) -> bool {
    matches!(
        request.request_type,
        Some(
            RequestType::ChangeBackend(_)
                | RequestType::ChangeCluster(_)
                | RequestType::ChangeListener(_)
        )
    )
}

/// Applies a change from `sluice ctl` (see the module docs).
pub(crate) fn apply(main: &MainProcess, request: &Request) -> Response {
    let _serial = main.lock_changes();
    let resolved = {
        let state = lock(&main.state);
        if let Some(RequestType::AddCluster(cluster)) = &request.request_type {
            if state.cluster(&cluster.cluster_id).is_some() {
                return failure(&StateError::ClusterExists(cluster.cluster_id.clone()).to_string());
            }
        }
        match state.resolve_changes(request) {
            Ok(resolved) => resolved,
            Err(error) => return failure(&error.to_string()),
        }
    };
    if let Some(RequestType::RemoveBackend(remove)) = &resolved.request_type {
        if remove.when_drained == Some(true) {
            return remove_when_drained(main, remove);
        }
    }
    match apply_serialized(main, std::slice::from_ref(&resolved)) {
        Ok(()) => {
            let mut answer = describe(request, &resolved);
            let undone_by_reload = main.file_index.announce(&resolved);
            if let Some(note) = undone_by_reload {
                answer.push_str(&format!(" ({note})"));
            }
            ok(&answer)
        }
        Err(error) => failure(&error.to_string()),
    }
}

/// What the answer says was done.
fn describe(request: &Request, resolved: &Request) -> String {
    let summary = ConfigState::summary_of(resolved);
    match (&request.request_type, &resolved.request_type) {
        (Some(RequestType::ChangeBackend(_)), Some(RequestType::UpdateBackend(backend))) => {
            format!(
                "{summary} (id {}): weight {}, state {}",
                backend.backend_id,
                backend.weight,
                state_name(backend.state())
            )
        }
        (Some(RequestType::ChangeCluster(_) | RequestType::ChangeListener(_)), _) => {
            format!("{summary} updated in place")
        }
        _ => ConfigState::outcome_of(resolved),
    }
}

/// `ready`, `drain` or `maint`.
pub(crate) fn state_name(state: BackendState) -> &'static str {
    match state {
        BackendState::Ready => "ready",
        BackendState::Drain => "drain",
        BackendState::Maint => "maint",
    }
}

/// Puts the backend in drain (unless it is in maint already) and leaves a thread that
/// removes it once no worker has a connection to it left.
fn remove_when_drained(main: &MainProcess, remove: &proto::RemoveBackend) -> Response {
    let backend = {
        let state = lock(&main.state);
        match state.find_backend(&remove.cluster_id, Some(&remove.address), None) {
            Ok(backend) => backend.clone(),
            Err(error) => return failure(&error.to_string()),
        }
    };
    if backend.state() == BackendState::Ready {
        let mut drained = backend.clone();
        drained.state = Some(BackendState::Drain as i32);
        let update = Request {
            request_type: Some(RequestType::UpdateBackend(drained)),
        };
        if let Err(error) = apply_serialized(main, &[update]) {
            return failure(&error.to_string());
        }
    }
    let Some(shared) = main.shared.get().cloned() else {
        return failure("the main process is not ready for background removals");
    };
    let watched = proto::RemoveBackend {
        when_drained: None,
        ..remove.clone()
    };
    let spawned = std::thread::Builder::new()
        .name("drain-watch".to_owned())
        .spawn(move || watch_until_drained(&shared, &watched));
    if let Err(error) = spawned {
        return failure(&format!("cannot watch the drain: {error}"));
    }
    ok(&format!(
        "backend {}/{} (id {}) draining: removed once its last connection has closed",
        backend.cluster_id, backend.address, backend.backend_id
    ))
}

/// Removes the backend once every worker reports no connection to it. Gives up when the
/// backend is gone, has another id, or is back in rotation (someone set it ready), or when
/// the main process stops.
fn watch_until_drained(shared: &Weak<MainProcess>, remove: &proto::RemoveBackend) {
    loop {
        std::thread::sleep(DRAIN_POLL);
        let Some(main) = shared.upgrade() else {
            return;
        };
        if main.stop_requested() {
            return;
        }
        if !still_draining(&main, remove) {
            info!(
                "backend {}/{} is no longer draining: not removed",
                remove.cluster_id, remove.address
            );
            return;
        }
        if connections_left(&main, remove) != Some(0) {
            continue;
        }
        let _serial = main.lock_changes();
        if !still_draining(&main, remove) {
            return;
        }
        let request = Request {
            request_type: Some(RequestType::RemoveBackend(remove.clone())),
        };
        match apply_serialized(&main, &[request]) {
            Ok(()) => info!(
                "backend {}/{} drained and removed",
                remove.cluster_id, remove.address
            ),
            Err(error) => warn!(
                "backend {}/{} drained but not removed: {error}",
                remove.cluster_id, remove.address
            ),
        }
        return;
    }
}

fn still_draining(main: &Arc<MainProcess>, remove: &proto::RemoveBackend) -> bool {
    let state = lock(&main.state);
    state
        .find_backend(
            &remove.cluster_id,
            Some(&remove.address),
            remove.backend_id.as_deref(),
        )
        .is_ok_and(|backend| backend.state() != BackendState::Ready)
}

/// Connections every worker has open to the backend; `None` when a worker did not answer.
fn connections_left(main: &Arc<MainProcess>, remove: &proto::RemoveBackend) -> Option<u64> {
    let query = proto::QueryMetrics {
        cluster_id: Some(remove.cluster_id.clone()),
        backend_id: remove.backend_id.clone(),
    };
    let collected = super::metrics::collect(main, &query).ok()?;
    if !collected.missing.is_empty() {
        return None;
    }
    let total = collected.metrics.total?;
    let left = total
        .clusters
        .iter()
        .flat_map(|cluster| &cluster.backends)
        .filter(|backend| backend.address == remove.address)
        .flat_map(|backend| &backend.values)
        .filter(|value| value.name == ACTIVE_CONNECTIONS)
        .map(|value| value.value)
        .sum();
    Some(left)
}
