//! What the worker reports (its status, a metrics snapshot), and stopping it.

use std::time::{Duration, Instant};

use sluice_command::proto::response_content::ContentType;
use sluice_command::proto::{self, WorkerInfo, WorkerRunState, WorkerStatuses};

use crate::server::metrics::{add_retry_state, MapAvailability};
use crate::server::{RunState, Server};

/// Longest a soft stop waits for sessions to end when the request names no grace period.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

impl Server {
    /// The worker's status, as `QueryStatus` reports it.
    pub(super) fn status(&self) -> ContentType {
        let state = match self.run_state {
            RunState::Running => WorkerRunState::Running,
            RunState::Draining { .. } => WorkerRunState::Stopping,
            RunState::Stopped => WorkerRunState::Stopped,
        };
        ContentType::Workers(WorkerStatuses {
            workers: vec![WorkerInfo {
                id: self.options.id,
                pid: std::process::id(),
                state: state as i32,
                restarts: 0,
                sessions: self.sessions.len() as u64,
            }],
            ..Default::default()
        })
    }

    /// What `QueryMetrics` asks: the worker's counters, with the backends' availability
    /// and retry state.
    pub(super) fn metrics_snapshot(&self, query: &proto::QueryMetrics) -> ContentType {
        let availability = MapAvailability(&self.ctx.backends);
        let mut snapshot = self
            .ctx
            .metrics
            .snapshot(self.options.id, query, &availability);
        self.ctx.tls_stats.push_values(&mut snapshot.proxy);
        add_retry_state(&mut snapshot, &self.ctx.backends);
        ContentType::WorkerMetrics(snapshot)
    }

    /// Soft stop: no more accepts; the worker exits when its sessions are gone or at the
    /// drain deadline. A draining worker finishes its sessions even if main goes away
    /// meanwhile (it hands over to a new main in an upgrade).
    pub(super) fn soft_stop(
        &mut self,
        stop: &proto::SoftStop,
        now: Instant,
    ) -> (String, Option<ContentType>) {
        if let Err(error) = crate::sys::outlive_parent() {
            log::warn!("worker {}: {error}", self.options.id);
        }
        self.listeners.close_all(self.poll.registry());
        let drain = stop
            .drain_timeout_ms
            .map_or(DEFAULT_DRAIN, Duration::from_millis);
        self.run_state = RunState::Draining {
            deadline: now + drain,
        };
        ("draining".to_owned(), None)
    }

    /// Hard stop: the worker exits after this turn of its loop.
    pub(super) fn hard_stop(&mut self) -> (String, Option<ContentType>) {
        self.run_state = RunState::Stopped;
        ("stopping".to_owned(), None)
    }
}
