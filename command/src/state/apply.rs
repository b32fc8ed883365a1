//! Applying one request to the state: every check comes first, so that a
//! refused request leaves the state as it was.

use std::net::SocketAddr;

use super::describe::{describe_http_frontend, describe_tcp_frontend};
use super::{protocol_name, request_name, validate, ConfigState, Listener, StateError};
use crate::proto::{self, request::RequestType, ListenerProtocol};

impl ConfigState {
    /// Applies a configuration-changing request. On error nothing changed.
    ///
    /// Queries and other requests that do not change the configuration are
    /// refused with [`StateError::NotAStateChange`]; the reserved TLS and
    /// upgrade requests with [`StateError::Unsupported`].
    pub fn apply(&mut self, request: &proto::Request) -> Result<(), StateError> {
        use RequestType as R;
        let Some(request_type) = &request.request_type else {
            return Err(StateError::EmptyRequest);
        };
        match request_type {
            R::AddCluster(cluster) => self.add_cluster(cluster),
            R::RemoveCluster(cluster_id) => self.remove_cluster(cluster_id),
            R::AddBackend(add) => self.add_backend(&add.backend),
            R::RemoveBackend(remove) => self.remove_backend(remove),
            R::AddHttpFrontend(frontend) => self.add_http_frontend(frontend),
            R::RemoveHttpFrontend(frontend) => self.remove_http_frontend(frontend),
            R::AddTcpFrontend(frontend) => self.add_tcp_frontend(frontend),
            R::RemoveTcpFrontend(frontend) => self.remove_tcp_frontend(frontend),
            R::AddHttpListener(listener) => self.add_http_listener(listener),
            R::AddTcpListener(listener) => self.add_tcp_listener(listener),
            R::RemoveListener(remove) => self.remove_listener(&remove.address, remove.protocol),
            R::ActivateListener(activate) => {
                self.set_active(&activate.address, activate.protocol, true)
            }
            R::DeactivateListener(deactivate) => {
                self.set_active(&deactivate.address, deactivate.protocol, false)
            }
            R::SetHealthCheck(set) => self.set_health_check(set),
            R::AddHttpsListener(_)
            | R::AddCertificate(_)
            | R::RemoveCertificate(_)
            | R::ReplaceCertificate(_)
            | R::UpgradeMain(_) => Err(StateError::Unsupported(request_name(request_type))),
            other => Err(StateError::NotAStateChange(request_name(other))),
        }
    }

    fn add_cluster(&mut self, cluster: &proto::Cluster) -> Result<(), StateError> {
        let cluster = validate::cluster(cluster)?;
        if let Some(existing) = self.clusters.get(&cluster.cluster_id) {
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
        self.backends.entry(cluster.cluster_id.clone()).or_default();
        self.clusters.insert(cluster.cluster_id.clone(), cluster);
        Ok(())
    }

    fn remove_cluster(&mut self, cluster_id: &str) -> Result<(), StateError> {
        if self.clusters.remove(cluster_id).is_none() {
            return Err(StateError::UnknownCluster(cluster_id.to_owned()));
        }
        self.backends.remove(cluster_id);
        self.http_frontends
            .retain(|_, frontend| frontend.cluster_id.as_deref() != Some(cluster_id));
        self.tcp_frontends
            .retain(|_, frontend| frontend.cluster_id != cluster_id);
        Ok(())
    }

    fn add_backend(&mut self, backend: &proto::Backend) -> Result<(), StateError> {
        let (address, backend) = validate::backend(backend)?;
        let Some(backends) = self.backends.get_mut(&backend.cluster_id) else {
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
        backends.insert(address, backend);
        Ok(())
    }

    fn remove_backend(&mut self, remove: &proto::RemoveBackend) -> Result<(), StateError> {
        let Some(backends) = self.backends.get_mut(&remove.cluster_id) else {
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
        backends.remove(&address);
        Ok(())
    }

    fn add_http_listener(&mut self, listener: &proto::HttpListener) -> Result<(), StateError> {
        let (address, listener) = validate::http_listener(listener)?;
        self.check_listener_free(&address)?;
        self.listeners.insert(address, Listener::Http(listener));
        Ok(())
    }

    fn add_tcp_listener(&mut self, listener: &proto::TcpListener) -> Result<(), StateError> {
        let (address, listener) = validate::tcp_listener(listener)?;
        self.check_listener_free(&address)?;
        self.listeners.insert(address, Listener::Tcp(listener));
        Ok(())
    }

    fn check_listener_free(&self, address: &SocketAddr) -> Result<(), StateError> {
        match self.listeners.get(address) {
            Some(existing) => Err(StateError::DuplicateListener {
                address: address.to_string(),
                protocol: protocol_name(existing.protocol()),
            }),
            None => Ok(()),
        }
    }

    fn remove_listener(&mut self, address: &str, protocol: i32) -> Result<(), StateError> {
        let address = self.listener_with_protocol(address, protocol)?;
        let users = self.frontends_on(&address);
        if !users.is_empty() {
            return Err(StateError::ListenerInUse {
                address: address.to_string(),
                frontends: users.join(", "),
            });
        }
        self.listeners.remove(&address);
        self.active_listeners.remove(&address);
        Ok(())
    }

    fn set_active(&mut self, address: &str, protocol: i32, active: bool) -> Result<(), StateError> {
        let address = self.listener_with_protocol(address, protocol)?;
        if active {
            self.active_listeners.insert(address);
        } else {
            self.active_listeners.remove(&address);
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
        let expected = validate::protocol("protocol", protocol, "an https listener")?;
        self.check_listener_protocol(&parsed, expected)?;
        Ok(parsed)
    }

    fn check_listener_protocol(
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

    fn add_http_frontend(&mut self, frontend: &proto::HttpFrontend) -> Result<(), StateError> {
        let (key, frontend) = validate::http_frontend(frontend)?;
        self.check_listener_protocol(&key.address, ListenerProtocol::Http)?;
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
        self.http_frontends.insert(key, frontend);
        Ok(())
    }

    fn remove_http_frontend(&mut self, frontend: &proto::HttpFrontend) -> Result<(), StateError> {
        let (key, frontend) = validate::http_frontend(frontend)?;
        if self.http_frontends.remove(&key).is_none() {
            return Err(StateError::UnknownFrontend(describe_http_frontend(
                &frontend,
            )));
        }
        Ok(())
    }

    fn add_tcp_frontend(&mut self, frontend: &proto::TcpFrontend) -> Result<(), StateError> {
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
        self.tcp_frontends.insert(address, frontend);
        Ok(())
    }

    fn remove_tcp_frontend(&mut self, frontend: &proto::TcpFrontend) -> Result<(), StateError> {
        let address = validate::address("frontend", &frontend.address)?;
        if self.tcp_frontends.remove(&address).is_none() {
            return Err(StateError::UnknownFrontend(format!(
                "tcp frontend {address}"
            )));
        }
        Ok(())
    }

    fn set_health_check(&mut self, set: &proto::SetHealthCheck) -> Result<(), StateError> {
        if let Some(config) = &set.config {
            validate::health_check(config)?;
        }
        let Some(cluster) = self.clusters.get_mut(&set.cluster_id) else {
            return Err(StateError::UnknownCluster(set.cluster_id.clone()));
        };
        cluster.health_check = set.config.clone();
        Ok(())
    }

    /// Descriptions of the frontends on the listener at `address`.
    fn frontends_on(&self, address: &SocketAddr) -> Vec<String> {
        let http = self
            .http_frontends
            .iter()
            .filter(|(key, _)| key.address == *address)
            .map(|(_, frontend)| describe_http_frontend(frontend));
        let tcp = self.tcp_frontends.get(address).map(describe_tcp_frontend);
        http.chain(tcp).collect()
    }

    /// Descriptions of the frontends routing to a cluster.
    fn frontends_of_cluster(&self, cluster_id: &str) -> Vec<String> {
        let http = self
            .http_frontends
            .values()
            .filter(|frontend| frontend.cluster_id.as_deref() == Some(cluster_id))
            .map(describe_http_frontend);
        let tcp = self
            .tcp_frontends
            .values()
            .filter(|frontend| frontend.cluster_id == cluster_id)
            .map(describe_tcp_frontend);
        http.chain(tcp).collect()
    }
}

/// The protocol of a stored cluster; stored clusters were validated, so the
/// fallback is never taken.
fn protocol_of(protocol: i32) -> ListenerProtocol {
    ListenerProtocol::try_from(protocol).unwrap_or(ListenerProtocol::Http)
}
