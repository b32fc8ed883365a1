//! The transport seam: every read, write, write shutdown and close of a session's
//! sockets, client side and backend side, goes through a [`Transport`], and so does
//! the readiness bookkeeping of edge-triggered polling.
//!
//! # Contract
//!
//! A transport carries **plaintext** both ways; protocol cores (HTTP, TCP pipe, PROXY
//! header, lingering close) never touch a socket. A transport is plain TCP, or TLS
//! (a rustls server connection, see [`crate::tls::stream`]) with the same operations
//! and the same meaning:
//!
//! - [`Transport::read`] fills the caller's space with plaintext: `Ok(Some(n))` with
//!   `n > 0` for bytes, `Ok(Some(0))` for the peer's orderly close (end of stream),
//!   `Ok(None)` when nothing is available now (readiness is cleared: wait for the
//!   next event), `Err` when the connection broke.
//! - [`Transport::write`] takes plaintext: `Ok(Some(n))` for the bytes taken,
//!   `Ok(None)` when the socket cannot take any now (readiness is cleared), `Err` when
//!   the connection broke. Bytes taken are the transport's to deliver.
//! - [`Transport::holds_output`] says whether the transport itself still has bytes
//!   to send when the caller has none (never for plain TCP; a TLS transport may hold
//!   records): the loop asks, it never assumes, and [`Transport::flush`] sends them.
//!   Likewise [`Transport::is_readable`] is true while a TLS transport holds decrypted
//!   bytes, whatever the socket's readiness.
//! - [`Transport::shutdown_write`] is an orderly close of the writing side once
//!   everything taken was sent (a FIN for TCP, `close_notify` then a FIN for TLS);
//!   reading goes on until the peer's end of stream.
//! - Dropping a transport closes its socket, which also takes it out of the poll
//!   (sockets are never duplicated), so no deregistration is needed.
//!
//! # Readiness
//!
//! Readiness is edge-triggered: an event sets `readable` / `writable`, and only an
//! operation that found the socket drained clears it. A short read (less than the
//! space offered) clears `readable` too, like nginx: the receive queue was emptied by
//! it, and any byte or FIN arriving afterwards raises a new event. This saves the read
//! that would only return `WouldBlock` on each side of every request. Once the peer's
//! FIN (or an error) was reported no new edge comes, so a short read then leaves the
//! transport readable until the read that returns the end of stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::tls::stream::TlsLayer;

/// Edge-triggered readiness of one socket, cleared when an operation drains it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer's FIN (or an error) was reported: no new edge will come for it, so
    /// a short read must not clear `readable`.
    pub(crate) read_closed: bool,
}

impl Readiness {
    /// Adds what an event reported.
    pub(crate) fn merge(&mut self, event: &Event) {
        // An error or hang-up is reported as readable and writable so that the next read
        // or write surfaces it.
        let broken = event.is_error() || event.is_read_closed() || event.is_write_closed();
        self.readable |= event.is_readable() || broken;
        self.writable |= event.is_writable() || broken;
        self.read_closed |= event.is_read_closed() || event.is_error();
    }
}

/// Where a non-blocking connect stands.
#[derive(Debug)]
pub(crate) enum ConnectProgress {
    /// Not finished yet: wait for the next event.
    Pending,
    /// Connected: bytes may flow.
    Connected,
    /// Refused, unreachable, reset…
    Failed(io::Error),
}

/// One socket of a session, its readiness, and its TLS layer if it has one.
#[derive(Debug)]
pub(crate) struct Transport {
    stream: TcpStream,
    ready: Readiness,
    /// Boxed: plain connections pay one pointer for it.
    tls: Option<Box<TlsLayer>>,
}

impl Transport {
    /// A plain TCP transport over an accepted or connecting socket, not yet ready.
    pub(crate) fn plain(stream: TcpStream) -> Self {
        Transport {
            stream,
            ready: Readiness::default(),
            tls: None,
        }
    }

    /// A TLS transport: `connection` speaks TLS over an accepted socket.
    pub(crate) fn tls(
        stream: TcpStream,
        connection: rustls::server::UnbufferedServerConnection,
    ) -> Self {
        Transport {
            stream,
            ready: Readiness::default(),
            tls: Some(Box::new(TlsLayer::new(connection))),
        }
    }

    /// The TLS layer, if this is a TLS transport.
    pub(crate) fn tls_layer(&self) -> Option<&TlsLayer> {
        self.tls.as_deref()
    }

    /// The TLS layer, if this is a TLS transport.
    pub(crate) fn tls_layer_mut(&mut self) -> Option<&mut TlsLayer> {
        self.tls.as_deref_mut()
    }

    /// Starts a non-blocking connect to `address` (with the worker's socket options),
    /// registered under `token` for both directions.
    pub(crate) fn connect(
        address: SocketAddr,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Self> {
        let mut stream = TcpStream::connect(address)?;
        crate::sys::configure_stream(&stream)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Transport::plain(stream))
    }

    /// Registers the socket under `token`, for `interest`.
    pub(crate) fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.register(&mut self.stream, token, interest)
    }

    /// Takes the socket out of the poll while it stays open.
    pub(crate) fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.stream)
    }

    /// Adds what a poll event reported.
    pub(crate) fn readiness_reported(&mut self, event: &Event) {
        self.ready.merge(event);
    }

    /// Treats the socket as writable (an idle, connected one handed to a new user).
    pub(crate) fn assume_writable(&mut self) {
        self.ready.writable = true;
    }

    /// Treats the socket as readable (tests drive transports without a poll).
    #[cfg(test)]
    pub(crate) fn assume_readable(&mut self) {
        self.ready.readable = true;
    }

    /// Whether a read may return something now: the socket is readable, or the TLS
    /// layer holds decrypted bytes.
    pub(crate) fn is_readable(&self) -> bool {
        self.ready.readable || self.tls.as_ref().is_some_and(|tls| tls.holds_plaintext())
    }

    /// Whether a write may take something now.
    pub(crate) fn is_writable(&self) -> bool {
        self.ready.writable
    }

    /// Whether the transport still holds bytes of its own to send (see the contract):
    /// never for plain TCP.
    pub(crate) fn holds_output(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.holds_output())
    }

    /// Sends what the transport holds, as far as the socket takes it; true when nothing
    /// is left.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        match self.tls.as_mut() {
            Some(tls) => tls.flush(&mut self.stream, &mut self.ready),
            None => Ok(true),
        }
    }

    /// Reads plaintext once (see the contract).
    pub(crate) fn read(&mut self, space: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(tls) = self.tls.as_mut() {
            return tls.read(&mut self.stream, &mut self.ready, space);
        }
        loop {
            match self.stream.read(space) {
                Ok(0) => {
                    self.ready.readable = false;
                    return Ok(Some(0));
                }
                Ok(n) => {
                    if n < space.len() && !self.ready.read_closed {
                        self.ready.readable = false;
                    }
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.readable = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes plaintext once (see the contract).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<Option<usize>> {
        if let Some(tls) = self.tls.as_mut() {
            return tls.write(&mut self.stream, &mut self.ready, bytes);
        }
        loop {
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.writable = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Orderly close of the writing side (see the contract); a socket that is not
    /// connected any more has nothing to close.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            return tls.shutdown_write(&mut self.stream, &mut self.ready);
        }
        match self.stream.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }

    /// Where a connect started with [`Transport::connect`] stands, after an event.
    pub(crate) fn connect_progress(&mut self) -> ConnectProgress {
        match self.stream.take_error() {
            Ok(Some(error)) | Err(error) => ConnectProgress::Failed(error),
            Ok(None) => match self.stream.peer_addr() {
                Ok(_) => ConnectProgress::Connected,
                Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                    ConnectProgress::Pending
                }
                Err(error) => ConnectProgress::Failed(error),
            },
        }
    }

    /// Whether an idle connection is still usable: nothing to read, no end of stream,
    /// no error. Reads nothing.
    pub(crate) fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(
            self.stream.peek(&mut probe),
            Err(ref e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream as StdStream};
    use std::time::{Duration, Instant};

    use super::*;

    /// A transport over one end of a loopback connection, and the other end (blocking).
    fn pair() -> (Transport, StdStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = StdStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (theirs, _) = listener.accept().expect("accept");
        ours.set_nonblocking(true).expect("non-blocking");
        theirs
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (Transport::plain(TcpStream::from_std(ours)), theirs)
    }

    /// Reads until something other than `Ok(None)` comes, within a deadline.
    fn read_eventually(transport: &mut Transport, space: &mut [u8]) -> io::Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(n) = transport.read(space)? {
                return Ok(n);
            }
            assert!(Instant::now() < deadline, "nothing to read in time");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn nothing_to_read_clears_readiness() {
        let (mut transport, _peer) = pair();
        transport.ready.readable = true;
        assert!(matches!(transport.read(&mut [0; 16]), Ok(None)));
        assert!(!transport.is_readable());
    }

    #[test]
    fn a_short_read_clears_readiness_unless_the_peer_closed() {
        let (mut transport, mut peer) = pair();
        peer.write_all(b"hello").expect("write");
        transport.ready.readable = true;
        let mut space = [0; 16];
        assert_eq!(
            read_eventually(&mut transport, &mut space).expect("read"),
            5
        );
        assert!(!transport.is_readable(), "a short read drained the queue");
        peer.write_all(b"bye").expect("write");
        drop(peer);
        transport.ready.readable = true;
        transport.ready.read_closed = true;
        assert_eq!(
            read_eventually(&mut transport, &mut space).expect("read"),
            3
        );
        assert!(
            transport.is_readable(),
            "the end of stream is still to be read"
        );
        assert_eq!(
            read_eventually(&mut transport, &mut space).expect("read"),
            0
        );
        assert!(!transport.is_readable());
    }

    #[test]
    fn writes_reach_the_peer_and_shutdown_is_an_end_of_stream() {
        let (mut transport, mut peer) = pair();
        assert!(!transport.holds_output());
        assert_eq!(transport.write(b"ping").expect("write"), Some(4));
        transport.shutdown_write().expect("shutdown");
        let mut received = Vec::new();
        peer.read_to_end(&mut received).expect("read to the end");
        assert_eq!(received, b"ping");
    }

    #[test]
    fn an_idle_connection_is_quiet_until_its_peer_speaks_or_closes() {
        let (transport, peer) = pair();
        assert!(transport.is_quiet());
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while transport.is_quiet() {
            assert!(Instant::now() < deadline, "the close was not seen");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
