//! The requests that turn one state into another, touching only what differs.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::certificate_diff::certificate_diff;
use super::generate as make;
use super::{ConfigState, HttpFrontendKey};
use crate::proto;

impl ConfigState {
    /// The requests that turn `self` into `target`, each applicable in turn,
    /// and none for what is the same in both.
    ///
    /// Removals come first: deactivations (a listener stops accepting before
    /// its routes go), frontends, backends, clusters, listeners; then the
    /// additions: listeners, clusters, backends, frontends, activations.
    ///
    /// Changes are made in place wherever the identity stays: a listener
    /// whose settings changed (same address and protocol) is sent as
    /// `UpdateHttpListener`/`UpdateTcpListener` and keeps its socket and
    /// frontends; a backend whose weight, backup flag or sticky id changed
    /// (same cluster, address and id) as `UpdateBackend`, keeping its health,
    /// connections and metrics; a cluster whose settings changed is sent
    /// again as `AddCluster`, which updates it in place and keeps its
    /// backends and frontends (if its protocol changed, none of its
    /// frontends can be in `target`, so they are all removed before the
    /// update). A listener whose protocol changed, a backend whose id
    /// changed and a changed frontend are removed and added again.
    /// Certificates are compared by fingerprint (see `certificate_diff.rs`):
    /// removed before the listeners, added or replaced right after them.
    pub fn diff(&self, target: &ConfigState) -> Vec<proto::Request> {
        let kept = Kept::between(self, target);
        let certificates = certificate_diff(self, target, &kept.listeners);
        let mut requests = Vec::new();
        self.removals(target, &kept, &mut requests);
        let listener_removals = requests
            .iter()
            .rposition(|request| {
                !matches!(
                    request.request_type,
                    Some(proto::request::RequestType::RemoveListener(_))
                )
            })
            .map_or(0, |last_other| last_other + 1);
        requests.splice(listener_removals..listener_removals, certificates.removals);
        let listener_additions = requests.len()
            + target
                .listeners
                .keys()
                .filter(|address| !kept.listeners.contains(address))
                .count()
            + target
                .listeners
                .iter()
                .filter(|(address, listener)| {
                    kept.listeners.contains(address)
                        && self.listeners.get(address) != Some(listener)
                })
                .count();
        target.additions(self, &kept, &mut requests);
        requests.splice(
            listener_additions..listener_additions,
            certificates.additions,
        );
        requests
    }

    /// Requests removing from `self` what `kept` does not keep.
    fn removals(&self, target: &ConfigState, kept: &Kept, out: &mut Vec<proto::Request>) {
        let deactivations = self
            .active_listeners
            .iter()
            .filter(|address| kept.listeners.contains(address))
            .filter(|address| !target.active_listeners.contains(address))
            .filter_map(|address| self.listeners.get(address))
            .map(make::deactivate_listener);
        out.extend(deactivations);
        out.extend(
            self.http_frontends
                .iter()
                .filter(|(key, frontend)| !kept.http_frontend(target, key, frontend))
                .map(|(_, frontend)| make::remove_http_frontend(frontend)),
        );
        out.extend(
            self.tcp_frontends
                .iter()
                .filter(|(address, frontend)| !kept.tcp_frontend(target, address, frontend))
                .map(|(_, frontend)| make::remove_tcp_frontend(frontend)),
        );
        out.extend(
            self.all_backends()
                .filter(|(address, backend)| !same_backend_id(target, address, backend))
                .map(|(_, backend)| make::remove_backend(backend)),
        );
        out.extend(
            self.clusters
                .keys()
                .filter(|cluster_id| !target.clusters.contains_key(*cluster_id))
                .map(|cluster_id| make::remove_cluster(cluster_id)),
        );
        out.extend(
            self.listeners
                .iter()
                .filter(|(address, _)| !kept.listeners.contains(address))
                .map(|(_, listener)| make::remove_listener(listener)),
        );
    }

    /// Requests adding what `self` has and `kept` did not keep from `origin`.
    fn additions(&self, origin: &ConfigState, kept: &Kept, out: &mut Vec<proto::Request>) {
        for (address, listener) in &self.listeners {
            if !kept.listeners.contains(address) {
                out.push(make::add_listener(listener));
            } else if origin.listeners.get(address) != Some(listener) {
                out.push(make::update_listener(listener));
            }
        }
        // New and changed clusters; AddCluster updates in place.
        out.extend(
            self.clusters
                .iter()
                .filter(|(cluster_id, cluster)| origin.clusters.get(*cluster_id) != Some(cluster))
                .map(|(_, cluster)| make::add_cluster(cluster)),
        );
        for (address, backend) in self.all_backends() {
            if !same_backend_id(origin, address, backend) {
                out.push(make::add_backend(backend));
            } else if !same_backend(origin, address, backend) {
                out.push(make::update_backend(backend));
            }
        }
        out.extend(
            self.http_frontends
                .iter()
                .filter(|(key, frontend)| !kept.http_frontend(origin, key, frontend))
                .map(|(_, frontend)| make::add_http_frontend(frontend)),
        );
        out.extend(
            self.tcp_frontends
                .iter()
                .filter(|(address, frontend)| !kept.tcp_frontend(origin, address, frontend))
                .map(|(_, frontend)| make::add_tcp_frontend(frontend)),
        );
        let activations = self
            .active_listeners
            .iter()
            .filter(|address| {
                !(kept.listeners.contains(address) && origin.active_listeners.contains(address))
            })
            .filter_map(|address| self.listeners.get(address))
            .map(make::activate_listener);
        out.extend(activations);
    }

    fn all_backends(&self) -> impl Iterator<Item = (&SocketAddr, &proto::Backend)> + '_ {
        self.backends.values().flat_map(|backends| backends.iter())
    }
}

/// What survives a diff, possibly updated in place, on both sides. Clusters
/// need no entry: one in both states is updated in place, never removed.
struct Kept {
    /// Listeners with the same address and protocol in both states.
    listeners: BTreeSet<SocketAddr>,
}

impl Kept {
    fn between(origin: &ConfigState, target: &ConfigState) -> Self {
        let listeners = origin
            .listeners
            .iter()
            .filter(|(address, listener)| {
                target
                    .listeners
                    .get(*address)
                    .is_some_and(|other| other.protocol() == listener.protocol())
            })
            .map(|(address, _)| *address)
            .collect();
        Kept { listeners }
    }

    /// Whether a frontend of one state stays as is: identical in `other` and
    /// on a kept listener. (Being in both states, its cluster is in both.)
    fn http_frontend(
        &self,
        other: &ConfigState,
        key: &HttpFrontendKey,
        frontend: &proto::HttpFrontend,
    ) -> bool {
        other.http_frontends.get(key) == Some(frontend) && self.listeners.contains(&key.address)
    }

    fn tcp_frontend(
        &self,
        other: &ConfigState,
        address: &SocketAddr,
        frontend: &proto::TcpFrontend,
    ) -> bool {
        other.tcp_frontends.get(address) == Some(frontend) && self.listeners.contains(address)
    }
}

/// Whether `other` has a backend at the same address in the same cluster with
/// the same id: the same backend, perhaps with other settings.
fn same_backend_id(other: &ConfigState, address: &SocketAddr, backend: &proto::Backend) -> bool {
    other
        .backends
        .get(&backend.cluster_id)
        .and_then(|backends| backends.get(address))
        .is_some_and(|found| found.backend_id == backend.backend_id)
}

/// Whether a backend of one state is identical in `other`.
fn same_backend(other: &ConfigState, address: &SocketAddr, backend: &proto::Backend) -> bool {
    other
        .backends
        .get(&backend.cluster_id)
        .and_then(|backends| backends.get(address))
        == Some(backend)
}
