//! The loop, modelled: it calls the session only the way the real loop may
//! (reads where the session gives a buffer, writes what it has pending,
//! connection outcomes only while it connects, the timer it expects), carries
//! out its actions, and plays both peers: a client and backend connections
//! whose bytes are followed as requests.

use std::rc::Rc;
use std::time::{Duration, Instant};

use sluice_command::proto::{HttpFrontend, PathRule, PathRuleKind};

use super::events::{ConnectOutcome, Event};
use super::pool::CountingPool;
use super::stream::RequestStream;
use super::violation::Violation;
use crate::http::buffers::BufferSource;
use crate::http::{
    answers::Answers,
    rewrite::RequestIds,
    router::Router,
    session::{HttpContext, HttpSession, Interest, SessionAction, SessionOutput},
};

/// Size of the pool's buffers: the smallest a session accepts, so that full
/// buffers (backpressure, heads too large) are reached with small inputs.
const BUFFER_SIZE: usize = 1024;
/// Idle backend connections kept for reuse at most.
const MAX_KEPT: usize = 4;

/// The client's side of the connection.
#[derive(Debug, Default)]
pub(super) struct Client {
    /// Sent by the client, not read by the loop yet.
    pub(super) outbox: Vec<u8>,
    /// The client shut its writing side down after `outbox`.
    pub(super) closing: bool,
    /// The session was told of that EOF.
    pub(super) eof_reported: bool,
    /// What the session read, followed as requests.
    pub(super) delivered: RequestStream,
    /// What the client sent stopped framing as requests: the count of heads is
    /// final (Sluice refuses such a request and closes).
    pub(super) garbled: bool,
    /// The session shut down writing to the client.
    pub(super) shut: bool,
}

/// One connection to a backend, as the backend sees it.
#[derive(Debug)]
pub(super) struct BackendConnection {
    /// Numbered in the order connections were opened.
    pub(super) id: usize,
    pub(super) cluster: Rc<str>,
    /// What Sluice wrote on it, followed as requests.
    pub(super) received: RequestStream,
    /// Sent by the backend, not read by the loop yet.
    pub(super) outbox: Vec<u8>,
    /// The backend shut its writing side down after `outbox`.
    pub(super) closing: bool,
    pub(super) eof_reported: bool,
    /// `RequestStarted` while the connection was the session's.
    pub(super) started: usize,
    /// The session shut down writing to the backend.
    pub(super) shut: bool,
}

/// The session's backend connection, as the loop holds it.
#[derive(Debug, Default)]
pub(super) enum Link {
    #[default]
    None,
    Connecting {
        cluster: Rc<str>,
        reuse: bool,
    },
    Connected(BackendConnection),
}

/// What a run did, to tell how much of the session it reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests finished (`RequestFinished`).
    pub requests_finished: usize,
    /// Of them, answered by a backend.
    pub backend_answers: usize,
    /// Bytes written to the client.
    pub bytes_to_client: usize,
    /// Bytes written to backends.
    pub bytes_to_backends: usize,
    /// Backend connections opened.
    pub backend_connections: usize,
    /// The session asked to close by itself.
    pub closed_by_session: bool,
    /// A 101 head was forwarded: the session is switching to a pipe.
    pub switching: bool,
    /// The session switched to a pipe after a 101.
    pub upgraded: bool,
    /// The upgrade's pipe closed and was reported for the access log.
    pub pipe_finished: bool,
}

/// One HTTP session and the loop around it.
#[derive(Debug)]
pub struct SessionDriver {
    pub(super) router: Router,
    answers: Answers,
    pub(super) pool: CountingPool,
    ids: RequestIds,
    out: SessionOutput,
    max_request_body: Option<u64>,
    now: Instant,
    pub(super) session: HttpSession,
    pub(super) client: Client,
    pub(super) link: Link,
    /// Idle connections left for reuse, newest last.
    pub(super) kept: Vec<BackendConnection>,
    /// The session is gone (closed by itself or dropped by the loop).
    pub(super) closed: bool,
    /// Sluice answered a request itself: nothing may reach a backend any more.
    pub(super) answered: bool,
    pub(super) summary: Summary,
}

fn frontend(host: &str, path: &str, cluster: Option<&str>) -> HttpFrontend {
    HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: "127.0.0.1:8080".into(),
        hostname: host.into(),
        path: PathRule {
            kind: PathRuleKind::Prefix as i32,
            value: path.into(),
        },
        method: None,
        cluster_id: cluster.map(Into::into),
    }
}

impl SessionDriver {
    /// A fresh session on a listener routing `example.com` to cluster `app`
    /// (`/deny` denied) and `other.com` to cluster `other`, with a request body
    /// limit of `max_request_body` bytes if any.
    pub fn new(max_request_body: Option<u64>) -> Self {
        let mut router = Router::new();
        for (host, path, cluster) in [
            ("example.com", "/", Some("app")),
            ("example.com", "/deny", None),
            ("other.com", "/", Some("other")),
        ] {
            // The frontends are valid: adding them cannot fail.
            let _ = router.add(&frontend(host, path, cluster));
        }
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], 8080));
        let client = std::net::SocketAddr::from(([192, 0, 2, 1], 4000));
        SessionDriver {
            router,
            answers: Answers::default(),
            pool: CountingPool::new(BUFFER_SIZE),
            ids: RequestIds::new(1),
            out: SessionOutput::default(),
            max_request_body,
            now: Instant::now(),
            session: HttpSession::new(client, address, BUFFER_SIZE),
            client: Client::default(),
            link: Link::None,
            kept: Vec::new(),
            closed: false,
            answered: false,
            summary: Summary::default(),
        }
    }

    /// Lets `event` happen, then checks the oracles that hold at every step.
    pub fn step(&mut self, event: &Event) -> Result<(), Violation> {
        if self.closed {
            return Ok(());
        }
        // Timers compare against the time of the calls: let some pass.
        self.now += Duration::from_millis(10);
        match event {
            Event::ClientSends(bytes) if !self.client.closing => {
                self.client.outbox.extend_from_slice(bytes)
            }
            Event::ClientSends(_) => {}
            Event::ClientCloses => self.client.closing = true,
            Event::FrontReadable { max } => self.front_readable(*max)?,
            Event::FrontWritable { max } => self.front_writable(*max)?,
            Event::Dropped => self.drop_session()?,
            Event::BackendSends(bytes) => self.backend_sends(bytes),
            Event::BackendCloses => self.backend_closes(),
            Event::BackReadable { max } => self.back_readable(*max)?,
            Event::BackWritable { max } => self.back_writable(*max)?,
            Event::BackendBroken => self.backend_broken()?,
            Event::Connect(outcome) => self.connect(*outcome)?,
            Event::TimerFires => self.timer_fires()?,
        }
        self.check_step()
    }

    /// Ends the run as the loop would drop the session now; every buffer must
    /// be back in the pool.
    pub fn finish(mut self) -> Result<Summary, Violation> {
        if !self.closed {
            self.drop_session()?;
        }
        Ok(self.summary)
    }

    /// Calls the session with a context, then carries out what it asked.
    pub(super) fn call(
        &mut self,
        f: impl FnOnce(&mut HttpSession, &mut HttpContext<'_>),
    ) -> Result<(), Violation> {
        self.call_only(f);
        self.perform_actions()
    }

    /// Calls the session with a context; its actions wait in `out`.
    pub(super) fn call_only(&mut self, f: impl FnOnce(&mut HttpSession, &mut HttpContext<'_>)) {
        let mut ctx = HttpContext {
            router: &self.router,
            answers: &self.answers,
            buffers: &mut self.pool,
            request_ids: &mut self.ids,
            sticky_cookie: b"SLUICEID",
            max_request_body: self.max_request_body,
            now: self.now,
            out: &mut self.out,
        };
        f(&mut self.session, &mut ctx);
        #[cfg(debug_assertions)]
        self.session.check_invariants();
    }

    /// Carries out the actions of the last call, in order.
    pub(super) fn perform_actions(&mut self) -> Result<(), Violation> {
        let actions = std::mem::take(&mut self.out.actions);
        let mut logs = std::mem::take(&mut self.out.finished).into_iter();
        let mut upgraded = false;
        for action in actions {
            match action {
                SessionAction::ConnectBackend {
                    cluster_id, reuse, ..
                } => {
                    self.link = Link::Connecting {
                        cluster: cluster_id,
                        reuse,
                    }
                }
                SessionAction::RequestStarted => match &mut self.link {
                    Link::Connected(connection) => connection.started += 1,
                    _ => return Err(Violation::StartedWithoutBackend),
                },
                SessionAction::CloseBackend => self.link = Link::None,
                SessionAction::ReleaseBackend => self.release_backend()?,
                SessionAction::ShutdownFrontWrite => self.client.shut = true,
                SessionAction::ShutdownBackWrite => {
                    if let Link::Connected(connection) = &mut self.link {
                        connection.shut = true;
                    }
                }
                SessionAction::Upgraded => {
                    upgraded = true;
                    self.summary.upgraded = true;
                    self.client.delivered.pipe();
                    if let Link::Connected(connection) = &mut self.link {
                        connection.received.pipe();
                    }
                }
                SessionAction::RequestFinished => {
                    let log = logs.next();
                    self.summary.switching |= log.as_ref().is_some_and(|log| log.status == 101);
                    let answered_by_proxy = log.is_some_and(|log| log.answered_by_proxy);
                    self.request_finished(answered_by_proxy)?;
                }
                // Closed before the loop took the pipe over (the client did not take the
                // 101 in time, or a side went away): the session logs the upgrade itself.
                SessionAction::PipeFinished => {
                    let status = logs.next().map_or(0, |log| log.status);
                    if !self.summary.switching || self.summary.pipe_finished || status != 101 {
                        return Err(Violation::PipeWithoutUpgrade { status });
                    }
                    self.summary.pipe_finished = true;
                }
                SessionAction::Close => self.session_closed()?,
            }
        }
        if upgraded && !self.closed {
            self.hand_over_pipe()?;
        }
        Ok(())
    }

    /// `Upgraded`: the loop takes the connection over as a byte pipe, with the buffers
    /// the session hands it (given back here as the pipe would once written); the
    /// session holds nothing more.
    fn hand_over_pipe(&mut self) -> Result<(), Violation> {
        let mut handover = None;
        self.call_only(|session, ctx| handover = session.take_pipe(ctx));
        self.out.clear();
        let Some(handover) = handover else {
            return Err(Violation::NoHandover);
        };
        for window in [handover.client_bytes, handover.backend_bytes]
            .into_iter()
            .flatten()
        {
            self.pool.give(window.into_inner());
        }
        self.closed = true;
        self.link = Link::None;
        self.expect_no_buffer("a session handed over as a pipe")
    }

    fn request_finished(&mut self, answered_by_proxy: bool) -> Result<(), Violation> {
        self.summary.requests_finished += 1;
        if answered_by_proxy {
            self.answered = true;
            return Ok(());
        }
        self.summary.backend_answers += 1;
        let requests = self.client.delivered.heads();
        if self.summary.backend_answers > requests {
            return Err(Violation::TooManyAnswers {
                answers: self.summary.backend_answers,
                requests,
            });
        }
        Ok(())
    }

    /// The session emitted `Close`: it holds no buffer and wants nothing more.
    fn session_closed(&mut self) -> Result<(), Violation> {
        self.summary.closed_by_session = true;
        let wants = self.session.wants();
        if wants.front_read || wants.back_read {
            return Err(Violation::ActiveAfterClose("to read"));
        }
        if wants.front_write || wants.back_write {
            return Err(Violation::ActiveAfterClose("to write"));
        }
        if self.session.expected_timeout().is_some() {
            return Err(Violation::ActiveAfterClose("a timer"));
        }
        self.expect_no_buffer("a closed session")?;
        self.drop_session()
    }

    /// The loop drops the session: its backend connection and its buffers.
    fn drop_session(&mut self) -> Result<(), Violation> {
        self.closed = true;
        self.link = Link::None;
        self.session.release_all_buffers(&mut self.pool);
        self.expect_no_buffer("a dropped session")
    }

    fn expect_no_buffer(&self, holder: &'static str) -> Result<(), Violation> {
        if self.pool.foreign {
            return Err(Violation::ForeignBuffer);
        }
        match self.pool.in_use() {
            0 => Ok(()),
            in_use => Err(Violation::BufferLeak { in_use, holder }),
        }
    }

    /// What holds after every step.
    fn check_step(&self) -> Result<(), Violation> {
        if self.closed {
            return Ok(());
        }
        if self.session.is_idle() {
            self.expect_no_buffer("an idle session")?;
        }
        // Outside a connect (the loop's own timer), a session always waits for
        // something: I/O, or a timer that ends it.
        let waits = self.session.wants() != Interest::default()
            || self.session.expected_timeout().is_some();
        if !waits && !matches!(self.link, Link::Connecting { .. }) {
            return Err(Violation::Stuck);
        }
        if self.client.shut && !self.session.front_pending().is_empty() {
            return Err(Violation::PendingAfterShutdown { side: "client" });
        }
        if matches!(&self.link, Link::Connected(c) if c.shut)
            && !self.session.back_pending().is_empty()
        {
            return Err(Violation::PendingAfterShutdown { side: "backend" });
        }
        Ok(())
    }

    fn front_readable(&mut self, max: usize) -> Result<(), Violation> {
        let eof_due = self.client.closing && !self.client.eof_reported;
        let Some(space) = self.session.front_read_buffer(&mut self.pool) else {
            return Ok(());
        };
        let n = space.len().min(max).min(self.client.outbox.len());
        if n > 0 {
            space[..n].copy_from_slice(&self.client.outbox[..n]);
            let bytes: Vec<u8> = self.client.outbox.drain(..n).collect();
            if !self.client.garbled && self.client.delivered.feed(&bytes).is_err() {
                self.client.garbled = true;
            }
            self.call(|s, ctx| s.front_received(n, ctx))
        } else if eof_due && self.client.outbox.is_empty() {
            self.client.eof_reported = true;
            self.call(|s, ctx| s.front_received(0, ctx))
        } else {
            // Nothing to read: the buffer just taken goes back, as in the loop.
            self.session.release_buffers(&mut self.pool);
            Ok(())
        }
    }

    fn front_writable(&mut self, max: usize) -> Result<(), Violation> {
        let n = self.session.front_pending().len().min(max);
        if n == 0 {
            return Ok(());
        }
        self.summary.bytes_to_client += n;
        self.call(|s, ctx| s.front_written(n, ctx))
    }

    fn timer_fires(&mut self) -> Result<(), Violation> {
        match self.session.expected_timeout() {
            Some(kind) => {
                self.call_only(|s, ctx| s.timed_out(kind, ctx));
                // Every timer the session asks for ends something (an answer, a close).
                if self.out.actions.is_empty() {
                    return Err(Violation::TimerIgnored(kind));
                }
                self.perform_actions()
            }
            // Connecting: the loop's own timers (connect, idle) apply; an idle
            // one drops the session.
            None => self.drop_session(),
        }
    }

    /// A connection the session asked for is ready, or none can be had.
    fn connect(&mut self, outcome: ConnectOutcome) -> Result<(), Violation> {
        let Link::Connecting { cluster, reuse } = &self.link else {
            return Ok(());
        };
        let (cluster, reuse) = (Rc::clone(cluster), *reuse);
        match outcome {
            ConnectOutcome::Reused(sticky) if reuse => {
                let kept = self.kept.iter().rposition(|c| c.cluster == cluster);
                let connection = match kept {
                    Some(at) => self.kept.remove(at),
                    None => self.open_connection(cluster),
                };
                self.link = Link::Connected(connection);
                self.call(|s, ctx| s.backend_reused(sticky, ctx))
            }
            ConnectOutcome::Connected(sticky) | ConnectOutcome::Reused(sticky) => {
                self.link = Link::Connected(self.open_connection(cluster));
                self.call(|s, ctx| s.backend_connected(sticky, ctx))
            }
            ConnectOutcome::Failed => {
                self.link = Link::None;
                self.call(|s, ctx| s.backend_connect_failed(ctx))
            }
            ConnectOutcome::Unavailable => {
                self.link = Link::None;
                self.call(|s, ctx| s.backend_unavailable(ctx))
            }
        }
    }

    fn open_connection(&mut self, cluster: Rc<str>) -> BackendConnection {
        let id = self.summary.backend_connections;
        self.summary.backend_connections += 1;
        BackendConnection {
            id,
            cluster,
            received: RequestStream::default(),
            outbox: Vec::new(),
            closing: false,
            eof_reported: false,
            started: 0,
            shut: false,
        }
    }

    /// The session leaves its connection for reuse: it must end between requests.
    fn release_backend(&mut self) -> Result<(), Violation> {
        let Link::Connected(connection) = std::mem::take(&mut self.link) else {
            return Ok(());
        };
        if !connection.received.at_boundary() {
            return Err(Violation::ReleasedMidRequest {
                connection: connection.id,
            });
        }
        if self.kept.len() == MAX_KEPT {
            self.kept.remove(0);
        }
        self.kept.push(connection);
        Ok(())
    }
}

/// Runs `events` through a fresh session and checks every oracle.
pub fn run(
    events: impl IntoIterator<Item = Event>,
    max_request_body: Option<u64>,
) -> Result<Summary, Violation> {
    let mut driver = SessionDriver::new(max_request_body);
    for event in events {
        driver.step(&event)?;
    }
    driver.finish()
}

/// Runs a fuzzer's bytes: the first chooses whether the listener limits
/// request bodies, the rest are events (see [`super::EventReader`]).
pub fn run_bytes(data: &[u8]) -> Result<Summary, Violation> {
    let Some((first, rest)) = data.split_first() else {
        return Ok(Summary::default());
    };
    let limit = (first & 1 == 1).then_some(64);
    run(super::EventReader::new(rest), limit)
}
