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

use super::ConfigState;

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
    /// routes to no cluster: it belongs to no part.
    pub fn subset(&self, clusters: &HashSet<&str>) -> Option<ConfigState> {
        let named = |cluster_id: &str| clusters.contains(cluster_id);
        let mut http_frontends = std::collections::BTreeMap::new();
        for (key, frontend) in &self.http_frontends {
            let cluster_id = frontend.cluster_id.as_deref()?;
            if named(cluster_id) {
                http_frontends.insert(key.clone(), frontend.clone());
            }
        }
        Some(ConfigState {
            listeners: self.listeners.clone(),
            active_listeners: self.active_listeners.clone(),
            clusters: self
                .clusters
                .iter()
                .filter(|(id, _)| named(id))
                .map(|(id, cluster)| (id.clone(), cluster.clone()))
                .collect(),
            backends: self
                .backends
                .iter()
                .filter(|(id, _)| named(id))
                .map(|(id, backends)| (id.clone(), backends.clone()))
                .collect(),
            http_frontends,
            tcp_frontends: self
                .tcp_frontends
                .iter()
                .filter(|(_, frontend)| named(&frontend.cluster_id))
                .map(|(address, frontend)| (*address, frontend.clone()))
                .collect(),
            cluster_users: self
                .cluster_users
                .iter()
                .filter(|(id, _)| named(id))
                .map(|(id, users)| (id.clone(), users.clone()))
                .collect(),
            certificates: self.certificates.clone(),
            writes: WriteCount::default(),
        })
    }
}
