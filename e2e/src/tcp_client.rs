//! Blocking TCP clients for proxy tests: connects and reads bounded by
//! timeouts, greetings of named backends, echo checks, and telling a peer
//! that closed from one that is only silent.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Read and write timeout of the streams [`connect`] returns: a proxy that
/// stalls fails the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `addr` with [`IO_TIMEOUT`] on reads and writes; panics if it
/// cannot.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .unwrap_or_else(|e| panic!("cannot set timeouts on a stream to {addr}: {e}"));
    stream
}

/// Reads the `len`-byte greeting of a named backend and returns it as text;
/// panics when it does not come whole.
pub fn read_greeting(stream: &mut TcpStream, len: usize) -> String {
    let mut name = vec![0; len];
    stream
        .read_exact(&mut name)
        .unwrap_or_else(|e| panic!("no {len}-byte greeting from the backend: {e}"));
    String::from_utf8_lossy(&name).into_owned()
}

/// Sends `payload` and reads back as many bytes; panics unless they are
/// the same.
pub fn expect_echo(stream: &mut TcpStream, payload: &[u8]) {
    stream
        .write_all(payload)
        .unwrap_or_else(|e| panic!("cannot send {} bytes: {e}", payload.len()));
    let mut answer = vec![0; payload.len()];
    stream
        .read_exact(&mut answer)
        .unwrap_or_else(|e| panic!("no echo of {} bytes: {e}", payload.len()));
    assert!(
        answer == payload,
        "the echo of {} bytes differs from what was sent",
        payload.len()
    );
}

/// What the other end of a connection did within a wait.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerEnd {
    /// It closed: end of stream or reset.
    Closed,
    /// It sent these bytes (the first read's worth).
    Sent(Vec<u8>),
    /// Nothing came in time.
    Silent,
}

/// Waits up to `wait` for the peer to close or send something.
pub fn peer_end_within(stream: &mut TcpStream, wait: Duration) -> PeerEnd {
    let end = Instant::now() + wait;
    let mut buffer = [0; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return PeerEnd::Silent;
        }
        if let Err(e) = stream.set_read_timeout(Some(left)) {
            panic!("cannot set a read timeout: {e}");
        }
        let outcome = match stream.read(&mut buffer) {
            Ok(0) => PeerEnd::Closed,
            Ok(n) => PeerEnd::Sent(buffer[..n].to_vec()),
            Err(e) if is_timeout(&e) => PeerEnd::Silent,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => PeerEnd::Closed,
        };
        // Restore the default so later reads stay bounded as documented.
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        return outcome;
    }
}

/// Panics unless the peer closes within `wait`; returns how long it took.
pub fn expect_closed_within(stream: &mut TcpStream, wait: Duration) -> Duration {
    let start = Instant::now();
    match peer_end_within(stream, wait) {
        PeerEnd::Closed => start.elapsed(),
        other => panic!("expected the connection to close within {wait:?}, got {other:?}"),
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
