//! A load of HTTP clients that records every request with when it started and how it
//! ended, telling apart a connection refused, a connection reset or closed before any byte
//! of the answer, and an answer cut short; keep-alive clients reconnect when the proxy
//! closed their connection between two requests (at a request boundary only), as real
//! clients do.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::load_clients::{LoadClients, Tally};

/// How a client connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// `Connection: close`: a new connection per request.
    Close,
    /// One connection for many requests.
    KeepAlive,
}

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 200 from the expected backend.
    Served,
    /// The connection was refused (nothing listening).
    Refused(String),
    /// Reset or closed before any byte of the answer.
    NoAnswer(String),
    /// The answer started and was cut short.
    Cut(String),
    /// A whole answer, but not the expected one.
    Wrong(String),
}

/// One request of one client.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) client: usize,
    pub(crate) style: Style,
    pub(crate) started: Instant,
    pub(crate) outcome: Outcome,
}

/// Clients sending `GET /` for one host until stopped.
pub(crate) struct ClassifiedLoad {
    clients: LoadClients<Record>,
}

impl ClassifiedLoad {
    /// One client per entry of `styles`, expecting bodies starting `backend: PREFIX`.
    pub(crate) fn start(listener: SocketAddr, host: &str, prefix: &str, styles: &[Style]) -> Self {
        let clients = styles
            .iter()
            .enumerate()
            .map(|(index, &style)| Client {
                index,
                style,
                listener,
                host: host.to_owned(),
                expected: format!("backend: {prefix}"),
            })
            .collect();
        ClassifiedLoad {
            clients: LoadClients::spawn(clients, Client::run),
        }
    }

    /// Requests served right so far.
    pub(crate) fn served(&self) -> u64 {
        self.clients.served()
    }

    /// Keep-alive connections found closed between two requests and reopened so far.
    pub(crate) fn reconnects(&self) -> u64 {
        self.clients.reconnects()
    }

    /// Waits until at least `count` more requests were served (bounded).
    pub(crate) fn wait_for_more(&self, count: u64) {
        self.clients
            .wait_for_more("the load to make progress", count);
    }

    /// Stops the clients; returns (served, failed requests).
    pub(crate) fn stop(self) -> (u64, Vec<Record>) {
        self.clients.stop()
    }
}

struct Client {
    index: usize,
    style: Style,
    listener: SocketAddr,
    host: String,
    expected: String,
}

/// What reading one answer gave.
enum Read1 {
    Answer {
        status: u16,
        body: String,
        close: bool,
    },
    Nothing(String),
    Cut(String),
}

impl Client {
    fn run(self, tally: Tally<Record>) {
        let mut kept: Option<TcpStream> = None;
        while tally.running() {
            let started = Instant::now();
            let outcome = match self.style {
                Style::Close => self.one_close(),
                Style::KeepAlive => self.one_keep_alive(&mut kept, &tally),
            };
            if outcome == Outcome::Served {
                tally.served();
            } else {
                tally.failed(Record {
                    client: self.index,
                    style: self.style,
                    started,
                    outcome,
                });
            }
        }
    }

    fn one_close(&self) -> Outcome {
        let mut stream = match self.connect() {
            Ok(stream) => stream,
            Err(outcome) => return outcome,
        };
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host
        );
        if let Err(error) = stream.write_all(request.as_bytes()) {
            return Outcome::NoAnswer(format!("write: {error}"));
        }
        self.judge(read_answer(&mut stream))
    }

    fn one_keep_alive(&self, kept: &mut Option<TcpStream>, tally: &Tally<Record>) -> Outcome {
        let request = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        if let Some(mut stream) = kept.take() {
            // A reused connection the proxy closed between two requests: nothing of
            // this request was processed, so a client reconnects and sends it again.
            let sent = stream.write_all(request.as_bytes());
            match sent.map(|()| read_answer(&mut stream)) {
                Ok(Read1::Nothing(_)) | Err(_) => tally.reconnected(),
                Ok(read) => return self.keep_if_open(stream, read, kept),
            }
        }
        let mut stream = match self.connect() {
            Ok(stream) => stream,
            Err(outcome) => return outcome,
        };
        if let Err(error) = stream.write_all(request.as_bytes()) {
            return Outcome::NoAnswer(format!("write: {error}"));
        }
        let read = read_answer(&mut stream);
        self.keep_if_open(stream, read, kept)
    }

    fn keep_if_open(
        &self,
        stream: TcpStream,
        read: Read1,
        kept: &mut Option<TcpStream>,
    ) -> Outcome {
        if let Read1::Answer { close: false, .. } = read {
            *kept = Some(stream);
        }
        self.judge(read)
    }

    fn connect(&self) -> Result<TcpStream, Outcome> {
        let stream = TcpStream::connect_timeout(&self.listener, Duration::from_secs(5)).map_err(
            |error| match error.kind() {
                ErrorKind::ConnectionRefused => Outcome::Refused(error.to_string()),
                _ => Outcome::NoAnswer(format!("connect: {error}")),
            },
        )?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn judge(&self, read: Read1) -> Outcome {
        match read {
            Read1::Answer {
                status: 200, body, ..
            } if body.starts_with(&self.expected) => Outcome::Served,
            Read1::Answer { status, body, .. } => Outcome::Wrong(format!("{status} {body:?}")),
            Read1::Nothing(why) => Outcome::NoAnswer(why),
            Read1::Cut(why) => Outcome::Cut(why),
        }
    }
}

/// Reads one answer: the head, then a `Content-Length` body (or until the end).
fn read_answer(stream: &mut TcpStream) -> Read1 {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&bytes, b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) if bytes.is_empty() => return Read1::Nothing("closed".to_owned()),
            Ok(0) => return Read1::Cut("closed in the head".to_owned()),
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            Err(error) if bytes.is_empty() => return Read1::Nothing(error.to_string()),
            Err(error) => return Read1::Cut(format!("head: {error}")),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let close = head.contains("connection: close");
    let length: Option<usize> = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok());
    loop {
        let body_len = bytes.len() - head_end;
        if length.is_some_and(|length| body_len >= length) {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) if length.is_none() => break,
            Ok(0) => return Read1::Cut(format!("body: {body_len} of {length:?}")),
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            Err(error) => return Read1::Cut(format!("body: {error}")),
        }
    }
    Read1::Answer {
        status,
        body: String::from_utf8_lossy(&bytes[head_end..]).into_owned(),
        close,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
