//! State files and the clusters etcd manages. etcd stays their source of truth: `state
//! save` leaves them out (etcd, and the etcd cache for a start without etcd, hold
//! them), and `state load` leaves them as etcd has them, skipping what a state file
//! holds of them and saying so; the other clusters load as usual.

use std::collections::{BTreeMap, BTreeSet};

use log::info;
use sluice_command::proto::Request;

use super::super::MainProcess;
use super::ctl_guard::changed_cluster;

/// The ids of the clusters etcd manages now (none without etcd).
pub(crate) fn managed_ids(main: &MainProcess) -> BTreeSet<String> {
    main.etcd
        .get()
        .map(|source| source.managed_ids().into_iter().collect())
        .unwrap_or_default()
}

/// The cluster a state change touches, if it touches one.
pub(crate) fn cluster_of(request: &Request) -> Option<&str> {
    changed_cluster(request.request_type.as_ref()?)
}

/// The requests of a state file without those of clusters etcd manages, and the
/// clusters left out with their keys.
pub(crate) fn leave_managed(
    main: &MainProcess,
    requests: Vec<(usize, Request)>,
) -> (Vec<(usize, Request)>, BTreeMap<String, String>) {
    let Some(source) = main.etcd.get() else {
        return (requests, BTreeMap::new());
    };
    let managed = managed_ids(main);
    let mut left = BTreeMap::new();
    let kept = requests
        .into_iter()
        .filter(|(_, request)| match cluster_of(request) {
            Some(id) if managed.contains(id) => {
                left.entry(id.to_owned())
                    .or_insert_with(|| source.config.cluster_key(id));
                false
            }
            _ => true,
        })
        .collect();
    (kept, left)
}

/// What the answer to a state load says of the clusters it left to etcd.
pub(crate) fn left_note(left: &BTreeMap<String, String>) -> Option<String> {
    if left.is_empty() {
        return None;
    }
    let named: Vec<String> = left
        .iter()
        .map(|(id, key)| format!("{id} (key {key})"))
        .collect();
    let note = format!(
        "kept as etcd has them, the file's copy skipped: cluster {}",
        named.join(", cluster ")
    );
    info!("state load: {note}");
    Some(note)
}

#[cfg(test)]
mod tests {
    use sluice_command::proto::{self, request::RequestType};

    use super::*;

    #[test]
    fn the_note_names_each_cluster_left_to_etcd_with_its_key() {
        assert_eq!(left_note(&BTreeMap::new()), None);
        let left = BTreeMap::from([
            ("api".to_owned(), "/s/clusters/api".to_owned()),
            ("web".to_owned(), "/s/clusters/web".to_owned()),
        ]);
        assert_eq!(
            left_note(&left).as_deref(),
            Some(
                "kept as etcd has them, the file's copy skipped: cluster api (key \
                 /s/clusters/api), cluster web (key /s/clusters/web)"
            )
        );
    }

    #[test]
    fn the_cluster_of_a_request_is_the_one_it_changes() {
        let backend = Request {
            request_type: Some(RequestType::AddBackend(proto::AddBackend {
                backend: proto::Backend {
                    cluster_id: "api".into(),
                    ..Default::default()
                },
            })),
        };
        assert_eq!(cluster_of(&backend), Some("api"));
        let listener = Request {
            request_type: Some(RequestType::ActivateListener(Default::default())),
        };
        assert_eq!(cluster_of(&listener), None);
    }
}
