//! The worker's backend connections. One slab owns every one of them from its connect to
//! its close, under a key that is also its token, with a named state: connecting for a
//! session, in use by a session, or idle in the pool of kept connections. A session refers
//! to its connection by key, so moving a connection between a session and the pool moves
//! no socket and costs no system call, and nothing stops a session from holding several.
//!
//! This module is the one place that chooses, connects, retries, reuses, keeps and releases
//! them: `connect.rs` balances a request or a TCP session and connects (with retries on
//! other backends), `reuse.rs` keeps and reuses idle connections (`idle_pool.rs` is their
//! bounded store). What a session knows of its backend is its [`BackendLink`].

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use slab::Slab;

mod connect;
mod idle_pool;
mod reuse;

pub(super) use connect::BackendRequest;
pub(crate) use connect::{Link, Outcome};
pub(crate) use reuse::{new_idle_pool, IdleConnections};

use super::metrics::OpenConnection;
use crate::backends::Backend;
use crate::transport::Transport;

/// Where a backend connection is in its life.
#[derive(Debug)]
pub(crate) enum ConnectionState {
    /// A non-blocking connect started at `since` for session `session`.
    Connecting { session: usize, since: Instant },
    /// Used by session `session` since `since` (its connect started, or it was taken from
    /// the pool): a failure of an attempt under way at a counted failure joins it (see
    /// `crate::retry`).
    InUse { session: usize, since: Instant },
    /// Kept for reuse, under `pool_key` in the idle pool.
    Idle { pool_key: usize },
}

/// One connection to a backend.
#[derive(Debug)]
pub(crate) struct BackendConnection {
    pub(crate) transport: Transport,
    pub(crate) backend: Rc<RefCell<Backend>>,
    pub(crate) address: SocketAddr,
    pub(crate) state: ConnectionState,
    /// Counts the connection as active in the metrics while a session has it.
    pub(crate) open: Option<OpenConnection>,
}

impl BackendConnection {
    /// When its connect started, while it is under way.
    pub(crate) fn connecting_since(&self) -> Option<Instant> {
        match self.state {
            ConnectionState::Connecting { since, .. } => Some(since),
            _ => None,
        }
    }

    /// Connected: bytes can be exchanged.
    pub(crate) fn is_connected(&self) -> bool {
        !matches!(self.state, ConnectionState::Connecting { .. })
    }

    /// Since when its session has it (connect started or taken from the pool).
    pub(crate) fn in_use_since(&self) -> Option<Instant> {
        match self.state {
            ConnectionState::Connecting { since, .. } | ConnectionState::InUse { since, .. } => {
                Some(since)
            }
            ConnectionState::Idle { .. } => None,
        }
    }
}

/// What a session knows of its backend, in one place: the cluster it was routed to, the
/// sticky id asked for, the key of its backend connection (whose state says whether it is
/// connected), and the bookkeeping of the current backend selection.
#[derive(Debug, Default)]
pub(crate) struct BackendLink {
    /// Its backend connection's key among the worker's [`BackendConnections`].
    pub(crate) connection: Option<usize>,
    pub(crate) cluster_id: Option<Rc<str>>,
    /// The sticky id the client asked for (HTTP).
    pub(crate) sticky_id: Option<Rc<str>>,
    /// A request is under way on the backend connection (counted in its backend's
    /// active requests until it ends or the connection is dropped).
    pub(crate) request_active: bool,
    /// The current backend selection may take a kept idle connection (HTTP).
    pub(crate) reuse_idle: bool,
    /// Connect attempts made for the current backend selection.
    pub(crate) connect_attempts: u32,
    /// What the loop did for the HTTP session's last `ConnectBackend`, told to it at the
    /// start of its next step (never from inside the step that asked).
    pub(crate) outcome: Option<Outcome>,
}

/// Every backend connection of the worker, by key (the key gives its token).
pub(crate) type BackendConnections = Slab<BackendConnection>;

/// The connection a session refers to by `key`, if it still exists.
pub(crate) fn connection_of(
    connections: &BackendConnections,
    key: Option<usize>,
) -> Option<&BackendConnection> {
    key.and_then(|key| connections.get(key))
}

/// Like [`connection_of`], mutable.
pub(crate) fn connection_of_mut(
    connections: &mut BackendConnections,
    key: Option<usize>,
) -> Option<&mut BackendConnection> {
    key.and_then(|key| connections.get_mut(key))
}
