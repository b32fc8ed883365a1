//! Minimal raw HTTP/1.1 clients for tests: they send exactly the bytes a
//! test gives and parse answers strictly, so that what the proxy does is
//! visible byte for byte.

use std::io::{self, Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::http_io::{header_has_token, header_value, owned_headers, BufferedStream, HttpIoError};

/// Read and write timeout of client sockets unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response.
const MAX_HEADERS: usize = 128;

/// Errors of the test clients.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed (timeouts included).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The response could not be read.
    #[error("bad response: {0}")]
    Read(#[from] HttpIoError),
    /// The response head did not parse.
    #[error("unparsable response head: {0}")]
    Parse(String),
    /// The server closed the connection before any response byte.
    #[error("connection closed before a response")]
    ClosedBeforeResponse,
}

/// A response read by a test client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Whole decoded body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server said it closes the connection.
    pub fn closes_connection(&self) -> bool {
        header_has_token(&self.headers, "Connection", "close")
    }
}

/// `GET path` with `Host: host` over a fresh connection that is closed
/// after the response.
pub fn http_get(addr: SocketAddr, host: &str, path: &str) -> Result<HttpResponse, ClientError> {
    let mut conn = HttpConn::connect(addr)?;
    conn.get(host, path)
}

/// A keep-alive client connection: send raw bytes, read one response at a
/// time.
pub struct HttpConn {
    stream: BufferedStream<TcpStream>,
}

impl HttpConn {
    /// Connects with [`DEFAULT_TIMEOUT`] for reads and writes.
    pub fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT)?;
        stream.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufferedStream::new(stream),
        })
    }

    /// Changes the read timeout of the next reads.
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        Ok(self.stream.get_ref().set_read_timeout(Some(timeout))?)
    }

    /// The underlying socket (to shut it down half-way, read its address…).
    pub fn socket(&self) -> &TcpStream {
        self.stream.get_ref()
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        Ok(self.stream.get_mut().write_all(bytes)?)
    }

    /// Reads the next response (skipping `100 Continue`), assuming it
    /// answers a request that was not `HEAD`.
    pub fn read_response(&mut self) -> Result<HttpResponse, ClientError> {
        read_response(&mut self.stream, false)
    }

    /// Reads the next response to a `HEAD` request (no body).
    pub fn read_head_response(&mut self) -> Result<HttpResponse, ClientError> {
        read_response(&mut self.stream, true)
    }

    /// Sends `bytes` and reads one response.
    pub fn request(&mut self, bytes: &[u8]) -> Result<HttpResponse, ClientError> {
        self.send(bytes)?;
        self.read_response()
    }

    /// Sends `GET path` with `Host: host` and reads the response.
    pub fn get(&mut self, host: &str, path: &str) -> Result<HttpResponse, ClientError> {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
    }

    /// Whether the server closes the connection within `timeout` without
    /// sending anything more (bytes sent meanwhile count as "not closed").
    pub fn is_closed_by_peer(&mut self, timeout: Duration) -> bool {
        if self.stream.has_buffered() || self.set_read_timeout(timeout).is_err() {
            return false;
        }
        let mut byte = [0; 1];
        match self.stream.get_mut().read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// Parses every complete response in `bytes` (as read by [`raw_exchange`]),
/// stopping at the first incomplete or invalid one.
pub fn parse_responses(bytes: &[u8]) -> Vec<HttpResponse> {
    let mut stream = BufferedStream::new(Cursor::new(bytes));
    std::iter::from_fn(|| read_response(&mut stream, false).ok()).collect()
}

/// Sends `bytes` on a fresh connection, then reads until the server closes
/// or `timeout` (counted from the start) passes; returns all bytes read.
/// Write errors are ignored (the server may close early, which is what
/// request-smuggling tests look at); so is a reset after some bytes came.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    // The connection stays open for writing: a half-close could make the
    // server answer differently from a real client's.
    let _ = stream.write_all(bytes);
    let mut received = Vec::new();
    let mut buffer = [0; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(received);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionReset => {
                return Ok(received)
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub(crate) fn read_response<S: Read>(
    stream: &mut BufferedStream<S>,
    to_head_request: bool,
) -> Result<HttpResponse, ClientError> {
    loop {
        let head = stream
            .read_head(MAX_HEAD)?
            .ok_or(ClientError::ClosedBeforeResponse)?;
        let mut header_slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut header_slots);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(ClientError::Parse("partial head".into())),
            Err(e) => return Err(ClientError::Parse(e.to_string())),
        }
        let status = parsed.code.unwrap_or_default();
        let headers = owned_headers(parsed.headers);
        // Interim answers precede the real one; 101 ends HTTP on this
        // connection, so it is the answer.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let body = read_response_body(stream, status, &headers, to_head_request)?;
        return Ok(HttpResponse {
            status,
            headers,
            body,
        });
    }
}

/// Reads the body as RFC 9112 section 6.3 frames responses.
fn read_response_body<S: Read>(
    stream: &mut BufferedStream<S>,
    status: u16,
    headers: &[(String, String)],
    to_head_request: bool,
) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    if to_head_request || status < 200 || status == 204 || status == 304 {
        return Ok(body);
    }
    if header_has_token(headers, "Transfer-Encoding", "chunked") {
        stream.read_chunked(usize::MAX, &mut body)?;
    } else if let Some(length) = header_value(headers, "Content-Length") {
        let length: u64 = length
            .trim()
            .parse()
            .map_err(|_| ClientError::Parse(format!("bad Content-Length {length:?}")))?;
        stream.read_fixed(length, usize::MAX, &mut body)?;
    } else {
        stream.read_to_close(usize::MAX, &mut body)?;
    }
    Ok(body)
}
