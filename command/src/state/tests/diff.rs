//! Diffs between two states: what changes in place, what is replaced.

use super::*;

#[test]
fn diff_updates_a_changed_listener_in_place_keeping_its_frontends() {
    let origin = base();
    let mut target = ConfigState::new();
    let mut changed = base().generate_requests();
    if let Some(RequestType::AddHttpListener(listener)) = &mut changed[1].request_type {
        listener.expect_proxy = true;
    }
    for request in &changed {
        target.apply(request).expect("target");
    }
    let diff = origin.diff(&target);
    let names: Vec<_> = diff
        .iter()
        .filter_map(|r| r.request_type.as_ref())
        .map(request_name)
        .collect();
    assert_eq!(names, ["update_http_listener"]);
    assert!(origin.diff(&origin).is_empty());
}

#[test]
fn diff_updates_a_backend_whose_settings_changed_and_replaces_one_whose_id_changed() {
    let origin = base();
    let mut target = base();
    let first = origin.backends("web").next().expect("a backend").clone();
    let mut heavier = first.clone();
    heavier.weight += 10;
    heavier.backup = !heavier.backup;
    target
        .apply(&request(RequestType::UpdateBackend(heavier.clone())))
        .expect("update");
    let diff = origin.diff(&target);
    assert_eq!(diff, [request(RequestType::UpdateBackend(heavier))]);

    let mut renamed_target = base();
    renamed_target
        .apply(&request(RequestType::RemoveBackend(proto::RemoveBackend {
            cluster_id: first.cluster_id.clone(),
            address: first.address.clone(),
            backend_id: None,
            when_drained: None,
        })))
        .expect("remove");
    let mut renamed = first.clone();
    renamed.backend_id = "renamed".to_owned();
    renamed_target
        .apply(&request(RequestType::AddBackend(proto::AddBackend {
            backend: renamed,
        })))
        .expect("add");
    let names: Vec<_> = origin
        .diff(&renamed_target)
        .iter()
        .filter_map(|r| r.request_type.as_ref())
        .map(request_name)
        .collect();
    assert_eq!(names, ["remove_backend", "add_backend"]);
}

#[test]
fn generated_requests_come_in_dependency_order() {
    let names: Vec<_> = base()
        .generate_requests()
        .iter()
        .filter_map(|request| request.request_type.as_ref().map(request_name))
        .collect();
    assert_eq!(
        names,
        [
            "add_tcp_listener", // 127.0.0.1:5432 sorts before :8080
            "add_http_listener",
            "add_cluster",
            "add_cluster",
            "add_backend",
            "add_backend",
            "add_http_frontend",
            "add_tcp_frontend",
            "activate_listener",
        ]
    );
}

#[test]
fn a_state_built_from_nothing_equals_one_built_request_by_request() {
    let state = base();
    let requests = state.generate_requests();
    assert_eq!(
        ConfigState::from_requests(&requests).expect("builds"),
        state
    );
    let mut refused = requests.clone();
    refused.push(backend("nosuch", "x-0", "10.0.0.9:80"));
    let error = ConfigState::from_requests(&refused).expect_err("unknown cluster");
    assert!(
        error.to_string().contains("nosuch"),
        "the error names the refused request: {error}"
    );
}
