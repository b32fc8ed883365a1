//! Driving HTTP sessions: socket I/O around the sans-IO [`HttpSession`], and the actions
//! it asks of the loop (connect, close the backend, shut down a side, log, close).

use std::collections::HashSet;
use std::time::Instant;

use crate::access_log::{LoggedBackend, LoggedTls};
use crate::backends::FastHash;
use crate::http::answers::Answers;
use crate::http::rewrite::RequestIds;
use crate::http::router::Router;
use crate::http::session::{
    HttpContext, HttpSession, RequestLog, SessionAction, SessionOutput, Termination,
};
use crate::pool::BufferPool;

use super::backend_connections::{
    connection_of, connection_of_mut, BackendConnection, BackendRequest, Link, Outcome,
};
use super::metrics::record_request;
use super::session::{Core, Phase, SessionIo, SessionOutcome, TcpCore};
use super::Server;

/// Default name of the sticky-session cookie.
pub(crate) const DEFAULT_STICKY_COOKIE: &str = "SLUICEID";

/// What an HTTP listener's sessions route with.
#[derive(Debug)]
pub(crate) struct HttpRoutes {
    pub(crate) router: Router,
    pub(crate) answers: Answers,
    pub(crate) sticky_cookie: String,
    /// Largest request body accepted, in bytes (`None`: no limit).
    pub(crate) max_request_body: Option<u64>,
}

impl Default for HttpRoutes {
    fn default() -> Self {
        HttpRoutes {
            router: Router::new(),
            answers: Answers::new(&[]),
            sticky_cookie: DEFAULT_STICKY_COOKIE.to_owned(),
            max_request_body: None,
        }
    }
}

impl HttpRoutes {
    /// The context a session of this listener is called with.
    fn context<'a>(
        &'a self,
        pool: &'a mut BufferPool,
        request_ids: &'a mut RequestIds,
        out: &'a mut SessionOutput,
        now: Instant,
    ) -> HttpContext<'a> {
        HttpContext {
            router: &self.router,
            answers: &self.answers,
            buffers: pool,
            request_ids,
            sticky_cookie: self.sticky_cookie.as_bytes(),
            max_request_body: self.max_request_body,
            now,
            out,
        }
    }
}

/// A socket failed while pumping.
enum Broken {
    Front,
    Back,
}

impl Server {
    /// Moves bytes for HTTP session `key` and carries out its actions until nothing moves.
    pub(super) fn drive_http(&mut self, key: usize, now: Instant) {
        loop {
            let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
                return;
            };
            if matches!(session.phase, Phase::Lingering { .. }) {
                if session.drain_lingering(&mut self.ctx.scratch) == SessionOutcome::Close {
                    self.close_session(key);
                }
                return;
            }
            let Core::Http(http) = &mut session.core else {
                // It became a byte pipe (an upgrade).
                return self.drive(key, now);
            };
            let routes = self
                .ctx
                .http_routes
                .get(&session.listener)
                .unwrap_or(&self.ctx.empty_routes);
            let mut ctx = routes.context(
                &mut self.ctx.pool,
                &mut self.ctx.request_ids,
                &mut self.ctx.session_output,
                now,
            );
            if let Some(outcome) = session.backend.outcome.take() {
                tell_outcome(
                    http,
                    outcome,
                    session.backend.cluster_id.as_deref(),
                    connection_of(&self.ctx.connections, session.backend.connection),
                    &self.ctx.sticky_clusters,
                    &mut ctx,
                );
            }
            let back = connection_of_mut(&mut self.ctx.connections, session.backend.connection);
            let pumped = pump(http, &mut session.io, back, &mut ctx, now);
            if let Err(Broken::Front) = pumped {
                http.front_broken(&mut ctx);
            }
            let acted = !self.ctx.session_output.actions.is_empty();
            let expected = http.expected_timeout();
            let front_flushed = http.front_pending().is_empty();
            session.track_http_timer(expected, now);
            let progress = match pumped {
                Ok(progress) => progress,
                Err(Broken::Front) => {
                    // Nothing more can be written to the client: only the records of
                    // what it broke off are kept, for the metrics and the access log.
                    let mut output = std::mem::take(&mut self.ctx.session_output);
                    self.record_all(key, &output, now);
                    output.clear();
                    self.ctx.session_output = output;
                    self.close_session(key);
                    return;
                }
                Err(Broken::Back) => {
                    self.drop_backend(key, now);
                    true
                }
            };
            // Taken out while performing (and put back, keeping its capacity): what the
            // actions lead to is queued on the session, never reported from inside.
            let mut output = std::mem::take(&mut self.ctx.session_output);
            let upgraded = output.actions.contains(&SessionAction::Upgraded);
            self.perform_all(key, &mut output, now);
            debug_assert!(
                self.ctx.session_output.actions.is_empty(),
                "a session was driven from inside a step"
            );
            output.clear();
            self.ctx.session_output = output;
            if upgraded {
                self.become_pipe(key, now);
                continue;
            }
            if self.close_if_requested(key, front_flushed, now) {
                continue;
            }
            if !progress && !acted {
                self.schedule_session_timer(key);
                return;
            }
        }
    }

    /// After a `101`: the session's connection goes on as a byte pipe, the same as a TCP
    /// session's, with the bytes the HTTP session had read.
    fn become_pipe(&mut self, key: usize, now: Instant) {
        let handover = self.call_http_session(key, now, |http, ctx| http.take_pipe(ctx));
        self.ctx.session_output.clear();
        let (Some(Some(handover)), Some(session)) = (handover, self.sessions.get_mut(key)) else {
            return;
        };
        session.core = Core::Tcp(Box::new(TcpCore::from_upgrade(handover, now)));
        session.http_timer = None;
    }

    /// Lets an HTTP session react to an event of the loop (connect outcome, timeout).
    pub(super) fn with_http_session(
        &mut self,
        key: usize,
        now: Instant,
        call: impl FnOnce(&mut HttpSession, &mut HttpContext<'_>),
    ) {
        if self.call_http_session(key, now, call).is_some() {
            self.drive_http(key, now);
        }
    }

    /// Calls `call` with the open HTTP session `key` and its context (its listener's
    /// routes, the buffers, the session output); `None` if there is no such session.
    fn call_http_session<R>(
        &mut self,
        key: usize,
        now: Instant,
        call: impl FnOnce(&mut HttpSession, &mut HttpContext<'_>) -> R,
    ) -> Option<R> {
        let session = self.sessions.get_mut(key).filter(|s| !s.is_closed())?;
        let Core::Http(http) = &mut session.core else {
            return None;
        };
        let routes = self
            .ctx
            .http_routes
            .get(&session.listener)
            .unwrap_or(&self.ctx.empty_routes);
        let mut ctx = routes.context(
            &mut self.ctx.pool,
            &mut self.ctx.request_ids,
            &mut self.ctx.session_output,
            now,
        );
        Some(call(http, &mut ctx))
    }

    /// Carries out the actions of `output` in order, each finished request with its record.
    fn perform_all(&mut self, key: usize, output: &mut SessionOutput, now: Instant) {
        let mut records = output.finished.iter();
        for action in output.actions.drain(..) {
            match action {
                SessionAction::RequestFinished | SessionAction::PipeFinished => {
                    if let Some(log) = records.next() {
                        self.record(key, &action, log, now);
                    }
                }
                action => self.perform(key, action, now),
            }
        }
    }

    /// Only the records of `output` (finished requests and pipes), its other actions
    /// left undone.
    fn record_all(&mut self, key: usize, output: &SessionOutput, now: Instant) {
        let mut records = output.finished.iter();
        for action in &output.actions {
            if matches!(
                action,
                SessionAction::RequestFinished | SessionAction::PipeFinished
            ) {
                if let Some(log) = records.next() {
                    self.record(key, action, log, now);
                }
            }
        }
    }

    fn record(&mut self, key: usize, action: &SessionAction, log: &RequestLog, now: Instant) {
        match action {
            SessionAction::PipeFinished => self.log_access(key, log),
            _ => self.request_finished(key, log, now),
        }
    }

    fn perform(&mut self, key: usize, action: SessionAction, now: Instant) {
        match action {
            SessionAction::ConnectBackend {
                cluster_id,
                sticky_id,
                reuse,
                current_connection,
            } => {
                let request = BackendRequest {
                    cluster_id,
                    sticky_id,
                    reuse,
                    current_connection,
                };
                self.balance_request(key, request, now);
            }
            SessionAction::CloseBackend => self.drop_backend(key, now),
            SessionAction::ReleaseBackend => self.release_backend(key, now),
            SessionAction::ShutdownFrontWrite => {
                if let Some(session) = self.sessions.get_mut(key) {
                    let _ = session.io.front.shutdown_write();
                }
            }
            SessionAction::ShutdownBackWrite => {
                let back = self.sessions.get(key).and_then(|s| s.backend.connection);
                if let Some(back) = connection_of_mut(&mut self.ctx.connections, back) {
                    let _ = back.transport.shutdown_write();
                }
            }
            SessionAction::Upgraded => self.ctx.counters.upgrades += 1,
            SessionAction::RequestStarted => self.request_started(key),
            // Handled with their records by `perform_all`.
            SessionAction::RequestFinished | SessionAction::PipeFinished => {}
            SessionAction::Close => {
                if let Some(session) = self.sessions.get_mut(key) {
                    if session.phase == Phase::Active {
                        session.phase = Phase::ClosingAfterAnswer;
                    }
                }
            }
        }
    }

    /// Once a session asked to close and its answer is written: lingering close.
    /// Returns true when the session changed state and must be driven again.
    fn close_if_requested(&mut self, key: usize, front_flushed: bool, now: Instant) -> bool {
        let Some(session) = self.sessions.get_mut(key) else {
            return false;
        };
        if session.phase != Phase::ClosingAfterAnswer || !front_flushed {
            return false;
        }
        session.start_lingering(now);
        self.drop_backend(key, now);
        self.schedule_session_timer(key);
        true
    }

    /// Closes the session's backend connection, if any.
    pub(super) fn drop_backend(&mut self, key: usize, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.end_active_request(&mut self.ctx.backends, &self.ctx.connections);
        // Dropped, hence closed, which also takes it out of the epoll set.
        let Some(back) = session.backend.connection.take() else {
            return;
        };
        if let Some(back) = self.ctx.connections.try_remove(back) {
            self.ctx.backends.connection_closed(&back.backend, now);
        }
    }

    /// The session sent a request on its backend connection: it counts as active there.
    fn request_started(&mut self, key: usize) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let back = connection_of(&self.ctx.connections, session.backend.connection);
        if let Some(back) = back.filter(|_| !session.backend.request_active) {
            session.backend.request_active = true;
            self.ctx.backends.request_started(&back.backend);
        }
    }

    fn request_finished(&mut self, key: usize, log: &RequestLog, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.end_active_request(&mut self.ctx.backends, &self.ctx.connections);
        record_request(self.ctx.metrics.proxy(), &session.stats, log);
        if let Some(chosen) = session.stats.backend.as_ref().filter(|_| log.routed) {
            // Passive check: a connection that broke before its response (502) counts
            // against the backend; any response of its own ends such a streak.
            if log.answered_by_proxy && log.status == 502 {
                // Exchanges under way when the backend's last failure was counted fail
                // with it: one incident, one step of its backoff.
                let started = now.checked_sub(log.total_time).unwrap_or(now);
                self.ctx
                    .backends
                    .record_passive_failure_since(&chosen.backend, started, now);
            } else if !log.answered_by_proxy && log.status != 0 && log.termination.is_normal() {
                self.ctx
                    .backends
                    .record_passive_success(&chosen.backend, now);
            }
        }
        // An upgrade is logged when its pipe closes, with the bytes piped.
        if log.termination != Termination::Upgraded {
            self.log_access(key, log);
        }
    }

    /// Writes `log` to the access log, with the session's cluster and chosen backend.
    pub(super) fn log_access(&mut self, key: usize, log: &RequestLog) {
        if !self.ctx.access_log.is_enabled() {
            return;
        }
        let Some(session) = self.sessions.get(key) else {
            return;
        };
        // An unrouted request is nobody's: the cluster and backend of an earlier
        // request on the same connection are not its own. The backend is the one chosen
        // for the request, even if its connection already went back to the pool or was
        // closed.
        let (cluster, chosen) = if log.routed {
            (
                session.backend.cluster_id.as_deref(),
                session
                    .stats
                    .backend
                    .as_ref()
                    .map(|chosen| chosen.backend.borrow()),
            )
        } else {
            (None, None)
        };
        let backend = chosen.as_ref().map(|backend| LoggedBackend {
            id: backend.backend_id(),
            address: backend.address(),
        });
        let tls = session.io.front.tls_layer().map(|tls| {
            let connection = tls.connection();
            LoggedTls {
                version: connection
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .unwrap_or("-"),
                cipher_suite: connection
                    .negotiated_cipher_suite()
                    .and_then(|s| s.suite().as_str())
                    .unwrap_or("-"),
                sni: connection.server_name(),
            }
        });
        self.ctx
            .access_log
            .record(session.io.client, cluster, backend, log, tls);
    }
}

/// Tells an HTTP session what came of its `ConnectBackend`; a linked connection
/// carries the name the sticky cookie gives its backend when the cluster is sticky.
fn tell_outcome(
    http: &mut HttpSession,
    outcome: Outcome,
    cluster_id: Option<&str>,
    back: Option<&BackendConnection>,
    sticky_clusters: &HashSet<String, FastHash>,
    ctx: &mut HttpContext<'_>,
) {
    let Outcome::Linked(link) = outcome else {
        return match outcome {
            Outcome::Unavailable => http.backend_unavailable(ctx),
            _ => http.backend_connect_failed(ctx),
        };
    };
    let sticky = cluster_id.is_some_and(|id| sticky_clusters.contains(id));
    // The cookie names the backend the way selection looks it up: its sticky id, or else
    // its backend id.
    let backend = back.filter(|_| sticky).map(|back| back.backend.borrow());
    let sticky_id = backend.as_ref().map(|backend| backend.sticky_name());
    match link {
        Link::Connected => http.backend_connected(sticky_id, ctx),
        Link::Reused => http.backend_reused(sticky_id, ctx),
    }
}

/// One round of reads and writes on both sockets of an HTTP session.
fn pump(
    http: &mut HttpSession,
    io: &mut SessionIo,
    back: Option<&mut BackendConnection>,
    ctx: &mut HttpContext<'_>,
    now: Instant,
) -> Result<bool, Broken> {
    let mut progress = false;
    if io.front.is_readable() {
        if let Some(space) = http.front_read_buffer(ctx.buffers) {
            match io.front.read(space) {
                Ok(Some(n)) => {
                    http.front_received(n, ctx);
                    io.last_front_activity = now;
                    progress = true;
                }
                // Nothing to read: the buffer just taken goes back, so that an idle
                // keep-alive session holds none.
                Ok(None) => http.release_buffers(ctx.buffers),
                Err(_) => return Err(Broken::Front),
            }
        }
    }
    if let Some(back) = back.filter(|b| b.is_connected()) {
        if back.transport.is_writable() && !http.back_pending().is_empty() {
            match back.transport.write(http.back_pending()) {
                Ok(Some(n)) => {
                    http.back_written(n, ctx);
                    io.last_back_activity = now;
                    progress = true;
                }
                Ok(None) => {}
                Err(_) => {
                    http.backend_closed_with_error(ctx);
                    return Err(Broken::Back);
                }
            }
        }
        if back.transport.is_readable() {
            if let Some(space) = http.back_read_buffer(ctx.buffers) {
                match back.transport.read(space) {
                    Ok(Some(n)) => {
                        http.back_received(n, ctx);
                        io.last_back_activity = now;
                        progress = true;
                    }
                    Ok(None) => http.release_buffers(ctx.buffers),
                    Err(_) => {
                        http.backend_closed_with_error(ctx);
                        return Err(Broken::Back);
                    }
                }
            }
        }
    }
    if io.front.is_writable() && !http.front_pending().is_empty() {
        match io.front.write(http.front_pending()) {
            Ok(Some(n)) => {
                http.front_written(n, ctx);
                io.last_front_activity = now;
                progress = true;
            }
            Ok(None) => {}
            Err(_) => return Err(Broken::Front),
        }
    }
    Ok(progress)
}
