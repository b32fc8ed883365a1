//! What the harness checks, as errors: each variant is one oracle that failed.

use crate::http::{fuzzing::stream::StreamError, session::TimeoutKind};

/// An oracle that does not hold after some sequence of events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A backend connection received bytes that do not frame as requests.
    #[error("backend connection {connection} received bytes that are not requests: {error}")]
    NotRequests {
        /// The connection, numbered from 0 in the order they were opened.
        connection: usize,
        /// What the framing found.
        error: StreamError,
    },
    /// A request reached a backend of a cluster its route does not name.
    #[error("request for {host}{path} sent to connection {connection} of cluster {cluster}")]
    WrongCluster {
        /// The connection.
        connection: usize,
        /// The connection's cluster.
        cluster: String,
        /// Host of the request.
        host: String,
        /// Path of the request.
        path: String,
    },
    /// More request heads reached a connection than requests were started on it.
    #[error("connection {connection} received {heads} request heads for {started} requests")]
    UnstartedRequest {
        /// The connection.
        connection: usize,
        /// Heads it received.
        heads: usize,
        /// `RequestStarted` while it was the session's.
        started: usize,
    },
    /// A connection was left for reuse in the middle of a request.
    #[error("connection {connection} left for reuse in the middle of a request")]
    ReleasedMidRequest {
        /// The connection.
        connection: usize,
    },
    /// The session asked to count a request on a backend it is not connected to.
    #[error("request started without a connected backend")]
    StartedWithoutBackend,
    /// `Upgraded` was announced but the session did not hand its connection over.
    #[error("upgrade announced without a connection to hand over")]
    NoHandover,
    /// A pipe's end was reported without an upgrade, twice, or with another status than 101.
    #[error("pipe end reported without a 101 upgrade before it (status {status})")]
    PipeWithoutUpgrade {
        /// Status of the pipe's record.
        status: u16,
    },
    /// More responses of backends than requests the client sent.
    #[error("{answers} backend answers for {requests} client requests")]
    TooManyAnswers {
        /// Requests finished with a backend's response.
        answers: usize,
        /// Complete request heads in what the client sent.
        requests: usize,
    },
    /// Bytes were written to a backend after Sluice answered on its own.
    #[error("bytes for a backend after Sluice answered the request itself")]
    WrittenAfterAnswer,
    /// Bytes pending towards a side whose writing was shut down.
    #[error("bytes pending for the {side} after its writing side was shut down")]
    PendingAfterShutdown {
        /// `client` or `backend`.
        side: &'static str,
    },
    /// Pooled buffers not given back.
    #[error("{in_use} pooled buffers held by {holder}")]
    BufferLeak {
        /// Buffers out of the pool.
        in_use: usize,
        /// Who should hold none.
        holder: &'static str,
    },
    /// A buffer went back to the pool twice, or was never the pool's.
    #[error("a buffer was given back that the pool did not hand out")]
    ForeignBuffer,
    /// The timer the session expected fired and the session did nothing.
    #[error("the {0:?} timer the session asked for fired and changed nothing")]
    TimerIgnored(TimeoutKind),
    /// The session waits for nothing (no I/O, no timer) and did not close:
    /// the loop would keep it for good.
    #[error("the session waits for nothing and never closes")]
    Stuck,
    /// The session closed but still asks for I/O or a timer.
    #[error("the session closed but still wants {0}")]
    ActiveAfterClose(&'static str),
}
