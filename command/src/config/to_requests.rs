//! A configuration as the requests that build it.

use super::{Config, ListenerConfig};
use crate::proto::{self, request::RequestType};

/// See [`Config::to_requests`].
pub(crate) fn to_requests(config: &Config) -> Vec<proto::Request> {
    let listeners = config.listeners.iter().map(add_listener);
    let certificates = config.certificates.iter().map(|certificate| {
        RequestType::AddCertificate(proto::AddCertificate {
            certificate: certificate.clone(),
        })
    });
    let clusters = config
        .clusters
        .iter()
        .map(|c| RequestType::AddCluster(c.cluster.clone()));
    let backends = config.clusters.iter().flat_map(|c| {
        c.backends.iter().map(|backend| {
            RequestType::AddBackend(proto::AddBackend {
                backend: backend.clone(),
            })
        })
    });
    let frontends = config.clusters.iter().flat_map(|c| {
        let http = c
            .http_frontends
            .iter()
            .cloned()
            .map(RequestType::AddHttpFrontend);
        let tcp = c
            .tcp_frontends
            .iter()
            .cloned()
            .map(RequestType::AddTcpFrontend);
        http.chain(tcp)
    });
    let activations = config.listeners.iter().map(|listener| {
        RequestType::ActivateListener(proto::ActivateListener {
            address: listener.address().to_owned(),
            protocol: listener.protocol() as i32,
        })
    });
    listeners
        .chain(certificates)
        .chain(clusters)
        .chain(backends)
        .chain(frontends)
        .chain(activations)
        .map(|request| proto::Request {
            request_type: Some(request),
        })
        .collect()
}

fn add_listener(listener: &ListenerConfig) -> RequestType {
    match listener {
        ListenerConfig::Http(http) => RequestType::AddHttpListener(http.clone()),
        ListenerConfig::Tcp(tcp) => RequestType::AddTcpListener(tcp.clone()),
    }
}
