//! Partial changes from `sluice ctl` (`backend set`, `cluster update`, `listener update`,
//! `backend remove --id`), resolved against the state into the whole request that changes
//! the thing in place. Only what the change names differs from what is stored; the request
//! is then applied like any other, so it goes through the same validation.

use super::{validate, ConfigState, Listener, StateError};
use crate::proto::{self, request::RequestType};

impl ConfigState {
    /// The backend of `cluster_id` named by `address` or `backend_id` (both must match when
    /// both are given).
    pub fn find_backend(
        &self,
        cluster_id: &str,
        address: Option<&str>,
        backend_id: Option<&str>,
    ) -> Result<&proto::Backend, StateError> {
        let Some(backends) = self.backends.get(cluster_id) else {
            return Err(StateError::UnknownCluster(cluster_id.to_owned()));
        };
        let found = match (address, backend_id) {
            (None, None) => return Err(StateError::BackendNotNamed),
            (Some(address), _) => {
                let parsed = validate::address("backend", address)?;
                backends
                    .get(&parsed)
                    .ok_or_else(|| StateError::UnknownBackend {
                        cluster_id: cluster_id.to_owned(),
                        address: address.to_owned(),
                    })?
            }
            (None, Some(id)) => backends
                .values()
                .find(|backend| backend.backend_id == id)
                .ok_or_else(|| StateError::UnknownBackendId {
                    cluster_id: cluster_id.to_owned(),
                    backend_id: id.to_owned(),
                })?,
        };
        if let Some(given) = backend_id.filter(|id| *id != found.backend_id) {
            return Err(StateError::BackendIdMismatch {
                cluster_id: cluster_id.to_owned(),
                address: found.address.clone(),
                actual: found.backend_id.clone(),
                given: given.to_owned(),
            });
        }
        Ok(found)
    }

    /// The whole request a partial change (`ChangeBackend`, `ChangeCluster`,
    /// `ChangeListener`) stands for, or a `RemoveBackend` with its address filled in from
    /// its id; any other request as it is. Refused when what it names does not exist or
    /// when it changes nothing at all.
    pub fn resolve_changes(&self, request: &proto::Request) -> Result<proto::Request, StateError> {
        let resolved = match &request.request_type {
            Some(RequestType::ChangeBackend(changes)) => self.backend_changes(changes)?,
            Some(RequestType::ChangeCluster(changes)) => self.cluster_changes(changes)?,
            Some(RequestType::ChangeListener(changes)) => self.listener_changes(changes)?,
            Some(RequestType::RemoveBackend(remove)) => self.backend_removal(remove)?,
            _ => return Ok(request.clone()),
        };
        Ok(super::request(resolved))
    }

    fn backend_changes(&self, changes: &proto::BackendChanges) -> Result<RequestType, StateError> {
        if changes.weight.is_none() && changes.state.is_none() {
            return Err(StateError::NothingToChange("backend (--weight or --state)"));
        }
        let mut backend = self
            .find_backend(
                &changes.cluster_id,
                changes.address.as_deref(),
                changes.backend_id.as_deref(),
            )?
            .clone();
        if let Some(weight) = changes.weight {
            backend.weight = weight;
        }
        if changes.state.is_some() {
            backend.state = validate::backend_state(changes.state)?;
        }
        Ok(RequestType::UpdateBackend(backend))
    }

    fn cluster_changes(&self, changes: &proto::ClusterChanges) -> Result<RequestType, StateError> {
        let Some(cluster) = self.clusters.get(&changes.cluster_id) else {
            return Err(StateError::UnknownCluster(changes.cluster_id.clone()));
        };
        let mut cluster = cluster.clone();
        let mut named = false;
        if let Some(algorithm) = changes.load_balancing {
            cluster.load_balancing = algorithm;
            named = true;
        }
        if let Some(metric) = changes.load_metric {
            cluster.load_metric = metric;
            named = true;
        }
        if let Some(sticky) = changes.sticky_session {
            cluster.sticky_session = sticky;
            named = true;
        }
        if let Some(name) = &changes.sticky_cookie_name {
            cluster.sticky_cookie_name = Some(name.clone());
            named = true;
        }
        if let Some(retries) = changes.max_connect_retries {
            cluster.max_connect_retries = Some(retries);
            named = true;
        }
        if !named {
            return Err(StateError::NothingToChange("cluster"));
        }
        Ok(RequestType::AddCluster(cluster))
    }

    fn listener_changes(
        &self,
        changes: &proto::ListenerChanges,
    ) -> Result<RequestType, StateError> {
        let address = validate::address("listener", &changes.address)?;
        let protocol = validate::protocol("protocol", changes.protocol)?;
        self.check_listener_protocol(&address, protocol)?;
        let named = changes.front_timeout_ms.is_some()
            || changes.back_timeout_ms.is_some()
            || changes.connect_timeout_ms.is_some()
            || changes.request_timeout_ms.is_some()
            || changes.max_request_body.is_some()
            || changes.expect_proxy.is_some();
        if !named {
            return Err(StateError::NothingToChange("listener"));
        }
        let timeouts = |current: &proto::Timeouts| proto::Timeouts {
            front_timeout_ms: changes.front_timeout_ms.unwrap_or(current.front_timeout_ms),
            back_timeout_ms: changes.back_timeout_ms.unwrap_or(current.back_timeout_ms),
            connect_timeout_ms: changes
                .connect_timeout_ms
                .unwrap_or(current.connect_timeout_ms),
            request_timeout_ms: changes
                .request_timeout_ms
                .unwrap_or(current.request_timeout_ms),
        };
        match self.listeners.get(&address) {
            Some(Listener::Http(listener)) => {
                let mut listener = listener.clone();
                listener.timeouts = timeouts(&listener.timeouts);
                if let Some(size) = changes.max_request_body {
                    listener.max_request_body = Some(size);
                }
                if let Some(expect_proxy) = changes.expect_proxy {
                    listener.expect_proxy = expect_proxy;
                }
                Ok(RequestType::UpdateHttpListener(listener))
            }
            Some(Listener::Tcp(listener)) => {
                if changes.max_request_body.is_some() {
                    return Err(StateError::NotAnHttpListener {
                        setting: "max_request_body",
                        address: address.to_string(),
                    });
                }
                let mut listener = listener.clone();
                listener.timeouts = timeouts(&listener.timeouts);
                if let Some(expect_proxy) = changes.expect_proxy {
                    listener.expect_proxy = expect_proxy;
                }
                Ok(RequestType::UpdateTcpListener(listener))
            }
            None => Err(StateError::UnknownListener(address.to_string())),
        }
    }

    /// A removal named by id gets its address; one named by address keeps the id check.
    fn backend_removal(&self, remove: &proto::RemoveBackend) -> Result<RequestType, StateError> {
        let address = Some(remove.address.as_str()).filter(|a| !a.is_empty());
        let backend =
            self.find_backend(&remove.cluster_id, address, remove.backend_id.as_deref())?;
        Ok(RequestType::RemoveBackend(proto::RemoveBackend {
            cluster_id: remove.cluster_id.clone(),
            address: backend.address.clone(),
            backend_id: Some(backend.backend_id.clone()),
            when_drained: remove.when_drained,
        }))
    }
}
