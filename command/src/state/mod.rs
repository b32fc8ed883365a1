//! The configuration state: listeners, clusters, backends and frontends.
//!
//! The main process keeps one [`ConfigState`] as the single source of truth;
//! every worker keeps a mirror, fed the same requests. A request changes the
//! state through [`ConfigState::apply`], which either applies it whole or
//! refuses it with a [`StateError`] and changes nothing.
//!
//! Decisions worth knowing:
//! - **Identities.** A listener is its socket address, whatever its protocol
//!   (an HTTP and a TCP listener cannot share one). A backend is its address
//!   within its cluster (its id must be unique there too). An HTTP frontend is
//!   listener address + hostname + path rule + method; a TCP frontend is its
//!   listener address (a TCP listener sends everything to one cluster).
//!   Removing a frontend matches its identity only, not its cluster.
//! - **Normalization.** Addresses are stored in their canonical form
//!   (`SocketAddr`'s display) and hostnames in lower case, so that two
//!   spellings of one thing are one thing.
//! - **`AddCluster` on an existing id updates the cluster's settings** and
//!   keeps its backends and frontends: a reload can change a load-balancing
//!   algorithm or a health check without dropping routes. Changing the
//!   protocol of a cluster that frontends use is refused. (`sluice ctl
//!   cluster add` on an existing id is refused by the main process, which
//!   points to `cluster update`: see `partial.rs`.)
//! - **Partial changes** (`ChangeBackend`, `ChangeCluster`, `ChangeListener`)
//!   name only what changes; [`ConfigState::resolve_changes`] turns them into
//!   the whole in-place request (`UpdateBackend`, `AddCluster`,
//!   `UpdateHttpListener`/`UpdateTcpListener`) that is applied and sent to
//!   the workers.
//! - **Removing a cluster removes its backends and frontends.**
//! - **Removing a listener** is refused while frontends use it (they are
//!   named); an active listener is deactivated by its removal.
//! - Activating an active listener, or deactivating an inactive one, is
//!   accepted and changes nothing.
//! - The health check lives in the [`proto::Cluster`];
//!   `SetHealthCheck` sets or clears it there, and the generated requests
//!   carry it inside `AddCluster`.

mod apply;
mod certificate_diff;
mod certificates;
mod cluster_filter;
mod describe;
mod diff;
mod error;
mod generate;
mod journal;
mod partial;
mod persist;
mod query;
mod small_map;
mod subset;
mod validate;

#[cfg(test)]
mod certificate_tests;
#[cfg(test)]
mod partial_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::proto::{self, request::RequestType, ListenerProtocol};

pub use certificates::StoredCertificate;
pub use cluster_filter::ClusterPattern;
pub use error::StateError;
pub use journal::Undo;

use small_map::SmallMap;

/// A listener of any supported protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Listener {
    /// An HTTP listener.
    Http(proto::HttpListener),
    /// A TCP listener.
    Tcp(proto::TcpListener),
}

impl Listener {
    /// The listener's protocol: an HTTP listener with TLS is HTTPS (a TCP
    /// listener with TLS stays TCP).
    pub fn protocol(&self) -> ListenerProtocol {
        match self {
            Listener::Http(listener) if listener.tls.is_some() => ListenerProtocol::Https,
            Listener::Http(_) => ListenerProtocol::Http,
            Listener::Tcp(_) => ListenerProtocol::Tcp,
        }
    }

    /// Whether it terminates TLS.
    pub fn is_tls(&self) -> bool {
        match self {
            Listener::Http(listener) => listener.tls.is_some(),
            Listener::Tcp(listener) => listener.tls.is_some(),
        }
    }

    /// The listener's address, as stored (canonical form).
    pub fn address(&self) -> &str {
        match self {
            Listener::Http(listener) => &listener.address,
            Listener::Tcp(listener) => &listener.address,
        }
    }
}

/// The identity of an HTTP frontend: two frontends with the same key cannot
/// coexist, and removing a frontend names it by this key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpFrontendKey {
    /// The listener's address.
    pub address: SocketAddr,
    /// The hostname, lower case.
    pub hostname: String,
    /// The path rule's kind ([`proto::PathRuleKind`] as i32).
    pub path_kind: i32,
    /// The path rule's value.
    pub path: String,
    /// The method, if the frontend matches only one.
    pub method: Option<String>,
}

/// A frontend, named by its identity, in the index of a cluster's users.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FrontendRef {
    Http(HttpFrontendKey),
    Tcp(SocketAddr),
}

/// The whole configuration of the proxy. Maps are ordered, so that listings
/// and generated requests come out in a deterministic order.
///
/// Nothing in it is copied whole to apply or refuse a change: every write is
/// recorded in an [`Undo`] (see [`ConfigState::apply_batch`]), and lookups
/// that a change needs (the frontends of a cluster, of a listener) are
/// indexed, so that a change costs what it changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigState {
    listeners: BTreeMap<SocketAddr, Listener>,
    active_listeners: BTreeSet<SocketAddr>,
    clusters: BTreeMap<String, proto::Cluster>,
    /// Cluster id → backend address → backend. Holds an entry for every
    /// cluster, possibly empty, and no other.
    backends: BTreeMap<String, SmallMap<SocketAddr, proto::Backend>>,
    http_frontends: BTreeMap<HttpFrontendKey, proto::HttpFrontend>,
    tcp_frontends: BTreeMap<SocketAddr, proto::TcpFrontend>,
    /// Cluster id → the frontends routing to it; no empty set.
    cluster_users: BTreeMap<String, SmallMap<FrontendRef, ()>>,
    /// TLS certificates by fingerprint.
    certificates: BTreeMap<String, StoredCertificate>,
    /// How many writes it has seen: not part of what it holds.
    writes: subset::WriteCount,
}

impl ConfigState {
    /// An empty state: no listener, no cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the request changes the configuration, so that it goes through
    /// [`ConfigState::apply`]. Certificates count as changes; queries, subscriptions,
    /// save/load/reload, stops and upgrades do not.
    pub fn is_state_change(request: &proto::Request) -> bool {
        use RequestType as R;
        matches!(
            request.request_type,
            Some(
                R::AddCluster(_)
                    | R::RemoveCluster(_)
                    | R::AddBackend(_)
                    | R::UpdateBackend(_)
                    | R::RemoveBackend(_)
                    | R::AddHttpFrontend(_)
                    | R::RemoveHttpFrontend(_)
                    | R::AddTcpFrontend(_)
                    | R::RemoveTcpFrontend(_)
                    | R::AddHttpListener(_)
                    | R::AddTcpListener(_)
                    | R::UpdateHttpListener(_)
                    | R::UpdateTcpListener(_)
                    | R::Batch(_)
                    | R::RemoveListener(_)
                    | R::ActivateListener(_)
                    | R::DeactivateListener(_)
                    | R::SetHealthCheck(_)
                    | R::AddCertificate(_)
                    | R::RemoveCertificate(_)
                    | R::ReplaceCertificate(_)
            )
        )
    }

    /// Every cluster, by id.
    pub fn clusters(&self) -> &BTreeMap<String, proto::Cluster> {
        &self.clusters
    }

    /// One cluster.
    pub fn cluster(&self, cluster_id: &str) -> Option<&proto::Cluster> {
        self.clusters.get(cluster_id)
    }

    /// The backends of a cluster, by address (none for an unknown cluster).
    pub fn backends(&self, cluster_id: &str) -> impl Iterator<Item = &proto::Backend> + '_ {
        self.backends
            .get(cluster_id)
            .into_iter()
            .flat_map(|backends| backends.values())
    }

    /// Every listener, by address.
    pub fn listeners(&self) -> &BTreeMap<SocketAddr, Listener> {
        &self.listeners
    }

    /// The HTTP listeners, by address.
    pub fn http_listeners(&self) -> impl Iterator<Item = &proto::HttpListener> + '_ {
        self.listeners
            .values()
            .filter_map(|listener| match listener {
                Listener::Http(http) => Some(http),
                Listener::Tcp(_) => None,
            })
    }

    /// The TCP listeners, by address.
    pub fn tcp_listeners(&self) -> impl Iterator<Item = &proto::TcpListener> + '_ {
        self.listeners
            .values()
            .filter_map(|listener| match listener {
                Listener::Tcp(tcp) => Some(tcp),
                Listener::Http(_) => None,
            })
    }

    /// Whether the listener at `address` exists and is active.
    pub fn is_active(&self, address: &SocketAddr) -> bool {
        self.active_listeners.contains(address)
    }

    /// The addresses of the active listeners.
    pub fn active_listeners(&self) -> &BTreeSet<SocketAddr> {
        &self.active_listeners
    }

    /// Every HTTP frontend, by identity.
    pub fn http_frontends(&self) -> &BTreeMap<HttpFrontendKey, proto::HttpFrontend> {
        &self.http_frontends
    }

    /// Every TCP frontend, by listener address.
    pub fn tcp_frontends(&self) -> &BTreeMap<SocketAddr, proto::TcpFrontend> {
        &self.tcp_frontends
    }

    /// Whether the state holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty() && self.clusters.is_empty() && self.certificates.is_empty()
    }
}

/// Lower-case name of a protocol, for messages.
pub(crate) fn protocol_name(protocol: ListenerProtocol) -> &'static str {
    match protocol {
        ListenerProtocol::Http => "http",
        ListenerProtocol::Tcp => "tcp",
        ListenerProtocol::Https => "https",
    }
}

/// The snake_case name of a request type, as in the protocol, for messages.
pub(crate) fn request_name(request: &RequestType) -> &'static str {
    use RequestType as R;
    match request {
        R::AddCluster(_) => "add_cluster",
        R::RemoveCluster(_) => "remove_cluster",
        R::AddBackend(_) => "add_backend",
        R::RemoveBackend(_) => "remove_backend",
        R::AddHttpFrontend(_) => "add_http_frontend",
        R::RemoveHttpFrontend(_) => "remove_http_frontend",
        R::AddTcpFrontend(_) => "add_tcp_frontend",
        R::RemoveTcpFrontend(_) => "remove_tcp_frontend",
        R::AddHttpListener(_) => "add_http_listener",
        R::AddTcpListener(_) => "add_tcp_listener",
        R::RemoveListener(_) => "remove_listener",
        R::ActivateListener(_) => "activate_listener",
        R::DeactivateListener(_) => "deactivate_listener",
        R::SetHealthCheck(_) => "set_health_check",
        R::QueryClusters(_) => "query_clusters",
        R::QueryMetrics(_) => "query_metrics",
        R::QueryStatus(_) => "query_status",
        R::SubscribeEvents(_) => "subscribe_events",
        R::SaveState(_) => "save_state",
        R::LoadState(_) => "load_state",
        R::ReloadConfiguration(_) => "reload_configuration",
        R::SoftStop(_) => "soft_stop",
        R::HardStop(_) => "hard_stop",
        R::AddCertificate(_) => "add_certificate",
        R::RemoveCertificate(_) => "remove_certificate",
        R::ReplaceCertificate(_) => "replace_certificate",
        R::UpgradeMain(_) => "upgrade_main",
        R::QueryFrontends(_) => "query_frontends",
        R::QueryListeners(_) => "query_listeners",
        R::UpdateBackend(_) => "update_backend",
        R::UpdateHttpListener(_) => "update_http_listener",
        R::UpdateTcpListener(_) => "update_tcp_listener",
        R::Batch(_) => "batch",
        R::SetLogging(_) => "set_logging",
        R::ChangeBackend(_) => "change_backend",
        R::ChangeCluster(_) => "change_cluster",
        R::ChangeListener(_) => "change_listener",
        R::SetTicketKeys(_) => "set_ticket_keys",
        R::QueryCertificates(_) => "query_certificates",
    }
}

/// Wraps a request type into a request.
pub(crate) fn request(request_type: RequestType) -> proto::Request {
    proto::Request {
        request_type: Some(request_type),
    }
}
