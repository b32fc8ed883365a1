//! Sans-IO HTTP/1.1 proxying: the pieces an HTTP listener's sessions are made of.
//!
//! Nothing in this module touches a socket. The event loop feeds bytes, the
//! current time and socket outcomes into an [`session::HttpSession`] and gets back
//! bytes to write and [`session::SessionAction`]s to perform. The pieces are:
//!
//! - [`parser`]: request and response heads (RFC 9112 framing rules), zero-copy;
//! - [`chunked`]: an incremental chunked-body scanner that forwards bytes unchanged;
//! - [`rewrite`]: the heads as forwarded (hop-by-hop headers, `Forwarded` & co);
//! - [`router`]: host/path/method → cluster for one listener;
//! - [`answers`]: the default and custom error answers;
//! - [`buffers`]: the contract between sessions and the loop's buffer pool;
//! - `fuzzing` (tests, and the `fuzzing` feature): a harness that drives a
//!   whole session the way the loop may and checks its oracles.
//!
//! `LIFECYCLE.md` beside this file describes the session's states.

pub mod answers;
pub mod buffers;
pub mod chunked;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod parser;
pub mod rewrite;
pub mod router;
pub mod session;
