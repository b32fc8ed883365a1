//! Part of a state: every listener and certificate, and only some clusters
//! with their backends and frontends. When two states have the same listeners
//! and certificates and differ only in some clusters, the diff of their parts
//! holding those clusters is the diff of the whole states (property-tested),
//! at the cost of what changed: a reload whose file changed in a few clusters
//! compares those alone.
//!
//! A state also counts its writes, so that its owner can tell it is still
//! the one it last compared against.

use std::collections::HashSet;

use super::{ConfigState, FrontendRef};

/// How many writes a state has seen. Not part of what the state holds: two
/// states with the same content are equal whatever their counts.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct WriteCount(u64);

impl WriteCount {
    pub(super) fn count(&mut self) {
        self.0 = self.0.wrapping_add(1);
    }
}

impl PartialEq for WriteCount {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl ConfigState {
    /// How many writes this state has seen since it was created (undone
    /// writes included): unchanged means that nothing changed it meanwhile.
    pub fn writes(&self) -> u64 {
        self.writes.0
    }

    /// The ids of its clusters, in order.
    pub fn cluster_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.clusters.keys().map(String::as_str)
    }

    /// Every listener, activation and certificate, and the clusters named in
    /// `clusters` with their backends and frontends. `None` when a frontend
    /// routes to no cluster: it belongs to no part. Costs what it names (and a
    /// walk over the HTTP frontends), not the whole state.
    pub fn subset(&self, clusters: &HashSet<&str>) -> Option<ConfigState> {
        if self.http_frontends.values().any(|f| f.cluster_id.is_none()) {
            return None;
        }
        let mut part = ConfigState {
            listeners: self.listeners.clone(),
            active_listeners: self.active_listeners.clone(),
            certificates: self.certificates.clone(),
            ..ConfigState::default()
        };
        for &cluster_id in clusters {
            if let Some(cluster) = self.clusters.get(cluster_id) {
                part.clusters.insert(cluster_id.to_owned(), cluster.clone());
            }
            if let Some(backends) = self.backends.get(cluster_id) {
                part.backends
                    .insert(cluster_id.to_owned(), backends.clone());
            }
            let Some(users) = self.cluster_users.get(cluster_id) else {
                continue;
            };
            for user in users.keys() {
                match user {
                    FrontendRef::Http(key) => {
                        let frontend = self.http_frontends.get(key)?;
                        part.http_frontends.insert(key.clone(), frontend.clone());
                    }
                    FrontendRef::Tcp(address) => {
                        let frontend = self.tcp_frontends.get(address)?;
                        part.tcp_frontends.insert(*address, frontend.clone());
                    }
                }
            }
            part.cluster_users
                .insert(cluster_id.to_owned(), users.clone());
        }
        Some(part)
    }
}
