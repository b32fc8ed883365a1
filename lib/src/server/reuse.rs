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
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::connect::{Link, Outcome};
use super::idle_pool::IdlePool;
use super::metrics::OpenConnection;
use super::session::BackConnection;
use super::tokens::MAX_BACKEND_CONNECTIONS;
use super::{RunState, Server, TimerEvent};
use sluice_command::proto::BackendState;

use crate::backends::{Backend, BackendStatus};
use crate::metrics::TrafficStats;
use crate::transport::Transport;

/// Kept connections per backend and worker at most (the oldest is closed for a new one).
pub(crate) const MAX_IDLE_PER_BACKEND: usize = 64;
/// Longest a connection is kept idle (less if the listener's backend timeout is shorter).
const MAX_IDLE_TIME: Duration = Duration::from_secs(10);

/// A backend connection kept idle for reuse.
#[derive(Debug)]
pub(crate) struct IdleConnection {
    /// Its key among the worker's backend connections (its token, kept while idle).
    key: usize,
    transport: Transport,
    backend: Rc<RefCell<Backend>>,
    address: SocketAddr,
}

/// Who holds a backend connection: what an event on its token is for. A connection
/// keeps its token (and its registration) from its connect to its close, so that moving
/// it between a session and the pool costs no system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionOwner {
    /// In use by (or connecting for) the session of this key.
    Session(usize),
    /// Idle in the pool, under this pool key.
    Pool(usize),
}

/// The worker's kept connections.
pub(crate) type IdleConnections = IdlePool<IdleConnection>;

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
    pub(super) fn release_backend(&mut self, key: usize, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.end_active_request(&mut self.backends);
        let Some(back) = session.io.back.take() else {
            return;
        };
        let idle_time = session.timeouts.back().min(MAX_IDLE_TIME);
        // Anything readable on an idle connection (bytes, EOF) makes it unusable.
        let clean = back.connecting_since.is_none()
            && !back.transport.is_readable()
            && !back.transport.holds_output();
        let keep = clean && self.run_state == RunState::Running && takes_requests(&back.backend);
        let BackConnection {
            key: connection_key,
            transport,
            backend,
            address,
            ..
        } = back;
        self.backends.connection_closed(&backend, now);
        if !keep {
            // Dropped, hence closed, which also takes it out of the epoll set.
            self.connection_owners.try_remove(connection_key);
            return;
        }
        let connection = IdleConnection {
            key: connection_key,
            transport,
            backend,
            address,
        };
        let owner = owner(&connection.backend);
        let deadline = now + idle_time;
        let inserted = match self.idle.insert(owner, connection, deadline) {
            Ok(inserted) => inserted,
            Err(connection) => {
                self.connection_owners.try_remove(connection.key);
                return;
            }
        };
        if let Some(evicted) = inserted.evicted {
            self.connection_owners.try_remove(evicted.key);
        }
        if let Some(holder) = self.connection_owners.get_mut(connection_key) {
            *holder = ConnectionOwner::Pool(inserted.key);
        }
        if self.idle_sweep_at.is_none_or(|at| at > deadline) {
            self.idle_sweep_at = Some(deadline);
            self.timer.schedule(deadline, TimerEvent::IdleSweep);
        }
    }

    /// Gives session `key` a kept connection to `backend`, if there is one, and tells its
    /// HTTP session. Returns false when there is none (the caller connects).
    pub(super) fn reuse_idle(
        &mut self,
        key: usize,
        backend: &Rc<RefCell<Backend>>,
        stats: &Rc<TrafficStats>,
        now: Instant,
    ) -> bool {
        let Some(session) = self.sessions.get_mut(key) else {
            return false;
        };
        let Some((_, idle)) = self.idle.take(owner(backend)) else {
            return false;
        };
        let IdleConnection {
            key: connection_key,
            mut transport,
            address,
            ..
        } = idle;
        if let Some(holder) = self.connection_owners.get_mut(connection_key) {
            *holder = ConnectionOwner::Session(key);
        }
        self.backends.connection_opened(backend);
        // Connected and idle: the request can be written at once.
        transport.assume_writable();
        session.io.back = Some(BackConnection {
            key: connection_key,
            transport,
            backend: Rc::clone(backend),
            address,
            connecting_since: None,
            in_use_since: now,
            _open: OpenConnection::reused(session.stats.cluster.clone(), Rc::clone(stats)),
        });
        session.io.last_back_activity = now;
        session.connect_attempts = 0;
        self.queue_outcome(key, Outcome::Linked(Link::Reused));
        true
    }

    /// An event on kept connection `key`: unless it was stale (nothing to read), the
    /// backend closed it or sent something unasked, and it is closed.
    pub(super) fn idle_ready(&mut self, key: usize) {
        let Some(idle) = self.idle.get(key) else {
            return;
        };
        if idle.transport.is_quiet() {
            return;
        }
        if let Some(idle) = self.idle.remove(key) {
            log::debug!("kept connection to {} closed by the backend", idle.address);
            self.connection_owners.try_remove(idle.key);
        }
    }

    /// Closes the kept connections idle for too long, and plans the next sweep.
    pub(super) fn sweep_idle(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let next = self.idle.remove_expired(now, &mut expired);
        self.close_idle(expired);
        self.idle_sweep_at = next;
        if let Some(at) = next {
            self.timer.schedule(at, TimerEvent::IdleSweep);
        }
    }

    /// Closes the kept connections of backends that are not `Normal` any more (removed) or
    /// not ready (drain, maintenance), or all of them when the worker stops taking new work.
    pub(super) fn close_idle_of_gone_backends(&mut self) {
        if self.idle.len() == 0 {
            return;
        }
        let draining = self.run_state != RunState::Running;
        let mut gone = Vec::new();
        self.idle
            .remove_if(|idle| draining || !takes_requests(&idle.backend), &mut gone);
        self.close_idle(gone);
    }

    /// Closes kept connections (dropped, hence closed and out of the epoll set).
    fn close_idle(&mut self, connections: Vec<IdleConnection>) {
        for idle in connections {
            self.connection_owners.try_remove(idle.key);
        }
    }
}
