//! Changes to clusters and their backends: settings in place, health checks, sticky
//! cookies, and the sessions that pick their backend again after a weight or state change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use sluice_command::proto::{self, request::RequestType};
use sluice_command::state::Undo;

use super::changes::Effects;
use super::{parse, request_name, CommandError};
use crate::server::http_driver::DEFAULT_STICKY_COOKIE;
use crate::server::Server;

impl Server {
    /// Adds, updates or removes a cluster, or changes its health check.
    pub(super) fn apply_cluster(
        &mut self,
        content: &RequestType,
        undo: &Undo,
        mark: usize,
        effects: &mut Effects,
        now: Instant,
    ) -> Result<(), CommandError> {
        match content {
            RequestType::AddCluster(cluster) => {
                self.set_cluster(cluster, now);
                effects.sticky_cookies = true;
            }
            RequestType::RemoveCluster(cluster_id) => {
                self.remove_cluster(cluster_id, undo, mark);
                effects.sticky_cookies = true;
            }
            RequestType::SetHealthCheck(set) => {
                if let Some(cluster) = self.state.clusters().get(&set.cluster_id).cloned() {
                    self.set_cluster(&cluster, now);
                }
            }
            other => return Err(CommandError::Unsupported(request_name(other))),
        }
        Ok(())
    }

    /// Adds, updates (in place: health, retry state, connections and metrics stay) or
    /// removes a backend.
    pub(super) fn apply_backend(
        &mut self,
        content: &RequestType,
        effects: &mut Effects,
        now: Instant,
    ) -> Result<(), CommandError> {
        match content {
            RequestType::AddBackend(proto::AddBackend { backend })
            | RequestType::UpdateBackend(backend) => {
                let before = self.balancing_of(backend);
                self.ctx
                    .backends
                    .add_backend(backend, now)
                    .map_err(CommandError::from)?;
                if before.is_some() && before != self.balancing_of(backend) {
                    effects.rebalance.insert(backend.cluster_id.clone());
                }
                self.ctx.metrics.register_backend(
                    &backend.cluster_id,
                    &backend.backend_id,
                    &backend.address,
                );
                effects.health_checks = true;
                Ok(())
            }
            RequestType::RemoveBackend(remove) => self
                .ctx
                .backends
                .remove_backend(&remove.cluster_id, &parse(&remove.address)?, now)
                .map_err(CommandError::from),
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }

    /// The weight and state of the live backend a request names, if it exists.
    fn balancing_of(&self, backend: &proto::Backend) -> Option<(u32, proto::BackendState)> {
        let address = backend.address.parse().ok()?;
        let live = self
            .ctx
            .backends
            .backend(&backend.cluster_id, &address)?
            .borrow();
        Some((live.weight(), live.state()))
    }

    /// Adds a cluster or updates its settings in place (backends keep their state).
    fn set_cluster(&mut self, cluster: &proto::Cluster, now: Instant) {
        self.ctx.backends.set_cluster(cluster, now);
        self.ctx.health.set_cluster(
            &cluster.cluster_id,
            cluster.protocol(),
            cluster.health_check.as_ref(),
            self.poll.registry(),
            now,
        );
        for routes in self.ctx.http_routes.values_mut() {
            routes
                .answers
                .set_cluster(&cluster.cluster_id, &cluster.answers);
        }
        if cluster.sticky_session {
            self.ctx.sticky_clusters.insert(cluster.cluster_id.clone());
        } else {
            self.ctx.sticky_clusters.remove(&cluster.cluster_id);
        }
    }

    /// Removes a cluster and the frontends its removal took from the mirror (those in
    /// `undo` since `mark`): only they leave the routers.
    fn remove_cluster(&mut self, cluster_id: &str, undo: &Undo, mark: usize) {
        self.ctx.backends.remove_cluster(cluster_id);
        self.ctx.metrics.remove_cluster(cluster_id);
        self.ctx
            .health
            .remove_cluster(cluster_id, self.poll.registry());
        self.ctx.sticky_clusters.remove(cluster_id);
        for frontend in undo.removed_tcp_frontends(mark) {
            if let Ok(address) = frontend.address.parse() {
                self.ctx.tcp_frontends.remove(&address);
            }
        }
        for routes in self.ctx.http_routes.values_mut() {
            routes.answers.remove_cluster(cluster_id);
        }
        for frontend in undo.removed_http_frontends(mark) {
            let routes = frontend
                .address
                .parse()
                .ok()
                .and_then(|address: SocketAddr| self.ctx.http_routes.get_mut(&address));
            if let Some(routes) = routes {
                if let Err(error) = routes.router.remove(frontend) {
                    log::error!("cannot remove a route of cluster {cluster_id}: {error}");
                }
            }
        }
    }

    /// Sets each HTTP listener's sticky cookie name: the one named by the first sticky
    /// cluster (by id) its frontends route to, else the listener's own, else the default.
    /// Sessions read the cookie before routing, so one listener has one cookie name.
    /// The frontends are read only when some cluster names a cookie: a change
    /// among 10 000 clusters without one costs a walk over the clusters.
    pub(super) fn refresh_sticky_cookies(&mut self) {
        let cookie_of_cluster: HashMap<&str, &str> = self
            .state
            .clusters()
            .iter()
            .filter(|(_, cluster)| cluster.sticky_session)
            .filter_map(|(id, cluster)| Some((id.as_str(), cluster.sticky_cookie_name.as_deref()?)))
            .collect();
        for (address, routes) in self.ctx.http_routes.iter_mut() {
            let frontends =
                (!cookie_of_cluster.is_empty()).then(|| self.state.http_frontends().values());
            let mut names = frontends
                .into_iter()
                .flatten()
                .filter(|f| f.address.parse().ok() == Some(*address))
                .filter_map(|f| cookie_of_cluster.get(f.cluster_id.as_deref()?).copied());
            let from_clusters = names.next();
            if let Some(other) = names.find(|name| Some(*name) != from_clusters) {
                log::warn!(
                    "listener {address}: sticky clusters name different cookies; \
                     using {from_clusters:?}, not {other:?}"
                );
            }
            let from_listener = self
                .state
                .http_listeners()
                .find(|l| l.address.parse().ok() == Some(*address))
                .and_then(|l| l.sticky_cookie_name.as_deref());
            let name = from_clusters
                .or(from_listener)
                .unwrap_or(DEFAULT_STICKY_COOKIE);
            if routes.sticky_cookie != name {
                routes.sticky_cookie = name.to_owned();
            }
        }
    }
}
