//! The TLS kind of a [`crate::transport::Transport`]: a rustls server connection driven
//! sans-IO over the session's socket (`read_tls` → `process_new_packets` → plaintext;
//! plaintext → `write_tls` while rustls wants to write).
//!
//! rustls may hold decrypted bytes after the socket is drained, and records to send
//! when the protocol core has none: [`TlsLayer::holds_plaintext`] and
//! [`TlsLayer::holds_output`] say so, and the loop asks. Incoming bytes are bounded:
//! rustls reads at most 4 KiB at a time, refuses handshake messages over 64 KiB, and the
//! socket is read only once the plaintext of earlier records was taken. Outgoing bytes
//! are bounded too: no plaintext is taken while records of earlier writes wait.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::metrics::HandshakeFailure;
use crate::transport::Readiness;

/// Plaintext taken per write: one TLS record.
const WRITE_CHUNK: usize = 16 * 1024;

/// The answer to plaintext HTTP sent to a TLS port (like nginx's).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\nContent-Length: 47\r\nConnection: close\r\n\r\n\
The plain HTTP request was sent to a TLS port.\n";

/// A TLS server connection over a socket.
#[derive(Debug)]
pub(crate) struct TlsLayer {
    connection: ServerConnection,
    /// The socket's end of stream was read.
    eof: bool,
    /// Plaintext may be waiting in rustls.
    holds_plaintext: bool,
    /// The first bytes were checked for plaintext HTTP.
    first_bytes_checked: bool,
    /// `close_notify` was queued; the FIN follows once every record is sent.
    closing: bool,
    /// The FIN was sent.
    shut: bool,
    /// Why the handshake failed, once it did.
    failure: Option<HandshakeFailure>,
}

/// A reader that remembers how much room the last read offered (to tell a short read).
struct Measured<'a> {
    stream: &'a mut TcpStream,
    offered: usize,
}

impl Read for Measured<'_> {
    fn read(&mut self, space: &mut [u8]) -> io::Result<usize> {
        self.offered = space.len();
        self.stream.read(space)
    }
}

impl TlsLayer {
    /// A connection that has not seen a byte yet.
    pub(crate) fn new(connection: ServerConnection) -> Self {
        TlsLayer {
            connection,
            eof: false,
            holds_plaintext: false,
            first_bytes_checked: false,
            closing: false,
            shut: false,
            failure: None,
        }
    }

    /// The rustls connection (negotiated version, suite, SNI, ALPN…).
    pub(crate) fn connection(&self) -> &ServerConnection {
        &self.connection
    }

    /// Whether decrypted bytes may be waiting (or the peer's `close_notify`).
    pub(crate) fn holds_plaintext(&self) -> bool {
        self.holds_plaintext
    }

    /// Whether records (or the FIN after `close_notify`) wait to be sent.
    pub(crate) fn holds_output(&self) -> bool {
        self.connection.wants_write() || (self.closing && !self.shut)
    }

    /// Whether the handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// Why the handshake failed, if it did.
    pub(crate) fn failure(&self) -> Option<HandshakeFailure> {
        self.failure
    }

    /// Reads plaintext (the transport's contract).
    pub(crate) fn read(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
        space: &mut [u8],
    ) -> io::Result<Option<usize>> {
        loop {
            match self.connection.reader().read(space) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.holds_plaintext = false,
                // The peer closed without `close_notify`: an end of stream all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.holds_plaintext = false;
                    return Ok(Some(0));
                }
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(Some(0));
            }
            if !ready.readable {
                return Ok(None);
            }
            if !self.first_bytes_checked {
                self.check_first_bytes(stream, ready)?;
            }
            let mut measured = Measured { stream, offered: 0 };
            match self.connection.read_tls(&mut measured) {
                Ok(0) => {
                    self.eof = true;
                    ready.readable = false;
                }
                Ok(n) => {
                    if n < measured.offered && !ready.read_closed {
                        ready.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.readable = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A reset or another socket error: the client went away. (rustls refuses
                // to read more than a handshake message's worth, which is bad input.)
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.fail_if_handshaking(HandshakeFailure::BadRecord);
                    return Err(e);
                }
                Err(e) => {
                    self.fail_if_handshaking(HandshakeFailure::ClosedByClient);
                    return Err(e);
                }
            }
            match self.connection.process_new_packets() {
                Ok(state) => {
                    self.holds_plaintext =
                        state.plaintext_bytes_to_read() > 0 || state.peer_has_closed();
                }
                Err(error) => {
                    self.fail_if_handshaking(HandshakeFailure::of(&error));
                    // The alert rustls queued goes out, best effort.
                    let _ = self.flush(stream, ready);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                }
            }
            // Handshake messages (and alerts) go out at once.
            self.flush(stream, ready)?;
            if self.eof && self.connection.is_handshaking() {
                self.fail_if_handshaking(HandshakeFailure::ClosedByClient);
                return Ok(Some(0));
            }
        }
    }

    /// Plaintext HTTP sent to the TLS port is answered `400` and refused; anything else
    /// goes to rustls, which refuses what is not TLS with an alert.
    fn check_first_bytes(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Result<()> {
        let mut first = [0u8; 1];
        match stream.peek(&mut first) {
            Ok(1) => {}
            // Nothing yet, an end of stream or an error: the read tells.
            _ => return Ok(()),
        }
        self.first_bytes_checked = true;
        if first[0].is_ascii_uppercase() {
            self.failure = Some(HandshakeFailure::PlainHttp);
            ready.readable = false;
            let _ = stream.write(PLAIN_HTTP_ANSWER);
            let _ = stream.shutdown(Shutdown::Write);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "plain HTTP sent to a TLS port",
            ));
        }
        Ok(())
    }

    fn fail_if_handshaking(&mut self, failure: HandshakeFailure) {
        if self.connection.is_handshaking() && self.failure.is_none() {
            self.failure = Some(failure);
        }
    }

    /// Marks the handshake as failed by timeout (the loop's timer fired).
    pub(crate) fn timed_out(&mut self) {
        self.fail_if_handshaking(HandshakeFailure::Timeout);
    }

    /// Takes plaintext (the transport's contract): nothing while earlier records wait.
    pub(crate) fn write(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
        bytes: &[u8],
    ) -> io::Result<Option<usize>> {
        if !self.flush(stream, ready)? {
            return Ok(None);
        }
        let chunk = &bytes[..bytes.len().min(WRITE_CHUNK)];
        let taken = self.connection.writer().write(chunk)?;
        self.flush(stream, ready)?;
        if taken == 0 {
            // The handshake is not over and rustls holds all it accepts before it is.
            return Ok(None);
        }
        Ok(Some(taken))
    }

    /// Sends held records while the socket takes them; true when none are left.
    pub(crate) fn flush(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Result<bool> {
        while self.connection.wants_write() {
            if !ready.writable {
                return Ok(false);
            }
            match self.connection.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.writable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.closing && !self.shut {
            self.shut = true;
            match stream.shutdown(Shutdown::Write) {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => return Err(e),
                _ => {}
            }
        }
        Ok(true)
    }

    /// `close_notify`, then the FIN once every record is sent.
    pub(crate) fn shutdown_write(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Result<()> {
        if !self.closing {
            self.closing = true;
            self.connection.send_close_notify();
        }
        self.flush(stream, ready).map(|_| ())
    }
}
