//! Sessions of `expect_proxy` listeners before their PROXY protocol header arrived.
//!
//! Such a session reads into a small fixed buffer until [`proxy_protocol::parse`] gives a
//! verdict, bounded by the listener's `request_timeout` (HTTP) or `front_timeout` (TCP).
//! A whole header turns it into the session its listener speaks, with the header's
//! source as the client address (the socket's peer for `LOCAL` and `UNKNOWN`), and the
//! bytes read after the header handed to it as if just read. A missing, invalid or late
//! header closes the connection without answer, and is counted.

use std::net::SocketAddr;
use std::time::Instant;

use super::listeners::ListenerKind;
use super::session::Core;
use super::Server;
use crate::http::session::HttpSession;
use crate::proxy_protocol::{self, Parsed, MAX_HEADER_LEN};

/// The state of a session waiting for its header.
#[derive(Debug)]
pub(crate) struct AwaitingHeader {
    /// What the session becomes once the header is read.
    kind: ListenerKind,
    /// When the header must have arrived.
    pub(crate) deadline: Instant,
    /// Big enough for any header the parser accepts, so that a full buffer always has a
    /// verdict; what follows the header in it belongs to the session.
    received: [u8; MAX_HEADER_LEN],
    len: usize,
}

impl AwaitingHeader {
    /// Waits for the header of a session of a `kind` listener until `deadline`.
    pub(crate) fn new(kind: ListenerKind, deadline: Instant) -> Self {
        AwaitingHeader {
            kind,
            deadline,
            received: [0; MAX_HEADER_LEN],
            len: 0,
        }
    }
}

/// What reading the header gave this time.
enum HeaderRead {
    /// Nothing more to read now.
    Waiting,
    /// The header was read; the bytes after it belong to the session.
    Complete {
        client: Option<SocketAddr>,
        header_len: usize,
    },
    /// The connection must close.
    Failed,
}

impl Server {
    /// Reads what the client sent while its session waits for a header.
    pub(super) fn read_proxy_header(&mut self, key: usize, now: Instant) {
        match self.read_header_bytes(key, now) {
            HeaderRead::Waiting => self.schedule_session_timer(key),
            HeaderRead::Failed => {
                self.ctx.metrics.proxy().proxy_protocol_errors.increment();
                self.close_session(key);
            }
            HeaderRead::Complete { client, header_len } => {
                self.start_proxied_session(key, client, header_len, now)
            }
        }
    }

    fn read_header_bytes(&mut self, key: usize, now: Instant) -> HeaderRead {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return HeaderRead::Waiting;
        };
        let Core::AwaitingHeader(waiting) = &mut session.core else {
            return HeaderRead::Waiting;
        };
        let io = &mut session.io;
        while io.front.is_readable() {
            let space = &mut waiting.received[waiting.len..];
            match io.front.read(space) {
                Ok(None) => break,
                Ok(Some(0)) => {
                    log::debug!(
                        "session {key}: {} closed before its PROXY header",
                        io.client
                    );
                    return HeaderRead::Failed;
                }
                Err(error) => {
                    log::debug!("session {key}: reading the PROXY header: {error}");
                    return HeaderRead::Failed;
                }
                Ok(Some(n)) => {
                    waiting.len += n;
                    io.last_front_activity = now;
                }
            }
            match proxy_protocol::parse(&waiting.received[..waiting.len]) {
                Ok(Parsed::Incomplete) if waiting.len < waiting.received.len() => {}
                Ok(Parsed::Incomplete) => {
                    // The parser bounds every header below the buffer's size.
                    log::debug!("session {key}: PROXY header does not fit its buffer");
                    return HeaderRead::Failed;
                }
                Ok(Parsed::Done {
                    header_len,
                    source,
                    destination,
                }) => {
                    log::debug!(
                        "session {key}: PROXY header from {}: {source:?} to {destination:?}",
                        io.client
                    );
                    return HeaderRead::Complete {
                        client: source,
                        header_len,
                    };
                }
                Err(error) => {
                    log::debug!("session {key}: from {}: {error}", io.client);
                    return HeaderRead::Failed;
                }
            }
        }
        HeaderRead::Waiting
    }

    /// Turns the session into its listener's kind, as if the bytes after the header
    /// had just been read.
    fn start_proxied_session(
        &mut self,
        key: usize,
        client: Option<SocketAddr>,
        header_len: usize,
        now: Instant,
    ) {
        let buffer_size = self.options.buffer_size;
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        if let Some(client) = client {
            session.io.client = client;
        }
        let Core::AwaitingHeader(waiting) = &session.core else {
            return;
        };
        let core = match waiting.kind {
            ListenerKind::Http => Core::Http(Box::new(HttpSession::new(
                session.io.client,
                session.listener,
                buffer_size,
            ))),
            ListenerKind::Tcp => Core::Tcp(Box::default()),
        };
        let Core::AwaitingHeader(waiting) = std::mem::replace(&mut session.core, core) else {
            return;
        };
        let after = &waiting.received[header_len..waiting.len];
        // A fresh session reads into a whole pooled buffer (at least 1 KiB, more than
        // `after` can hold), so `after` goes in at once; an HTTP session stops reading
        // only once it has answered and closes, when the rest has no reader anyway.
        match &mut session.core {
            Core::Tcp(core) => {
                let mut rest = after;
                while !rest.is_empty() {
                    let Some(space) = core.up.read_space(&mut self.ctx.pool) else {
                        break;
                    };
                    let n = rest.len().min(space.len());
                    space[..n].copy_from_slice(&rest[..n]);
                    core.up.received(n);
                    rest = &rest[n..];
                }
                self.start_tcp_session(key, after.len() as u64, now);
            }
            Core::Http(_) => {
                self.with_http_session(key, now, |http, ctx| {
                    let mut rest = after;
                    while !rest.is_empty() {
                        let Some(space) = http.front_read_buffer(ctx.buffers) else {
                            break;
                        };
                        let n = rest.len().min(space.len());
                        space[..n].copy_from_slice(&rest[..n]);
                        http.front_received(n, ctx);
                        rest = &rest[n..];
                    }
                });
                self.schedule_session_timer(key);
            }
            Core::AwaitingHeader(_) => {}
        }
    }
}
