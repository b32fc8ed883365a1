//! Property tests over random valid states, built by applying random
//! requests drawn from small pools of names so that they often refer to each
//! other (and often collide, so that refusals are exercised too).

use proptest::collection::vec;
use proptest::prelude::*;

use super::tests::timeouts;
use super::*;
use crate::proto::{LoadBalancingAlgorithm, LoadMetric, PathRuleKind};

const CLUSTERS: [&str; 3] = ["alpha", "beta", "gamma"];
const HOSTNAMES: [&str; 3] = ["example.com", "*.example.com", "api.test"];

fn listener_address(index: u16) -> String {
    format!("127.0.0.1:{}", 9000 + index)
}

fn protocol(http: bool) -> ListenerProtocol {
    if http {
        ListenerProtocol::Http
    } else {
        ListenerProtocol::Tcp
    }
}

fn health_check(variant: u32) -> proto::HealthCheckConfig {
    proto::HealthCheckConfig {
        uri: format!("/health/{variant}"),
        interval_ms: 1_000 + variant,
        timeout_ms: 500,
        healthy_threshold: 1 + variant,
        unhealthy_threshold: 2,
        expected_status_min: None,
        expected_status_max: (variant == 1).then_some(299),
        host: None,
    }
}

fn listener() -> impl Strategy<Value = proto::Request> {
    (0..4u16, any::<bool>(), any::<bool>(), 0..2u32).prop_map(|(port, http, proxy, timeout)| {
        let address = listener_address(port);
        let mut timeouts = timeouts();
        timeouts.front_timeout_ms += timeout;
        request(if http {
            RequestType::AddHttpListener(proto::HttpListener {
                tls: None,
                address,
                timeouts,
                answers: Vec::new(),
                expect_proxy: proxy,
                sticky_cookie_name: None,
                max_request_body: None,
            })
        } else {
            RequestType::AddTcpListener(proto::TcpListener {
                tls: None,
                address,
                timeouts,
                expect_proxy: proxy,
            })
        })
    })
}

fn cluster() -> impl Strategy<Value = proto::Request> {
    let health = prop::option::of(0..2u32);
    (
        0..3usize,
        any::<bool>(),
        0..4i32,
        0..3i32,
        any::<bool>(),
        health,
    )
        .prop_map(|(id, http, algorithm, metric, sticky, health)| {
            request(RequestType::AddCluster(proto::Cluster {
                cluster_id: CLUSTERS[id].to_owned(),
                protocol: protocol(http) as i32,
                load_balancing: LoadBalancingAlgorithm::try_from(algorithm)
                    .unwrap_or(LoadBalancingAlgorithm::RoundRobin)
                    as i32,
                load_metric: LoadMetric::try_from(metric).unwrap_or(LoadMetric::Connections) as i32,
                sticky_session: sticky,
                sticky_cookie_name: None,
                // A TCP cluster's check is a connect, without uri.
                health_check: health.map(health_check).map(|mut check| {
                    if !http {
                        check.uri = String::new();
                    }
                    check
                }),
                answers: Vec::new(),
                max_connect_retries: None,
                prefer_last_backend: None,
            }))
        })
}

fn backend() -> impl Strategy<Value = proto::Request> {
    (0..3usize, 0..4u8, 0..4u8, 0..3u32, any::<bool>()).prop_map(
        |(cluster, id, address, weight, backup)| {
            request(RequestType::AddBackend(proto::AddBackend {
                backend: proto::Backend {
                    cluster_id: CLUSTERS[cluster].to_owned(),
                    backend_id: format!("{}-{id}", CLUSTERS[cluster]),
                    address: format!("10.0.0.{}:80", address + 1),
                    sticky_id: None,
                    weight: weight * 50,
                    backup,
                    state: None,
                    resolve_later: None,
                    resolved_from: None,
                },
            }))
        },
    )
}

fn http_frontend_of(
    (port, host, path, get, cluster): (u16, usize, u8, bool, Option<usize>),
) -> proto::HttpFrontend {
    let (kind, value) = match path {
        0 => (PathRuleKind::Prefix, "/"),
        1 => (PathRuleKind::Prefix, "/api"),
        2 => (PathRuleKind::Exact, "/exact"),
        _ => (PathRuleKind::Regex, "^/r[0-9]+$"),
    };
    proto::HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: listener_address(port),
        hostname: HOSTNAMES[host].to_owned(),
        path: proto::PathRule {
            kind: kind as i32,
            value: value.to_owned(),
        },
        method: get.then(|| "GET".to_owned()),
        cluster_id: cluster.map(|index| CLUSTERS[index].to_owned()),
    }
}

fn http_frontend_fields() -> impl Strategy<Value = (u16, usize, u8, bool, Option<usize>)> {
    (
        0..4u16,
        0..3usize,
        0..4u8,
        any::<bool>(),
        prop::option::of(0..3usize),
    )
}

fn tcp_frontend_of((port, cluster): (u16, usize)) -> proto::TcpFrontend {
    proto::TcpFrontend {
        address: listener_address(port),
        cluster_id: CLUSTERS[cluster].to_owned(),
    }
}

fn attachment() -> impl Strategy<Value = proto::Request> {
    prop_oneof![
        2 => backend(),
        3 => http_frontend_fields()
            .prop_map(|fields| request(RequestType::AddHttpFrontend(http_frontend_of(fields)))),
        1 => (0..4u16, 0..3usize)
            .prop_map(|fields| request(RequestType::AddTcpFrontend(tcp_frontend_of(fields)))),
    ]
}

fn change() -> impl Strategy<Value = proto::Request> {
    let listener_ref = (0..4u16, any::<bool>());
    prop_oneof![
        3 => listener_ref.clone().prop_map(|(port, http)| {
            request(RequestType::ActivateListener(proto::ActivateListener {
                address: listener_address(port),
                protocol: protocol(http) as i32,
            }))
        }),
        1 => listener_ref.clone().prop_map(|(port, http)| {
            request(RequestType::DeactivateListener(proto::DeactivateListener {
                address: listener_address(port),
                protocol: protocol(http) as i32,
            }))
        }),
        1 => listener_ref.prop_map(|(port, http)| {
            request(RequestType::RemoveListener(proto::RemoveListener {
                address: listener_address(port),
                protocol: protocol(http) as i32,
            }))
        }),
        2 => (0..3usize, prop::option::of(0..2u32)).prop_map(|(cluster, health)| {
            request(RequestType::SetHealthCheck(proto::SetHealthCheck {
                cluster_id: CLUSTERS[cluster].to_owned(),
                config: health.map(health_check),
            }))
        }),
        1 => (0..3usize).prop_map(|cluster| {
            request(RequestType::RemoveCluster(CLUSTERS[cluster].to_owned()))
        }),
        1 => (0..3usize, 0..4u8).prop_map(|(cluster, address)| {
            request(RequestType::RemoveBackend(proto::RemoveBackend {
                cluster_id: CLUSTERS[cluster].to_owned(),
                address: format!("10.0.0.{}:80", address + 1),
                backend_id: None,
                when_drained: None,
            }))
        }),
        1 => http_frontend_fields().prop_map(|fields| {
            request(RequestType::RemoveHttpFrontend(http_frontend_of(fields)))
        }),
        1 => (0..4u16, 0..3usize).prop_map(|fields| {
            request(RequestType::RemoveTcpFrontend(tcp_frontend_of(fields)))
        }),
    ]
}

/// Changes in place: a backend's settings, a listener's settings.
fn update() -> impl Strategy<Value = proto::Request> {
    prop_oneof![
        backend().prop_map(|request| match request.request_type {
            Some(RequestType::AddBackend(add)) => {
                super::request(RequestType::UpdateBackend(add.backend))
            }
            _ => request,
        }),
        listener().prop_map(|request| match request.request_type {
            Some(RequestType::AddHttpListener(listener)) => {
                super::request(RequestType::UpdateHttpListener(listener))
            }
            Some(RequestType::AddTcpListener(listener)) => {
                super::request(RequestType::UpdateTcpListener(listener))
            }
            _ => request,
        }),
    ]
}

fn any_request() -> impl Strategy<Value = proto::Request> {
    prop_oneof![listener(), cluster(), attachment(), change(), update()]
}

/// Requests to build a state from: structure first, then what attaches to
/// it, then changes. Many are refused: names are drawn at random.
fn state_requests() -> impl Strategy<Value = Vec<proto::Request>> {
    let structure = vec(prop_oneof![listener(), cluster()], 2..12);
    let changes = vec(prop_oneof![change(), update()], 0..8);
    (structure, vec(attachment(), 0..32), changes).prop_map(
        |(mut requests, attachments, changes)| {
            requests.extend(attachments);
            requests.extend(changes);
            requests
        },
    )
}

/// The state built by the requests that apply, in order.
fn build(requests: &[proto::Request]) -> ConfigState {
    let mut state = ConfigState::new();
    for request in requests {
        // Refusals are expected: names are drawn at random.
        let _refused = state.apply(request);
    }
    state
}

/// A valid state.
fn config_state() -> impl Strategy<Value = ConfigState> {
    state_requests().prop_map(|requests| build(&requests))
}

/// How the requests of a second, related state differ from the first's.
#[derive(Clone, Debug)]
enum Edit {
    Drop,
    Replace(Box<proto::Request>),
    /// Changes a setting of a listener, cluster or backend but not its
    /// identity, so that what is attached to it stays the same.
    Tweak,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => Just(Edit::Drop),
        1 => any_request().prop_map(|request| Edit::Replace(Box::new(request))),
        2 => Just(Edit::Tweak),
    ]
}

fn tweak(request: &mut proto::Request) {
    match &mut request.request_type {
        Some(RequestType::AddHttpListener(listener)) => {
            listener.expect_proxy = !listener.expect_proxy;
        }
        Some(RequestType::AddTcpListener(listener)) => {
            listener.expect_proxy = !listener.expect_proxy;
        }
        Some(RequestType::AddCluster(cluster)) => cluster.sticky_session = !cluster.sticky_session,
        Some(RequestType::AddBackend(add)) => add.backend.weight += 1,
        _ => {}
    }
}

/// Two states built from the same requests, a few of them edited in the
/// second, so that most items are shared (the diff must leave them alone)
/// and some change under shared ones (a listener under its frontends...).
fn related_states() -> impl Strategy<Value = (ConfigState, ConfigState)> {
    let edits = vec((any::<prop::sample::Index>(), edit()), 1..6);
    (state_requests(), edits).prop_map(|(requests, edits)| {
        let mut edited = requests.clone();
        for (index, edit) in edits {
            if edited.is_empty() {
                break;
            }
            let index = index.index(edited.len());
            match edit {
                Edit::Drop => {
                    edited.remove(index);
                }
                Edit::Replace(request) => edited[index] = *request,
                Edit::Tweak => tweak(&mut edited[index]),
            }
        }
        (build(&requests), build(&edited))
    })
}

fn replay(mut state: ConfigState, requests: &[proto::Request]) -> Result<ConfigState, String> {
    for request in requests {
        state
            .apply(request)
            .map_err(|error| format!("{} refused: {error}", ConfigState::summary_of(request)))?;
    }
    Ok(state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn applying_the_diff_turns_one_state_into_the_other(
        origin in config_state(),
        target in config_state(),
    ) {
        let requests = origin.diff(&target);
        let result = replay(origin.clone(), &requests);
        prop_assert!(result.is_ok(), "{:?}", result.as_ref().err());
        prop_assert_eq!(result.ok(), Some(target));
    }

    #[test]
    fn applying_the_diff_between_related_states_gives_the_target(
        (origin, target) in related_states(),
    ) {
        let requests = origin.diff(&target);
        let result = replay(origin.clone(), &requests);
        prop_assert!(result.is_ok(), "{:?}", result.as_ref().err());
        prop_assert_eq!(result.ok(), Some(target.clone()));
        // Going back undoes it.
        let back = replay(target.clone(), &target.diff(&origin));
        prop_assert_eq!(back, Ok(origin));
    }

    #[test]
    fn a_state_has_no_diff_with_itself(state in config_state()) {
        prop_assert!(state.diff(&state.clone()).is_empty());
    }

    #[test]
    fn generated_requests_rebuild_the_state(state in config_state()) {
        let rebuilt = replay(ConfigState::new(), &state.generate_requests());
        prop_assert_eq!(rebuilt, Ok(state));
    }

    #[test]
    fn save_then_load_gives_the_same_state(state in config_state()) {
        let mut saved = Vec::new();
        prop_assert!(state.save(&mut saved).is_ok());
        let loaded = ConfigState::load(saved.as_slice()).map_err(|error| error.to_string());
        if state == ConfigState::new() {
            // An empty saved state reads like a truncated file: refused on purpose.
            prop_assert!(loaded.is_err(), "{loaded:?}");
        } else {
            prop_assert_eq!(loaded, Ok(state));
        }
    }

    #[test]
    fn a_refused_request_changes_nothing(
        state in config_state(),
        request in any_request(),
    ) {
        let mut changed = state.clone();
        if changed.apply(&request).is_err() {
            prop_assert_eq!(changed, state);
        }
    }

    #[test]
    fn applying_a_batch_equals_applying_its_requests_one_by_one(
        state in config_state(),
        requests in vec(any_request(), 0..12),
    ) {
        let one_by_one = replay(state.clone(), &requests);
        let mut batched = state.clone();
        let result = batched.apply_batch(&requests);
        match one_by_one {
            Ok(expected) => {
                prop_assert!(result.is_ok(), "{:?}", result.err());
                prop_assert_eq!(batched, expected);
            }
            Err(_) => {
                prop_assert!(result.is_err());
                prop_assert_eq!(batched, state);
            }
        }
    }

    #[test]
    fn a_refused_batch_leaves_the_state_equal_to_before(
        state in config_state(),
        requests in vec(any_request(), 1..12),
    ) {
        let mut batched = state.clone();
        if batched.apply_batch(&requests).is_err() {
            prop_assert_eq!(batched, state);
        }
    }

    #[test]
    fn an_undo_and_its_requests_bring_the_state_back(
        state in config_state(),
        requests in vec(any_request(), 0..12),
    ) {
        let mut changed = state.clone();
        if let Ok(undo) = changed.apply_batch(&requests) {
            let replayed = replay(changed.clone(), &undo.requests());
            prop_assert_eq!(replayed, Ok(state.clone()));
            changed.revert(undo);
            prop_assert_eq!(changed, state);
        }
    }

    #[test]
    fn a_journal_from_empty_undoes_what_applied_back_to_empty(
        requests in state_requests(),
    ) {
        // As a worker replays a state: each request is recorded, then settled.
        let mut state = ConfigState::new();
        let mut undo = Undo::from_empty();
        for request in &requests {
            if state.apply_recorded(request, &mut undo).is_ok() {
                undo.settle();
            }
            prop_assert!(undo.is_empty(), "a refused request left writes behind");
        }
        prop_assert_eq!(&state, &build(&requests));
        let undoing = state.requests_undoing(&undo);
        let undone = replay(state, &undoing);
        prop_assert_eq!(undone, Ok(ConfigState::new()));
    }

    #[test]
    fn the_diff_applies_as_one_batch(
        (origin, target) in related_states(),
    ) {
        let mut state = origin.clone();
        let result = state.apply_batch(&origin.diff(&target));
        prop_assert!(result.is_ok(), "{:?}", result.err());
        prop_assert_eq!(state, target);
    }
}

/// The frontends routing to `cluster_id`, of both protocols.
fn frontends_of(state: &ConfigState, cluster_id: &str) -> Vec<String> {
    let http = state
        .http_frontends
        .values()
        .filter(|frontend| frontend.cluster_id.as_deref() == Some(cluster_id))
        .map(|frontend| format!("{frontend:?}"));
    let tcp = state
        .tcp_frontends
        .values()
        .filter(|frontend| frontend.cluster_id == cluster_id)
        .map(|frontend| format!("{frontend:?}"));
    http.chain(tcp).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// With the same listeners and certificates, comparing only the clusters
    /// that differ gives the same requests as comparing the whole states.
    #[test]
    fn the_diff_of_the_clusters_that_differ_is_the_whole_diff(
        (origin, target) in related_states()
    ) {
        prop_assume!(
            origin.listeners == target.listeners
                && origin.active_listeners == target.active_listeners
                && origin.certificates == target.certificates
        );
        let differs = |id: &str| {
            origin.clusters.get(id) != target.clusters.get(id)
                || origin.backends.get(id) != target.backends.get(id)
                || frontends_of(&origin, id) != frontends_of(&target, id)
        };
        let ids: std::collections::HashSet<&str> = origin
            .cluster_ids()
            .chain(target.cluster_ids())
            .filter(|id| differs(id))
            .collect();
        let (Some(part), Some(target_part)) = (origin.subset(&ids), target.subset(&ids)) else {
            return Ok(());
        };
        prop_assert_eq!(part.diff(&target_part), origin.diff(&target));
    }

    /// A part holds what its clusters own, as a filter of the whole state does.
    #[test]
    fn a_part_holds_what_its_clusters_own(
        (origin, _) in related_states(),
        picks in vec(any::<bool>(), 1..8),
    ) {
        let ids: std::collections::HashSet<&str> = origin
            .cluster_ids()
            .zip(picks.iter().cycle())
            .filter(|(_, picked)| **picked)
            .map(|(id, _)| id)
            .collect();
        let named = |id: &str| ids.contains(id);
        let unrouted = origin.http_frontends.values().any(|f| f.cluster_id.is_none());
        let filtered = ConfigState {
            listeners: origin.listeners.clone(),
            active_listeners: origin.active_listeners.clone(),
            clusters: origin
                .clusters
                .iter()
                .filter(|(id, _)| named(id))
                .map(|(id, cluster)| (id.clone(), cluster.clone()))
                .collect(),
            backends: origin
                .backends
                .iter()
                .filter(|(id, _)| named(id))
                .map(|(id, backends)| (id.clone(), backends.clone()))
                .collect(),
            http_frontends: origin
                .http_frontends
                .iter()
                .filter(|(_, f)| f.cluster_id.as_deref().is_some_and(named))
                .map(|(key, f)| (key.clone(), f.clone()))
                .collect(),
            tcp_frontends: origin
                .tcp_frontends
                .iter()
                .filter(|(_, f)| named(&f.cluster_id))
                .map(|(address, f)| (*address, f.clone()))
                .collect(),
            cluster_users: origin
                .cluster_users
                .iter()
                .filter(|(id, _)| named(id))
                .map(|(id, users)| (id.clone(), users.clone()))
                .collect(),
            certificates: origin.certificates.clone(),
            writes: Default::default(),
        };
        match origin.subset(&ids) {
            Some(part) => {
                prop_assert!(!unrouted);
                prop_assert_eq!(part, filtered);
            }
            None => prop_assert!(unrouted),
        }
    }
}
