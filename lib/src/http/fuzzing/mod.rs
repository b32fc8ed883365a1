//! A harness that drives one whole sans-IO [`HttpSession`](super::session::HttpSession)
//! the way the worker's loop may, for the fuzz target `http_session` (in
//! `lib/fuzz`) and the property tests.
//!
//! A run is a sequence of [`Event`]s: client bytes, backend bytes, reads and
//! partial writes, connection outcomes, errors, EOFs and timers, each applied
//! only where the loop's contract allows it (the loop reads where the session
//! gives a buffer, writes what it has pending, reports a connection outcome
//! only while it connects, fires the timer the session expects). The harness
//! plays the client and the backends, and checks after every step:
//!
//! - no panic (and, in debug builds, `check_invariants` after every call);
//! - nothing reaches a backend once Sluice answered a request itself;
//! - each backend connection's bytes frame as whole requests, each routed to
//!   that connection's cluster and started on it, and a connection left for
//!   reuse ends between two requests;
//! - no more backend answers than requests the client sent;
//! - a timer the session asked for ends something when it fires, and a
//!   session waits for I/O or a timer unless the loop is connecting for it;
//! - no buffer leak: an idle or closed session holds no pooled buffer, and
//!   every buffer is back once the loop drops the session.
//!
//! Any violation is returned as a [`Violation`]; the fuzz target panics on it.
//! Built for tests, and for other crates with the `fuzzing` feature.

mod backend;
mod driver;
mod events;
mod pool;
mod stream;
mod violation;

pub use driver::{run, run_bytes, SessionDriver, Summary};
pub use events::{ConnectOutcome, Event, EventReader, BACKEND_SENDS, CLIENT_SENDS};
pub use stream::{HeadTarget, RequestStream, StreamError};
pub use violation::Violation;

#[cfg(test)]
mod tests;
