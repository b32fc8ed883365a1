//! Short human names of requests and of the things they name, for error
//! messages and reload summaries.

use super::{protocol_name, request_name, ConfigState};
use crate::proto::{self, request::RequestType, ListenerProtocol, PathRuleKind};

impl ConfigState {
    /// A short human name of what a request is about, without its verb:
    /// `cluster demo`, `backend demo/127.0.0.1:8081`, `http listener
    /// 127.0.0.1:8080`... Reload summaries list these under added and removed.
    pub fn summary_of(request: &proto::Request) -> String {
        use RequestType as R;
        let Some(request_type) = &request.request_type else {
            return "empty request".to_owned();
        };
        match request_type {
            R::AddCluster(cluster) => format!("cluster {}", cluster.cluster_id),
            R::RemoveCluster(cluster_id) => format!("cluster {cluster_id}"),
            R::AddBackend(add) => {
                format!("backend {}/{}", add.backend.cluster_id, add.backend.address)
            }
            R::RemoveBackend(remove) => format!("backend {}/{}", remove.cluster_id, remove.address),
            R::AddHttpFrontend(frontend) | R::RemoveHttpFrontend(frontend) => {
                describe_http_frontend(frontend)
            }
            R::AddTcpFrontend(frontend) | R::RemoveTcpFrontend(frontend) => {
                describe_tcp_frontend(frontend)
            }
            R::UpdateBackend(backend) => {
                format!("backend {}/{}", backend.cluster_id, backend.address)
            }
            R::AddHttpListener(listener) | R::UpdateHttpListener(listener) => {
                format!("http listener {}", listener.address)
            }
            R::AddTcpListener(listener) | R::UpdateTcpListener(listener) => {
                format!("tcp listener {}", listener.address)
            }
            R::Batch(batch) => format!("{} changes", batch.requests.len()),
            R::RemoveListener(remove) => describe_listener(&remove.address, remove.protocol),
            R::ActivateListener(activate) => format!(
                "activation of {}",
                describe_listener(&activate.address, activate.protocol)
            ),
            R::DeactivateListener(deactivate) => format!(
                "activation of {}",
                describe_listener(&deactivate.address, deactivate.protocol)
            ),
            R::SetHealthCheck(set) => format!("health check of cluster {}", set.cluster_id),
            R::AddCertificate(add) => {
                match crate::certificate::fingerprint_of_pem(&add.certificate.certificate) {
                    Ok(fingerprint) => format!("certificate {fingerprint}"),
                    Err(_) => "certificate".to_owned(),
                }
            }
            R::RemoveCertificate(remove) => format!("certificate {}", remove.fingerprint),
            R::ReplaceCertificate(replace) => {
                format!("certificate {}", replace.old_fingerprint)
            }
            other => request_name(other).replace('_', " "),
        }
    }
}

impl ConfigState {
    /// What applying `request` did, as ctl answers it: `added backend
    /// api/10.0.0.5:8080`, `removed cluster web`, `deactivated tcp listener
    /// 0.0.0.0:5432`. A listener added is said to be inactive until activated.
    pub fn outcome_of(request: &proto::Request) -> String {
        use RequestType as R;
        let Some(request_type) = &request.request_type else {
            return "nothing to do".to_owned();
        };
        let what = ConfigState::summary_of(request);
        match request_type {
            R::AddHttpListener(listener) => inactive_listener(&what, "http", &listener.address),
            R::AddTcpListener(listener) => inactive_listener(&what, "tcp", &listener.address),
            R::AddCluster(_) | R::AddBackend(_) | R::AddHttpFrontend(_) | R::AddTcpFrontend(_) => {
                format!("added {what}")
            }
            R::RemoveCluster(_)
            | R::RemoveBackend(_)
            | R::RemoveHttpFrontend(_)
            | R::RemoveTcpFrontend(_)
            | R::RemoveListener(_) => format!("removed {what}"),
            R::UpdateBackend(_) | R::UpdateHttpListener(_) | R::UpdateTcpListener(_) => {
                format!("updated {what}")
            }
            R::ActivateListener(activate) => format!(
                "activated {}",
                describe_listener(&activate.address, activate.protocol)
            ),
            R::DeactivateListener(deactivate) => format!(
                "deactivated {}",
                describe_listener(&deactivate.address, deactivate.protocol)
            ),
            R::SetHealthCheck(set) => match set.config {
                Some(_) => format!("set the health check of cluster {}", set.cluster_id),
                None => format!("removed the health check of cluster {}", set.cluster_id),
            },
            R::Batch(batch) => format!("applied {} changes", batch.requests.len()),
            R::AddCertificate(_) => format!("added {what}"),
            R::RemoveCertificate(_) => format!("removed {what}"),
            R::ReplaceCertificate(_) => format!("replaced {what}"),
            _ => format!("done: {what}"),
        }
    }
}

/// `added http listener A, inactive until `sluice ctl listener activate …``.
fn inactive_listener(what: &str, protocol: &str, address: &str) -> String {
    format!(
        "added {what}, inactive until `sluice ctl listener activate --protocol {protocol} \
         --address {address}`"
    )
}

fn describe_listener(address: &str, protocol: i32) -> String {
    match ListenerProtocol::try_from(protocol) {
        Ok(protocol) => format!("{} listener {address}", protocol_name(protocol)),
        Err(_) => format!("listener {address}"),
    }
}

/// `http frontend 127.0.0.1:8080 example.com/api (prefix) -> demo`.
pub(super) fn describe_http_frontend(frontend: &proto::HttpFrontend) -> String {
    let kind = match PathRuleKind::try_from(frontend.path.kind) {
        Ok(PathRuleKind::Prefix) => "prefix",
        Ok(PathRuleKind::Exact) => "exact",
        Ok(PathRuleKind::Regex) => "regex",
        Err(_) => "unknown rule",
    };
    let method = frontend
        .method
        .as_deref()
        .map(|method| format!(" {method}"))
        .unwrap_or_default();
    let target = frontend.cluster_id.as_deref().unwrap_or("deny");
    format!(
        "http frontend {} {}{} ({kind}){method} -> {target}",
        frontend.address, frontend.hostname, frontend.path.value
    )
}

/// `tcp frontend 127.0.0.1:5432 -> db`.
pub(super) fn describe_tcp_frontend(frontend: &proto::TcpFrontend) -> String {
    format!(
        "tcp frontend {} -> {}",
        frontend.address, frontend.cluster_id
    )
}
