//! State changes: validated and applied to main's state first, then sent to
//! every worker; a worker that fails a change main accepted is restarted so
//! that it gets main's state back and never silently diverges.

use sluice_command::proto::{Request, Response};
use sluice_command::state::ConfigState;

use super::dispatch::{failure, ok, per_worker};
use super::{lock, MainProcess, WORKER_ANSWER_TIMEOUT};

/// Why a change did not fully happen.
#[derive(Debug)]
pub(crate) enum ChangeError {
    /// Main refused it: nothing changed anywhere.
    Rejected(String),
    /// Main applied it but some workers failed; they are being restarted with the state.
    Workers(String),
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::Rejected(reason) | ChangeError::Workers(reason) => f.write_str(reason),
        }
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
    if let Err(error) = lock(&main.state).apply(request) {
        return Err(ChangeError::Rejected(format!("{summary}: {error}")));
    }
    let failures: Vec<(u32, String)> = main
        .workers
        .broadcast(request, WORKER_ANSWER_TIMEOUT)
        .iter()
        .filter_map(|o| o.failure().map(|reason| (o.worker_id, reason)))
        .collect();
    if failures.is_empty() {
        return Ok(summary);
    }
    for (worker_id, _) in &failures {
        main.workers.resync(*worker_id);
    }
    let context = format!("{summary} was accepted, but some workers failed it and are being restarted with the current state");
    Err(ChangeError::Workers(per_worker(&context, &failures)))
}
