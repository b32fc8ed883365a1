//! The worker's event loop: one `mio::Poll`, listeners, the command channel and sessions
//! in a slab, one timer structure. No threads, no blocking calls.
//!
//! Tokens map to a session's client connection or to a backend connection, whose owner
//! (a session or the pool) is looked up (see [`tokens`]). A session closed while a batch
//! of events is handled is removed only after the batch, so a stale event never reaches a
//! reused key; timer entries carry the session's generation for the same reason. A stale
//! event on a reused backend connection key only reports readiness that a read or write
//! then finds absent.

mod accept;
mod backend_connections;
mod commands;
mod context;
mod http_driver;
mod listeners;
mod metrics;
mod proxy_header;
mod rebalance;
mod session;
mod tls_commands;
mod tokens;

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};
use slab::Slab;
use sluice_command::channel::Channel;
use sluice_command::proto::{WorkerMessage, WorkerRequest};
use sluice_command::state::ConfigState;
use thiserror::Error;

use crate::access_log::{AccessLog, AccessLogFormat, AccessLogTarget};
use crate::backends::BackendMap;
use crate::health_check::HealthChecker;
use crate::http::rewrite::RequestIds;
use crate::http::session::{SessionOutput, TimeoutKind};
use crate::metrics::MetricsRegistry;
use crate::pool::BufferPool;
use crate::timer::Timer;
use backend_connections::{connection_of, connection_of_mut, ConnectionState};
use context::WorkerContext;
use http_driver::HttpRoutes;
pub use listeners::ListenerError;
use listeners::Listeners;
pub use metrics::WorkerCounters;
use session::{Core, Expiry, Phase, Session, SessionOutcome};
use tokens::{Side, Target};

/// Longest sleep of the poll loop when no timer is due.
const MAX_POLL_WAIT: Duration = Duration::from_secs(1);
/// Events handled per poll call.
const EVENTS_CAPACITY: usize = 1024;
/// Spare buffers the pool keeps.
const SPARE_BUFFERS: usize = 256;

/// Settings a worker starts with (the rest arrives as requests on its channel).
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// This worker's id, carried by its events.
    pub id: u32,
    /// Size of each pooled buffer.
    pub buffer_size: usize,
    /// Sessions at most; accepting pauses at this number.
    pub max_connections: usize,
    /// Where the access log goes.
    pub access_log: AccessLogTarget,
    /// How its lines are written.
    pub access_log_format: AccessLogFormat,
}

/// Why the worker stopped with an error.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The poll could not be created or waited on.
    #[error("event loop failure: {0}")]
    Poll(#[from] io::Error),
    /// The command channel broke.
    #[error("command channel failure: {0}")]
    Channel(#[from] sluice_command::channel::ChannelError),
    /// The access log could not be opened.
    #[error("cannot open the access log: {0}")]
    AccessLog(io::Error),
}

/// What a timer entry is for.
#[derive(Debug, Clone, Copy)]
enum TimerEvent {
    Session {
        key: usize,
        generation: u64,
    },
    /// Kept idle backend connections may have expired.
    IdleSweep,
}

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    /// Soft stop: no more accepts; exit when the sessions are gone or at the deadline.
    Draining {
        deadline: Instant,
    },
    Stopped,
}

/// The worker: its poll loop and everything the loop owns.
pub struct Server {
    options: WorkerOptions,
    poll: Poll,
    channel: Channel<WorkerMessage, WorkerRequest>,
    state: ConfigState,
    listeners: Listeners,
    sessions: Slab<Session>,
    /// Sessions closed during the current batch, removed after it.
    closed: Vec<usize>,
    /// The shared parts every session driver uses.
    ctx: WorkerContext,
    next_generation: u64,
    run_state: RunState,
    /// Main went away while this worker drained: nothing more is sent to it.
    orphaned: bool,
}

impl Server {
    /// A worker that takes its orders from `channel`.
    pub fn new(
        options: WorkerOptions,
        mut channel: Channel<WorkerMessage, WorkerRequest>,
    ) -> Result<Self, ServerError> {
        let poll = Poll::new()?;
        channel.set_nonblocking(true)?;
        poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            tokens::CHANNEL,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let pool = BufferPool::new(options.buffer_size, SPARE_BUFFERS);
        let access_log = AccessLog::open(&options.access_log, options.access_log_format)
            .map_err(ServerError::AccessLog)?;
        let seed = u64::from(std::process::id()) << 32 | u64::from(options.id);
        Ok(Server {
            options,
            poll,
            channel,
            state: ConfigState::default(),
            listeners: Listeners::default(),
            sessions: Slab::new(),
            closed: Vec::new(),
            ctx: WorkerContext {
                backends: BackendMap::new(),
                idle: backend_connections::new_idle_pool(),
                connections: Slab::new(),
                idle_sweep_at: None,
                health: HealthChecker::new(),
                tcp_frontends: HashMap::default(),
                http_routes: HashMap::default(),
                empty_routes: HttpRoutes::default(),
                sticky_clusters: Default::default(),
                request_ids: RequestIds::new(seed),
                session_output: SessionOutput::default(),
                scratch: vec![0; 4096],
                access_log,
                pool,
                timer: Timer::new(),
                counters: WorkerCounters::default(),
                metrics: MetricsRegistry::new(),
                tls: crate::tls::TlsListeners::default(),
                tls_stats: Default::default(),
            },
            next_generation: 0,
            run_state: RunState::Running,
            orphaned: false,
        })
    }

    /// Runs until stopped by a request or until the main process goes away.
    pub fn run(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        while self.run_state != RunState::Stopped {
            let now = Instant::now();
            let mut timeout = self.ctx.timer.poll_timeout(now, MAX_POLL_WAIT);
            let recovery = self
                .ctx
                .health
                .next_recovery_deadline(&self.ctx.backends, now);
            if let Some(deadline) = self
                .ctx
                .health
                .next_deadline()
                .into_iter()
                .chain(recovery)
                .min()
            {
                timeout = timeout.min(deadline.saturating_duration_since(now));
            }
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error.into());
            }
            let now = Instant::now();
            for event in events.iter() {
                self.dispatch(event, now)?;
            }
            self.fire_timers(now);
            self.after_batch(now)?;
        }
        if !self.orphaned {
            self.channel.set_nonblocking(false)?;
            self.channel.flush()?;
        }
        Ok(())
    }

    fn dispatch(&mut self, event: &mio::event::Event, now: Instant) -> Result<(), ServerError> {
        match tokens::target(event.token()) {
            Target::Channel => self.channel_ready(event, now),
            Target::Listener(key) => {
                self.accept(key, now);
                Ok(())
            }
            Target::Probe(key) => {
                let registry = self.poll.registry();
                self.ctx
                    .health
                    .ready(key, event, &mut self.ctx.backends, registry, now);
                Ok(())
            }
            Target::Backend(key) => {
                let Some(connection) = self.ctx.connections.get_mut(key) else {
                    return Ok(());
                };
                connection.transport.readiness_reported(event);
                match connection.state {
                    ConnectionState::Connecting { session, .. }
                    | ConnectionState::InUse { session, .. } => {
                        self.session_ready(session, Side::Back, event, now);
                    }
                    ConnectionState::Idle { pool_key } => self.idle_ready(key, pool_key),
                }
                Ok(())
            }
            Target::Session(key) => {
                self.session_ready(key, Side::Front, event, now);
                Ok(())
            }
        }
    }

    fn session_ready(&mut self, key: usize, side: Side, event: &mio::event::Event, now: Instant) {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return;
        };
        match side {
            Side::Front => session.io.front.readiness_reported(event),
            // Reported on the connection already (its event names it, not the session).
            Side::Back if session.backend.connection.is_none() => return,
            Side::Back => {}
        }
        if side == Side::Back && self.connect_in_progress(key) {
            self.check_connect(key, now);
        }
        self.drive(key, now);
    }

    /// Lets a session move bytes, and closes it when it is done.
    fn drive(&mut self, key: usize, now: Instant) {
        if !self.flush_front(key) {
            return;
        }
        self.drive_core(key, now);
        if self.flush_front(key) {
            self.check_handshake(key, now);
        }
    }

    fn drive_core(&mut self, key: usize, now: Instant) {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return;
        };
        if matches!(session.core, Core::Tcp(_)) && matches!(session.phase, Phase::Lingering { .. })
        {
            // Closing once the records the TLS layer holds are sent (see `flush_front`).
            return;
        }
        match &mut session.core {
            Core::Tcp(core) => {
                let before = (core.up.transferred(), core.down.transferred());
                let back = connection_of_mut(&mut self.ctx.connections, session.backend.connection);
                let outcome = core.pump(&mut session.io, back, &mut self.ctx.pool, now);
                let received = core.up.transferred().saturating_sub(before.0);
                let sent = core.down.transferred().saturating_sub(before.1);
                if received > 0 || sent > 0 {
                    session.stats.each(|stats| {
                        stats.received_bytes.add(received);
                        stats.sent_bytes.add(sent);
                    });
                }
                let back = connection_of(&self.ctx.connections, session.backend.connection);
                let backend = back.map(|back| &back.backend);
                if let Some(backend) = backend.filter(|_| before.1 == 0 && sent > 0) {
                    // The backend's first bytes: it serves, whatever broke before.
                    self.ctx.backends.record_passive_success(backend, now);
                }
                match outcome {
                    SessionOutcome::Continue => {}
                    SessionOutcome::Close if session.io.front.holds_output() => {
                        session.phase = Phase::Lingering {
                            until: now + session.timeouts.front(),
                        };
                        self.schedule_session_timer(key);
                    }
                    SessionOutcome::Close => self.close_session(key),
                    // An upgraded connection's backend already answered (its 101).
                    SessionOutcome::BackendBroke if core.upgrade.is_some() => {
                        self.close_session(key);
                    }
                    SessionOutcome::BackendBroke => {
                        if let Some(back) = back {
                            let started = back.in_use_since().unwrap_or(now);
                            let backend = back.backend.clone();
                            self.ctx
                                .backends
                                .record_passive_failure_since(&backend, started, now);
                        }
                        self.close_session(key);
                    }
                }
            }
            Core::Http(_) => self.drive_http(key, now),
            Core::AwaitingHeader(_) => self.read_proxy_header(key, now),
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self
            .ctx
            .health
            .next_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            let registry = self.poll.registry();
            self.ctx
                .health
                .run_due(&mut self.ctx.backends, registry, now);
        }
        if self
            .ctx
            .health
            .next_recovery_deadline(&self.ctx.backends, now)
            .is_some_and(|deadline| deadline <= now)
        {
            let registry = self.poll.registry();
            self.ctx
                .health
                .run_recovery(&mut self.ctx.backends, registry, now);
        }
        while let Some(event) = self.ctx.timer.pop_expired(now) {
            let (key, generation) = match event {
                TimerEvent::Session { key, generation } => (key, generation),
                TimerEvent::IdleSweep => {
                    self.sweep_idle(now);
                    continue;
                }
            };
            let Some(session) = self.sessions.get_mut(key) else {
                continue;
            };
            if session.generation != generation || session.is_closed() {
                continue;
            }
            session.timer_scheduled = None;
            let back = connection_of(&self.ctx.connections, session.backend.connection);
            match session.expired(now, back) {
                Some(Expiry::Connect) => {
                    self.ctx.counters.connect_timeouts += 1;
                    self.connect_failed(key, now);
                    self.deliver_outcome(key, now);
                }
                Some(Expiry::Http(kind)) => {
                    self.ctx.counters.idle_timeouts += u64::from(kind == TimeoutKind::Front);
                    self.with_http_session(key, now, |http, ctx| http.timed_out(kind, ctx));
                }
                Some(Expiry::Handshake) => {
                    log::debug!("session {key} closed: TLS handshake not finished in time");
                    if let Some(tls) = session.io.front.tls_layer_mut() {
                        tls.timed_out();
                    }
                    self.close_session(key);
                }
                Some(Expiry::ProxyHeader) => {
                    log::debug!("session {key} closed: no PROXY protocol header in time");
                    self.ctx.metrics.proxy().proxy_protocol_errors.increment();
                    self.close_session(key);
                }
                Some(expiry) => {
                    log::debug!("session {key} closed: {expiry:?} timeout");
                    self.ctx.counters.idle_timeouts += 1;
                    self.close_session(key);
                }
                None => {}
            }
            self.schedule_session_timer(key);
        }
    }

    /// Makes sure a timer entry is pending for the session's next deadline.
    fn schedule_session_timer(&mut self, key: usize) {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return;
        };
        let deadline = session.next_deadline(connection_of(
            &self.ctx.connections,
            session.backend.connection,
        ));
        if session.timer_scheduled.is_some_and(|at| at <= deadline) {
            return;
        }
        session.timer_scheduled = Some(deadline);
        self.ctx.timer.schedule(
            deadline,
            TimerEvent::Session {
                key,
                generation: session.generation,
            },
        );
    }

    /// Work done once per batch: deferred removals, events, pause/resume, draining.
    fn after_batch(&mut self, now: Instant) -> Result<(), ServerError> {
        if matches!(self.run_state, RunState::Draining { .. }) {
            self.close_idle_http_sessions();
        }
        for key in self.closed.drain(..) {
            if self.sessions.contains(key) {
                self.sessions.remove(key);
            }
        }
        self.forward_backend_events()?;
        self.ctx.access_log.flush();
        self.ctx
            .metrics
            .proxy()
            .buffers_in_use
            .set(self.ctx.pool.in_use() as u64);
        let full = self.sessions.len() >= self.options.max_connections;
        if full != self.listeners.is_paused() {
            if full {
                log::warn!(
                    "worker {}: {} sessions, accepting paused",
                    self.options.id,
                    self.sessions.len()
                );
                self.ctx.metrics.proxy().accept_pauses.increment();
            }
            self.listeners.set_paused(full, self.poll.registry());
        }
        if let RunState::Draining { deadline } = self.run_state {
            if self.sessions.is_empty() || now >= deadline {
                self.run_state = RunState::Stopped;
            }
        }
        if self.channel.has_pending_writes() && !self.orphaned {
            self.channel.flush()?;
        }
        Ok(())
    }

    /// While draining, keep-alive connections between requests are closed at once, as
    /// they would only hold the worker until their idle timeout; a request in progress
    /// finishes first (its session is idle right after it). A connection accepted just
    /// before the soft stop keeps its chance to send its first request (within its request
    /// timeout and the drain deadline): closing it would reset a client that did nothing
    /// wrong, e.g. while an upgrade hands the listening sockets over.
    fn close_idle_http_sessions(&mut self) {
        let idle: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.is_closed()
                    && matches!(&s.core, Core::Http(http) if http.is_idle_between_requests())
            })
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.close_session(key);
        }
    }

    /// Closes a session's sockets now and frees its slot after the batch.
    fn close_session(&mut self, key: usize) {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return;
        };
        session.phase = Phase::Closed;
        if let Core::Tcp(core) = &session.core {
            if let Some(log) = core.upgrade_log(Instant::now()) {
                self.log_access(key, &log);
            }
        }
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        if session.handshake_since.take().is_some() {
            if let Some(tls) = session.io.front.tls_layer() {
                let failure = tls.failure();
                self.ctx.tls_stats.failed(
                    failure.unwrap_or(crate::tls::metrics::HandshakeFailure::ClosedByClient),
                );
            }
        }
        session.end_active_request(&mut self.ctx.backends, &self.ctx.connections);
        // No deregistration: closing a socket takes it out of the epoll set (the worker
        // never duplicates them), which saves a system call per connection. Until the
        // front socket is closed after this batch, the `Closed` phase filters its events.
        session.release_buffers(&mut self.ctx.pool);
        if let Some(back) = session.backend.connection.take() {
            if let Some(back) = self.ctx.connections.try_remove(back) {
                self.ctx
                    .backends
                    .connection_closed(&back.backend, Instant::now());
            }
        }
        self.ctx.metrics.proxy().active_sessions.decrement();
        self.closed.push(key);
    }

    /// Counters of this worker that have no metric name (timeouts, upgrades).
    pub fn counters(&self) -> &WorkerCounters {
        &self.ctx.counters
    }

    /// Everything this worker counts, as `QueryMetrics` reports it.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.ctx.metrics
    }
}
