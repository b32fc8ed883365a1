//! `sluice ctl` changes to a cluster that etcd manages are refused: the next watch event
//! would undo them, and the other instances would never see them. The refusal names the
//! key to write instead.

use sluice_command::proto::{request::RequestType, Request};

use super::super::MainProcess;

/// Why `request` is refused, if it changes a cluster etcd manages.
pub(crate) fn refusal(main: &MainProcess, request: &Request) -> Option<String> {
    let source = main.etcd.get()?;
    let request_type = request.request_type.as_ref()?;
    if let RequestType::Batch(batch) = request_type {
        return batch.requests.iter().find_map(|one| refusal(main, one));
    }
    let cluster_id = changed_cluster(request_type)?;
    let key = source.managed_key(cluster_id)?;
    Some(format!(
        "cluster {cluster_id} is managed by etcd: change it by writing the key {key} \
         (`sluice ctl cluster export {cluster_id}` prints its document)"
    ))
}

/// The cluster a state change touches, if it touches one.
pub(super) fn changed_cluster(request: &RequestType) -> Option<&str> {
    Some(match request {
        RequestType::AddCluster(cluster) => &cluster.cluster_id,
        RequestType::RemoveCluster(cluster_id) => cluster_id,
        RequestType::AddBackend(add) => &add.backend.cluster_id,
        RequestType::RemoveBackend(remove) => &remove.cluster_id,
        RequestType::UpdateBackend(backend) => &backend.cluster_id,
        RequestType::AddHttpFrontend(frontend) | RequestType::RemoveHttpFrontend(frontend) => {
            frontend.cluster_id.as_deref()?
        }
        RequestType::AddTcpFrontend(frontend) | RequestType::RemoveTcpFrontend(frontend) => {
            &frontend.cluster_id
        }
        RequestType::SetHealthCheck(set) => &set.cluster_id,
        RequestType::ChangeBackend(change) => &change.cluster_id,
        RequestType::ChangeCluster(change) => &change.cluster_id,
        _ => return None,
    })
}
