//! Accepting clients: until `WouldBlock`, while the worker has room.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;

use super::listeners::ListenerKind;
use super::proxy_header::AwaitingHeader;
use super::session::{Core, Session, SessionTimeouts};
use super::tokens::session_token;
use super::{RunState, Server};
use crate::http::session::HttpSession;
use crate::sys;
use crate::transport::Transport;

impl Server {
    /// Accepts every pending connection of listener `key`, up to `max_connections`.
    pub(super) fn accept(&mut self, key: usize, now: Instant) {
        loop {
            if self.sessions.len() >= self.options.max_connections
                || self.run_state != RunState::Running
            {
                return;
            }
            let Some(entry) = self.listeners.get_mut(key) else {
                return;
            };
            let Some(listener) = entry.listener.as_ref() else {
                return;
            };
            let (address, kind, timeouts) = (entry.address, entry.kind, entry.timeouts);
            let expect_proxy = entry.expect_proxy;
            match listener.accept() {
                Ok((stream, peer)) => {
                    let core = if expect_proxy {
                        let wait = match kind {
                            ListenerKind::Http => timeouts.request(),
                            ListenerKind::Tcp => timeouts.front(),
                        };
                        Core::AwaitingHeader(Box::new(AwaitingHeader::new(kind, now + wait)))
                    } else {
                        match kind {
                            ListenerKind::Tcp => Core::Tcp(Box::default()),
                            ListenerKind::Http => Core::Http(Box::new(HttpSession::with_tls(
                                peer,
                                address,
                                self.options.buffer_size,
                                self.ctx.tls.is_tls(&address),
                            ))),
                        }
                    };
                    self.start_session(stream, peer, address, core, timeouts, now)
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_resource_exhaustion(&error) => {
                    self.ctx.metrics.proxy().refused_accepts.increment();
                    log::error!("accept on {address} refused: {error}");
                    return;
                }
                Err(error) => log::debug!("accept on {address}: {error}"),
            }
        }
    }

    fn start_session(
        &mut self,
        stream: TcpStream,
        client: SocketAddr,
        listener: SocketAddr,
        core: Core,
        timeouts: SessionTimeouts,
        now: Instant,
    ) {
        if let Err(error) = sys::configure_stream(&stream) {
            log::debug!("accepted connection lost before setup: {error}");
            return;
        }
        let tls = match self.ctx.tls.config(&listener) {
            Some(config) => match crate::tls::new_connection(config) {
                Ok(connection) => Some(connection),
                Err(error) => {
                    log::error!("cannot start TLS on {listener}: {error}");
                    return;
                }
            },
            None => None,
        };
        let handshaking = tls.is_some();
        let entry = self.sessions.vacant_entry();
        let key = entry.key();
        let mut front = match tls {
            Some(connection) => Transport::tls(stream, connection),
            None => Transport::plain(stream),
        };
        if let Err(error) = front.register(
            self.poll.registry(),
            session_token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::error!("cannot register accepted connection: {error}");
            return;
        }
        self.next_generation += 1;
        let (is_http, awaiting_header) = match core {
            Core::Http(_) => (true, false),
            Core::Tcp(_) => (false, false),
            Core::AwaitingHeader(_) => (false, true),
        };
        let session = entry.insert(Session::new(
            self.next_generation,
            front,
            client,
            listener,
            core,
            timeouts,
            now,
        ));
        if handshaking {
            session.handshake_since = Some(now);
        }
        let proxy = self.ctx.metrics.proxy();
        proxy.accepted_connections.increment();
        proxy.active_sessions.increment();
        if is_http {
            self.drive_http(key, now);
            self.schedule_session_timer(key);
        } else if awaiting_header {
            self.read_proxy_header(key, now);
        } else {
            self.start_tcp_session(key, 0, now);
        }
    }

    /// Routes a TCP session to its listener's cluster and starts connecting; `received`
    /// client bytes are already waiting to go up.
    pub(super) fn start_tcp_session(&mut self, key: usize, received: u64, now: Instant) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        match self.ctx.tcp_frontends.get(&session.listener) {
            Some(cluster_id) => {
                let stats = self.ctx.metrics.cluster(cluster_id);
                stats.requests.increment();
                stats.received_bytes.add(received);
                session.stats.cluster = Some(stats);
                session.backend.cluster_id = Some(cluster_id.as_str().into());
                self.connect_backend(key, None, now);
            }
            None => {
                log::debug!("no frontend on {}: connection closed", session.listener);
                self.ctx.metrics.proxy().unrouted_requests.increment();
                self.close_session(key);
            }
        }
        self.schedule_session_timer(key);
    }
}

fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
