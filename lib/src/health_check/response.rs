//! Reading the status of a probe's HTTP response, and what counts as a failed probe.

use std::io;
use std::ops::RangeInclusive;

use thiserror::Error;

/// Longest status line read before the probe gives up on the response.
pub const MAX_STATUS_LINE: usize = 1024;

/// Why a probe failed.
#[derive(Debug, Error)]
pub enum ProbeFailure {
    /// The connection could not be established (refused, unreachable, reset…).
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// The socket could not be registered with the poll.
    #[error("cannot register the probe socket: {0}")]
    Register(#[source] io::Error),
    /// Reading or writing failed once connected.
    #[error("connection failed: {0}")]
    Io(#[source] io::Error),
    /// The probe took longer than the check's timeout.
    #[error("timed out")]
    Timeout,
    /// The backend closed the connection before a complete status line.
    #[error("connection closed before a status line")]
    ClosedBeforeStatus,
    /// The status line does not parse.
    #[error("invalid status line: {0}")]
    BadStatusLine(#[source] httparse::Error),
    /// No line end within [`MAX_STATUS_LINE`] bytes.
    #[error("status line longer than {MAX_STATUS_LINE} bytes")]
    StatusLineTooLong,
    /// The status is outside the expected range.
    #[error("unexpected status {0}")]
    UnexpectedStatus(u16),
}

impl ProbeFailure {
    /// The failure in a few words for events and logs, naming what was probed (`target`,
    /// a URI or `connect`): `HTTP 503 on /health`, `connection refused on /health`.
    pub fn summary(&self, target: &str) -> String {
        let what = match self {
            ProbeFailure::Connect(error)
            | ProbeFailure::Io(error)
            | ProbeFailure::Register(error) => io_summary(error),
            ProbeFailure::Timeout => "timeout".to_owned(),
            ProbeFailure::ClosedBeforeStatus => "closed before a status line".to_owned(),
            ProbeFailure::BadStatusLine(_) | ProbeFailure::StatusLineTooLong => {
                "invalid status line".to_owned()
            }
            ProbeFailure::UnexpectedStatus(status) => format!("HTTP {status}"),
        };
        format!("{what} on {target}")
    }
}

/// An I/O error in the words operators use (`connection refused`), without the OS code.
pub(crate) fn io_summary(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::TimedOut => "timeout".to_owned(),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            "unreachable".to_owned()
        }
        _ => error.to_string(),
    }
}

/// Whether a status counts as a successful probe.
pub fn classify_status(status: u16, expected: &RangeInclusive<u16>) -> Result<(), ProbeFailure> {
    if expected.contains(&status) {
        Ok(())
    } else {
        Err(ProbeFailure::UnexpectedStatus(status))
    }
}

/// Collects response bytes until the status line is complete.
#[derive(Debug, Default)]
pub struct StatusReader {
    received: Vec<u8>,
}

impl StatusReader {
    /// An empty reader.
    pub fn new() -> Self {
        StatusReader::default()
    }

    /// Adds received bytes; returns the status once the status line is complete (`None`
    /// while it is not), or why the response is not usable.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Result<u16, ProbeFailure>> {
        let searched = self.received.len();
        let room = MAX_STATUS_LINE.saturating_sub(searched);
        let taken = &bytes[..bytes.len().min(room)];
        self.received.extend_from_slice(taken);
        match self.received[searched..].iter().position(|&b| b == b'\n') {
            Some(at) => Some(parse_status_line(&self.received[..=searched + at])),
            None if self.received.len() >= MAX_STATUS_LINE => {
                Some(Err(ProbeFailure::StatusLineTooLong))
            }
            None => None,
        }
    }

    /// The backend closed the connection: whatever was received is not a status line.
    pub fn end_of_stream(&self) -> ProbeFailure {
        ProbeFailure::ClosedBeforeStatus
    }
}

/// Parses one complete line (ending in `\n`) as a status line. Only the status matters, so
/// the headers are never read: a complete status line parses as a partial response.
fn parse_status_line(line: &[u8]) -> Result<u16, ProbeFailure> {
    let mut response = httparse::Response::new(&mut []);
    match response.parse(line) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {}
        Err(error) => return Err(ProbeFailure::BadStatusLine(error)),
    }
    // httparse fills `code` as soon as the status line is parsed, before the headers.
    response
        .code
        .ok_or(ProbeFailure::BadStatusLine(httparse::Error::Status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(chunks: &[&[u8]]) -> Option<Result<u16, ProbeFailure>> {
        let mut reader = StatusReader::new();
        let (last, first) = chunks.split_last().expect("at least one chunk");
        for chunk in first {
            assert!(reader.feed(chunk).is_none(), "answered before {chunk:?}");
        }
        reader.feed(last)
    }

    #[test]
    fn status_in_one_read() {
        let status = status_of(&[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]);
        assert_eq!(status.unwrap().unwrap(), 200);
    }

    #[test]
    fn status_over_partial_reads() {
        let status = status_of(&[b"HT", b"TP/1.1 5", b"03 Unavailable\r", b"\nServer: x"]);
        assert_eq!(status.unwrap().unwrap(), 503);
    }

    #[test]
    fn bare_line_feed_and_empty_reason() {
        assert_eq!(status_of(&[b"HTTP/1.0 204\n"]).unwrap().unwrap(), 204);
        assert_eq!(status_of(&[b"HTTP/1.1 301 \r\n"]).unwrap().unwrap(), 301);
    }

    #[test]
    fn incomplete_status_line_waits() {
        assert!(status_of(&[b"HTTP/1.1 200 OK"]).is_none());
    }

    #[test]
    fn garbage_is_a_bad_status_line() {
        for garbage in [&b"SSH-2.0-OpenSSH\r\n"[..], b"HTTP/1.1 2x0 OK\r\n", b"\r\n"] {
            let result = status_of(&[garbage]).unwrap();
            assert!(
                matches!(result, Err(ProbeFailure::BadStatusLine(_))),
                "{garbage:?}: {result:?}"
            );
        }
    }

    #[test]
    fn failures_are_summed_up_in_an_operator_s_words() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            ProbeFailure::Connect(refused).summary("/health"),
            "connection refused on /health"
        );
        assert_eq!(
            ProbeFailure::UnexpectedStatus(503).summary("/health"),
            "HTTP 503 on /health"
        );
        assert_eq!(
            ProbeFailure::Timeout.summary("connect"),
            "timeout on connect"
        );
    }

    #[test]
    fn endless_line_is_refused() {
        let long = vec![b'a'; MAX_STATUS_LINE + 10];
        let result = status_of(&[&long[..10], &long[10..]]).unwrap();
        assert!(matches!(result, Err(ProbeFailure::StatusLineTooLong)));
    }

    #[test]
    fn classification_by_range() {
        let expected = 200..=399;
        for (status, success) in [
            (199, false),
            (200, true),
            (302, true),
            (399, true),
            (400, false),
            (500, false),
        ] {
            assert_eq!(
                classify_status(status, &expected).is_ok(),
                success,
                "{status}"
            );
        }
        assert!(matches!(classify_status(404, &(404..=404)), Ok(())));
    }
}
