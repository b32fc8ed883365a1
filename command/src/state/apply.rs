//! Applying one request to the state: every check comes first, so that a
//! refused request leaves the state as it was. Every write goes through the
//! journal (see `journal.rs`), so that a batch can be undone.

use std::net::SocketAddr;

use super::describe::{describe_http_frontend, describe_tcp_frontend};
use super::journal::Undo;
use super::{
    protocol_name, request_name, validate, ConfigState, FrontendRef, HttpFrontendKey, Listener,
    StateError,
};
use crate::proto::{self, request::RequestType, ListenerProtocol};

impl ConfigState {
    /// Applies a configuration-changing request. On error nothing changed.
    ///
    /// Queries and other requests that do not change the configuration are
    /// refused with [`StateError::NotAStateChange`]; the reserved TLS and
    /// upgrade requests with [`StateError::Unsupported`]. A batch is applied
    /// whole or not at all.
    pub fn apply(&mut self, request: &proto::Request) -> Result<(), StateError> {
        self.apply_recorded(request, &mut Undo::new())
    }

    /// Applies one request that is not a batch, recording its writes.
    pub(super) fn apply_one(
        &mut self,
        request: &proto::Request,
        undo: &mut Undo,
    ) -> Result<(), StateError> {
        use RequestType as R;
        let Some(request_type) = &request.request_type else {
            return Err(StateError::EmptyRequest);
        };
        match request_type {
            R::AddCluster(cluster) => self.add_cluster(undo, cluster),
            R::RemoveCluster(cluster_id) => self.remove_cluster(undo, cluster_id),
            R::AddBackend(add) => self.add_backend(undo, &add.backend),
            R::UpdateBackend(backend) => self.update_backend(undo, backend),
            R::RemoveBackend(remove) => self.remove_backend(undo, remove),
            R::AddHttpFrontend(frontend) => self.add_http_frontend(undo, frontend),
            R::RemoveHttpFrontend(frontend) => self.remove_http_frontend(undo, frontend),
            R::AddTcpFrontend(frontend) => self.add_tcp_frontend(undo, frontend),
            R::RemoveTcpFrontend(frontend) => self.remove_tcp_frontend(undo, frontend),
            R::AddHttpListener(listener) => {
                let (address, listener) = validate::http_listener(listener)?;
                self.add_listener(undo, address, Listener::Http(listener))
            }
            R::AddTcpListener(listener) => {
                let (address, listener) = validate::tcp_listener(listener)?;
                self.add_listener(undo, address, Listener::Tcp(listener))
            }
            R::UpdateHttpListener(listener) => {
                let (address, listener) = validate::http_listener(listener)?;
                self.update_listener(undo, address, Listener::Http(listener))
            }
            R::UpdateTcpListener(listener) => {
                let (address, listener) = validate::tcp_listener(listener)?;
                self.update_listener(undo, address, Listener::Tcp(listener))
            }
            R::RemoveListener(remove) => {
                self.remove_listener(undo, &remove.address, remove.protocol)
            }
            R::ActivateListener(activate) => {
                self.set_active(undo, &activate.address, activate.protocol, true)
            }
            R::DeactivateListener(deactivate) => {
                self.set_active(undo, &deactivate.address, deactivate.protocol, false)
            }
            R::SetHealthCheck(set) => self.set_health_check(undo, set),
            R::AddCertificate(add) => self.add_certificate(undo, &add.certificate),
            R::RemoveCertificate(remove) => self.remove_certificate(undo, &remove.fingerprint),
            R::ReplaceCertificate(replace) => self.replace_certificate(undo, replace),
            R::UpgradeMain(_) => Err(StateError::Unsupported(request_name(request_type))),
            other => Err(StateError::NotAStateChange(request_name(other))),
        }
    }

    fn add_cluster(&mut self, undo: &mut Undo, cluster: &proto::Cluster) -> Result<(), StateError> {
        let cluster = validate::cluster(cluster)?;
        if let Some(existing) = self.clusters.get(&cluster.cluster_id) {
            if existing == &cluster {
                return Ok(());
            }
            if existing.protocol != cluster.protocol {
                if let Some(user) = self.frontends_of_cluster(&cluster.cluster_id).first() {
                    return Err(StateError::ClusterProtocolMismatch {
                        cluster_id: cluster.cluster_id.clone(),
                        actual: protocol_name(protocol_of(cluster.protocol)),
                        expected: protocol_name(protocol_of(existing.protocol)),
                        user: user.clone(),
                    });
                }
            }
        }
        let cluster_id = cluster.cluster_id.clone();
        self.put_cluster(undo, &cluster_id, Some(cluster));
        Ok(())
    }

    /// Removes a cluster with its frontends and backends, each written down
    /// in `undo` so that undoing it puts them all back.
    fn remove_cluster(&mut self, undo: &mut Undo, cluster_id: &str) -> Result<(), StateError> {
        if !self.clusters.contains_key(cluster_id) {
            return Err(StateError::UnknownCluster(cluster_id.to_owned()));
        }
        let users: Vec<FrontendRef> = self
            .cluster_users
            .get(cluster_id)
            .map(|users| users.keys().cloned().collect())
            .unwrap_or_default();
        for user in users {
            match user {
                FrontendRef::Http(key) => self.put_http_frontend(undo, key, None),
                FrontendRef::Tcp(address) => self.put_tcp_frontend(undo, address, None),
            }
        }
        let addresses: Vec<SocketAddr> = self
            .backends
            .get(cluster_id)
            .map(|backends| backends.keys().copied().collect())
            .unwrap_or_default();
        for address in addresses {
            self.put_backend(undo, cluster_id, address, None);
        }
        self.put_cluster(undo, cluster_id, None);
        Ok(())
    }

    fn add_backend(&mut self, undo: &mut Undo, backend: &proto::Backend) -> Result<(), StateError> {
        let (address, backend) = validate::backend(backend)?;
        let Some(backends) = self.backends.get(&backend.cluster_id) else {
            return Err(StateError::UnknownCluster(backend.cluster_id));
        };
        if backends.contains_key(&address) {
            return Err(StateError::DuplicateBackend {
                cluster_id: backend.cluster_id,
                address: backend.address,
            });
        }
        if backends
            .values()
            .any(|existing| existing.backend_id == backend.backend_id)
        {
            return Err(StateError::DuplicateBackendId {
                cluster_id: backend.cluster_id,
                backend_id: backend.backend_id,
            });
        }
        let cluster_id = backend.cluster_id.clone();
        self.put_backend(undo, &cluster_id, address, Some(backend));
        Ok(())
    }

    /// Changes the weight, backup flag or sticky id of the backend at the
    /// same address with the same id.
    fn update_backend(
        &mut self,
        undo: &mut Undo,
        backend: &proto::Backend,
    ) -> Result<(), StateError> {
        let (address, backend) = validate::backend(backend)?;
        let Some(backends) = self.backends.get(&backend.cluster_id) else {
            return Err(StateError::UnknownCluster(backend.cluster_id));
        };
        let Some(existing) = backends.get(&address) else {
            return Err(StateError::UnknownBackend {
                cluster_id: backend.cluster_id,
                address: backend.address,
            });
        };
        if existing.backend_id != backend.backend_id {
            return Err(StateError::BackendIdMismatch {
                cluster_id: backend.cluster_id,
                address: existing.address.clone(),
                actual: existing.backend_id.clone(),
                given: backend.backend_id,
            });
        }
        if *existing == backend {
            return Ok(());
        }
        let cluster_id = backend.cluster_id.clone();
        self.put_backend(undo, &cluster_id, address, Some(backend));
        Ok(())
    }

    fn remove_backend(
        &mut self,
        undo: &mut Undo,
        remove: &proto::RemoveBackend,
    ) -> Result<(), StateError> {
        let Some(backends) = self.backends.get(&remove.cluster_id) else {
            return Err(StateError::UnknownCluster(remove.cluster_id.clone()));
        };
        let address = validate::address("backend", &remove.address)?;
        let Some(existing) = backends.get(&address) else {
            return Err(StateError::UnknownBackend {
                cluster_id: remove.cluster_id.clone(),
                address: remove.address.clone(),
            });
        };
        if let Some(given) = &remove.backend_id {
            if *given != existing.backend_id {
                return Err(StateError::BackendIdMismatch {
                    cluster_id: remove.cluster_id.clone(),
                    address: existing.address.clone(),
                    actual: existing.backend_id.clone(),
                    given: given.clone(),
                });
            }
        }
        self.put_backend(undo, &remove.cluster_id, address, None);
        Ok(())
    }

    fn add_listener(
        &mut self,
        undo: &mut Undo,
        address: SocketAddr,
        listener: Listener,
    ) -> Result<(), StateError> {
        if let Some(existing) = self.listeners.get(&address) {
            return Err(StateError::DuplicateListener {
                address: address.to_string(),
                protocol: protocol_name(existing.protocol()),
            });
        }
        self.put_listener(undo, address, Some(listener));
        Ok(())
    }

    /// Changes the settings of the listener at the same address, of the
    /// same protocol; its frontends and activation stay.
    fn update_listener(
        &mut self,
        undo: &mut Undo,
        address: SocketAddr,
        listener: Listener,
    ) -> Result<(), StateError> {
        self.check_listener_protocol(&address, listener.protocol())?;
        self.check_certificates_keep_tls(&address, Some(&listener))?;
        if self.listeners.get(&address) == Some(&listener) {
            return Ok(());
        }
        self.put_listener(undo, address, Some(listener));
        Ok(())
    }

    fn remove_listener(
        &mut self,
        undo: &mut Undo,
        address: &str,
        protocol: i32,
    ) -> Result<(), StateError> {
        let address = self.listener_with_protocol(address, protocol)?;
        let users = self.frontends_on(&address);
        if !users.is_empty() {
            return Err(StateError::ListenerInUse {
                address: address.to_string(),
                frontends: users.join(", "),
            });
        }
        self.check_certificates_keep_tls(&address, None)?;
        if let Some(listener) = self.listeners.get(&address).cloned() {
            self.put_active(undo, &listener, false);
        }
        self.put_listener(undo, address, None);
        Ok(())
    }

    fn set_active(
        &mut self,
        undo: &mut Undo,
        address: &str,
        protocol: i32,
        active: bool,
    ) -> Result<(), StateError> {
        let address = self.listener_with_protocol(address, protocol)?;
        if let Some(listener) = self.listeners.get(&address).cloned() {
            self.put_active(undo, &listener, active);
        }
        Ok(())
    }

    /// The address of the listener named by a request, checking that it
    /// exists with the protocol the request expects.
    fn listener_with_protocol(
        &self,
        address: &str,
        protocol: i32,
    ) -> Result<SocketAddr, StateError> {
        let parsed = validate::address("listener", address)?;
        let expected = validate::protocol("protocol", protocol)?;
        self.check_listener_protocol(&parsed, expected)?;
        Ok(parsed)
    }

    pub(super) fn check_listener_protocol(
        &self,
        address: &SocketAddr,
        expected: ListenerProtocol,
    ) -> Result<(), StateError> {
        let Some(listener) = self.listeners.get(address) else {
            return Err(StateError::UnknownListener(address.to_string()));
        };
        if listener.protocol() != expected {
            return Err(StateError::ListenerProtocolMismatch {
                address: address.to_string(),
                actual: protocol_name(listener.protocol()),
                expected: protocol_name(expected),
            });
        }
        Ok(())
    }

    /// HTTP frontends go on HTTP and HTTPS listeners.
    fn check_http_listener(&self, address: &SocketAddr) -> Result<(), StateError> {
        match self.listeners.get(address) {
            Some(Listener::Http(_)) => Ok(()),
            _ => self.check_listener_protocol(address, ListenerProtocol::Http),
        }
    }

    fn check_cluster_protocol(
        &self,
        cluster_id: &str,
        expected: ListenerProtocol,
        user: impl FnOnce() -> String,
    ) -> Result<(), StateError> {
        let Some(cluster) = self.clusters.get(cluster_id) else {
            return Err(StateError::UnknownCluster(cluster_id.to_owned()));
        };
        let actual = protocol_of(cluster.protocol);
        if actual != expected {
            return Err(StateError::ClusterProtocolMismatch {
                cluster_id: cluster_id.to_owned(),
                actual: protocol_name(actual),
                expected: protocol_name(expected),
                user: user(),
            });
        }
        Ok(())
    }

    fn add_http_frontend(
        &mut self,
        undo: &mut Undo,
        frontend: &proto::HttpFrontend,
    ) -> Result<(), StateError> {
        let (key, frontend) = validate::http_frontend(frontend)?;
        self.check_http_listener(&key.address)?;
        if let Some(cluster_id) = &frontend.cluster_id {
            self.check_cluster_protocol(cluster_id, ListenerProtocol::Http, || {
                describe_http_frontend(&frontend)
            })?;
        }
        if self.http_frontends.contains_key(&key) {
            return Err(StateError::DuplicateFrontend(describe_http_frontend(
                &frontend,
            )));
        }
        self.put_http_frontend(undo, key, Some(frontend));
        Ok(())
    }

    fn remove_http_frontend(
        &mut self,
        undo: &mut Undo,
        frontend: &proto::HttpFrontend,
    ) -> Result<(), StateError> {
        let (key, frontend) = validate::http_frontend(frontend)?;
        if !self.http_frontends.contains_key(&key) {
            return Err(StateError::UnknownFrontend(describe_http_frontend(
                &frontend,
            )));
        }
        self.put_http_frontend(undo, key, None);
        Ok(())
    }

    fn add_tcp_frontend(
        &mut self,
        undo: &mut Undo,
        frontend: &proto::TcpFrontend,
    ) -> Result<(), StateError> {
        let (address, frontend) = validate::tcp_frontend(frontend)?;
        self.check_listener_protocol(&address, ListenerProtocol::Tcp)?;
        self.check_cluster_protocol(&frontend.cluster_id, ListenerProtocol::Tcp, || {
            describe_tcp_frontend(&frontend)
        })?;
        if let Some(existing) = self.tcp_frontends.get(&address) {
            return Err(StateError::DuplicateFrontend(describe_tcp_frontend(
                existing,
            )));
        }
        self.put_tcp_frontend(undo, address, Some(frontend));
        Ok(())
    }

    fn remove_tcp_frontend(
        &mut self,
        undo: &mut Undo,
        frontend: &proto::TcpFrontend,
    ) -> Result<(), StateError> {
        let address = validate::address("frontend", &frontend.address)?;
        if !self.tcp_frontends.contains_key(&address) {
            return Err(StateError::UnknownFrontend(format!(
                "tcp frontend {address}"
            )));
        }
        self.put_tcp_frontend(undo, address, None);
        Ok(())
    }

    fn set_health_check(
        &mut self,
        undo: &mut Undo,
        set: &proto::SetHealthCheck,
    ) -> Result<(), StateError> {
        let Some(cluster) = self.clusters.get(&set.cluster_id) else {
            return Err(StateError::UnknownCluster(set.cluster_id.clone()));
        };
        if let Some(config) = &set.config {
            let tcp = protocol_of(cluster.protocol) == ListenerProtocol::Tcp;
            validate::health_check(config, tcp)?;
        }
        let mut cluster = cluster.clone();
        cluster.health_check = set.config.clone();
        self.put_cluster(undo, &set.cluster_id, Some(cluster));
        Ok(())
    }

    /// Descriptions of the frontends on the listener at `address` (a range
    /// of the frontends' map, whose keys start with the address).
    fn frontends_on(&self, address: &SocketAddr) -> Vec<String> {
        let first = HttpFrontendKey {
            address: *address,
            hostname: String::new(),
            path_kind: i32::MIN,
            path: String::new(),
            method: None,
        };
        let http = self
            .http_frontends
            .range(first..)
            .take_while(|(key, _)| key.address == *address)
            .map(|(_, frontend)| describe_http_frontend(frontend));
        let tcp = self.tcp_frontends.get(address).map(describe_tcp_frontend);
        http.chain(tcp).collect()
    }

    /// Descriptions of the frontends routing to a cluster.
    fn frontends_of_cluster(&self, cluster_id: &str) -> Vec<String> {
        let Some(users) = self.cluster_users.get(cluster_id) else {
            return Vec::new();
        };
        users
            .keys()
            .filter_map(|user| match user {
                FrontendRef::Http(key) => self.http_frontends.get(key).map(describe_http_frontend),
                FrontendRef::Tcp(address) => {
                    self.tcp_frontends.get(address).map(describe_tcp_frontend)
                }
            })
            .collect()
    }
}

/// The protocol of a stored cluster; stored clusters were validated, so the
/// fallback is never taken.
fn protocol_of(protocol: i32) -> ListenerProtocol {
    ListenerProtocol::try_from(protocol).unwrap_or(ListenerProtocol::Http)
}
