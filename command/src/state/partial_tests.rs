//! Partial changes and the validation shared with the configuration file.

use super::tests::{base, health_check, refused, set_health_check, DB, WEB};
use super::*;
use crate::proto::BackendState;

fn resolve(state: &ConfigState, request_type: RequestType) -> Result<proto::Request, StateError> {
    state.resolve_changes(&request(request_type))
}

fn backend_changes(address: Option<&str>, id: Option<&str>) -> proto::BackendChanges {
    proto::BackendChanges {
        cluster_id: "web".to_owned(),
        address: address.map(str::to_owned),
        backend_id: id.map(str::to_owned),
        weight: None,
        state: None,
    }
}

fn stored_backend(state: &ConfigState) -> proto::Backend {
    state
        .backends("web")
        .next()
        .cloned()
        .expect("web has a backend")
}

#[test]
fn backend_set_by_id_or_address_changes_only_weight_and_state() {
    let mut state = base();
    let before = stored_backend(&state);
    let mut by_id = backend_changes(None, Some("web-0"));
    by_id.state = Some(BackendState::Drain as i32);
    let resolved = resolve(&state, RequestType::ChangeBackend(by_id)).expect("resolves");
    let Some(RequestType::UpdateBackend(updated)) = &resolved.request_type else {
        panic!("not an update: {resolved:?}");
    };
    assert_eq!(updated.state, Some(BackendState::Drain as i32));
    assert_eq!(updated.weight, before.weight);
    state.apply(&resolved).expect("applies");

    let mut by_address = backend_changes(Some("10.0.0.1:80"), None);
    by_address.weight = Some(7);
    let resolved = resolve(&state, RequestType::ChangeBackend(by_address)).expect("resolves");
    state.apply(&resolved).expect("applies");
    let after = stored_backend(&state);
    assert_eq!(after.weight, 7);
    assert_eq!(after.state, Some(BackendState::Drain as i32), "state kept");
    assert_eq!(after.backend_id, before.backend_id);

    let mut ready = backend_changes(Some("10.0.0.1:80"), None);
    ready.state = Some(BackendState::Ready as i32);
    let resolved = resolve(&state, RequestType::ChangeBackend(ready)).expect("resolves");
    state.apply(&resolved).expect("applies");
    assert_eq!(
        stored_backend(&state).state,
        None,
        "ready is stored as absent"
    );
}

#[test]
fn backend_set_refuses_what_it_cannot_name_or_change() {
    let state = base();
    let nothing = backend_changes(Some("10.0.0.1:80"), None);
    assert!(matches!(
        resolve(&state, RequestType::ChangeBackend(nothing)),
        Err(StateError::NothingToChange(_))
    ));
    let mut unnamed = backend_changes(None, None);
    unnamed.weight = Some(1);
    assert!(matches!(
        resolve(&state, RequestType::ChangeBackend(unnamed)),
        Err(StateError::BackendNotNamed)
    ));
    let mut unknown = backend_changes(None, Some("web-9"));
    unknown.weight = Some(1);
    assert!(matches!(
        resolve(&state, RequestType::ChangeBackend(unknown)),
        Err(StateError::UnknownBackendId { .. })
    ));
    let mut mismatch = backend_changes(Some("10.0.0.1:80"), Some("other"));
    mismatch.weight = Some(1);
    assert!(matches!(
        resolve(&state, RequestType::ChangeBackend(mismatch)),
        Err(StateError::BackendIdMismatch { .. })
    ));
}

#[test]
fn a_weight_out_of_range_is_refused_with_the_file_message() {
    let mut state = base();
    let mut heavy = backend_changes(Some("10.0.0.1:80"), None);
    heavy.weight = Some(5000);
    let resolved = resolve(&state, RequestType::ChangeBackend(heavy)).expect("resolves");
    let error = refused(&mut state, resolved).to_string();
    assert!(
        error.ends_with("5000 is out of range, expected a whole number from 0 to 1000"),
        "{error}"
    );
}

#[test]
fn removal_by_id_gets_its_address() {
    let state = base();
    let remove = proto::RemoveBackend {
        cluster_id: "db".to_owned(),
        address: String::new(),
        backend_id: Some("db-0".to_owned()),
        when_drained: Some(true),
    };
    let resolved = resolve(&state, RequestType::RemoveBackend(remove)).expect("resolves");
    let Some(RequestType::RemoveBackend(remove)) = resolved.request_type else {
        panic!("not a removal");
    };
    assert_eq!(remove.address, "10.0.0.2:5432");
    assert_eq!(remove.when_drained, Some(true));
}

#[test]
fn cluster_update_changes_only_what_it_names() {
    let mut state = base();
    state
        .apply(&set_health_check("web", Some(health_check())))
        .expect("check");
    let before = state.cluster("web").cloned().expect("web");
    let changes = proto::ClusterChanges {
        cluster_id: "web".to_owned(),
        load_balancing: Some(proto::LoadBalancingAlgorithm::LeastLoaded as i32),
        sticky_session: Some(true),
        ..Default::default()
    };
    let resolved = resolve(&state, RequestType::ChangeCluster(changes)).expect("resolves");
    state.apply(&resolved).expect("applies");
    let after = state.cluster("web").cloned().expect("web");
    assert_eq!(
        after.load_balancing,
        proto::LoadBalancingAlgorithm::LeastLoaded as i32
    );
    assert!(after.sticky_session);
    assert_eq!(after.health_check, before.health_check);
    assert_eq!(after.load_metric, before.load_metric);
    assert_eq!(state.backends("web").count(), 1, "backends kept");

    let nothing = proto::ClusterChanges {
        cluster_id: "web".to_owned(),
        ..Default::default()
    };
    assert!(matches!(
        resolve(&state, RequestType::ChangeCluster(nothing)),
        Err(StateError::NothingToChange(_))
    ));
    let retries = proto::ClusterChanges {
        cluster_id: "web".to_owned(),
        max_connect_retries: Some(101),
        ..Default::default()
    };
    let resolved = resolve(&state, RequestType::ChangeCluster(retries)).expect("resolves");
    let error = refused(&mut state, resolved).to_string();
    assert!(error.ends_with("101 is out of range, expected a whole number from 0 to 100"));
}

#[test]
fn listener_update_changes_only_what_it_names() {
    let mut state = base();
    let changes = proto::ListenerChanges {
        address: WEB.to_owned(),
        protocol: ListenerProtocol::Http as i32,
        connect_timeout_ms: Some(1_500),
        max_request_body: Some(1024),
        ..Default::default()
    };
    let resolved = resolve(&state, RequestType::ChangeListener(changes)).expect("resolves");
    assert!(matches!(
        resolved.request_type,
        Some(RequestType::UpdateHttpListener(_))
    ));
    state.apply(&resolved).expect("applies");
    let Some(Listener::Http(listener)) = state.listeners().values().find(|l| l.address() == WEB)
    else {
        panic!("no http listener");
    };
    assert_eq!(listener.timeouts.connect_timeout_ms, 1_500);
    assert_eq!(listener.timeouts.front_timeout_ms, 60_000, "kept");
    assert_eq!(listener.max_request_body, Some(1024));
    assert!(
        state.is_active(&WEB.parse().expect("address")),
        "still active"
    );

    let body_on_tcp = proto::ListenerChanges {
        address: DB.to_owned(),
        protocol: ListenerProtocol::Tcp as i32,
        max_request_body: Some(1),
        ..Default::default()
    };
    assert!(matches!(
        resolve(&state, RequestType::ChangeListener(body_on_tcp)),
        Err(StateError::NotAnHttpListener { .. })
    ));
    let zero = proto::ListenerChanges {
        address: DB.to_owned(),
        protocol: ListenerProtocol::Tcp as i32,
        connect_timeout_ms: Some(0),
        ..Default::default()
    };
    let resolved = resolve(&state, RequestType::ChangeListener(zero)).expect("resolves");
    let error = refused(&mut state, resolved).to_string();
    assert!(
        error.ends_with("duration \"0ms\" is out of range, expected 1ms to 24h"),
        "{error}"
    );
}

#[test]
fn health_checks_follow_the_cluster_protocol() {
    let mut state = base();
    let error = refused(&mut state, set_health_check("db", Some(health_check()))).to_string();
    assert!(error.contains("cannot run on a tcp cluster"), "{error}");
    let mut connect = health_check();
    connect.uri = String::new();
    state
        .apply(&set_health_check("db", Some(connect.clone())))
        .expect("a connect check on a tcp cluster");
    let error = refused(&mut state, set_health_check("web", Some(connect))).to_string();
    assert!(error.contains("needs a uri"), "{error}");
    let mut long = health_check();
    long.interval_ms = 48 * 3_600_000;
    let error = refused(&mut state, set_health_check("web", Some(long))).to_string();
    assert!(
        error.ends_with("duration \"48h\" is out of range, expected 1ms to 24h"),
        "{error}"
    );
}

#[test]
fn ids_and_methods_are_checked_as_in_the_file() {
    let mut state = base();
    let mut unicode = cluster_of_id("wéb");
    let error = refused(
        &mut state,
        request(RequestType::AddCluster(unicode.clone())),
    )
    .to_string();
    assert!(error.contains("expected 1 to 128 letters"), "{error}");
    unicode.cluster_id = "a".repeat(200);
    refused(&mut state, request(RequestType::AddCluster(unicode)));
    let mut frontend = proto::HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: WEB.to_owned(),
        hostname: "api.example.com".to_owned(),
        path: proto::PathRule {
            kind: proto::PathRuleKind::Prefix as i32,
            value: "/".to_owned(),
        },
        method: Some("get".to_owned()),
        cluster_id: Some("web".to_owned()),
    };
    let error = refused(
        &mut state,
        request(RequestType::AddHttpFrontend(frontend.clone())),
    )
    .to_string();
    assert!(
        error.contains("expected an upper-case HTTP method"),
        "{error}"
    );
    frontend.method = Some("GET".to_owned());
    state
        .apply(&request(RequestType::AddHttpFrontend(frontend)))
        .expect("upper case");
}

fn cluster_of_id(cluster_id: &str) -> proto::Cluster {
    proto::Cluster {
        cluster_id: cluster_id.to_owned(),
        ..Default::default()
    }
}
