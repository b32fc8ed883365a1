//! Listings of the state, as the protocol's answers.

use super::{ConfigState, Listener};
use crate::proto::{self, query_clusters::Filter};

impl ConfigState {
    /// The clusters a query asks for, each with its backends and frontends:
    /// all of them (no filter, or `all`), the one with an id (none if it does
    /// not exist), or those that HTTP frontends for a hostname route to
    /// (exact names and `*.` wildcards both match).
    pub fn cluster_list(&self, query: &proto::QueryClusters) -> proto::ClusterList {
        let clusters = self
            .clusters
            .keys()
            .filter(|cluster_id| match &query.filter {
                None | Some(Filter::All(_)) => true,
                Some(Filter::ClusterId(wanted)) => *cluster_id == wanted,
                Some(Filter::Hostname(hostname)) => self.routes_hostname_to(hostname, cluster_id),
            })
            .filter_map(|cluster_id| self.cluster_information(cluster_id))
            .collect();
        proto::ClusterList { clusters }
    }

    /// A cluster with its backends and the frontends routing to it.
    pub fn cluster_information(&self, cluster_id: &str) -> Option<proto::ClusterInformation> {
        let cluster = self.clusters.get(cluster_id)?.clone();
        let http_frontends = self
            .http_frontends
            .values()
            .filter(|frontend| frontend.cluster_id.as_deref() == Some(cluster_id))
            .cloned()
            .collect();
        let tcp_frontends = self
            .tcp_frontends
            .values()
            .filter(|frontend| frontend.cluster_id == cluster_id)
            .cloned()
            .collect();
        Some(proto::ClusterInformation {
            cluster,
            backends: self.backends(cluster_id).cloned().collect(),
            http_frontends,
            tcp_frontends,
        })
    }

    fn routes_hostname_to(&self, hostname: &str, cluster_id: &str) -> bool {
        let hostname = hostname.to_ascii_lowercase();
        self.http_frontends.iter().any(|(key, frontend)| {
            frontend.cluster_id.as_deref() == Some(cluster_id)
                && hostname_matches(&key.hostname, &hostname)
        })
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
