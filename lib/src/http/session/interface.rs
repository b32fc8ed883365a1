//! The types the loop and a session exchange.

use std::time::Instant;

use super::RequestLog;
use crate::http::{answers::Answers, buffers::BufferSource, rewrite::RequestIds, router::Router};

/// What a session needs from its listener and worker on each call.
pub struct HttpContext<'a> {
    /// The listener's routes.
    pub router: &'a Router,
    /// The listener's answers (with its clusters' custom ones).
    pub answers: &'a Answers,
    /// The worker's buffer pool.
    pub buffers: &'a mut dyn BufferSource,
    /// The worker's request id generator.
    pub request_ids: &'a mut RequestIds,
    /// Name of the sticky-session cookie.
    pub sticky_cookie: &'a [u8],
    /// The current time.
    pub now: Instant,
}

/// Which timer of the session fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The request (head or body) did not arrive in time: 408 if a head was
    /// started, a silent close if nothing was received (like nginx).
    Request,
    /// The backend did not answer in time: 504 if no response byte was sent,
    /// else a close.
    Back,
    /// The client connection was idle (keep-alive) or not writable: close.
    Front,
}

/// What the session wants from each socket now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interest {
    /// Read from the client.
    pub front_read: bool,
    /// Write to the client.
    pub front_write: bool,
    /// Read from the backend.
    pub back_read: bool,
    /// Write to the backend.
    pub back_write: bool,
}

/// Something only the loop can do, asked by the session.
// The log record is kept inline on purpose: the action queue is reused, so a
// finished request costs no allocation; boxing it would cost one per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAction {
    /// Select a backend of this cluster and connect to it, then call
    /// [`HttpSession::backend_connected`](super::HttpSession::backend_connected) (or `backend_connect_failed` /
    /// `backend_unavailable`). `sticky_id` is the client's sticky cookie value.
    ConnectBackend {
        /// Cluster to pick a backend from.
        cluster_id: String,
        /// Backend the client is stuck to, if it said so.
        sticky_id: Option<String>,
    },
    /// Drop the backend connection.
    CloseBackend,
    /// Shut down writing to the client (its data has all been written).
    ShutdownFrontWrite,
    /// Shut down writing to the backend (its data has all been written).
    ShutdownBackWrite,
    /// A 101 passed: the session now pipes bytes both ways.
    Upgraded,
    /// One request is over; log it.
    RequestFinished(RequestLog),
    /// Close the client connection (and the backend's) once `front_pending` is
    /// empty. The loop should close lingeringly (shut down writing, then drain
    /// for a short while) so an answer is not lost to a reset.
    Close,
}
