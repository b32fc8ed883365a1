//! The socket of one probe: a non-blocking connect, then for HTTP probes the request out and
//! the status line in. Registered once, edge-triggered, for reading and writing: every call
//! to [`ProbeSocket::advance`] makes all the progress the socket allows until it would block,
//! so a spurious or stale event is harmless.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::response::{ProbeFailure, StatusReader};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 512;

/// What a probe got from the backend before it closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeAnswer {
    /// The connection was established (all a connect probe asks).
    Connected,
    /// The status of the HTTP response.
    Status(u16),
}

#[derive(Debug)]
enum State {
    /// Waiting for the connect; then sends the request, if any.
    Connecting { request: Option<Vec<u8>> },
    /// Sending the request.
    Writing { request: Vec<u8>, written: usize },
    /// Waiting for the status line.
    Reading { reader: StatusReader },
}

/// One probe's connection.
#[derive(Debug)]
pub(crate) struct ProbeSocket {
    stream: TcpStream,
    state: State,
}

impl ProbeSocket {
    /// Starts a non-blocking connect to `address` and registers it under `token`; `request` is
    /// sent once connected (`None` for a connect-only probe).
    pub(crate) fn start(
        address: SocketAddr,
        request: Option<Vec<u8>>,
        token: Token,
        registry: &Registry,
    ) -> Result<ProbeSocket, ProbeFailure> {
        let mut stream = TcpStream::connect(address).map_err(ProbeFailure::Connect)?;
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(ProbeFailure::Register)?;
        Ok(ProbeSocket {
            stream,
            state: State::Connecting { request },
        })
    }

    /// Makes all the progress the socket allows; `Some` once the probe is over.
    pub(crate) fn advance(&mut self) -> Option<Result<ProbeAnswer, ProbeFailure>> {
        loop {
            let step = match &mut self.state {
                State::Connecting { request } => match connect_outcome(&self.stream) {
                    Ok(false) => return None,
                    Ok(true) => match request.take() {
                        None => return Some(Ok(ProbeAnswer::Connected)),
                        Some(request) => State::Writing {
                            request,
                            written: 0,
                        },
                    },
                    Err(failure) => return Some(Err(failure)),
                },
                State::Writing { request, written } => {
                    match self.stream.write(&request[*written..]) {
                        Ok(0) => {
                            let zero = io::Error::from(io::ErrorKind::WriteZero);
                            return Some(Err(ProbeFailure::Io(zero)));
                        }
                        Ok(sent) => {
                            *written += sent;
                            if *written < request.len() {
                                continue;
                            }
                            State::Reading {
                                reader: StatusReader::new(),
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Some(Err(ProbeFailure::Io(e))),
                    }
                }
                State::Reading { reader } => {
                    let mut chunk = [0; READ_CHUNK];
                    match self.stream.read(&mut chunk) {
                        Ok(0) => return Some(Err(reader.end_of_stream())),
                        Ok(read) => match reader.feed(&chunk[..read]) {
                            Some(status) => return Some(status.map(ProbeAnswer::Status)),
                            None => continue,
                        },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Some(Err(ProbeFailure::Io(e))),
                    }
                }
            };
            self.state = step;
        }
    }

    /// Deregisters and closes the connection.
    pub(crate) fn close(mut self, registry: &Registry) {
        if let Err(error) = registry.deregister(&mut self.stream) {
            debug!("health check: cannot deregister a probe socket: {error}");
        }
    }
}

/// Whether a non-blocking connect is done: `Ok(false)` while it is in progress.
fn connect_outcome(stream: &TcpStream) -> Result<bool, ProbeFailure> {
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(error)) | Err(error) => return Err(ProbeFailure::Connect(error)),
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(ProbeFailure::Connect(e)),
    }
}
