//! The recording backend every proxy forwards to: it keeps the raw bytes of
//! each request head and body it receives, and answers either a plain
//! `200 ok` or, for a path holding `/r/<name>`, the raw response scripted
//! under that name (then closes, so that broken framing cannot leak into a
//! next exchange).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a backend connection may stay silent before it is dropped.
const IDLE: Duration = Duration::from_secs(4);
/// Largest head or body read; more is cut (and said so).
const MAX_READ: usize = 1 << 20;
/// The answer to every request without a script.
const DEFAULT_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// One request as it reached the backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct Forwarded {
    /// The head, empty line included.
    pub(crate) head: Vec<u8>,
    /// The body bytes as framed on the wire (chunk lines included).
    pub(crate) body: Vec<u8>,
    /// How the body ended: `none`, `cl`, `chunked`, or what went wrong.
    pub(crate) body_end: &'static str,
}

/// A listening recording backend; its threads end with the process.
pub(crate) struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Forwarded>>>,
}

impl Recorder {
    /// Starts listening on a free port, answering `scripts[name]` to paths
    /// holding `/r/<name>`.
    pub(crate) fn start(scripts: Arc<HashMap<String, Vec<u8>>>) -> io::Result<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&shared);
                let scripts = Arc::clone(&scripts);
                thread::spawn(move || serve(stream, &seen, &scripts));
            }
        });
        Ok(Recorder { addr, seen })
    }

    /// Where proxies send requests.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes every request recorded since the last call.
    pub(crate) fn take(&self) -> Vec<Forwarded> {
        std::mem::take(&mut *lock(&self.seen))
    }
}

fn lock(seen: &Mutex<Vec<Forwarded>>) -> std::sync::MutexGuard<'_, Vec<Forwarded>> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A buffered reader that keeps what it consumed for the record.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Makes sure `n` bytes are buffered; `false` on EOF, error or timeout.
    fn fill(&mut self, n: usize) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        while self.buf.len() < n {
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(read) => self.buf.extend_from_slice(&chunk[..read]),
            }
        }
        true
    }

    /// Consumes up to and with the first `needle`; `None` if it never came.
    fn take_until(&mut self, needle: &[u8], limit: usize) -> Option<Vec<u8>> {
        let mut from = 0;
        loop {
            if let Some(at) = find(&self.buf[from..], needle) {
                let end = from + at + needle.len();
                return Some(self.buf.drain(..end).collect());
            }
            from = self.buf.len().saturating_sub(needle.len());
            if self.buf.len() > limit || !self.fill(self.buf.len() + 1) {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        self.fill(n).then(|| self.buf.drain(..n).collect())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Forwarded>>, scripts: &HashMap<String, Vec<u8>>) {
    if stream.set_read_timeout(Some(IDLE)).is_err() {
        return;
    }
    let mut wire = Wire {
        stream,
        buf: Vec::new(),
    };
    loop {
        let Some(head) = wire.take_until(b"\r\n\r\n", MAX_READ) else {
            return;
        };
        let index = {
            let mut seen = lock(seen);
            seen.push(Forwarded {
                head: head.clone(),
                body: Vec::new(),
                body_end: "pending",
            });
            seen.len() - 1
        };
        let (body, body_end) = read_body(&mut wire, &head);
        if let Some(record) = lock(seen).get_mut(index) {
            record.body = body;
            record.body_end = body_end;
        }
        if body_end != "none" && body_end != "cl" && body_end != "chunked" {
            return;
        }
        let script = script_name(&head).and_then(|name| scripts.get(name));
        let answer = script.map_or(DEFAULT_ANSWER, Vec::as_slice);
        if wire.stream.write_all(answer).is_err() || script.is_some() {
            return;
        }
    }
}

/// The `<name>` of a request line `… /r/<name> …`.
fn script_name(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let at = line.find("/r/")?;
    line[at + 3..].split([' ', '?', '\r']).next()
}

/// The value of the last field `name` in a head, trimmed.
fn field<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| line[colon + 1..].trim_ascii())
        })
        .last()
}

fn read_body(wire: &mut Wire, head: &[u8]) -> (Vec<u8>, &'static str) {
    let chunked = field(head, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().ends_with(b"chunked"));
    if chunked {
        return read_chunked(wire);
    }
    let Some(length) = field(head, "content-length") else {
        return (Vec::new(), "none");
    };
    let length = std::str::from_utf8(length)
        .ok()
        .and_then(|l| l.parse::<usize>().ok());
    match length {
        Some(0) => (Vec::new(), "none"),
        Some(n) if n <= MAX_READ => match wire.take(n) {
            Some(body) => (body, "cl"),
            None => (std::mem::take(&mut wire.buf), "cl-short"),
        },
        _ => (Vec::new(), "cl-unparsable"),
    }
}

fn read_chunked(wire: &mut Wire) -> (Vec<u8>, &'static str) {
    let mut body = Vec::new();
    loop {
        let Some(line) = wire.take_until(b"\r\n", 4096) else {
            body.append(&mut wire.buf);
            return (body, "chunk-line-cut");
        };
        let digits: Vec<u8> = line
            .iter()
            .copied()
            .take_while(u8::is_ascii_hexdigit)
            .collect();
        body.extend_from_slice(&line);
        let size = std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| usize::from_str_radix(d, 16).ok());
        match size {
            Some(0) => break,
            Some(size) if size <= MAX_READ => match wire.take(size + 2) {
                Some(data) => body.extend_from_slice(&data),
                None => {
                    body.append(&mut wire.buf);
                    return (body, "chunk-data-cut");
                }
            },
            _ => return (body, "chunk-size-bad"),
        }
    }
    loop {
        let Some(line) = wire.take_until(b"\r\n", 4096) else {
            return (body, "trailer-cut");
        };
        body.extend_from_slice(&line);
        if line == b"\r\n" {
            return (body, "chunked");
        }
    }
}
