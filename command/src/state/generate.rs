//! The requests that rebuild a state, and the request for each kind of item.

use super::{request, ConfigState, Listener, StoredCertificate};
use crate::proto::{self, request::RequestType};

impl ConfigState {
    /// The requests that rebuild this state from an empty one, in an order
    /// where each applies: listeners, certificates, clusters (health checks inside),
    /// backends, HTTP frontends, TCP frontends, then listener activations.
    pub fn generate_requests(&self) -> Vec<proto::Request> {
        let listeners = self.listeners.values().map(add_listener);
        let certificates = self.certificates.values().map(add_certificate);
        let clusters = self.clusters.values().map(add_cluster);
        let backends = self
            .backends
            .values()
            .flat_map(|backends| backends.values())
            .map(add_backend);
        let http_frontends = self.http_frontends.values().map(add_http_frontend);
        let tcp_frontends = self.tcp_frontends.values().map(add_tcp_frontend);
        let activations = self
            .active_listeners
            .iter()
            .filter_map(|address| self.listeners.get(address))
            .map(activate_listener);
        listeners
            .chain(certificates)
            .chain(clusters)
            .chain(backends)
            .chain(http_frontends)
            .chain(tcp_frontends)
            .chain(activations)
            .collect()
    }
}

pub(super) fn add_listener(listener: &Listener) -> proto::Request {
    request(match listener {
        Listener::Http(http) => RequestType::AddHttpListener(http.clone()),
        Listener::Tcp(tcp) => RequestType::AddTcpListener(tcp.clone()),
    })
}

pub(super) fn update_listener(listener: &Listener) -> proto::Request {
    request(match listener {
        Listener::Http(http) => RequestType::UpdateHttpListener(http.clone()),
        Listener::Tcp(tcp) => RequestType::UpdateTcpListener(tcp.clone()),
    })
}

pub(super) fn remove_listener(listener: &Listener) -> proto::Request {
    request(RequestType::RemoveListener(proto::RemoveListener {
        address: listener.address().to_owned(),
        protocol: listener.protocol() as i32,
    }))
}

pub(super) fn activate_listener(listener: &Listener) -> proto::Request {
    request(RequestType::ActivateListener(proto::ActivateListener {
        address: listener.address().to_owned(),
        protocol: listener.protocol() as i32,
    }))
}

pub(super) fn deactivate_listener(listener: &Listener) -> proto::Request {
    request(RequestType::DeactivateListener(proto::DeactivateListener {
        address: listener.address().to_owned(),
        protocol: listener.protocol() as i32,
    }))
}

pub(super) fn add_certificate(certificate: &StoredCertificate) -> proto::Request {
    request(RequestType::AddCertificate(proto::AddCertificate {
        certificate: certificate.pem.clone(),
    }))
}

pub(super) fn remove_certificate(fingerprint: &str) -> proto::Request {
    request(RequestType::RemoveCertificate(proto::RemoveCertificate {
        fingerprint: fingerprint.to_owned(),
    }))
}

pub(super) fn replace_certificate(
    old_fingerprint: &str,
    certificate: &StoredCertificate,
) -> proto::Request {
    request(RequestType::ReplaceCertificate(proto::ReplaceCertificate {
        old_fingerprint: old_fingerprint.to_owned(),
        new_certificate: certificate.pem.clone(),
    }))
}

pub(super) fn add_cluster(cluster: &proto::Cluster) -> proto::Request {
    request(RequestType::AddCluster(cluster.clone()))
}

pub(super) fn remove_cluster(cluster_id: &str) -> proto::Request {
    request(RequestType::RemoveCluster(cluster_id.to_owned()))
}

pub(super) fn add_backend(backend: &proto::Backend) -> proto::Request {
    request(RequestType::AddBackend(proto::AddBackend {
        backend: backend.clone(),
    }))
}

pub(super) fn update_backend(backend: &proto::Backend) -> proto::Request {
    request(RequestType::UpdateBackend(backend.clone()))
}

pub(super) fn remove_backend(backend: &proto::Backend) -> proto::Request {
    request(RequestType::RemoveBackend(proto::RemoveBackend {
        cluster_id: backend.cluster_id.clone(),
        address: backend.address.clone(),
        backend_id: Some(backend.backend_id.clone()),
        when_drained: None,
    }))
}

pub(super) fn add_http_frontend(frontend: &proto::HttpFrontend) -> proto::Request {
    request(RequestType::AddHttpFrontend(frontend.clone()))
}

pub(super) fn remove_http_frontend(frontend: &proto::HttpFrontend) -> proto::Request {
    request(RequestType::RemoveHttpFrontend(frontend.clone()))
}

pub(super) fn add_tcp_frontend(frontend: &proto::TcpFrontend) -> proto::Request {
    request(RequestType::AddTcpFrontend(frontend.clone()))
}

pub(super) fn remove_tcp_frontend(frontend: &proto::TcpFrontend) -> proto::Request {
    request(RequestType::RemoveTcpFrontend(frontend.clone()))
}
