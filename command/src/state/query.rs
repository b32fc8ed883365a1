//! Listings of the state, as the protocol's answers.

use std::collections::BTreeSet;

use super::{ConfigState, FrontendRef, Listener};
use crate::proto::{self, query_clusters::Filter};

impl ConfigState {
    /// The clusters a query asks for, each with its backends and frontends:
    /// all of them (no filter, or `all`), the one with an id (none if it does
    /// not exist), or those that HTTP frontends for a hostname route to
    /// (exact names and `*.` wildcards both match).
    pub fn cluster_list(&self, query: &proto::QueryClusters) -> proto::ClusterList {
        let paged = query.pattern.is_some() || query.limit.is_some() || query.offset.is_some();
        if paged && matches!(query.filter, None | Some(Filter::All(_))) {
            return self.cluster_page(query);
        }
        let clusters = match &query.filter {
            None | Some(Filter::All(_)) => self
                .clusters
                .keys()
                .filter_map(|cluster_id| self.cluster_information(cluster_id))
                .collect(),
            Some(Filter::ClusterId(wanted)) => {
                self.cluster_information(wanted).into_iter().collect()
            }
            Some(Filter::Hostname(hostname)) => self
                .clusters_routing(hostname)
                .iter()
                .filter_map(|cluster_id| self.cluster_information(cluster_id))
                .collect(),
        };
        proto::ClusterList {
            clusters,
            matched: None,
        }
    }

    /// A cluster with its backends and the frontends routing to it (found
    /// through the index of a cluster's users: a listing of every cluster is
    /// linear in the state).
    pub fn cluster_information(&self, cluster_id: &str) -> Option<proto::ClusterInformation> {
        let cluster = self.clusters.get(cluster_id)?.clone();
        let mut http_frontends = Vec::new();
        let mut tcp_frontends = Vec::new();
        for user in self
            .cluster_users
            .get(cluster_id)
            .into_iter()
            .flat_map(|u| u.keys())
        {
            match user {
                FrontendRef::Http(key) => {
                    http_frontends.extend(self.http_frontends.get(key).cloned())
                }
                FrontendRef::Tcp(address) => {
                    tcp_frontends.extend(self.tcp_frontends.get(address).cloned())
                }
            }
        }
        Some(proto::ClusterInformation {
            cluster,
            backends: self.backends(cluster_id).cloned().collect(),
            http_frontends,
            tcp_frontends,
        })
    }

    /// The ids of the clusters that HTTP frontends for `hostname` route to,
    /// in order, each once.
    fn clusters_routing(&self, hostname: &str) -> BTreeSet<&str> {
        let hostname = hostname.to_ascii_lowercase();
        self.http_frontends
            .iter()
            .filter(|(key, _)| hostname_matches(&key.hostname, &hostname))
            .filter_map(|(_, frontend)| frontend.cluster_id.as_deref())
            .collect()
    }

    /// Every frontend.
    pub fn frontend_list(&self) -> proto::FrontendList {
        proto::FrontendList {
            http_frontends: self.http_frontends.values().cloned().collect(),
            tcp_frontends: self.tcp_frontends.values().cloned().collect(),
        }
    }

    /// Every listener, with whether it is active.
    pub fn listener_list(&self) -> proto::ListenerList {
        let listeners = self
            .listeners
            .iter()
            .map(|(address, listener)| {
                let (http, tcp) = match listener {
                    Listener::Http(http) => (Some(http.clone()), None),
                    Listener::Tcp(tcp) => (None, Some(tcp.clone())),
                };
                proto::ListenerInformation {
                    http,
                    tcp,
                    active: self.is_active(address),
                }
            })
            .collect();
        proto::ListenerList { listeners }
    }
}

/// Whether a frontend's hostname pattern (lower case) matches a hostname:
/// equal, or `*.suffix` matching exactly one more label before `.suffix`.
pub(super) fn hostname_matches(pattern: &str, hostname: &str) -> bool {
    match pattern.strip_prefix("*.") {
        None => pattern == hostname,
        Some(suffix) => hostname
            .strip_suffix(suffix)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
    }
}
