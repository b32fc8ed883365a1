//! Configuration changes: one request or a batch, applied to the worker's mirror of the
//! state and then to the live structures, whole or not at all; a refused batch is undone
//! by applying the inverse of what was applied ([`ConfigState::requests_undoing`]).
//!
//! A change to an empty mirror (a new worker's replay of the whole state) keeps no record
//! of what it wrote beyond the request being applied ([`Undo::from_empty`]): undoing it is
//! removing everything the mirror holds.

use std::time::Instant;

use sluice_command::proto::{self, request::RequestType};
use sluice_command::state::{ConfigState, Undo};

use super::{request_name, Answer, CommandError};
use crate::server::{RunState, Server};

/// Requests in a batch past which the memory its application used is handed back.
const LARGE_BATCH: usize = 1_000;

/// What changes need done once, after a request or a whole batch.
#[derive(Debug, Default)]
pub(super) struct Effects {
    /// Frontends, sticky clusters or listeners changed: listeners' cookie names may too.
    pub(super) sticky_cookies: bool,
    /// Backends were added: their health checks may be due.
    pub(super) health_checks: bool,
    /// Clusters of which a backend changed weight or state: their sessions pick again.
    pub(super) rebalance: std::collections::HashSet<String>,
    /// Certificate and ticket key changes, newest last, to undo a refused batch.
    pub(super) tls_undo: Vec<crate::tls::CertificateUndo>,
}

impl Server {
    /// Applies a configuration change, one request or a batch, to the mirror and to the
    /// live structures, whole or not at all (see the module docs). It takes the request's
    /// content: each request of a batch is dropped once applied, so that the state built
    /// next takes the room it leaves instead of piling up above the decoded batch.
    pub(super) fn change_state(&mut self, request: &mut proto::Request, now: Instant) -> Answer {
        let requests = match request.request_type.take() {
            Some(RequestType::Batch(batch)) => batch.requests,
            single => vec![proto::Request {
                request_type: single,
            }],
        };
        let count = requests.len();
        let started = Instant::now();
        let mut undo = if self.state.is_empty() {
            Undo::from_empty()
        } else {
            Undo::new()
        };
        let mut effects = Effects::default();
        let mut refused = None;
        for request in requests {
            if let Err(error) = self.apply_change(&request, &mut undo, &mut effects, now) {
                refused = Some(if count > 1 {
                    CommandError::InBatch {
                        summary: ConfigState::summary_of(&request),
                        source: Box::new(error),
                    }
                } else {
                    error
                });
                break;
            }
        }
        if refused.is_some() {
            self.roll_back(undo, &mut effects, now);
        }
        self.finish_changes(effects, now);
        if count >= LARGE_BATCH {
            log::info!(
                "worker {}: {} a batch of {} requests in {:?}",
                self.options.id,
                if refused.is_some() {
                    "refused"
                } else {
                    "applied"
                },
                count,
                started.elapsed()
            );
        }
        match refused {
            Some(error) => Err(error),
            None => Ok((String::new(), None)),
        }
    }

    /// Whether `request` is a batch large enough that the memory its application used
    /// (the decoded batch, its undo) is worth handing back once it is answered.
    pub(super) fn is_large_batch(request: &proto::Request) -> bool {
        matches!(&request.request_type, Some(RequestType::Batch(batch)) if batch.requests.len() >= LARGE_BATCH)
    }

    /// Applies one change to the mirror then to the live structures, recording its writes
    /// in `undo`; if the live part fails (an address in use), the mirror is put back.
    fn apply_change(
        &mut self,
        request: &proto::Request,
        undo: &mut Undo,
        effects: &mut Effects,
        now: Instant,
    ) -> Result<(), CommandError> {
        let Some(content) = request.request_type.as_ref() else {
            return Err(CommandError::Empty);
        };
        if let RequestType::Batch(batch) = content {
            for inner in &batch.requests {
                self.apply_change(inner, undo, effects, now)?;
            }
            return Ok(());
        }
        if let Some(done) = self.apply_tls_request(content, &mut effects.tls_undo) {
            return done;
        }
        let mark = undo.len();
        self.state.apply_recorded(request, undo)?;
        if let Err(error) = self.apply_live(content, undo, mark, effects, now) {
            let mine = undo.split_off(mark);
            self.state.revert(mine);
            return Err(error);
        }
        undo.settle();
        Ok(())
    }

    /// Undoes the applied part of a refused batch. A worker that cannot (an address taken
    /// meanwhile) no longer matches main's state: it exits, and main respawns it and
    /// replays the state.
    fn roll_back(&mut self, undo: Undo, effects: &mut Effects, now: Instant) {
        while let Some(change) = effects.tls_undo.pop() {
            self.ctx.tls.undo(change);
        }
        for request in self.state.requests_undoing(&undo) {
            if let Err(message) = self.apply_change(&request, &mut Undo::new(), effects, now) {
                log::error!(
                    "worker {}: cannot undo a refused change ({}: {message}): exiting so that \
                     the main process replays its state",
                    self.options.id,
                    ConfigState::summary_of(&request)
                );
                self.run_state = RunState::Stopped;
                return;
            }
        }
    }

    /// What a change needs once, done once after a request or a whole batch.
    fn finish_changes(&mut self, effects: Effects, now: Instant) {
        self.ctx.tls.rebuild();
        if effects.sticky_cookies {
            self.refresh_sticky_cookies();
        }
        if effects.health_checks {
            self.ctx
                .health
                .run_due(&mut self.ctx.backends, self.poll.registry(), now);
        }
        if !effects.rebalance.is_empty() {
            self.rebalance_sessions(&effects.rebalance, now);
        }
        self.close_idle_of_gone_backends();
    }

    /// Applies one change to the live structures, by the family of what it changes.
    fn apply_live(
        &mut self,
        content: &RequestType,
        undo: &Undo,
        mark: usize,
        effects: &mut Effects,
        now: Instant,
    ) -> Result<(), CommandError> {
        match content {
            RequestType::AddHttpListener(_)
            | RequestType::AddTcpListener(_)
            | RequestType::UpdateHttpListener(_)
            | RequestType::UpdateTcpListener(_)
            | RequestType::RemoveListener(_)
            | RequestType::ActivateListener(_)
            | RequestType::DeactivateListener(_) => self.apply_listener(content, effects),
            RequestType::AddCluster(_)
            | RequestType::RemoveCluster(_)
            | RequestType::SetHealthCheck(_) => {
                self.apply_cluster(content, undo, mark, effects, now)
            }
            RequestType::AddBackend(_)
            | RequestType::UpdateBackend(_)
            | RequestType::RemoveBackend(_) => self.apply_backend(content, effects, now),
            RequestType::AddTcpFrontend(_)
            | RequestType::RemoveTcpFrontend(_)
            | RequestType::AddHttpFrontend(_)
            | RequestType::RemoveHttpFrontend(_) => self.apply_frontend(content, effects),
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }
}
