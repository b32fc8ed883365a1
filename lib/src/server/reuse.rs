//! The loop's side of the [`IdlePool`]: an HTTP session's reusable backend connection goes
//! in when the session lets it go (`ReleaseBackend`), a request that may be replayed takes
//! one of its chosen backend's instead of connecting, and kept connections leave when their
//! backend drops them (any event), when idle too long, when their backend is removed or
//! when the worker drains.
//!
//! Accounting: a kept connection is not active on its backend (`active_connections` means
//! "in use"): `connection_closed` when it goes in, `connection_opened` when taken. Only
//! backends in `Normal` status keep connections, so a removed backend is never held back
//! by them.
//!
//! Policy for requests that cannot be replayed (a body, or a method that is not
//! idempotent): they never take a kept connection, so a backend's idle close cannot race
//! them; they go on a fresh connection, which is then kept like any other.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::Interest;

use super::connect::Link;
use super::idle_pool::IdlePool;
use super::metrics::OpenConnection;
use super::session::BackConnection;
use super::tokens::{pooled_token, session_token, Side, MAX_POOLED};
use super::{RunState, Server, TimerEvent};
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
    transport: Transport,
    backend: Rc<RefCell<Backend>>,
    address: SocketAddr,
}

/// The worker's kept connections.
pub(crate) type IdleConnections = IdlePool<IdleConnection>;

/// A new, empty pool with the worker's bounds.
pub(crate) fn new_idle_pool() -> IdleConnections {
    IdlePool::new(MAX_IDLE_PER_BACKEND, MAX_POOLED)
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
        let keep = clean
            && self.run_state == RunState::Running
            && back.backend.borrow().status() == BackendStatus::Normal;
        let BackConnection {
            mut transport,
            backend,
            address,
            ..
        } = back;
        self.backends.connection_closed(&backend, now);
        let registry = self.poll.registry();
        if !keep {
            if let Err(error) = transport.deregister(registry) {
                log::debug!("session {key}: deregister back: {error}");
            }
            return;
        }
        let connection = IdleConnection {
            transport,
            backend,
            address,
        };
        let owner = owner(&connection.backend);
        let deadline = now + idle_time;
        let inserted = match self.idle.insert(owner, connection, deadline) {
            Ok(inserted) => inserted,
            Err(mut connection) => {
                let _ = connection.transport.deregister(registry);
                return;
            }
        };
        if let Some(mut evicted) = inserted.evicted {
            let _ = evicted.transport.deregister(registry);
        }
        let Some(kept) = self.idle.get_mut(inserted.key) else {
            return;
        };
        // Only reads matter while idle: an error or hang-up is reported anyway.
        let token = pooled_token(inserted.key);
        if let Err(error) = kept
            .transport
            .reregister(registry, token, Interest::READABLE)
        {
            log::debug!("cannot keep a backend connection: {error}");
            self.idle.remove(inserted.key);
            return;
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
        while let Some((_, idle)) = self.idle.take(owner(backend)) {
            let IdleConnection {
                mut transport,
                address,
                ..
            } = idle;
            let token = session_token(key, Side::Back);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(error) = transport.reregister(self.poll.registry(), token, interest) {
                log::debug!("session {key}: cannot reuse a kept connection: {error}");
                continue;
            }
            self.backends.connection_opened(backend);
            // Connected and idle: the request can be written at once.
            transport.assume_writable();
            session.io.back = Some(BackConnection {
                transport,
                backend: Rc::clone(backend),
                address,
                connecting_since: None,
                _open: OpenConnection::reused(session.stats.cluster.clone(), Rc::clone(stats)),
            });
            session.io.last_back_activity = now;
            session.connect_attempts = 0;
            self.link_http_session(key, backend, Link::Reused, now);
            return true;
        }
        false
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
        if let Some(mut idle) = self.idle.remove(key) {
            log::debug!("kept connection to {} closed by the backend", idle.address);
            let _ = idle.transport.deregister(self.poll.registry());
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

    /// Closes the kept connections of backends that are not `Normal` any more (removed),
    /// or all of them when the worker stops taking new work.
    pub(super) fn close_idle_of_gone_backends(&mut self) {
        if self.idle.len() == 0 {
            return;
        }
        let draining = self.run_state != RunState::Running;
        let mut gone = Vec::new();
        self.idle.remove_if(
            |idle| draining || idle.backend.borrow().status() != BackendStatus::Normal,
            &mut gone,
        );
        self.close_idle(gone);
    }

    fn close_idle(&mut self, connections: Vec<IdleConnection>) {
        for mut idle in connections {
            let _ = idle.transport.deregister(self.poll.registry());
        }
    }
}
