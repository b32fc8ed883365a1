//! The types the loop and a session exchange.

use std::{rc::Rc, time::Instant};

use super::{exchange::Exchange, RequestLog};
use crate::http::{
    answers::Answers, buffers::BufferSource, parser::HeaderSpan, rewrite::RequestIds,
    router::Router,
};

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
    /// Largest request body the listener accepts, in bytes (`None`: no limit).
    pub max_request_body: Option<u64>,
    /// The current time.
    pub now: Instant,
    /// Where the session reports; shared by the worker's sessions so that an
    /// idle session holds no queue of its own.
    pub out: &'a mut SessionOutput,
}

/// What a call to a session asked of the loop, in order, and the worker's
/// scratch space for parsing heads. The loop drains `actions` and `finished`
/// after every call; the capacity stays for the next session.
#[derive(Debug, Default)]
pub struct SessionOutput {
    /// Actions, in the order they must be performed.
    pub actions: Vec<SessionAction>,
    /// One record per [`SessionAction::RequestFinished`] in `actions`, in the same order.
    pub finished: Vec<RequestLog>,
    /// Header fields of the head being parsed (valid during one call only).
    pub(crate) headers: Vec<HeaderSpan>,
    /// Exchanges of finished requests, reused by the next ones (no allocation
    /// per request, and none held by idle sessions). The boxes themselves are
    /// kept: the sessions' states hold boxes.
    #[allow(clippy::vec_box)]
    spare_exchanges: Vec<Box<Exchange>>,
}

/// Spare exchanges kept at most (one per request in flight is enough).
const MAX_SPARE_EXCHANGES: usize = 64;

impl SessionOutput {
    /// Clears what the loop has carried out, keeping the capacity.
    pub fn clear(&mut self) {
        self.actions.clear();
        self.finished.clear();
    }

    /// A boxed `exchange`, in a spare box when there is one.
    pub(crate) fn boxed_exchange(&mut self, exchange: Exchange) -> Box<Exchange> {
        match self.spare_exchanges.pop() {
            Some(mut spare) => {
                *spare = exchange;
                spare
            }
            None => Box::new(exchange),
        }
    }

    /// Keeps the box of a finished exchange for a next one.
    pub(crate) fn recycle_exchange(&mut self, exchange: Box<Exchange>) {
        if self.spare_exchanges.len() < MAX_SPARE_EXCHANGES {
            self.spare_exchanges.push(exchange);
        }
    }

    /// Reports a finished request: its action and its record.
    pub(crate) fn request_finished(&mut self, log: RequestLog) {
        self.finished.push(log);
        self.actions.push(SessionAction::RequestFinished);
    }

    /// Reports the end of an upgrade's byte pipe: its action and its record.
    pub(crate) fn pipe_finished(&mut self, log: RequestLog) {
        self.finished.push(log);
        self.actions.push(SessionAction::PipeFinished);
    }
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

/// Something only the loop can do, asked by the session. Small on purpose: the
/// log record of a finished request travels in [`SessionOutput::finished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAction {
    /// Select a backend of this cluster and connect to it, then call
    /// [`HttpSession::backend_connected`](super::HttpSession::backend_connected) (or `backend_connect_failed` /
    /// `backend_unavailable`). `sticky_id` is the client's sticky cookie value.
    ConnectBackend {
        /// Cluster to pick a backend from (shared with the router's route).
        cluster_id: Rc<str>,
        /// Backend the client is stuck to, if it said so.
        sticky_id: Option<Rc<str>>,
        /// An idle connection kept by the worker may serve the request (then
        /// report it with `backend_reused`): only for requests that can be sent
        /// again if that connection turns out closed (idempotent, no body), and
        /// never for a replay.
        reuse: bool,
        /// The session's backend connection, idle after a complete keep-alive
        /// exchange, goes to this cluster: if the selection picks its backend again
        /// the loop keeps it (and calls `backend_reused`); otherwise it is released
        /// like with `ReleaseBackend` before another is taken or opened.
        current_connection: bool,
    },
    /// A request was sent on the (connected) backend connection: it counts as
    /// active on that backend until the next `RequestFinished` or until the
    /// backend connection is dropped, whichever comes first.
    RequestStarted,
    /// Drop the backend connection.
    CloseBackend,
    /// The session leaves its backend connection idle and reusable (the last
    /// response was complete, both sides keep-alive, the request entirely
    /// sent): the loop may keep it for another session instead of closing it.
    ReleaseBackend,
    /// Shut down writing to the client (its data has all been written).
    ShutdownFrontWrite,
    /// Shut down writing to the backend (its data has all been written).
    ShutdownBackWrite,
    /// A 101 passed: the session now pipes bytes both ways.
    Upgraded,
    /// One request is over; its record is the next one of [`SessionOutput::finished`].
    /// An upgrade (101) is over as a request when the 101 passed (metrics and passive
    /// checks count it then) and its record says so (`Termination::Upgraded`); the
    /// access log waits for [`SessionAction::PipeFinished`].
    RequestFinished,
    /// The byte pipe of an upgrade closed; its record, the next one of
    /// [`SessionOutput::finished`], is the upgrade's with the bytes piped and the
    /// pipe's whole duration, for the access log.
    PipeFinished,
    /// Close the client connection (and the backend's) once `front_pending` is
    /// empty. The loop should close lingeringly (shut down writing, then drain
    /// for a short while) so an answer is not lost to a reset.
    Close,
}
