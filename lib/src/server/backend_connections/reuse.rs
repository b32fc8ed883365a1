//! The loop's side of the [`IdlePool`]: an HTTP session's reusable backend connection goes
//! in when the session lets it go (`ReleaseBackend`), a request that may be replayed takes
//! one of its chosen backend's instead of connecting, and kept connections leave when their
//! backend drops them (any event), when idle too long, when their backend is removed or
//! when the worker drains.
//!
//! Accounting: a kept connection is not active on its backend (`active_connections` means
//! "in use"): `connection_closed` when it goes in, `connection_opened` when taken. Only
//! backends in `Normal` status and ready keep connections, so a removed backend is never held
//! back by them, and a drained one or one in maintenance has none left idle.
//!
//! Policy for requests that cannot be replayed (a body, or a method that is not
//! idempotent): they never take a kept connection, so a backend's idle close cannot race
//! them; they go on a fresh connection, which is then kept like any other.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::connect::{Link, Outcome};
use super::idle_pool::IdlePool;
use super::{connection_of, ConnectionState};
use crate::server::metrics::OpenConnection;
use crate::server::tokens::MAX_BACKEND_CONNECTIONS;
use crate::server::{RunState, Server, TimerEvent};
use sluice_command::proto::BackendState;

use crate::backends::{Backend, BackendStatus};
use crate::metrics::TrafficStats;

/// Kept connections per backend and worker at most (the oldest is closed for a new one).
pub(crate) const MAX_IDLE_PER_BACKEND: usize = 64;
/// Longest a connection is kept idle (less if the listener's backend timeout is shorter).
const MAX_IDLE_TIME: Duration = Duration::from_secs(10);

/// The worker's kept connections: keys of idle [`BackendConnection`]s, per backend.
///
/// [`BackendConnection`]: super::BackendConnection
pub(crate) type IdleConnections = IdlePool<usize>;

/// A new, empty pool with the worker's bounds.
pub(crate) fn new_idle_pool() -> IdleConnections {
    IdlePool::new(MAX_IDLE_PER_BACKEND, MAX_BACKEND_CONNECTIONS)
}

/// Whether a backend's connections may be kept for new requests: in rotation (not removed)
/// and ready (not drained or in maintenance).
fn takes_requests(backend: &Rc<RefCell<Backend>>) -> bool {
    let backend = backend.borrow();
    backend.status() == BackendStatus::Normal && backend.state() == BackendState::Ready
}

/// The pool's key of a backend: its identity (the `Rc` outlives every kept connection).
fn owner(backend: &Rc<RefCell<Backend>>) -> usize {
    Rc::as_ptr(backend).cast::<()>() as usize
}

impl Server {
    /// `ReleaseBackend`: keeps session `key`'s backend connection for reuse when it is
    /// idle and clean, else closes it.
    pub(in crate::server) fn release_backend(&mut self, key: usize, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.end_active_request(&mut self.ctx.backends, &self.ctx.connections);
        let idle_time = session.timeouts.back().min(MAX_IDLE_TIME);
        let Some(connection_key) = session.backend.connection.take() else {
            return;
        };
        let Some(back) = self.ctx.connections.get_mut(connection_key) else {
            return;
        };
        // Anything readable on an idle connection (bytes, EOF) makes it unusable.
        let clean =
            back.is_connected() && !back.transport.is_readable() && !back.transport.holds_output();
        let keep = clean && self.run_state == RunState::Running && takes_requests(&back.backend);
        self.ctx.backends.connection_closed(&back.backend, now);
        back.open = None;
        if !keep {
            // Dropped, hence closed, which also takes it out of the epoll set.
            self.ctx.connections.remove(connection_key);
            return;
        }
        let deadline = now + idle_time;
        let inserted = match self
            .ctx
            .idle
            .insert(owner(&back.backend), connection_key, deadline)
        {
            Ok(inserted) => inserted,
            Err(connection_key) => {
                self.ctx.connections.remove(connection_key);
                return;
            }
        };
        back.state = ConnectionState::Idle {
            pool_key: inserted.key,
        };
        if let Some(evicted) = inserted.evicted {
            self.ctx.connections.try_remove(evicted);
        }
        if self.ctx.idle_sweep_at.is_none_or(|at| at > deadline) {
            self.ctx.idle_sweep_at = Some(deadline);
            self.ctx.timer.schedule(deadline, TimerEvent::IdleSweep);
        }
    }

    /// Gives session `key` a kept connection to `backend`, if there is one, and queues the
    /// news for its HTTP session. Returns false when there is none (the caller connects).
    pub(in crate::server) fn reuse_idle(
        &mut self,
        key: usize,
        backend: &Rc<RefCell<Backend>>,
        stats: &Rc<TrafficStats>,
        now: Instant,
    ) -> bool {
        let Some(session) = self.sessions.get_mut(key) else {
            return false;
        };
        let Some((_, connection_key)) = self.ctx.idle.take(owner(backend)) else {
            return false;
        };
        let Some(connection) = self.ctx.connections.get_mut(connection_key) else {
            return false;
        };
        connection.state = ConnectionState::InUse {
            session: key,
            since: now,
        };
        connection.open = Some(OpenConnection::reused(
            session.stats.cluster.clone(),
            Rc::clone(stats),
        ));
        // Connected and idle: the request can be written at once.
        connection.transport.assume_writable();
        session.backend.connection = Some(connection_key);
        self.ctx.backends.connection_opened(backend);
        session.io.last_back_activity = now;
        session.backend.connect_attempts = 0;
        self.queue_outcome(key, Outcome::Linked(Link::Reused));
        true
    }

    /// An event on kept connection `connection_key`: unless it was stale (nothing to read),
    /// the backend closed it or sent something unasked, and it is closed.
    pub(in crate::server) fn idle_ready(&mut self, connection_key: usize, pool_key: usize) {
        let Some(connection) = self.ctx.connections.get(connection_key) else {
            return;
        };
        if connection.transport.is_quiet() {
            return;
        }
        log::debug!(
            "kept connection to {} closed by the backend",
            connection.address
        );
        self.ctx.idle.remove(pool_key);
        self.ctx.connections.remove(connection_key);
    }

    /// Closes the kept connections idle for too long, and plans the next sweep.
    pub(in crate::server) fn sweep_idle(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let next = self.ctx.idle.remove_expired(now, &mut expired);
        self.close_idle(expired);
        self.ctx.idle_sweep_at = next;
        if let Some(at) = next {
            self.ctx.timer.schedule(at, TimerEvent::IdleSweep);
        }
    }

    /// Closes the kept connections of backends that are not `Normal` any more (removed) or
    /// not ready (drain, maintenance), or all of them when the worker stops taking new work.
    pub(in crate::server) fn close_idle_of_gone_backends(&mut self) {
        if self.ctx.idle.len() == 0 {
            return;
        }
        let draining = self.run_state != RunState::Running;
        let mut gone = Vec::new();
        let connections = &self.ctx.connections;
        self.ctx.idle.remove_if(
            |&key| {
                draining
                    || connection_of(connections, Some(key))
                        .is_none_or(|connection| !takes_requests(&connection.backend))
            },
            &mut gone,
        );
        self.close_idle(gone);
    }

    /// Closes kept connections (dropped, hence closed and out of the epoll set).
    fn close_idle(&mut self, connection_keys: Vec<usize>) {
        for key in connection_keys {
            self.ctx.connections.try_remove(key);
        }
    }
}
