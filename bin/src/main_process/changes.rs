//! State changes: validated and applied to main's state first, then sent to
//! every worker. A change that some worker cannot apply (e.g. a listening
//! address another process holds) is refused as a whole: main's state is
//! rolled back and the workers that applied it undo it. A worker whose state
//! is unknown (no answer, or a failed undo) is restarted, which replays main's
//! state to it, so that no worker silently diverges.

use log::{error, warn};
use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::ConfigState;

use super::dispatch::per_worker;
use super::workers::WorkerOutcome;
use super::{lock, MainProcess, WORKER_ANSWER_TIMEOUT};

/// Why a change was refused (by main or by a worker); main's state is as before.
#[derive(Debug)]
pub(crate) struct ChangeError(String);

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Applies `requests` as one transaction: to main's state first (all or none), then to
/// every worker in one message, which each worker applies between two turns of its loop.
/// If a worker refuses, main's state is reverted and the workers that applied it undo it.
/// The cost is that of the change: main keeps an undo of what it wrote, never a copy of
/// its state. The caller holds [`MainProcess::lock_changes`].
pub(crate) fn apply_serialized(
    main: &MainProcess,
    requests: &[Request],
) -> Result<(), ChangeError> {
    let summary = match requests {
        [] => return Ok(()),
        [one] => ConfigState::summary_of(one),
        many => format!("{} changes", many.len()),
    };
    let undo = {
        let mut state = lock(&main.state);
        let undo = state
            .apply_batch(requests)
            .map_err(|error| ChangeError(error.to_string()))?;
        if let Err(error) = lock(&main.workers.sockets).open_for(&state) {
            state.revert(undo);
            return Err(ChangeError(format!(
                "{summary} refused, nothing changed: {error}"
            )));
        }
        undo
    };
    // One request goes as itself, several as one batch.
    let outcomes = match requests {
        [one] => main.workers.broadcast(one, WORKER_ANSWER_TIMEOUT),
        many => main.workers.broadcast_batch(many, WORKER_ANSWER_TIMEOUT),
    };
    let failures: Vec<(u32, String)> = outcomes
        .iter()
        .filter_map(|o| o.failure().map(|reason| (o.worker_id, reason)))
        .collect();
    if failures.is_empty() {
        close_unused_sockets(main);
        forget_removed_health(main, requests);
        return Ok(());
    }
    let inverse = undo.requests();
    lock(&main.state).revert(undo);
    roll_back_workers(main, &outcomes, inverse);
    close_unused_sockets(main);
    let context = format!("{summary} refused by the workers, nothing changed");
    Err(ChangeError(per_worker(&context, &failures)))
}

/// Closes the listening sockets main's state no longer needs (state locked first).
fn close_unused_sockets(main: &MainProcess) {
    let state = lock(&main.state);
    lock(&main.workers.sockets).close_beyond(&state);
}

/// Removed clusters and backends leave the merged event stream's memory of who saw
/// them down: a backend added again later under the same name starts afresh.
fn forget_removed_health(main: &MainProcess, requests: &[Request]) {
    for request in requests {
        match &request.request_type {
            Some(RequestType::RemoveCluster(cluster_id)) => main.events.forget(cluster_id, None),
            Some(RequestType::RemoveBackend(remove)) => {
                let backend = remove.backend_id.as_deref().unwrap_or(&remove.address);
                main.events.forget(&remove.cluster_id, Some(backend));
            }
            Some(RequestType::Batch(batch)) => forget_removed_health(main, &batch.requests),
            _ => {}
        }
    }
}

/// Brings every worker back to main's (reverted) state: those that applied the change
/// get `inverse` as one batch, those that refused it kept their state, the others are
/// restarted.
fn roll_back_workers(main: &MainProcess, outcomes: &[WorkerOutcome], inverse: Vec<Request>) {
    let undo = Request {
        request_type: Some(RequestType::Batch(proto::RequestBatch {
            requests: inverse,
        })),
    };
    for outcome in outcomes {
        let id = outcome.worker_id;
        if outcome.refused() {
            continue;
        }
        if outcome.result.is_err() {
            warn!("worker {id} did not answer a change that was rolled back");
            main.workers.resync(id);
            continue;
        }
        let undone = main.workers.ask_one(id, &undo, WORKER_ANSWER_TIMEOUT);
        if let Some(reason) = undone.failure() {
            error!("worker {id} cannot undo a refused change: {reason}");
            main.workers.resync(id);
        }
    }
}
