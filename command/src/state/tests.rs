use super::*;
use crate::proto::{query_clusters::Filter, PathRuleKind};

pub(super) fn timeouts() -> proto::Timeouts {
    proto::Timeouts {
        front_timeout_ms: 60_000,
        back_timeout_ms: 30_000,
        connect_timeout_ms: 3_000,
        request_timeout_ms: 10_000,
    }
}

pub(super) fn http_listener(address: &str) -> proto::Request {
    request(RequestType::AddHttpListener(proto::HttpListener {
        tls: None,
        address: address.to_owned(),
        timeouts: timeouts(),
        answers: Vec::new(),
        expect_proxy: false,
        sticky_cookie_name: None,
        max_request_body: None,
    }))
}

pub(super) fn tcp_listener(address: &str) -> proto::Request {
    request(RequestType::AddTcpListener(proto::TcpListener {
        tls: None,
        address: address.to_owned(),
        timeouts: timeouts(),
        expect_proxy: false,
    }))
}

pub(super) fn cluster_of(cluster_id: &str, protocol: ListenerProtocol) -> proto::Cluster {
    proto::Cluster {
        cluster_id: cluster_id.to_owned(),
        protocol: protocol as i32,
        load_balancing: proto::LoadBalancingAlgorithm::RoundRobin as i32,
        load_metric: proto::LoadMetric::Connections as i32,
        sticky_session: false,
        sticky_cookie_name: None,
        health_check: None,
        answers: Vec::new(),
        max_connect_retries: None,
        prefer_last_backend: None,
    }
}

fn cluster(cluster_id: &str, protocol: ListenerProtocol) -> proto::Request {
    request(RequestType::AddCluster(cluster_of(cluster_id, protocol)))
}

fn backend(cluster_id: &str, backend_id: &str, address: &str) -> proto::Request {
    request(RequestType::AddBackend(proto::AddBackend {
        backend: proto::Backend {
            cluster_id: cluster_id.to_owned(),
            backend_id: backend_id.to_owned(),
            address: address.to_owned(),
            sticky_id: None,
            weight: 100,
            backup: false,
            state: None,
            resolve_later: None,
            resolved_from: None,
        },
    }))
}

fn remove_backend(cluster_id: &str, address: &str, backend_id: Option<&str>) -> proto::Request {
    request(RequestType::RemoveBackend(proto::RemoveBackend {
        cluster_id: cluster_id.to_owned(),
        address: address.to_owned(),
        backend_id: backend_id.map(str::to_owned),
        when_drained: None,
    }))
}

fn http_frontend_of(
    address: &str,
    hostname: &str,
    cluster_id: Option<&str>,
) -> proto::HttpFrontend {
    proto::HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: address.to_owned(),
        hostname: hostname.to_owned(),
        path: proto::PathRule {
            kind: PathRuleKind::Prefix as i32,
            value: "/".to_owned(),
        },
        method: None,
        cluster_id: cluster_id.map(str::to_owned),
    }
}

fn http_frontend(address: &str, hostname: &str, cluster_id: Option<&str>) -> proto::Request {
    request(RequestType::AddHttpFrontend(http_frontend_of(
        address, hostname, cluster_id,
    )))
}

fn tcp_frontend_of(address: &str, cluster_id: &str) -> proto::TcpFrontend {
    proto::TcpFrontend {
        address: address.to_owned(),
        cluster_id: cluster_id.to_owned(),
    }
}

fn tcp_frontend(address: &str, cluster_id: &str) -> proto::Request {
    request(RequestType::AddTcpFrontend(tcp_frontend_of(
        address, cluster_id,
    )))
}

fn remove_listener(address: &str, protocol: ListenerProtocol) -> proto::Request {
    request(RequestType::RemoveListener(proto::RemoveListener {
        address: address.to_owned(),
        protocol: protocol as i32,
    }))
}

fn activate(address: &str, protocol: ListenerProtocol) -> proto::Request {
    request(RequestType::ActivateListener(proto::ActivateListener {
        address: address.to_owned(),
        protocol: protocol as i32,
    }))
}

pub(super) fn health_check() -> proto::HealthCheckConfig {
    proto::HealthCheckConfig {
        uri: "/health".to_owned(),
        interval_ms: 1_000,
        timeout_ms: 500,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        expected_status_min: None,
        expected_status_max: None,
        host: None,
    }
}

pub(super) fn set_health_check(
    cluster_id: &str,
    config: Option<proto::HealthCheckConfig>,
) -> proto::Request {
    request(RequestType::SetHealthCheck(proto::SetHealthCheck {
        cluster_id: cluster_id.to_owned(),
        config,
    }))
}

pub(super) const WEB: &str = "127.0.0.1:8080";
pub(super) const DB: &str = "127.0.0.1:5432";

/// Listeners on WEB (http, active) and DB (tcp), clusters web and db, one
/// backend and one frontend each.
pub(super) fn base() -> ConfigState {
    let mut state = ConfigState::new();
    for request in [
        http_listener(WEB),
        tcp_listener(DB),
        cluster("web", ListenerProtocol::Http),
        cluster("db", ListenerProtocol::Tcp),
        backend("web", "web-0", "10.0.0.1:80"),
        backend("db", "db-0", "10.0.0.2:5432"),
        http_frontend(WEB, "example.com", Some("web")),
        tcp_frontend(DB, "db"),
        activate(WEB, ListenerProtocol::Http),
    ] {
        state.apply(&request).expect("base request applies");
    }
    state
}

/// Applies a request that must be refused, checks the state is unchanged and
/// returns the error's message.
pub(super) fn refused(state: &mut ConfigState, request: proto::Request) -> StateError {
    let before = state.clone();
    let error = state
        .apply(&request)
        .expect_err("the request should be refused");
    assert_eq!(*state, before, "a refused request changed the state");
    error
}

#[test]
fn backend_for_an_unknown_cluster_is_refused() {
    let error = refused(&mut base(), backend("nope", "b", "10.0.0.9:80"));
    assert!(matches!(&error, StateError::UnknownCluster(id) if id == "nope"));
    assert_eq!(error.to_string(), "cluster nope does not exist");
}

#[test]
fn duplicate_backend_address_or_id_is_refused() {
    let mut state = base();
    let error = refused(&mut state, backend("web", "web-1", "10.0.0.1:80"));
    assert_eq!(
        error.to_string(),
        "cluster web already has a backend at 10.0.0.1:80"
    );
    let error = refused(&mut state, backend("web", "web-0", "10.0.0.3:80"));
    assert!(matches!(error, StateError::DuplicateBackendId { .. }));
    // The same address in another cluster is fine.
    state
        .apply(&backend("db", "db-1", "10.0.0.1:80"))
        .expect("other cluster");
}

#[test]
fn duplicate_listener_address_is_refused_across_protocols() {
    let mut state = base();
    let error = refused(&mut state, tcp_listener(WEB));
    assert_eq!(
        error.to_string(),
        "a http listener already exists at 127.0.0.1:8080"
    );
    assert!(matches!(
        refused(&mut state, http_listener(DB)),
        StateError::DuplicateListener {
            protocol: "tcp",
            ..
        }
    ));
}

#[test]
fn equivalent_address_spellings_are_one_address() {
    let mut state = ConfigState::new();
    state.apply(&http_listener("[::1]:8080")).expect("first");
    assert!(matches!(
        refused(&mut state, http_listener("[0:0::1]:8080")),
        StateError::DuplicateListener { .. }
    ));
}

#[test]
fn removing_what_does_not_exist_is_refused() {
    let mut state = base();
    let cases = [
        (
            request(RequestType::RemoveCluster("nope".to_owned())),
            "cluster nope does not exist",
        ),
        (
            remove_backend("web", "10.0.0.9:80", None),
            "cluster web has no backend at 10.0.0.9:80",
        ),
        (
            remove_backend("nope", "10.0.0.1:80", None),
            "cluster nope does not exist",
        ),
        (
            request(RequestType::RemoveHttpFrontend(http_frontend_of(
                WEB,
                "other.com",
                Some("web"),
            ))),
            "http frontend 127.0.0.1:8080 other.com/ (prefix) -> web does not exist",
        ),
        (
            request(RequestType::RemoveTcpFrontend(tcp_frontend_of(
                "127.0.0.1:6000",
                "db",
            ))),
            "tcp frontend 127.0.0.1:6000 does not exist",
        ),
        (
            remove_listener("127.0.0.1:9999", ListenerProtocol::Http),
            "no listener exists at 127.0.0.1:9999",
        ),
    ];
    for (request, message) in cases {
        assert_eq!(refused(&mut state, request).to_string(), message);
    }
}

#[test]
fn removing_a_backend_with_another_id_is_refused() {
    let mut state = base();
    let error = refused(
        &mut state,
        remove_backend("web", "10.0.0.1:80", Some("other")),
    );
    assert_eq!(
        error.to_string(),
        "backend web/10.0.0.1:80 has id web-0, not other"
    );
    state
        .apply(&remove_backend("web", "10.0.0.1:80", Some("web-0")))
        .expect("matching id");
    assert_eq!(state.backends("web").count(), 0);
}

#[test]
fn frontend_needs_an_existing_listener_of_its_protocol() {
    let mut state = base();
    assert_eq!(
        refused(
            &mut state,
            http_frontend("127.0.0.1:9999", "a.com", Some("web"))
        )
        .to_string(),
        "no listener exists at 127.0.0.1:9999"
    );
    assert_eq!(
        refused(&mut state, http_frontend(DB, "a.com", Some("web"))).to_string(),
        "the listener at 127.0.0.1:5432 is tcp, not http"
    );
    assert!(matches!(
        refused(&mut state, tcp_frontend(WEB, "db")),
        StateError::ListenerProtocolMismatch {
            actual: "http",
            expected: "tcp",
            ..
        }
    ));
}

#[test]
fn frontend_needs_an_existing_cluster_of_its_protocol() {
    let mut state = base();
    assert!(matches!(
        refused(&mut state, http_frontend(WEB, "a.com", Some("nope"))),
        StateError::UnknownCluster(id) if id == "nope"
    ));
    let error = refused(&mut state, http_frontend(WEB, "a.com", Some("db")));
    assert_eq!(
        error.to_string(),
        "cluster db is tcp, but http frontend 127.0.0.1:8080 a.com/ (prefix) -> db needs a http cluster"
    );
    state
        .apply(&http_frontend(WEB, "deny.com", None))
        .expect("a deny route needs no cluster");
}

#[test]
fn duplicate_frontends_are_refused() {
    let mut state = base();
    // Same identity, another cluster: still the same frontend.
    state
        .apply(&cluster("web2", ListenerProtocol::Http))
        .expect("cluster");
    assert!(matches!(
        refused(&mut state, http_frontend(WEB, "EXAMPLE.com", Some("web2"))),
        StateError::DuplicateFrontend(_)
    ));
    assert!(matches!(
        refused(&mut state, tcp_frontend(DB, "db")),
        StateError::DuplicateFrontend(_)
    ));
}

#[test]
fn removing_a_cluster_removes_its_backends_and_frontends() {
    let mut state = base();
    state
        .apply(&request(RequestType::RemoveCluster("web".to_owned())))
        .expect("remove");
    assert!(state.cluster("web").is_none());
    assert_eq!(state.backends("web").count(), 0);
    assert!(state.http_frontends().is_empty());
    assert_eq!(state.tcp_frontends().len(), 1);
    // Its listener is now unused and can go.
    state
        .apply(&remove_listener(WEB, ListenerProtocol::Http))
        .expect("remove listener");
}

#[test]
fn listener_used_by_frontends_cannot_be_removed() {
    let mut state = base();
    state
        .apply(&http_frontend(WEB, "deny.com", None))
        .expect("deny route");
    let error = refused(&mut state, remove_listener(WEB, ListenerProtocol::Http));
    assert_eq!(
        error.to_string(),
        "the listener at 127.0.0.1:8080 is still used by \
         http frontend 127.0.0.1:8080 deny.com/ (prefix) -> deny, \
         http frontend 127.0.0.1:8080 example.com/ (prefix) -> web"
    );
    assert!(matches!(
        refused(&mut state, remove_listener(DB, ListenerProtocol::Http)),
        StateError::ListenerProtocolMismatch { .. }
    ));
}

#[test]
fn removing_an_active_listener_deactivates_it() {
    let mut state = ConfigState::new();
    state.apply(&http_listener(WEB)).expect("listener");
    state
        .apply(&activate(WEB, ListenerProtocol::Http))
        .expect("activate");
    let address = WEB.parse().expect("address");
    assert!(state.is_active(&address));
    state
        .apply(&remove_listener(WEB, ListenerProtocol::Http))
        .expect("remove");
    assert!(!state.is_active(&address));
    assert_eq!(state, ConfigState::new());
}

#[test]
fn activating_needs_an_existing_listener_of_that_protocol() {
    let mut state = base();
    assert!(matches!(
        refused(&mut state, activate("127.0.0.1:1", ListenerProtocol::Http)),
        StateError::UnknownListener(_)
    ));
    assert!(matches!(
        refused(&mut state, activate(DB, ListenerProtocol::Http)),
        StateError::ListenerProtocolMismatch { .. }
    ));
    assert!(matches!(
        refused(&mut state, activate(DB, ListenerProtocol::Https)),
        StateError::ListenerProtocolMismatch { .. }
    ));
}

#[test]
fn health_check_is_set_and_cleared_on_known_clusters_only() {
    let mut state = base();
    assert!(matches!(
        refused(&mut state, set_health_check("nope", Some(health_check()))),
        StateError::UnknownCluster(_)
    ));
    let mut invalid = health_check();
    invalid.interval_ms = 0;
    assert_eq!(
        refused(&mut state, set_health_check("web", Some(invalid))).to_string(),
        "invalid health_check.interval \"0\": duration \"0ms\" is out of range, expected 1ms to 24h"
    );
    state
        .apply(&set_health_check("web", Some(health_check())))
        .expect("set");
    assert_eq!(
        state.cluster("web").and_then(|c| c.health_check.clone()),
        Some(health_check())
    );
    state.apply(&set_health_check("web", None)).expect("clear");
    assert_eq!(state, base());
}

#[test]
fn invalid_addresses_are_refused() {
    let mut state = base();
    for request in [
        http_listener("localhost:80"),
        tcp_listener("127.0.0.1"),
        backend("web", "b", "10.0.0.1:port"),
        http_frontend("nope", "a.com", Some("web")),
        remove_listener("", ListenerProtocol::Tcp),
    ] {
        assert!(matches!(
            refused(&mut state, request),
            StateError::InvalidAddress { .. }
        ));
    }
}

#[test]
fn invalid_fields_are_refused() {
    let mut state = base();
    let mut regex = http_frontend_of(WEB, "a.com", Some("web"));
    regex.path = proto::PathRule {
        kind: PathRuleKind::Regex as i32,
        value: "(unclosed".to_owned(),
    };
    let mut bad_enum = cluster_of("x", ListenerProtocol::Http);
    bad_enum.load_balancing = 42;
    for request in [
        request(RequestType::AddHttpFrontend(regex)),
        request(RequestType::AddCluster(bad_enum)),
        cluster("", ListenerProtocol::Http),
        http_frontend(WEB, "bad host", Some("web")),
        backend("web", "", "10.0.0.5:80"),
    ] {
        assert!(matches!(
            refused(&mut state, request),
            StateError::InvalidField { .. }
        ));
    }
}

#[test]
fn reserved_and_non_changing_requests_are_refused() {
    let mut state = base();
    assert_eq!(
        refused(&mut state, cluster("tls", ListenerProtocol::Https)).to_string(),
        "invalid cluster.protocol \"https\": a cluster is http or tcp (an http cluster serves \
         https listeners too)"
    );
    assert!(matches!(
        refused(
            &mut state,
            request(RequestType::UpgradeMain(proto::UpgradeMain::default()))
        ),
        StateError::Unsupported("upgrade_main")
    ));
    let query = request(RequestType::QueryClusters(proto::QueryClusters {
        filter: None,
        ..Default::default()
    }));
    assert!(!ConfigState::is_state_change(&query));
    assert_eq!(
        refused(&mut state, query).to_string(),
        "query_clusters does not change the configuration"
    );
    assert!(matches!(
        refused(&mut state, proto::Request { request_type: None }),
        StateError::EmptyRequest
    ));
}

#[test]
fn state_changes_are_recognized() {
    assert!(ConfigState::is_state_change(&cluster(
        "a",
        ListenerProtocol::Http
    )));
    assert!(ConfigState::is_state_change(&set_health_check("a", None)));
    assert!(ConfigState::is_state_change(&activate(
        WEB,
        ListenerProtocol::Http
    )));
    assert!(!ConfigState::is_state_change(&request(
        RequestType::SoftStop(proto::SoftStop::default())
    )));
}

#[test]
fn add_cluster_on_an_existing_id_updates_it_in_place() {
    let mut state = base();
    let mut updated = cluster_of("web", ListenerProtocol::Http);
    updated.load_balancing = proto::LoadBalancingAlgorithm::Random as i32;
    updated.health_check = Some(health_check());
    state
        .apply(&request(RequestType::AddCluster(updated.clone())))
        .expect("update");
    assert_eq!(state.cluster("web"), Some(&updated));
    assert_eq!(state.backends("web").count(), 1);
    assert_eq!(state.http_frontends().len(), 1);
    // Only the cluster differs, so the diff is one AddCluster.
    assert_eq!(
        base().diff(&state),
        vec![request(RequestType::AddCluster(updated))]
    );
    // A protocol change would strand its HTTP frontend.
    assert!(matches!(
        refused(&mut state, cluster("web", ListenerProtocol::Tcp)),
        StateError::ClusterProtocolMismatch { .. }
    ));
}

#[test]
fn an_update_names_an_existing_item_with_the_same_identity() {
    let mut state = base();
    let mut backend = state.backends("web").next().expect("a backend").clone();
    backend.backend_id = "other".to_owned();
    let refused = state.apply(&request(RequestType::UpdateBackend(backend)));
    assert!(
        matches!(refused, Err(StateError::BackendIdMismatch { .. })),
        "{refused:?}"
    );
    let tcp = state
        .tcp_listeners()
        .next()
        .expect("a tcp listener")
        .clone();
    let as_http = proto::HttpListener {
        tls: None,
        address: tcp.address.clone(),
        timeouts: tcp.timeouts,
        answers: Vec::new(),
        expect_proxy: false,
        sticky_cookie_name: None,
        max_request_body: None,
    };
    let refused = state.apply(&request(RequestType::UpdateHttpListener(as_http)));
    assert!(
        matches!(refused, Err(StateError::ListenerProtocolMismatch { .. })),
        "{refused:?}"
    );
    assert_eq!(state, base());
}

#[test]
fn a_batch_is_refused_whole_and_names_the_refused_request() {
    let mut state = base();
    let batch = [
        cluster("new", ListenerProtocol::Http),
        request(RequestType::RemoveCluster("web".to_owned())),
        request(RequestType::RemoveCluster("missing".to_owned())),
    ];
    let refused = state.apply_batch(&batch).expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "cluster missing: cluster missing does not exist"
    );
    assert_eq!(state, base());
}

#[test]
fn summaries_name_the_item() {
    assert_eq!(
        ConfigState::summary_of(&cluster("demo", ListenerProtocol::Http)),
        "cluster demo"
    );
    assert_eq!(
        ConfigState::summary_of(&backend("demo", "d0", "127.0.0.1:8081")),
        "backend demo/127.0.0.1:8081"
    );
    assert_eq!(
        ConfigState::summary_of(&remove_listener(DB, ListenerProtocol::Tcp)),
        "tcp listener 127.0.0.1:5432"
    );
    assert_eq!(
        ConfigState::summary_of(&set_health_check("demo", None)),
        "health check of cluster demo"
    );
}

#[test]
fn outcomes_say_what_was_done() {
    assert_eq!(
        ConfigState::outcome_of(&backend("demo", "d0", "127.0.0.1:8081")),
        "added backend demo/127.0.0.1:8081"
    );
    assert_eq!(
        ConfigState::outcome_of(&remove_listener(DB, ListenerProtocol::Tcp)),
        "removed tcp listener 127.0.0.1:5432"
    );
    assert_eq!(
        ConfigState::outcome_of(&set_health_check("demo", None)),
        "removed the health check of cluster demo"
    );
    let deactivate = proto::Request {
        request_type: Some(RequestType::DeactivateListener(proto::DeactivateListener {
            address: DB.to_owned(),
            protocol: ListenerProtocol::Tcp as i32,
        })),
    };
    assert_eq!(
        ConfigState::outcome_of(&deactivate),
        "deactivated tcp listener 127.0.0.1:5432"
    );
    let added = ConfigState::outcome_of(&tcp_listener(DB));
    assert!(
        added.starts_with("added tcp listener 127.0.0.1:5432, inactive until")
            && added.contains("listener activate --protocol tcp --address 127.0.0.1:5432"),
        "{added}"
    );
}

#[test]
fn any_host_and_wildcard_frontends_are_accepted_and_bad_hostnames_refused() {
    let mut state = base();
    state
        .apply(&http_frontend(WEB, "*", Some("web")))
        .expect("a frontend for any host applies");
    state
        .apply(&http_frontend(WEB, "*.Example.org", Some("web")))
        .expect("a wildcard frontend applies");
    let error = refused(&mut state, http_frontend(WEB, "bad host", Some("web")));
    assert!(error.to_string().contains("*.example.com or *"), "{error}");
}

mod diff;
mod listing;
mod persistence;
