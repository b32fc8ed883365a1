//! The TLS kind of a [`crate::transport::Transport`], driven sans-IO over the session's
//! socket in two phases:
//!
//! - **handshake**: a rustls unbuffered server connection reads the client's records
//!   from the layer's incoming buffer and writes its flight into the outgoing buffer,
//!   sent in one write;
//! - **established**: once the handshake is over, rustls hands its traffic keys over
//!   (its kernel connection API) and [`super::records`] decrypts each record in place in
//!   the incoming buffer and encrypts in place into the outgoing buffer.
//!
//! So an established connection allocates nothing per record: its buffers are lent from
//! the thread's spares ([`super::buffers`]) while bytes wait in them, and given back when
//! they are empty, so an idle connection holds none.
//!
//! Decrypted bytes may wait in the layer after the socket is drained, and records to send
//! when the protocol core has none: [`TlsLayer::holds_plaintext`] and
//! [`TlsLayer::holds_output`] say so, and the loop asks. Incoming bytes are bounded: one
//! record (17 KiB) once established, and 80 KiB during the handshake (rustls refuses
//! handshake messages over 64 KiB); the socket is read only once the plaintext of earlier
//! records was taken. Outgoing bytes are bounded too: no plaintext is taken while records
//! of earlier writes wait, and one write takes at most one record's worth.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, InsufficientSizeError};
use rustls::{HandshakeKind, ProtocolVersion, SupportedCipherSuite};

use super::buffers::{RecordBuffer, RECORD_BUFFER};
use super::metrics::HandshakeFailure;
use super::records::{Opened, RecordError, RecordLayer, MAX_OVERHEAD, MAX_PLAINTEXT};
use super::sni;
use crate::transport::Readiness;

/// Plaintext taken per write: one TLS record.
const WRITE_CHUNK: usize = MAX_PLAINTEXT;

/// Bytes the handshake may hold either way: a 64 KiB handshake message (rustls's limit)
/// split in records, or a server flight with a long certificate chain.
const HANDSHAKE_BUFFER_LIMIT: usize = 64 * 1024 + RECORD_BUFFER;

/// Room made in the incoming buffer before a read during the handshake.
const HANDSHAKE_READ: usize = 4096;

/// The answer to plaintext HTTP sent to a TLS port (like nginx's).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\nContent-Length: 47\r\nConnection: close\r\n\r\n\
The plain HTTP request was sent to a TLS port.\n";

/// What the handshake negotiated, for the metrics and the access log (the names of
/// rustls's connection accessors).
#[derive(Debug, Default)]
pub(crate) struct Negotiated {
    version: Option<ProtocolVersion>,
    suite: Option<SupportedCipherSuite>,
    server_name: Option<Box<str>>,
    kind: Option<HandshakeKind>,
}

impl Negotiated {
    /// The TLS version, once the handshake is over.
    pub(crate) fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The cipher suite, once the handshake is over.
    pub(crate) fn negotiated_cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.suite
    }

    /// The name the client asked for (SNI), if it sent one.
    pub(crate) fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Full or resumed, once the handshake is over.
    pub(crate) fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.kind
    }
}

/// Where the connection is.
enum Phase {
    /// rustls drives the handshake (boxed: established connections do not carry it).
    Handshake(Box<UnbufferedServerConnection>),
    /// The record layer runs with the negotiated keys.
    Established(Box<RecordLayer>),
    /// The handshake or a record failed; nothing more is read or sent but the alert.
    Failed,
}

impl std::fmt::Debug for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Handshake(_) => f.write_str("Handshake"),
            Phase::Established(records) => records.fmt(f),
            Phase::Failed => f.write_str("Failed"),
        }
    }
}

/// A TLS server connection over a socket.
#[derive(Debug)]
pub(crate) struct TlsLayer {
    phase: Phase,
    /// Records read from the socket; decrypted plaintext stays in place in it.
    incoming: RecordBuffer,
    /// Records to send.
    outgoing: RecordBuffer,
    /// Decrypted bytes not taken yet: `plaintext_start..plaintext_end` of `incoming`.
    plaintext_start: usize,
    plaintext_end: usize,
    /// Plaintext rustls decrypted at the end of the handshake (a request sent with the
    /// client's `Finished`), taken before anything else.
    handshake_plaintext: Vec<u8>,
    handshake_plaintext_taken: usize,
    /// Plaintext written before the handshake was over, sent once it is.
    early_output: Vec<u8>,
    negotiated: Negotiated,
    /// The handshake finished.
    established: bool,
    /// The socket's end of stream was read.
    eof: bool,
    /// The client's `close_notify` was read.
    peer_closed: bool,
    /// The end of stream was returned by a read.
    end_returned: bool,
    /// Plaintext (or the end of stream) may be waiting in the layer.
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

impl TlsLayer {
    /// A connection that has not seen a byte yet.
    pub(crate) fn new(connection: UnbufferedServerConnection) -> Self {
        TlsLayer {
            phase: Phase::Handshake(Box::new(connection)),
            incoming: RecordBuffer::default(),
            outgoing: RecordBuffer::default(),
            plaintext_start: 0,
            plaintext_end: 0,
            handshake_plaintext: Vec::new(),
            handshake_plaintext_taken: 0,
            early_output: Vec::new(),
            negotiated: Negotiated::default(),
            established: false,
            eof: false,
            peer_closed: false,
            end_returned: false,
            holds_plaintext: false,
            first_bytes_checked: false,
            closing: false,
            shut: false,
            failure: None,
        }
    }

    /// What the handshake negotiated (version, suite, SNI, resumption).
    pub(crate) fn connection(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Whether decrypted bytes may be waiting (or the peer's `close_notify`).
    pub(crate) fn holds_plaintext(&self) -> bool {
        self.holds_plaintext
    }

    /// Whether records (or the FIN after `close_notify`) wait to be sent.
    pub(crate) fn holds_output(&self) -> bool {
        !self.outgoing.is_empty() || (self.closing && !self.shut)
    }

    /// Whether the handshake is still under way (or failed before it finished).
    pub(crate) fn is_handshaking(&self) -> bool {
        !self.established
    }

    /// Why the handshake failed, if it did.
    pub(crate) fn failure(&self) -> Option<HandshakeFailure> {
        self.failure
    }

    /// How many buffers the connection holds now.
    #[cfg(test)]
    pub(crate) fn buffers_held(&self) -> usize {
        usize::from(self.incoming.is_lent()) + usize::from(self.outgoing.is_lent())
    }

    /// Records sent with the current keys, once established.
    #[cfg(test)]
    pub(crate) fn records_sent_with_current_keys(&self) -> Option<u64> {
        match &self.phase {
            Phase::Established(records) => Some(records.records_sent()),
            _ => None,
        }
    }

    /// Reads plaintext (the transport's contract).
    pub(crate) fn read(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
        space: &mut [u8],
    ) -> io::Result<Option<usize>> {
        let result = match self.phase {
            Phase::Handshake(_) => self.read_handshake(stream, ready, space),
            Phase::Established(_) => self.read_established(stream, ready, space),
            Phase::Failed => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS connection failed",
            )),
        };
        self.holds_plaintext = self.plaintext_waits();
        if self.plaintext_start == self.plaintext_end {
            self.incoming.release_if_empty();
        }
        result
    }

    /// Whether a read may return something without reading the socket.
    fn plaintext_waits(&mut self) -> bool {
        if self.handshake_plaintext_taken < self.handshake_plaintext.len()
            || self.plaintext_start < self.plaintext_end
            || (self.peer_closed && !self.end_returned)
        {
            return true;
        }
        if !matches!(self.phase, Phase::Established(_)) {
            return false;
        }
        let waiting = self.incoming.filled();
        // A whole record waits (or a broken header, which the next read refuses).
        match RecordLayer::record_length(waiting) {
            Ok(Some(length)) => waiting.len() >= length,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Drives the handshake with what arrives; reads plaintext once it is over.
    fn read_handshake(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
        space: &mut [u8],
    ) -> io::Result<Option<usize>> {
        loop {
            if self.process_handshake(stream, ready)? {
                return self.read_established(stream, ready, space);
            }
            if self.eof || self.peer_closed {
                self.fail_if_handshaking(HandshakeFailure::ClosedByClient);
                self.end_returned = true;
                return Ok(Some(0));
            }
            if !ready.readable {
                return Ok(None);
            }
            if !self.first_bytes_checked {
                self.check_first_bytes(stream, ready)?;
            }
            if !self
                .incoming
                .reserve(HANDSHAKE_READ, HANDSHAKE_BUFFER_LIMIT)
            {
                self.fail_if_handshaking(HandshakeFailure::BadRecord);
                self.phase = Phase::Failed;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "handshake message over the size limit",
                ));
            }
            if !self.read_socket(stream, ready)? {
                return Ok(None);
            }
        }
    }

    /// Lets rustls process the records received and queue its answers; true once the
    /// handshake is over and the record layer took over.
    fn process_handshake(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Result<bool> {
        loop {
            let Phase::Handshake(connection) = &mut self.phase else {
                return Ok(self.established);
            };
            sni::forget_asked_name();
            let status = connection.process_tls_records(self.incoming.filled());
            if let Some(name) = sni::take_asked_name() {
                self.negotiated.server_name = name;
            }
            let mut discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(error) => return Err(self.handshake_failed(error, stream, ready)),
            };
            let mut done = false;
            match state {
                ConnectionState::EncodeTlsData(mut encoder) => loop {
                    match encoder.encode(self.outgoing.space()) {
                        Ok(n) => {
                            self.outgoing.filled_by(n);
                            break;
                        }
                        Err(EncodeError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) if self.outgoing.reserve(required_size, HANDSHAKE_BUFFER_LIMIT) => {}
                        Err(_) => {
                            return Err(io::Error::other("the handshake flight is too large"))
                        }
                    }
                },
                // The flight is in the outgoing buffer, sent below in one write.
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                self.handshake_plaintext.extend_from_slice(record.payload);
                            }
                            Err(error) => {
                                return Err(self.handshake_failed(error, stream, ready));
                            }
                        }
                    }
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    done = true;
                }
                ConnectionState::WriteTraffic(_) | ConnectionState::BlockedHandshake => {
                    done = true;
                }
                _ => {
                    let error = rustls::Error::General("unexpected early data".into());
                    return Err(self.handshake_failed(error, stream, ready));
                }
            }
            self.incoming.consume(discard);
            if !done {
                continue;
            }
            let finished = matches!(&self.phase, Phase::Handshake(c) if !c.is_handshaking());
            if finished {
                self.establish()?;
            }
            // The handshake flight goes out at once.
            self.flush(stream, ready)?;
            return Ok(finished);
        }
    }

    /// Takes the traffic keys from rustls: the record layer runs from now on.
    fn establish(&mut self) -> io::Result<()> {
        let Phase::Handshake(connection) = std::mem::replace(&mut self.phase, Phase::Failed) else {
            return Ok(());
        };
        self.negotiated.version = connection.protocol_version();
        self.negotiated.suite = connection.negotiated_cipher_suite();
        self.negotiated.kind = connection.handshake_kind();
        let (secrets, kernel) = (*connection)
            .dangerous_into_kernel_connection()
            .map_err(io::Error::other)?;
        let records = RecordLayer::new(secrets, kernel).map_err(io::Error::other)?;
        self.phase = Phase::Established(Box::new(records));
        self.established = true;
        if !self.early_output.is_empty() {
            let early = std::mem::take(&mut self.early_output);
            self.seal(&early)?;
        }
        Ok(())
    }

    /// A handshake error: its reason counted, rustls's alert sent (best effort).
    fn handshake_failed(
        &mut self,
        error: rustls::Error,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Error {
        self.fail_if_handshaking(HandshakeFailure::of(&error));
        if let Phase::Handshake(connection) = &mut self.phase {
            // The alert rustls queued comes out of the next steps.
            for _ in 0..4 {
                match connection.process_tls_records(&mut []).state {
                    Ok(ConnectionState::EncodeTlsData(mut encoder)) => {
                        if let Ok(n) = encoder.encode(self.outgoing.space()) {
                            self.outgoing.filled_by(n);
                        }
                    }
                    Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                    _ => break,
                }
            }
        }
        self.phase = Phase::Failed;
        let _ = self.flush(stream, ready);
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// Reads plaintext of the established connection.
    fn read_established(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
        space: &mut [u8],
    ) -> io::Result<Option<usize>> {
        let mut filled = 0;
        loop {
            filled += self.take_plaintext(&mut space[filled..]);
            if filled == space.len() || self.peer_closed {
                break;
            }
            if self.open_next_record(stream, ready)? {
                continue;
            }
            if filled > 0 || self.eof {
                break;
            }
            if !ready.readable || !self.read_socket(stream, ready)? {
                return Ok(None);
            }
        }
        if filled == 0 && (self.peer_closed || self.eof) {
            // The end of stream, with or without `close_notify` (a client that closes
            // without it is common, and HTTP framing tells a cut answer).
            self.end_returned = true;
            return Ok(Some(0));
        }
        Ok(Some(filled))
    }

    /// Copies the plaintext waiting into `space`; the bytes copied.
    fn take_plaintext(&mut self, space: &mut [u8]) -> usize {
        let mut copied = 0;
        if self.handshake_plaintext_taken < self.handshake_plaintext.len() {
            let waiting = &self.handshake_plaintext[self.handshake_plaintext_taken..];
            copied = waiting.len().min(space.len());
            space[..copied].copy_from_slice(&waiting[..copied]);
            self.handshake_plaintext_taken += copied;
            if self.handshake_plaintext_taken == self.handshake_plaintext.len() {
                self.handshake_plaintext = Vec::new();
                self.handshake_plaintext_taken = 0;
            }
        }
        let space = &mut space[copied..];
        let waiting = self.plaintext_end - self.plaintext_start;
        let n = waiting.min(space.len());
        if n > 0 {
            space[..n].copy_from_slice(
                &self.incoming.all()[self.plaintext_start..self.plaintext_start + n],
            );
            self.plaintext_start += n;
        }
        if self.plaintext_start == self.plaintext_end {
            self.plaintext_start = 0;
            self.plaintext_end = 0;
        }
        copied + n
    }

    /// Decrypts the next whole record of the incoming buffer, if one is there; true if
    /// one was (its plaintext, if any, waits to be taken).
    fn open_next_record(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Result<bool> {
        let Phase::Established(records) = &mut self.phase else {
            return Ok(false);
        };
        let start = self.incoming.start();
        let waiting = self.incoming.filled();
        let length = match RecordLayer::record_length(waiting) {
            Ok(Some(length)) if waiting.len() >= length => length,
            Ok(_) => return Ok(false),
            Err(error) => return Err(self.refuse(error, stream, ready)),
        };
        let opened = records.open(&mut waiting[..length]);
        let wants_key_update = records.wants_key_update();
        self.incoming.consume(length);
        match opened {
            Ok(Opened::Data { start: from, end }) => {
                self.plaintext_start = start + from;
                self.plaintext_end = start + end;
            }
            Ok(Opened::CloseNotify) => self.peer_closed = true,
            Ok(Opened::Nothing) => {
                if wants_key_update {
                    // Our key update answers the client's at once.
                    self.seal(&[])?;
                    self.flush(stream, ready)?;
                }
            }
            Err(error) => return Err(self.refuse(error, stream, ready)),
        }
        Ok(true)
    }

    /// A record refused: the alert sent (best effort), the connection failed.
    fn refuse(
        &mut self,
        error: RecordError,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Error {
        if let (Phase::Established(records), Some(alert)) = (&mut self.phase, error.alert()) {
            if self
                .outgoing
                .reserve(MAX_OVERHEAD + 2, HANDSHAKE_BUFFER_LIMIT)
            {
                if let Ok(n) = records.seal_alert(alert, self.outgoing.space()) {
                    self.outgoing.filled_by(n);
                }
            }
        }
        self.phase = Phase::Failed;
        let _ = self.flush(stream, ready);
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// Reads the socket into the incoming buffer once; false when nothing came now.
    fn read_socket(&mut self, stream: &mut TcpStream, ready: &mut Readiness) -> io::Result<bool> {
        loop {
            let space = self.incoming.space();
            let offered = space.len();
            match stream.read(space) {
                Ok(0) => {
                    self.eof = true;
                    ready.readable = false;
                    return Ok(true);
                }
                Ok(n) => {
                    self.incoming.filled_by(n);
                    if n < offered && !ready.read_closed {
                        ready.readable = false;
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.readable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset or another socket error: the client went away.
                Err(e) => {
                    self.fail_if_handshaking(HandshakeFailure::ClosedByClient);
                    return Err(e);
                }
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
            self.phase = Phase::Failed;
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
        if !self.established && self.failure.is_none() {
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
        match self.phase {
            Phase::Handshake(_) => {
                // Held until the handshake is over (a backend that speaks first).
                let taken = bytes.len().min(WRITE_CHUNK - self.early_output.len());
                if taken == 0 {
                    return Ok(None);
                }
                self.early_output.extend_from_slice(&bytes[..taken]);
                return Ok(Some(taken));
            }
            Phase::Failed => {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the TLS connection failed",
                ))
            }
            Phase::Established(_) => {}
        }
        if !self.flush(stream, ready)? || bytes.is_empty() {
            return Ok(None);
        }
        let taken = bytes.len().min(WRITE_CHUNK);
        self.seal(&bytes[..taken])?;
        self.flush(stream, ready)?;
        Ok(Some(taken))
    }

    /// Encrypts `plaintext` (at most one record's worth) into the outgoing buffer, after
    /// our key update when one is due; nothing but the key update for no plaintext.
    fn seal(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let Phase::Established(records) = &mut self.phase else {
            return Ok(());
        };
        if !self.outgoing.reserve(
            plaintext.len() + 2 * MAX_OVERHEAD + 8,
            HANDSHAKE_BUFFER_LIMIT,
        ) {
            return Err(io::Error::other("no room for a record"));
        }
        if records.wants_key_update() {
            let n = records
                .seal_key_update(self.outgoing.space())
                .map_err(io::Error::other)?;
            self.outgoing.filled_by(n);
        }
        if plaintext.is_empty() {
            return Ok(());
        }
        let out = self.outgoing.space();
        let offset = records.plaintext_offset();
        out[offset..offset + plaintext.len()].copy_from_slice(plaintext);
        let n = records
            .seal_data(out, plaintext.len())
            .map_err(io::Error::other)?;
        self.outgoing.filled_by(n);
        Ok(())
    }

    /// Sends held records while the socket takes them; true when none are left.
    pub(crate) fn flush(
        &mut self,
        stream: &mut TcpStream,
        ready: &mut Readiness,
    ) -> io::Result<bool> {
        while !self.outgoing.is_empty() {
            if !ready.writable {
                return Ok(false);
            }
            match stream.write(self.outgoing.filled()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.outgoing.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.writable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing.release_if_empty();
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
            if let Phase::Established(records) = &mut self.phase {
                if self
                    .outgoing
                    .reserve(MAX_OVERHEAD + 2, HANDSHAKE_BUFFER_LIMIT)
                {
                    let n = records
                        .seal_close_notify(self.outgoing.space())
                        .map_err(io::Error::other)?;
                    self.outgoing.filled_by(n);
                }
            }
        }
        self.flush(stream, ready).map(|_| ())
    }
}
