//! State changes: validated and applied to main's state first, then sent to
//! every worker. A change that some worker cannot apply (e.g. a listening
//! address another process holds) is refused as a whole: main's state is
//! rolled back and the workers that applied it undo it. A worker whose state
//! is unknown (no answer, or a failed undo) is restarted, which replays main's
//! state to it, so that no worker silently diverges.

use log::{error, warn};
use sluice_command::proto::{Request, Response};
use sluice_command::state::ConfigState;

use super::dispatch::{failure, ok, per_worker};
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

/// Applies one change requested by a ctl client.
pub(crate) fn apply(main: &MainProcess, request: &Request) -> Response {
    let _serial = main.lock_changes();
    match apply_serialized(main, request) {
        Ok(summary) => ok(&summary),
        Err(error) => failure(&error.to_string()),
    }
}

/// Applies one change; the caller holds [`MainProcess::lock_changes`].
pub(crate) fn apply_serialized(
    main: &MainProcess,
    request: &Request,
) -> Result<String, ChangeError> {
    let summary = ConfigState::summary_of(request);
    let before = {
        let mut state = lock(&main.state);
        let before = state.clone();
        if let Err(error) = state.apply(request) {
            return Err(ChangeError(format!("{summary}: {error}")));
        }
        before
    };
    let outcomes = main.workers.broadcast(request, WORKER_ANSWER_TIMEOUT);
    let failures: Vec<(u32, String)> = outcomes
        .iter()
        .filter_map(|o| o.failure().map(|reason| (o.worker_id, reason)))
        .collect();
    if failures.is_empty() {
        return Ok(summary);
    }
    let undo = {
        let mut state = lock(&main.state);
        let undo = state.diff(&before);
        *state = before;
        undo
    };
    roll_back_workers(main, &outcomes, &undo);
    let context = format!("{summary} refused by the workers, nothing changed");
    Err(ChangeError(per_worker(&context, &failures)))
}

/// Brings every worker back to main's (rolled back) state: those that applied
/// the change get `undo`, those that refused it kept their state, the others
/// are restarted.
fn roll_back_workers(main: &MainProcess, outcomes: &[WorkerOutcome], undo: &[Request]) {
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
        for request in undo {
            let undone = main.workers.ask_one(id, request, WORKER_ANSWER_TIMEOUT);
            if let Some(reason) = undone.failure() {
                error!(
                    "worker {id} cannot undo a refused change ({}): {reason}",
                    ConfigState::summary_of(request)
                );
                main.workers.resync(id);
                break;
            }
        }
    }
}
