//! Connecting sessions to backends: selection, non-blocking connect, retries on other
//! backends, and what each outcome tells the backend core.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::{connection_of, connection_of_mut, BackendConnection, ConnectionState};
use crate::backends::Backend;
use crate::server::metrics::{BackendStats, OpenConnection};
use crate::server::session::Core;
use crate::server::tokens::backend_token;
use crate::server::Server;
use crate::transport::{ConnectProgress, Transport};

/// What an HTTP request asks of the loop (`SessionAction::ConnectBackend`).
#[derive(Debug)]
pub(in crate::server) struct BackendRequest {
    pub(in crate::server) cluster_id: Rc<str>,
    /// The client's sticky cookie value.
    pub(in crate::server) sticky_id: Option<Rc<str>>,
    /// A kept idle connection may serve the request.
    pub(in crate::server) reuse: bool,
    /// The session's idle connection goes to this cluster and may be kept.
    pub(in crate::server) current_connection: bool,
}

/// How an HTTP session's backend connection became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// A connect completed.
    Connected,
    /// A connection kept idle (the session's own or one of the pool) serves the request.
    Reused,
}

/// What came of an HTTP session's `ConnectBackend`: queued on the session and told to
/// it at the start of its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its backend connection (in `SessionIo::back`) is ready.
    Linked(Link),
    /// The cluster had no backend to offer.
    Unavailable,
    /// Every connect attempt failed.
    GaveUp,
}

impl Server {
    /// Balances one HTTP request: the cluster's selection picks a backend (a valid sticky
    /// cookie first); the session's current connection is kept when it goes to that
    /// backend, else it returns to the pool and the request takes a kept connection to the
    /// chosen backend or opens one.
    pub(in crate::server) fn balance_request(
        &mut self,
        key: usize,
        request: BackendRequest,
        now: Instant,
    ) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let same_cluster = session
            .backend
            .cluster_id
            .as_deref()
            .is_some_and(|id| id == &*request.cluster_id);
        if !same_cluster || session.stats.cluster.is_none() {
            session.stats.cluster = Some(self.ctx.metrics.cluster(&request.cluster_id));
        }
        session.backend.reuse_idle = request.reuse;
        session.backend.connect_attempts = 0;
        session.backend.sticky_id = request.sticky_id;
        session.backend.cluster_id = Some(request.cluster_id);
        let current = connection_of(&self.ctx.connections, session.backend.connection)
            .filter(|back| request.current_connection && back.is_connected())
            .map(|back| Rc::clone(&back.backend));
        let Some(current) = current else {
            session.stats.backend = None;
            self.drop_backend(key, now);
            self.connect_backend(key, None, now);
            return;
        };
        let Some(cluster_id) = session.backend.cluster_id.as_deref() else {
            return;
        };
        let sticky_id = session.backend.sticky_id.as_deref();
        let chosen = self
            .ctx
            .backends
            .select_for_request(cluster_id, sticky_id, &current, now);
        match chosen {
            Ok(chosen) if Rc::ptr_eq(&chosen, &current) => {
                self.queue_outcome(key, Outcome::Linked(Link::Reused));
            }
            Ok(chosen) => {
                self.release_backend(key, now);
                self.connect_backend(key, Some(chosen), now);
            }
            Err(error) => {
                log::debug!("session {key}: {error}");
                self.release_backend(key, now);
                self.no_backend_available(key);
            }
        }
    }

    /// Chooses a backend for session `key` (or takes `chosen` for the first attempt) and
    /// starts connecting; retries on other backends when a connect fails at once; closes
    /// the session when none can be tried.
    pub(in crate::server) fn connect_backend(
        &mut self,
        key: usize,
        mut chosen: Option<Rc<RefCell<Backend>>>,
        now: Instant,
    ) {
        loop {
            let Some(session) = self.sessions.get_mut(key) else {
                return;
            };
            let Some(cluster_id) = session.backend.cluster_id.as_deref() else {
                return;
            };
            // The cluster's retry setting matters from the second attempt on.
            if session.backend.connect_attempts > 0 {
                let max_attempts = 1 + self.ctx.backends.max_connect_retries(cluster_id);
                if session.backend.connect_attempts >= max_attempts {
                    log::debug!("session {key}: giving up after {max_attempts} connect attempts");
                    self.connect_gave_up(key, false);
                    return;
                }
            }
            let sticky_id = session.backend.sticky_id.as_deref();
            let selected = match chosen.take() {
                Some(backend) => Ok(backend),
                None => self.ctx.backends.select(cluster_id, sticky_id, now),
            };
            let backend = match selected {
                Ok(backend) => backend,
                Err(error) => {
                    log::debug!("session {key}: {error}");
                    self.no_backend_available(key);
                    return;
                }
            };
            session.backend.connect_attempts += 1;
            let (address, fail_open) = {
                let chosen = backend.borrow();
                (chosen.address(), !chosen.health().is_healthy())
            };
            let kept = backend.borrow().traffic().cloned();
            let stats = match kept {
                Some(stats) => stats,
                None => {
                    let id = backend.borrow().backend_id().to_owned();
                    let stats = match self.ctx.metrics.known_backend(cluster_id, &id) {
                        Some(stats) => stats,
                        None => self
                            .ctx
                            .metrics
                            .backend(cluster_id, &id, &address.to_string()),
                    };
                    backend.borrow_mut().keep_traffic(Rc::clone(&stats));
                    stats
                }
            };
            session.stats.backend = Some(BackendStats {
                backend: backend.clone(),
                stats: Rc::clone(&stats),
            });
            let retried = session.backend.connect_attempts > 1;
            session.stats.each(|stats| {
                stats.retries.add(u64::from(retried));
                stats.fail_open.add(u64::from(fail_open));
            });
            if session.backend.reuse_idle && self.reuse_idle(key, &backend, &stats, now) {
                return;
            }
            let Some(session) = self.sessions.get_mut(key) else {
                return;
            };
            self.ctx.backends.connection_opened(&backend);
            let entry = self.ctx.connections.vacant_entry();
            let token = backend_token(entry.key());
            match Transport::connect(address, self.poll.registry(), token) {
                Ok(transport) => {
                    session.backend.connection = Some(entry.key());
                    entry.insert(BackendConnection {
                        transport,
                        backend,
                        address,
                        state: ConnectionState::Connecting {
                            session: key,
                            since: now,
                        },
                        open: Some(OpenConnection::new(session.stats.cluster.clone(), stats)),
                    });
                    self.schedule_session_timer(key);
                    return;
                }
                Err(error) => {
                    log::debug!("session {key}: connect to {address}: {error}");
                    session.stats.each(|stats| stats.connect_errors.increment());
                    session.stats.backend = None;
                    self.ctx.backends.connect_failed(&backend, now);
                    self.ctx.backends.connection_closed(&backend, now);
                }
            }
        }
    }

    /// True while session `key` waits for its backend connect to complete.
    pub(in crate::server) fn connect_in_progress(&self, key: usize) -> bool {
        let back = self.sessions.get(key).and_then(|s| s.backend.connection);
        connection_of(&self.ctx.connections, back).is_some_and(|back| !back.is_connected())
    }

    /// Checks the outcome of a pending connect after its socket reported readiness.
    pub(in crate::server) fn check_connect(&mut self, key: usize, now: Instant) {
        let back_key = self.sessions.get(key).and_then(|s| s.backend.connection);
        let Some(back) = connection_of_mut(&mut self.ctx.connections, back_key) else {
            return;
        };
        let Some(since) = back.connecting_since() else {
            return;
        };
        match back.transport.connect_progress() {
            ConnectProgress::Pending => {}
            ConnectProgress::Connected => {
                back.state = ConnectionState::InUse {
                    session: key,
                    since,
                };
                let backend = back.backend.clone();
                let connect_time = now.saturating_duration_since(since);
                self.ctx
                    .backends
                    .connect_succeeded(&backend, connect_time, now);
                let session = &mut self.sessions[key];
                session
                    .stats
                    .each(|stats| stats.connect_time.record(connect_time));
                session.io.last_back_activity = now;
                session.backend.connect_attempts = 0;
                if matches!(session.core, Core::Http(_)) {
                    self.queue_outcome(key, Outcome::Linked(Link::Connected));
                }
            }
            ConnectProgress::Failed(error) => {
                log::debug!("session {key}: connect to {}: {error}", back.address);
                self.connect_failed(key, now);
            }
        }
    }

    /// A connect failed or timed out: tell the backend core, then try another backend.
    pub(in crate::server) fn connect_failed(&mut self, key: usize, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(mut back) = session
            .backend
            .connection
            .take()
            .and_then(|k| self.ctx.connections.try_remove(k))
        else {
            return;
        };
        if let Err(error) = back.transport.deregister(self.poll.registry()) {
            log::debug!("session {key}: deregister failed connect: {error}");
        }
        session.stats.each(|stats| stats.connect_errors.increment());
        session.stats.backend = None;
        // Connects under way when the backend's last failure was counted fail with it.
        let started = back.connecting_since().unwrap_or(now);
        self.ctx
            .backends
            .connect_failed_since(&back.backend, started, now);
        self.ctx.backends.connection_closed(&back.backend, now);
        self.connect_backend(key, None, now);
    }

    /// The cluster has no backend to offer: counted, and the session answers 503 (HTTP)
    /// or closes (TCP).
    fn no_backend_available(&mut self, key: usize) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.stats.backend = None;
        session
            .stats
            .each(|stats| stats.refused_connections.increment());
        self.connect_gave_up(key, true);
    }
}

impl Server {
    /// Queues `outcome` for HTTP session `key`: it is told at the start of its next step.
    pub(in crate::server) fn queue_outcome(&mut self, key: usize, outcome: Outcome) {
        if let Some(session) = self.sessions.get_mut(key) {
            debug_assert!(
                session.backend.outcome.is_none(),
                "one outcome per ConnectBackend"
            );
            session.backend.outcome = Some(outcome);
        }
    }

    /// Drives HTTP session `key` if an outcome waits for it (after an event outside its
    /// own step, such as a connect timeout).
    pub(in crate::server) fn deliver_outcome(&mut self, key: usize, now: Instant) {
        if self
            .sessions
            .get(key)
            .is_some_and(|session| session.backend.outcome.is_some())
        {
            self.drive_http(key, now);
        }
    }

    /// No backend could be connected: a TCP session closes, an HTTP session answers 503.
    fn connect_gave_up(&mut self, key: usize, unavailable: bool) {
        let is_http = matches!(self.sessions.get(key).map(|s| &s.core), Some(Core::Http(_)));
        if !is_http {
            self.close_session(key);
        } else if unavailable {
            self.queue_outcome(key, Outcome::Unavailable);
        } else {
            self.queue_outcome(key, Outcome::GaveUp);
        }
    }
}
