//! A scriptable HTTP/1.1 mock backend.
//!
//! By default it answers every request `200` with the body
//! `backend: NAME\n` (and an `X-Backend: NAME` header), keeping the
//! connection alive as HTTP/1.1 says. `/health` answers the status set by
//! [`MockHttpServer::set_health_status`] (200 at start). Handlers for a path,
//! or for every path, can be installed at any time; they build a
//! [`MockResponse`] that can be delayed, chunked, cut after its head or reset
//! in the middle of its body. Every request received is recorded.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::http_io::{header_has_token, header_value, owned_headers, BufferedStream, HttpIoError};
use crate::mock_server::{lock, MockServer};

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a request.
const MAX_HEADERS: usize = 128;
/// Bytes of each request body kept in [`MockRequest::body`].
pub const KEPT_BODY_BYTES: usize = 1024 * 1024;
/// Slice of a response delay after which a stop is noticed.
const DELAY_SLICE: Duration = Duration::from_millis(10);

/// A request as the mock received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target as sent (path and query).
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The first [`KEPT_BODY_BYTES`] of the decoded body.
    pub body: Vec<u8>,
    /// Length of the whole decoded body.
    pub body_len: u64,
}

impl MockRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    fn wants_close(&self) -> bool {
        match self.minor_version {
            0 => !header_has_token(&self.headers, "Connection", "keep-alive"),
            _ => header_has_token(&self.headers, "Connection", "close"),
        }
    }
}

/// What the mock sends back; build with [`MockResponse::new`] and the
/// chained setters.
#[derive(Clone, Debug)]
pub struct MockResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers (Content-Length / Transfer-Encoding are added unless
    /// given here).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Wait this long before sending anything.
    pub delay: Option<Duration>,
    /// Send the body with chunked transfer coding (in two chunks).
    pub chunked: bool,
    /// Send the head only, then close (the promised body never comes).
    pub close_after_head: bool,
    /// Send the head and half the body, then reset the connection (RST).
    pub reset_mid_body: bool,
    /// Close the connection after this response (`Connection: close`).
    pub close: bool,
}

impl MockResponse {
    /// A response with `status` and `body`, no knob set.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: None,
            chunked: false,
            close_after_head: false,
            reset_mid_body: false,
            close: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Delays the whole response.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Uses chunked transfer coding.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Closes right after the head.
    pub fn close_after_head(mut self) -> Self {
        self.close_after_head = true;
        self
    }

    /// Resets the connection half-way through the body.
    pub fn reset_mid_body(mut self) -> Self {
        self.reset_mid_body = true;
        self
    }

    /// Closes the connection after the response.
    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }
}

/// A handler building the response to a request.
pub type MockHandler = Arc<dyn Fn(&MockRequest) -> MockResponse + Send + Sync>;

/// State shared by the server and its connection threads.
struct Script {
    name: String,
    health_status: AtomicU16,
    stopping: AtomicBool,
    by_path: RwLock<HashMap<String, MockHandler>>,
    fallback: RwLock<Option<MockHandler>>,
    requests: Mutex<Vec<MockRequest>>,
}

impl Script {
    fn respond(&self, request: &MockRequest) -> MockResponse {
        let by_path = self.by_path.read().unwrap_or_else(|p| p.into_inner());
        let handler = by_path.get(request.path_only()).cloned();
        drop(by_path);
        if let Some(handler) = handler {
            return handler(request);
        }
        if request.path_only() == "/health" {
            let status = self.health_status.load(Ordering::SeqCst);
            return MockResponse::new(status, format!("health: {status}\n"));
        }
        let fallback = self
            .fallback
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match fallback {
            Some(handler) => handler(request),
            None => MockResponse::new(200, format!("backend: {}\n", self.name)),
        }
    }
}

/// The mock HTTP backend; see the module documentation. Derefs to
/// [`MockServer`] for `stop()`, `restart()`, `addr()` and connection counts.
pub struct MockHttpServer {
    script: Arc<Script>,
    server: MockServer,
}

impl MockHttpServer {
    /// Starts serving on `addr`, naming itself `name` in its answers.
    pub fn start(addr: SocketAddr, name: &str) -> io::Result<Self> {
        let script = Arc::new(Script {
            name: name.to_owned(),
            health_status: AtomicU16::new(200),
            stopping: AtomicBool::new(false),
            by_path: RwLock::default(),
            fallback: RwLock::default(),
            requests: Mutex::default(),
        });
        let handler = {
            let script = Arc::clone(&script);
            Arc::new(move |stream: TcpStream| serve(stream, &script))
        };
        Ok(Self {
            server: MockServer::start(addr, handler)?,
            script,
        })
    }

    /// Its name, as in `backend: NAME`.
    pub fn name(&self) -> &str {
        &self.script.name
    }

    /// Answers requests for `path` (query string ignored) with `handler`.
    pub fn set_handler(
        &self,
        path: &str,
        handler: impl Fn(&MockRequest) -> MockResponse + Send + Sync + 'static,
    ) {
        let mut by_path = self
            .script
            .by_path
            .write()
            .unwrap_or_else(|p| p.into_inner());
        by_path.insert(path.to_owned(), Arc::new(handler));
    }

    /// Answers every path without its own handler (except `/health`) with
    /// `handler`.
    pub fn set_default_handler(
        &self,
        handler: impl Fn(&MockRequest) -> MockResponse + Send + Sync + 'static,
    ) {
        *self
            .script
            .fallback
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(handler));
    }

    /// Status answered on `/health` from now on.
    pub fn set_health_status(&self, status: u16) {
        self.script.health_status.store(status, Ordering::SeqCst);
    }

    /// Every request received so far, in order.
    pub fn requests_seen(&self) -> Vec<MockRequest> {
        lock(&self.script.requests).clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.script.requests).len()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.script.requests).clear();
    }

    /// Closes the listener and every connection (delayed responses are
    /// abandoned).
    pub fn stop(&mut self) {
        self.script.stopping.store(true, Ordering::SeqCst);
        self.server.stop();
    }

    /// Listens again on the same address.
    pub fn restart(&mut self) -> io::Result<()> {
        self.script.stopping.store(false, Ordering::SeqCst);
        self.server.restart()
    }
}

impl Deref for MockHttpServer {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl DerefMut for MockHttpServer {
    fn deref_mut(&mut self) -> &mut MockServer {
        &mut self.server
    }
}

impl Drop for MockHttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves requests on one connection until either side closes.
fn serve(stream: TcpStream, script: &Script) {
    let _ = stream.set_nodelay(true);
    let mut conn = BufferedStream::new(stream);
    loop {
        let request = match read_request(&mut conn) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(RequestError::Malformed(why)) => {
                log::debug!("mock {}: malformed request: {why}", script.name);
                let _ = conn.get_mut().write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
            Err(RequestError::Io(_)) => return,
        };
        lock(&script.requests).push(request.clone());
        let response = script.respond(&request);
        if let Some(delay) = response.delay {
            if !sleep_unless_stopping(delay, &script.stopping) {
                return;
            }
        }
        let keep_alive = !request.wants_close() && !response.close;
        match write_response(
            conn.get_mut(),
            &script.name,
            &request,
            &response,
            keep_alive,
        ) {
            Ok(true) if keep_alive => {}
            _ => return,
        }
    }
}

fn sleep_unless_stopping(delay: Duration, stopping: &AtomicBool) -> bool {
    let end = Instant::now() + delay;
    while !stopping.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        thread::sleep(DELAY_SLICE.min(end - now));
    }
    false
}

#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<HttpIoError> for RequestError {
    fn from(error: HttpIoError) -> Self {
        match error {
            HttpIoError::Io(e) => RequestError::Io(e),
            other => RequestError::Malformed(other.to_string()),
        }
    }
}

fn read_request(conn: &mut BufferedStream<TcpStream>) -> Result<Option<MockRequest>, RequestError> {
    let Some(head) = conn.read_head(MAX_HEAD)? else {
        return Ok(None);
    };
    let mut header_slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut header_slots);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(RequestError::Malformed("partial head".into()))
        }
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    }
    let mut request = MockRequest {
        method: parsed.method.unwrap_or_default().to_owned(),
        path: parsed.path.unwrap_or_default().to_owned(),
        minor_version: parsed.version.unwrap_or(1),
        headers: owned_headers(parsed.headers),
        body: Vec::new(),
        body_len: 0,
    };
    if header_has_token(&request.headers, "Expect", "100-continue") {
        conn.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    request.body_len = read_request_body(conn, &request.headers, &mut request.body)?;
    Ok(Some(request))
}

/// Reads the body as RFC 9112 section 6 frames requests: chunked wins, a
/// Content-Length must be one number, neither means no body.
fn read_request_body(
    conn: &mut BufferedStream<TcpStream>,
    headers: &[(String, String)],
    body: &mut Vec<u8>,
) -> Result<u64, RequestError> {
    let is_chunked = header_has_token(headers, "Transfer-Encoding", "chunked");
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.trim())
        .collect();
    if is_chunked && !lengths.is_empty() {
        return Err(RequestError::Malformed(
            "both Transfer-Encoding and Content-Length".into(),
        ));
    }
    if is_chunked {
        return Ok(conn.read_chunked(KEPT_BODY_BYTES, body)?);
    }
    match lengths.as_slice() {
        [] => Ok(0),
        [first, rest @ ..] if rest.iter().all(|l| l == first) => {
            let len: u64 = first
                .parse()
                .map_err(|_| RequestError::Malformed(format!("bad Content-Length {first:?}")))?;
            Ok(conn.read_fixed(len, KEPT_BODY_BYTES, body)?)
        }
        _ => Err(RequestError::Malformed("conflicting Content-Length".into())),
    }
}

/// Writes `response`; `Ok(false)` when the connection must not be reused.
fn write_response(
    stream: &mut TcpStream,
    name: &str,
    request: &MockRequest,
    response: &MockResponse,
    keep_alive: bool,
) -> io::Result<bool> {
    let status = response.status;
    let status_has_body = !(status < 200 || status == 204 || status == 304);
    let bodyless = request.method == "HEAD" || !status_has_body;
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nX-Backend: {name}\r\n",
        reason(status)
    );
    for (field, value) in &response.headers {
        head.push_str(&format!("{field}: {value}\r\n"));
    }
    let has_framing = header_value(&response.headers, "Content-Length").is_some()
        || header_value(&response.headers, "Transfer-Encoding").is_some();
    if !has_framing && status_has_body {
        match response.chunked {
            true => head.push_str("Transfer-Encoding: chunked\r\n"),
            false => head.push_str(&format!("Content-Length: {}\r\n", response.body.len())),
        }
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if response.close_after_head {
        stream.shutdown(std::net::Shutdown::Both)?;
        return Ok(false);
    }
    if bodyless {
        return Ok(true);
    }
    if response.reset_mid_body {
        stream.write_all(&response.body[..response.body.len() / 2])?;
        stream.flush()?;
        // Linger 0: closing now sends RST instead of FIN.
        socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO))?;
        return Ok(false);
    }
    match response.chunked {
        true => write_chunked(stream, &response.body)?,
        false => stream.write_all(&response.body)?,
    }
    Ok(true)
}

/// Writes `body` as two chunks (one when short) and the last chunk.
fn write_chunked(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 32);
    let (first, second) = body.split_at(body.len() / 2);
    for chunk in [first, second].into_iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&out)
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
