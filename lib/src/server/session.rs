//! A proxied connection as the loop sees it: the client's socket, the backend's once
//! chosen, readiness of each, idle bookkeeping, and the protocol core that decides what
//! bytes go where.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::backend_connections::{
    connection_of, BackendConnection, BackendConnections, BackendLink,
};
use super::metrics::SessionStats;
use super::proxy_header::AwaitingHeader;
use crate::backends::BackendMap;
use crate::http::buffers::Window;
use crate::http::session::{Handover, HttpSession, RequestLog, Termination, TimeoutKind};
use crate::pipe::Direction;
use crate::pool::BufferPool;
use crate::transport::Transport;

/// Timeouts of the listener a session came from, in milliseconds (compact: every
/// session carries a copy).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTimeouts {
    pub(crate) front_ms: u32,
    pub(crate) back_ms: u32,
    pub(crate) connect_ms: u32,
    pub(crate) request_ms: u32,
}

impl SessionTimeouts {
    pub(crate) fn front(&self) -> Duration {
        Duration::from_millis(u64::from(self.front_ms))
    }

    pub(crate) fn back(&self) -> Duration {
        Duration::from_millis(u64::from(self.back_ms))
    }

    pub(crate) fn connect(&self) -> Duration {
        Duration::from_millis(u64::from(self.connect_ms))
    }

    pub(crate) fn request(&self) -> Duration {
        Duration::from_millis(u64::from(self.request_ms))
    }
}

/// The protocol logic of a session.
#[derive(Debug)]
pub(crate) enum Core {
    /// A TCP listener's session: bytes both ways (boxed like the HTTP one, so that
    /// `Session` stays small).
    Tcp(Box<TcpCore>),
    /// An HTTP listener's session.
    Http(Box<HttpSession>),
    /// A session of an `expect_proxy` listener until its PROXY protocol header arrived.
    AwaitingHeader(Box<AwaitingHeader>),
}

/// The byte pipe of a TCP session, or of an HTTP connection after an upgrade: one
/// direction each way.
#[derive(Debug, Default)]
pub(crate) struct TcpCore {
    /// Client to backend.
    pub(crate) up: Direction,
    /// Backend to client.
    pub(crate) down: Direction,
    /// Set when the pipe is an upgraded HTTP connection.
    pub(crate) upgrade: Option<Box<UpgradeRecord>>,
}

/// The HTTP upgrade a pipe comes from: its record is completed and logged when the pipe
/// closes. Such a pipe closes after `front_timeout` without a byte either way (like the
/// HTTP session it was, and HAProxy's `timeout tunnel`).
#[derive(Debug)]
pub(crate) struct UpgradeRecord {
    /// The upgrade's record at the switch (status 101, the heads' bytes, time to the switch).
    pub(crate) log: RequestLog,
    /// When the pipe took over.
    pub(crate) since: Instant,
}

impl TcpCore {
    /// The pipe of an upgraded HTTP connection, starting with the bytes the HTTP session
    /// had read on each side.
    pub(crate) fn from_upgrade(handover: Handover, now: Instant) -> TcpCore {
        let direction = |window: Option<Window>| {
            window.map_or_else(Direction::default, |window| {
                let (buffer, start, end) = window.into_parts();
                Direction::holding(buffer, start, end)
            })
        };
        TcpCore {
            up: direction(handover.client_bytes),
            down: direction(handover.backend_bytes),
            upgrade: Some(Box::new(UpgradeRecord {
                log: handover.log,
                since: now,
            })),
        }
    }

    /// The access log record of the upgrade this pipe comes from, completed with the bytes
    /// piped and the pipe's time until `now`.
    pub(crate) fn upgrade_log(&self, now: Instant) -> Option<RequestLog> {
        let upgrade = self.upgrade.as_ref()?;
        let mut log = upgrade.log;
        log.bytes_in += self.up.transferred();
        log.bytes_out += self.down.transferred();
        log.total_time += now.saturating_duration_since(upgrade.since);
        log.termination = Termination::Upgraded;
        Some(log)
    }
}

/// The sockets of a session and their bookkeeping, apart from the protocol logic so that
/// the drivers can borrow both at once.
#[derive(Debug)]
pub(crate) struct SessionIo {
    pub(crate) front: Transport,
    pub(crate) client: SocketAddr,
    pub(crate) last_front_activity: Instant,
    pub(crate) last_back_activity: Instant,
}

/// Where a session is in its life, as the loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Moving bytes for its protocol core.
    Active,
    /// The HTTP session asked to close once its answer is written.
    ClosingAfterAnswer,
    /// Lingering close: the client's write side is shut and its remaining input is
    /// read and dropped until EOF or `until`.
    Lingering { until: Instant },
    /// Closed during this batch; removed from the slab after it.
    Closed,
}

/// One client connection and everything the loop tracks for it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) generation: u64,
    pub(crate) io: SessionIo,
    pub(crate) core: Core,
    /// The listener the client connected to.
    pub(crate) listener: SocketAddr,
    /// What the session knows of its backend.
    pub(crate) backend: BackendLink,
    /// Handles on the metrics of its cluster and backend.
    pub(crate) stats: SessionStats,
    pub(crate) phase: Phase,
    pub(crate) timeouts: SessionTimeouts,
    /// The HTTP timer currently expected, and since when.
    pub(crate) http_timer: Option<(TimeoutKind, Instant)>,
    /// The deadline a timer entry is scheduled for, if any.
    pub(crate) timer_scheduled: Option<Instant>,
    /// When its TLS handshake started, while it is under way.
    pub(crate) handshake_since: Option<Instant>,
}

/// What the loop must do with a session after driving it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionOutcome {
    Continue,
    Close,
    /// Close: the backend connection broke (reset, error) before the backend sent a
    /// byte, which counts against the backend like a failed connect (passive check).
    BackendBroke,
}

/// Why a session's timer fired.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    Connect,
    Linger,
    Http(TimeoutKind),
    /// The PROXY protocol header did not arrive in time.
    ProxyHeader,
    /// The TLS handshake did not finish in time.
    Handshake,
    FrontIdle,
    BackIdle,
}

/// How long a closing session reads and drops its client's input at most.
const LINGER: Duration = Duration::from_secs(2);

impl Session {
    /// A session for a freshly accepted client.
    pub(crate) fn new(
        generation: u64,
        front: Transport,
        client: SocketAddr,
        listener: SocketAddr,
        core: Core,
        timeouts: SessionTimeouts,
        now: Instant,
    ) -> Self {
        Session {
            generation,
            io: SessionIo {
                front,
                client,
                last_front_activity: now,
                last_back_activity: now,
            },
            core,
            listener,
            backend: BackendLink::default(),
            stats: SessionStats::default(),
            phase: Phase::Active,
            timeouts,
            http_timer: None,
            timer_scheduled: None,
            handshake_since: None,
        }
    }

    /// The earliest moment something about this session must be checked; `back` is its
    /// backend connection.
    pub(crate) fn next_deadline(&self, back: Option<&BackendConnection>) -> Instant {
        let mut deadline = self.protocol_deadline(back);
        if let Phase::Lingering { until } = self.phase {
            deadline = deadline.min(until);
        }
        if let Some(deadline_of_handshake) = self.handshake_deadline() {
            deadline = deadline.min(deadline_of_handshake);
        }
        if let Some(since) = back.and_then(BackendConnection::connecting_since) {
            deadline = deadline.min(since + self.timeouts.connect());
        }
        deadline
    }

    fn protocol_deadline(&self, back: Option<&BackendConnection>) -> Instant {
        let io = &self.io;
        match &self.core {
            Core::Tcp(core) if core.upgrade.is_some() => {
                io.last_front_activity.max(io.last_back_activity) + self.timeouts.front()
            }
            Core::Tcp(_) => {
                let front = io.last_front_activity + self.timeouts.front();
                match back {
                    Some(back) if back.is_connected() => {
                        front.min(io.last_back_activity + self.timeouts.back())
                    }
                    _ => front,
                }
            }
            Core::Http(_) => match self.http_timer {
                Some((kind, since)) => self.http_deadline(kind, since),
                // Connecting: only the connect timeout applies.
                None => io.last_front_activity + self.timeouts.front().max(self.timeouts.connect()),
            },
            Core::AwaitingHeader(waiting) => waiting.deadline,
        }
    }

    fn http_deadline(&self, kind: TimeoutKind, since: Instant) -> Instant {
        let io = &self.io;
        match kind {
            // Waiting for a head: counted from its start, so a client that trickles bytes
            // is cut off; waiting for a body: counted from the last bytes received.
            TimeoutKind::Request if self.backend.connection.is_none() => {
                since + self.timeouts.request()
            }
            TimeoutKind::Request => since.max(io.last_front_activity) + self.timeouts.request(),
            TimeoutKind::Back => since.max(io.last_back_activity) + self.timeouts.back(),
            TimeoutKind::Front => {
                since.max(io.last_front_activity).max(io.last_back_activity) + self.timeouts.front()
            }
        }
    }

    /// Which deadline, if any, has passed at `now`; `back` is its backend connection.
    pub(crate) fn expired(&self, now: Instant, back: Option<&BackendConnection>) -> Option<Expiry> {
        if matches!(self.phase, Phase::Lingering { until } if now >= until) {
            return Some(Expiry::Linger);
        }
        if self
            .handshake_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            return Some(Expiry::Handshake);
        }
        if let Some(since) = back.and_then(BackendConnection::connecting_since) {
            if now >= since + self.timeouts.connect() {
                return Some(Expiry::Connect);
            }
        }
        if now < self.protocol_deadline(back) {
            return None;
        }
        match (&self.core, self.http_timer) {
            (Core::Http(_), Some((kind, _))) => Some(Expiry::Http(kind)),
            (Core::Http(_), None) => Some(Expiry::FrontIdle),
            (Core::AwaitingHeader(_), _) => Some(Expiry::ProxyHeader),
            (Core::Tcp(core), _) => {
                if core.upgrade.is_some()
                    || now >= self.io.last_front_activity + self.timeouts.front()
                {
                    Some(Expiry::FrontIdle)
                } else {
                    Some(Expiry::BackIdle)
                }
            }
        }
    }

    /// When the TLS handshake under way must have finished: within the listener's
    /// request timeout (HTTPS) or front timeout (TCP).
    fn handshake_deadline(&self) -> Option<Instant> {
        let since = self.handshake_since?;
        Some(match self.core {
            Core::Http(_) => since + self.timeouts.request(),
            _ => since + self.timeouts.front(),
        })
    }

    /// Records the HTTP timer the session expects now (from `expected_timeout`).
    pub(crate) fn track_http_timer(&mut self, expected: Option<TimeoutKind>, now: Instant) {
        if self.http_timer.map(|(kind, _)| kind) != expected {
            self.http_timer = expected.map(|kind| (kind, now));
        }
    }

    /// Whether the session was closed during this batch.
    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Starts a lingering close: the client's write side is shut down now.
    pub(crate) fn start_lingering(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Lingering { .. } | Phase::Closed) {
            let _ = self.io.front.shutdown_write();
            self.phase = Phase::Lingering {
                until: now + LINGER,
            };
        }
    }

    /// Reads and drops the client's input while lingering; `Close` at EOF or error.
    pub(crate) fn drain_lingering(&mut self, scratch: &mut [u8]) -> SessionOutcome {
        while self.io.front.is_readable() {
            match self.io.front.read(scratch) {
                Ok(Some(0)) | Err(_) => return SessionOutcome::Close,
                Ok(_) => {}
            }
        }
        SessionOutcome::Continue
    }

    /// Ends the request counted as active on the backend connection, if any.
    pub(crate) fn end_active_request(
        &mut self,
        backends: &mut BackendMap,
        connections: &BackendConnections,
    ) {
        if std::mem::take(&mut self.backend.request_active) {
            if let Some(back) = connection_of(connections, self.backend.connection) {
                backends.request_finished(&back.backend);
            }
        }
    }

    /// Gives back every pooled buffer the session holds (it is being closed).
    pub(crate) fn release_buffers(&mut self, pool: &mut BufferPool) {
        match &mut self.core {
            Core::Tcp(core) => {
                core.up.release(pool);
                core.down.release(pool);
            }
            Core::Http(http) => http.release_all_buffers(pool),
            // Its buffer is its own, not the pool's.
            Core::AwaitingHeader(_) => {}
        }
    }
}

impl TcpCore {
    /// Moves bytes between the two sockets until nothing more can move now.
    pub(crate) fn pump(
        &mut self,
        io: &mut SessionIo,
        mut back: Option<&mut BackendConnection>,
        pool: &mut BufferPool,
        now: Instant,
    ) -> SessionOutcome {
        loop {
            let Ok(from_client) = self.read_front(io, pool, now) else {
                return SessionOutcome::Close;
            };
            let to_backend = self.flush_up(io, back.as_deref_mut(), pool, now);
            let from_backend = to_backend
                .and_then(|b| Ok(b | self.read_back(io, back.as_deref_mut(), pool, now)?));
            let Ok(backend_moved) = from_backend else {
                return if self.down.transferred() == 0 {
                    SessionOutcome::BackendBroke
                } else {
                    SessionOutcome::Close
                };
            };
            let Ok(to_client) = self.flush_down(io, pool, now) else {
                return SessionOutcome::Close;
            };
            let progress = from_client | backend_moved | to_client;
            if self.up.is_finished() && self.down.is_finished() {
                return SessionOutcome::Close;
            }
            if !progress {
                self.up.written(0, pool);
                self.down.written(0, pool);
                return SessionOutcome::Continue;
            }
        }
    }

    fn read_front(
        &mut self,
        io: &mut SessionIo,
        pool: &mut BufferPool,
        now: Instant,
    ) -> io::Result<bool> {
        let moved = fill(&mut self.up, &mut io.front, pool)?;
        if moved {
            io.last_front_activity = now;
        }
        Ok(moved)
    }

    fn read_back(
        &mut self,
        io: &mut SessionIo,
        back: Option<&mut BackendConnection>,
        pool: &mut BufferPool,
        now: Instant,
    ) -> io::Result<bool> {
        let Some(back) = back.filter(|b| b.is_connected()) else {
            return Ok(false);
        };
        let moved = fill(&mut self.down, &mut back.transport, pool)?;
        if moved {
            io.last_back_activity = now;
        }
        Ok(moved)
    }

    fn flush_up(
        &mut self,
        io: &mut SessionIo,
        back: Option<&mut BackendConnection>,
        pool: &mut BufferPool,
        now: Instant,
    ) -> io::Result<bool> {
        let Some(back) = back.filter(|b| b.is_connected()) else {
            return Ok(false);
        };
        let moved = drain(&mut self.up, &mut back.transport, pool)?;
        if moved {
            io.last_back_activity = now;
        }
        Ok(moved)
    }

    fn flush_down(
        &mut self,
        io: &mut SessionIo,
        pool: &mut BufferPool,
        now: Instant,
    ) -> io::Result<bool> {
        let moved = drain(&mut self.down, &mut io.front, pool)?;
        if moved {
            io.last_front_activity = now;
        }
        Ok(moved)
    }
}

/// Reads once from `source` into `direction`; true when bytes or EOF arrived.
fn fill(
    direction: &mut Direction,
    source: &mut Transport,
    pool: &mut BufferPool,
) -> io::Result<bool> {
    if !source.is_readable() {
        return Ok(false);
    }
    let Some(space) = direction.read_space(pool) else {
        return Ok(false);
    };
    Ok(match source.read(space)? {
        Some(n) => {
            direction.received(n);
            true
        }
        None => false,
    })
}

/// Writes `direction`'s pending bytes to `destination` once, then passes its EOF on
/// when everything is written; true on progress.
fn drain(
    direction: &mut Direction,
    destination: &mut Transport,
    pool: &mut BufferPool,
) -> io::Result<bool> {
    let mut progress = false;
    if destination.is_writable() && !direction.pending().is_empty() {
        if let Some(n) = destination.write(direction.pending())? {
            direction.written(n, pool);
            progress = true;
        }
    }
    if direction.wants_shutdown() {
        destination.shutdown_write()?;
        direction.shutdown_done();
        progress = true;
    }
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::answers::Answers;
    use crate::http::rewrite::RequestIds;
    use crate::http::router::Router;
    use crate::http::session::{HttpContext, SessionOutput};

    /// The loop closes sessions the HTTP core did not close itself (a socket
    /// broke, an idle timer, a drain): their buffers go back all the same.
    #[test]
    fn closing_an_http_session_mid_request_gives_its_buffers_back() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let client = std::net::TcpStream::connect(address).expect("connect");
        let mut pool = BufferPool::new(4096, 4);
        let mut http = HttpSession::new(address, address, 4096);
        let partial_head = b"GET / HTTP/1.1\r\nHost: exa";
        let space = http.front_read_buffer(&mut pool).expect("reads");
        space[..partial_head.len()].copy_from_slice(partial_head);
        let (router, answers) = (Router::new(), Answers::default());
        let (mut ids, mut out) = (RequestIds::new(1), SessionOutput::default());
        let mut ctx = HttpContext {
            router: &router,
            answers: &answers,
            buffers: &mut pool,
            request_ids: &mut ids,
            sticky_cookie: b"SLUICEID",
            max_request_body: None,
            now: Instant::now(),
            out: &mut out,
        };
        http.front_received(partial_head.len(), &mut ctx);
        assert_eq!(pool.in_use(), 1, "the partial head holds a buffer");
        let timeouts = SessionTimeouts {
            front_ms: 1000,
            back_ms: 1000,
            connect_ms: 1000,
            request_ms: 1000,
        };
        let mut session = Session::new(
            1,
            Transport::plain(mio::net::TcpStream::from_std(client)),
            address,
            address,
            Core::Http(Box::new(http)),
            timeouts,
            Instant::now(),
        );
        session.release_buffers(&mut pool);
        assert_eq!(pool.in_use(), 0);
    }
}
