//! A configuration as the requests that build it.

use super::{Config, ListenerConfig};
use crate::proto::{self, request::RequestType};

/// See [`Config::to_requests`].
pub(crate) fn to_requests(config: &Config) -> Vec<proto::Request> {
    let clusters = config.clusters.iter().map(|c| {
        (
            c.cluster.clone(),
            c.backends.clone(),
            c.http_frontends.clone(),
            c.tcp_frontends.clone(),
        )
    });
    assemble(config, clusters)
}

/// See [`Config::take_requests`].
pub(crate) fn take_requests(config: &mut Config) -> Vec<proto::Request> {
    let taken = std::mem::take(&mut config.clusters);
    let clusters = taken
        .into_iter()
        .map(|c| (c.cluster, c.backends, c.http_frontends, c.tcp_frontends));
    assemble(config, clusters)
}

/// The requests of `config`'s listeners and certificates and of `clusters`: listeners,
/// certificates, clusters, backends, frontends, then the listeners' activations.
fn assemble(
    config: &Config,
    clusters: impl Iterator<
        Item = (
            proto::Cluster,
            Vec<proto::Backend>,
            Vec<proto::HttpFrontend>,
            Vec<proto::TcpFrontend>,
        ),
    >,
) -> Vec<proto::Request> {
    let mut requests: Vec<RequestType> = config.listeners.iter().map(add_listener).collect();
    requests.extend(config.certificates.iter().map(|certificate| {
        RequestType::AddCertificate(proto::AddCertificate {
            certificate: certificate.clone(),
        })
    }));
    let mut backends = Vec::new();
    let mut frontends = Vec::new();
    for (cluster, cluster_backends, http, tcp) in clusters {
        requests.push(RequestType::AddCluster(cluster));
        backends.extend(
            cluster_backends
                .into_iter()
                .map(|backend| RequestType::AddBackend(proto::AddBackend { backend })),
        );
        frontends.extend(http.into_iter().map(RequestType::AddHttpFrontend));
        frontends.extend(tcp.into_iter().map(RequestType::AddTcpFrontend));
    }
    requests.extend(backends);
    requests.extend(frontends);
    requests.extend(config.listeners.iter().map(|listener| {
        RequestType::ActivateListener(proto::ActivateListener {
            address: listener.address().to_owned(),
            protocol: listener.protocol() as i32,
        })
    }));
    requests
        .into_iter()
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
