//! One request/response exchange: body progress on both sides and the facts
//! the response decisions and the access log need.

use std::time::{Duration, Instant};

use super::termination::Termination;
use crate::http::{
    answers::AnswerStatus,
    chunked::{ChunkError, ChunkedScanner},
    parser::{BodyFraming, RequestHead, Version},
};

/// Where a body stands.
#[derive(Debug, Clone)]
pub(crate) enum BodyProgress {
    /// This many bytes left.
    Remaining(u64),
    /// Chunked, followed by the scanner.
    Chunked(ChunkedScanner),
    /// Until the backend closes.
    UntilClose,
    /// Complete.
    Done,
}

impl BodyProgress {
    pub(crate) fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::None | BodyFraming::ContentLength(0) => BodyProgress::Done,
            BodyFraming::ContentLength(n) => BodyProgress::Remaining(n),
            BodyFraming::Chunked => BodyProgress::Chunked(ChunkedScanner::new()),
            BodyFraming::UntilClose => BodyProgress::UntilClose,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyProgress::Done)
    }

    /// The body is, or announced it will be, longer than `limit` bytes.
    /// A Content-Length body is judged on its length, a chunked one on the sum
    /// of the chunk sizes announced so far.
    pub(crate) fn exceeds(&self, limit: u64) -> bool {
        match self {
            BodyProgress::Remaining(left) => *left > limit,
            BodyProgress::Chunked(scanner) => scanner.data_len() > limit,
            BodyProgress::UntilClose | BodyProgress::Done => false,
        }
    }

    /// Like [`BodyProgress::scan`] for a request body that may not be longer
    /// than `limit` bytes (`None`: no limit). A chunked body fails as soon as
    /// the chunk sizes announced cross the limit, even in the same bytes as its
    /// end.
    pub(crate) fn scan_limited(
        &mut self,
        new: &[u8],
        limit: Option<u64>,
    ) -> Result<usize, BodyError> {
        let (Some(limit), BodyProgress::Chunked(scanner)) = (limit, &mut *self) else {
            return Ok(self.scan(new)?);
        };
        let progress = scanner.feed(new)?;
        if scanner.data_len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if progress.done {
            *self = BodyProgress::Done;
        }
        Ok(progress.consumed)
    }

    /// Follows `new` bytes; returns how many belong to the body.
    pub(crate) fn scan(&mut self, new: &[u8]) -> Result<usize, ChunkError> {
        match self {
            BodyProgress::Remaining(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(new.len());
                // `take` is at most `left`.
                *left -= take as u64;
                if *left == 0 {
                    *self = BodyProgress::Done;
                }
                Ok(take)
            }
            BodyProgress::Chunked(scanner) => {
                let progress = scanner.feed(new)?;
                if progress.done {
                    *self = BodyProgress::Done;
                }
                Ok(progress.consumed)
            }
            BodyProgress::UntilClose => Ok(new.len()),
            BodyProgress::Done => Ok(0),
        }
    }
}

/// Why a request body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// Malformed chunked framing.
    #[error(transparent)]
    Framing(#[from] ChunkError),
    /// Longer than the listener accepts.
    #[error("request body over the limit of {limit} bytes")]
    TooLarge {
        /// The listener's limit, in bytes.
        limit: u64,
    },
}

impl BodyError {
    /// The answer the client gets.
    pub(crate) fn status(self) -> AnswerStatus {
        match self {
            BodyError::Framing(_) => AnswerStatus::BadRequest,
            BodyError::TooLarge { .. } => AnswerStatus::PayloadTooLarge,
        }
    }
}

/// Where the response stands.
#[derive(Debug, Clone)]
pub(crate) enum ResponseProgress {
    /// Waiting for a (final or interim) head.
    Head,
    /// Forwarding the body.
    Body(BodyProgress),
    /// Complete.
    Done,
}

/// The longest method + host + path + user agent text kept for the access log.
const LOG_TEXT_LEN: usize = 448;
/// The longest request id kept for the access log (a client's may be longer; it is
/// forwarded whole).
const LOG_ID_LEN: usize = 64;

/// What the access log line of one request needs; fixed size, no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestLog {
    /// Status sent to the client (0 if none was).
    pub status: u16,
    /// Request bytes received from the client: the head as the client sent it, and
    /// the body bytes forwarded.
    pub bytes_in: u64,
    /// Response bytes sent to the client.
    pub bytes_out: u64,
    /// From the request head to the backend connection being ready.
    pub connect_time: Option<Duration>,
    /// From the backend connection being ready to the first response byte.
    pub response_time: Option<Duration>,
    /// From the request head to the end of the response.
    pub total_time: Duration,
    /// The request matched a frontend of a cluster (false for refused and unrouted requests).
    pub routed: bool,
    /// The status is an answer the proxy produced itself, not the backend's.
    pub answered_by_proxy: bool,
    /// The request's HTTP version (`None` when the head could not be parsed).
    pub version: Option<Version>,
    /// Who or what ended the exchange.
    pub termination: Termination,
    text: [u8; LOG_TEXT_LEN],
    method_len: u16,
    host_len: u16,
    path_len: u16,
    user_agent_len: u16,
    request_id: [u8; LOG_ID_LEN],
    request_id_len: u8,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("status", &self.status)
            .field("method", &String::from_utf8_lossy(self.method()))
            .field("host", &String::from_utf8_lossy(self.host()))
            .field("path", &String::from_utf8_lossy(self.path()))
            .field("request_id", &String::from_utf8_lossy(self.request_id()))
            .field("bytes_in", &self.bytes_in)
            .field("bytes_out", &self.bytes_out)
            .field("version", &self.version)
            .field("termination", &self.termination)
            .field("user_agent", &String::from_utf8_lossy(self.user_agent()))
            .finish()
    }
}

impl RequestLog {
    pub(crate) fn empty() -> Self {
        RequestLog {
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            connect_time: None,
            response_time: None,
            total_time: Duration::ZERO,
            routed: false,
            answered_by_proxy: false,
            version: None,
            termination: Termination::Complete,
            text: [0; LOG_TEXT_LEN],
            method_len: 0,
            host_len: 0,
            path_len: 0,
            user_agent_len: 0,
            request_id: [0; LOG_ID_LEN],
            request_id_len: 0,
        }
    }

    /// Records method, host, path and user agent (each truncated to what fits).
    fn describe(&mut self, method: &[u8], host: &[u8], path: &[u8], user_agent: &[u8]) {
        let mut at = 0;
        let mut put = |part: &[u8], text: &mut [u8; LOG_TEXT_LEN]| {
            let n = part.len().min(LOG_TEXT_LEN - at).min(usize::from(u16::MAX));
            text[at..at + n].copy_from_slice(&part[..n]);
            at += n;
            // `n` is capped at u16::MAX above.
            n as u16
        };
        self.method_len = put(method, &mut self.text);
        self.host_len = put(host, &mut self.text);
        self.path_len = put(path, &mut self.text);
        self.user_agent_len = put(user_agent, &mut self.text);
    }

    /// Records the request id (`Sluice-Request-Id`), truncated to what fits.
    pub(crate) fn set_request_id(&mut self, id: &[u8]) {
        let n = id.len().min(LOG_ID_LEN);
        self.request_id[..n].copy_from_slice(&id[..n]);
        // `n` is at most LOG_ID_LEN, which fits a u8.
        self.request_id_len = n as u8;
    }

    /// The request id sent to the backend (empty if the request was not forwarded).
    pub fn request_id(&self) -> &[u8] {
        &self.request_id[..usize::from(self.request_id_len)]
    }

    /// Request method.
    pub fn method(&self) -> &[u8] {
        &self.text[..usize::from(self.method_len)]
    }

    /// Host the request was routed on (empty if none).
    pub fn host(&self) -> &[u8] {
        let start = usize::from(self.method_len);
        &self.text[start..start + usize::from(self.host_len)]
    }

    /// Request path (without query), truncated for long paths.
    pub fn path(&self) -> &[u8] {
        let start = usize::from(self.method_len) + usize::from(self.host_len);
        &self.text[start..start + usize::from(self.path_len)]
    }

    /// The client's `User-Agent` (empty if none), truncated when long.
    pub fn user_agent(&self) -> &[u8] {
        let start =
            usize::from(self.method_len) + usize::from(self.host_len) + usize::from(self.path_len);
        &self.text[start..start + usize::from(self.user_agent_len)]
    }
}

/// One request and its response.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) request: BodyProgress,
    /// Bytes at the front of the client buffer that belong to the request body.
    pub(crate) request_ready: usize,
    pub(crate) response: ResponseProgress,
    /// Bytes at the front of the backend buffer that belong to the response.
    pub(crate) response_ready: usize,
    pub(crate) client_version: Version,
    /// The client connection closes after this exchange.
    pub(crate) close_client: bool,
    /// The backend connection may serve another request afterwards.
    pub(crate) keep_backend: bool,
    pub(crate) head_request: bool,
    pub(crate) upgrade: bool,
    /// Sent on a reused backend connection without a body: if that connection
    /// turns out closed before any response byte, the request goes again on a
    /// fresh one (the backend closed it while idle, racing the request).
    pub(crate) replay: bool,
    /// The method may be sent twice (RFC 9110 section 9.2.2).
    pub(crate) idempotent: bool,
    /// Some response byte (interim included) was queued for the client.
    pub(crate) response_started: bool,
    pub(crate) started_at: Instant,
    pub(crate) connected_at: Option<Instant>,
    pub(crate) log: RequestLog,
}

impl Exchange {
    pub(crate) fn new(buf: &[u8], head: &RequestHead, now: Instant) -> Self {
        let mut log = RequestLog::empty();
        let host = head.host.map_or(&[][..], |h| h.of(buf));
        let user_agent = head.user_agent.map_or(&[][..], |ua| ua.of(buf));
        log.describe(head.method.of(buf), host, head.path.of(buf), user_agent);
        log.version = Some(head.version);
        log.bytes_in = head.len as u64;
        Exchange {
            request: BodyProgress::new(head.framing),
            request_ready: 0,
            response: ResponseProgress::Head,
            response_ready: 0,
            client_version: head.version,
            close_client: !head.keep_alive,
            keep_backend: false,
            head_request: head.is_head,
            upgrade: head.upgrade,
            replay: false,
            idempotent: super::replay::is_idempotent(head.method.of(buf)),
            response_started: false,
            started_at: now,
            connected_at: None,
            log,
        }
    }

    pub(crate) fn finish_log(&mut self, now: Instant) -> RequestLog {
        self.log.total_time = now.saturating_duration_since(self.started_at);
        self.log.connect_time = self
            .connected_at
            .map(|c| c.saturating_duration_since(self.started_at));
        self.log
    }
}
