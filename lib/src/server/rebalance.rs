//! When an operator changes a backend's weight or state (`sluice ctl backend set`, a reload),
//! the HTTP sessions whose backend connection goes to that backend's cluster pick their
//! backend again at their next request, instead of staying where they were: a keep-alive
//! client would otherwise never see the change. A connection idle between two requests to a
//! backend that takes no new request (drain, maintenance) is let go at once; the loop keeps
//! only connections to ready backends for reuse (see `backend_connections/reuse.rs`).

use std::collections::HashSet;
use std::time::Instant;

use sluice_command::proto::BackendState;

use super::backend_connections::connection_of;
use super::session::Core;
use super::Server;

impl Server {
    /// Makes the HTTP sessions connected to a backend of `clusters` pick their backend again.
    pub(super) fn rebalance_sessions(&mut self, clusters: &HashSet<String>, now: Instant) {
        let sessions: Vec<(usize, bool)> = self
            .sessions
            .iter()
            .filter(|(_, session)| !session.is_closed() && matches!(session.core, Core::Http(_)))
            .filter_map(|(key, session)| {
                let backend = connection_of(&self.ctx.connections, session.backend.connection)?
                    .backend
                    .borrow();
                clusters
                    .contains(backend.cluster_id())
                    .then(|| (key, backend.state() != BackendState::Ready))
            })
            .collect();
        for (key, release_now) in sessions {
            self.with_http_session(key, now, |http, ctx| http.rebalance(release_now, ctx));
        }
    }
}
