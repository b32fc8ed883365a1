//! Command line → request conversion and table rendering.

use clap::Parser;
use sluice_command::proto::{self, request::RequestType};

use super::output::{clusters_table, event_line, listeners_table, workers_table, Table};
use super::{build_request, CtlArgs};

#[derive(Debug, Parser)]
struct TestCli {
    #[command(flatten)]
    ctl: CtlArgs,
}

fn request_of(line: &str) -> anyhow::Result<RequestType> {
    let args = std::iter::once("ctl").chain(line.split_whitespace());
    let cli = TestCli::try_parse_from(args).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(build_request(&cli.ctl.command)?
        .request_type
        .expect("a request type"))
}

#[test]
fn algorithm_and_metric_names_are_those_of_the_config_file() {
    for (line, algorithm, metric) in [
        (
            "cluster add --id a --lb least_loaded --metric connect_time",
            proto::LoadBalancingAlgorithm::LeastLoaded,
            proto::LoadMetric::ConnectTime,
        ),
        (
            "cluster add --id a --lb round_robin",
            proto::LoadBalancingAlgorithm::RoundRobin,
            proto::LoadMetric::Connections,
        ),
        (
            "cluster add --id a --lb power_of_two --metric requests",
            proto::LoadBalancingAlgorithm::PowerOfTwo,
            proto::LoadMetric::Requests,
        ),
    ] {
        let RequestType::AddCluster(cluster) = request_of(line).expect(line) else {
            panic!("not AddCluster: {line}")
        };
        assert_eq!(cluster.load_balancing, algorithm as i32, "{line}");
        assert_eq!(cluster.load_metric, metric as i32, "{line}");
    }
}

#[test]
fn cluster_add_maps_every_option() {
    let request = request_of(
        "cluster add --id api --protocol tcp --lb power-of-two --metric connect-time --sticky \
         --prefer-last-backend",
    )
    .expect("valid");
    let RequestType::AddCluster(cluster) = request else {
        panic!("not AddCluster: {request:?}")
    };
    assert_eq!(cluster.cluster_id, "api");
    assert_eq!(cluster.protocol, proto::ListenerProtocol::Tcp as i32);
    assert_eq!(
        cluster.load_balancing,
        proto::LoadBalancingAlgorithm::PowerOfTwo as i32
    );
    assert_eq!(cluster.load_metric, proto::LoadMetric::ConnectTime as i32);
    assert!(cluster.sticky_session);
    assert_eq!(cluster.prefer_last_backend, Some(true));
}

#[test]
fn cluster_add_defaults_to_http_round_robin() {
    let RequestType::AddCluster(cluster) = request_of("cluster add --id web").expect("valid")
    else {
        panic!("not AddCluster")
    };
    assert_eq!(cluster.protocol, proto::ListenerProtocol::Http as i32);
    assert_eq!(
        cluster.load_balancing,
        proto::LoadBalancingAlgorithm::RoundRobin as i32
    );
    assert!(!cluster.sticky_session);
    assert_eq!(cluster.prefer_last_backend, None);
}

#[test]
fn cluster_queries() {
    let list = request_of("cluster list").expect("valid");
    assert_eq!(
        list,
        RequestType::QueryClusters(proto::QueryClusters {
            filter: Some(proto::query_clusters::Filter::All(true)),
            ..Default::default()
        })
    );
    assert_eq!(
        request_of("cluster list --filter *.shop.* --limit 20 --offset 40").expect("valid"),
        RequestType::QueryClusters(proto::QueryClusters {
            filter: Some(proto::query_clusters::Filter::All(true)),
            pattern: Some("*.shop.*".to_owned()),
            limit: Some(20),
            offset: Some(40),
        })
    );
    let show = request_of("cluster show api").expect("valid");
    assert_eq!(
        show,
        RequestType::QueryClusters(proto::QueryClusters {
            filter: Some(proto::query_clusters::Filter::ClusterId("api".to_owned())),
            ..Default::default()
        })
    );
    assert_eq!(
        request_of("cluster remove api").expect("valid"),
        RequestType::RemoveCluster("api".to_owned())
    );
}

#[test]
fn backend_add_defaults_its_id_to_the_address() {
    let request =
        request_of("backend add --cluster api --address 127.0.0.1:9001 --weight 7 --backup")
            .expect("valid");
    let RequestType::AddBackend(add) = request else {
        panic!("not AddBackend")
    };
    assert_eq!(add.backend.cluster_id, "api");
    assert_eq!(add.backend.backend_id, "127.0.0.1:9001");
    assert_eq!(add.backend.address, "127.0.0.1:9001");
    assert_eq!(add.backend.weight, 7);
    assert!(add.backend.backup);
    assert_eq!(add.backend.sticky_id, None);
}

#[test]
fn malformed_addresses_are_refused_before_sending() {
    for line in [
        "backend add --cluster api --address localhost",
        "backend add --cluster api --address 127.0.0.1",
        "backend remove --cluster api --address 300.0.0.1:80",
        "frontend tcp add --listener nowhere --cluster api",
        "listener add --protocol tcp --address 127.0.0.1:99999",
    ] {
        let error = request_of(line).expect_err(line).to_string();
        assert!(
            error.contains("invalid address") || error.contains("invalid backend address"),
            "{line}: {error}"
        );
    }
}

#[test]
fn a_backend_may_be_given_by_host_name() {
    let line = "backend add --cluster api --address API.internal:80 --resolve-later";
    let RequestType::AddBackend(add) = request_of(line).expect("valid") else {
        panic!("not backend add")
    };
    assert_eq!(add.backend.address, "api.internal:80");
    assert_eq!(add.backend.resolve_later, Some(true));
}

#[test]
fn http_frontend_with_path_and_method() {
    let line = "frontend http add --listener 127.0.0.1:8080 --cluster api --hostname example.com \
                --path /v1 --path-type exact --method GET";
    let RequestType::AddHttpFrontend(frontend) = request_of(line).expect("valid") else {
        panic!("not http add")
    };
    assert_eq!(frontend.address, "127.0.0.1:8080");
    assert_eq!(frontend.hostname, "example.com");
    assert_eq!(
        frontend.path,
        proto::PathRule {
            kind: proto::PathRuleKind::Exact as i32,
            value: "/v1".to_owned()
        }
    );
    assert_eq!(frontend.method.as_deref(), Some("GET"));
    assert_eq!(frontend.cluster_id.as_deref(), Some("api"));
}

#[test]
fn tcp_frontend_remove_and_frontend_list() {
    let request =
        request_of("frontend tcp remove --listener 127.0.0.1:5000 --cluster db").expect("valid");
    assert_eq!(
        request,
        RequestType::RemoveTcpFrontend(proto::TcpFrontend {
            address: "127.0.0.1:5000".to_owned(),
            cluster_id: "db".to_owned()
        })
    );
    assert!(matches!(
        request_of("frontend list").expect("valid"),
        RequestType::QueryFrontends(_)
    ));
}

#[test]
fn listener_commands() {
    let line = "listener add --protocol http --address 127.0.0.1:8080 --front-timeout 2s --connect-timeout 250ms";
    let RequestType::AddHttpListener(listener) = request_of(line).expect("valid") else {
        panic!("not http listener")
    };
    assert_eq!(listener.timeouts.front_timeout_ms, 2_000);
    assert_eq!(listener.timeouts.connect_timeout_ms, 250);
    assert_eq!(listener.timeouts.back_timeout_ms, 30_000);
    let deactivate =
        request_of("listener deactivate --protocol tcp --address 127.0.0.1:5000").expect("valid");
    assert_eq!(
        deactivate,
        RequestType::DeactivateListener(proto::DeactivateListener {
            address: "127.0.0.1:5000".to_owned(),
            protocol: proto::ListenerProtocol::Tcp as i32
        })
    );
    assert!(
        request_of("listener add --protocol tcp --address 127.0.0.1:1 --back-timeout soon")
            .is_err()
    );
}

#[test]
fn listener_add_with_a_request_body_limit() {
    let limit_of = |line: &str| match request_of(line).expect(line) {
        RequestType::AddHttpListener(listener) => listener.max_request_body,
        other => panic!("not an http listener: {other:?}"),
    };
    let base = "listener add --protocol http --address 127.0.0.1:8080";
    assert_eq!(limit_of(base), None);
    assert_eq!(
        limit_of(&format!("{base} --max-request-body 10m")),
        Some(10 << 20)
    );
    assert_eq!(
        limit_of(&format!("{base} --max-request-body 4096")),
        Some(4096)
    );
    assert_eq!(limit_of(&format!("{base} --max-request-body 0")), None);
    let error = request_of(&format!("{base} --max-request-body 10mb"))
        .expect_err("not a size")
        .to_string();
    assert!(error.contains(r#"invalid size "10mb""#), "{error}");
    let tcp = "listener add --protocol tcp --address 127.0.0.1:5000 --max-request-body 1m";
    let error = request_of(tcp).expect_err("tcp").to_string();
    assert!(error.contains("http listeners only"), "{error}");
}

#[test]
fn health_check_set_and_remove() {
    let line = "health-check set --cluster api --uri /health --interval 1s --healthy-threshold 4";
    let RequestType::SetHealthCheck(set) = request_of(line).expect("valid") else {
        panic!("not set health check")
    };
    let config = set.config.expect("a config");
    assert_eq!(
        (
            config.uri.as_str(),
            config.interval_ms,
            config.healthy_threshold
        ),
        ("/health", 1_000, 4)
    );
    let RequestType::SetHealthCheck(remove) =
        request_of("health-check remove --cluster api").expect("valid")
    else {
        panic!("not set health check")
    };
    assert_eq!(remove.config, None);
    let RequestType::SetHealthCheck(connect) =
        request_of("health-check set --cluster db --interval 1s").expect("valid")
    else {
        panic!("not set health check")
    };
    let config = connect.config.expect("a config");
    assert_eq!(config.uri, "", "without --uri: a TCP connect check");
}

#[test]
fn operations() {
    assert!(matches!(
        request_of("shutdown").expect("valid"),
        RequestType::SoftStop(_)
    ));
    assert!(matches!(
        request_of("shutdown --hard").expect("valid"),
        RequestType::HardStop(_)
    ));
    assert!(matches!(
        request_of("status").expect("valid"),
        RequestType::QueryStatus(_)
    ));
    assert!(matches!(
        request_of("events").expect("valid"),
        RequestType::SubscribeEvents(_)
    ));
    let RequestType::SaveState(save) = request_of("state save -f saved.state").expect("valid")
    else {
        panic!()
    };
    assert!(
        save.path.starts_with('/') && save.path.ends_with("/saved.state"),
        "{}",
        save.path
    );
    let RequestType::ReloadConfiguration(reload) = request_of("reload").expect("valid") else {
        panic!()
    };
    assert_eq!(reload.path, None);
    let RequestType::QueryMetrics(metrics) = request_of("metrics --cluster api").expect("valid")
    else {
        panic!()
    };
    assert_eq!(metrics.cluster_id.as_deref(), Some("api"));
}

#[test]
fn table_columns_align_on_the_widest_cell() {
    let mut table = Table::new(&["A", "LONG HEADER"]);
    table.row(vec!["wide cell".to_owned(), "x".to_owned()]);
    table.row(vec!["y".to_owned()]);
    assert_eq!(table.render(), "A          LONG HEADER\nwide cell  x\ny\n");
}

#[test]
fn workers_table_shows_each_worker() {
    let statuses = proto::WorkerStatuses {
        workers: vec![
            proto::WorkerInfo {
                id: 0,
                pid: 4242,
                state: proto::WorkerRunState::Running as i32,
                restarts: 0,
                sessions: 3,
            },
            proto::WorkerInfo {
                id: 1,
                pid: 4243,
                state: proto::WorkerRunState::NotAnswering as i32,
                restarts: 2,
                sessions: 0,
            },
        ],
        ..Default::default()
    };
    let text = workers_table(&statuses);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "WORKER  PID   STATE          RESTARTS  SESSIONS");
    assert_eq!(lines[1], "0       4242  running        0         3");
    assert_eq!(lines[2], "1       4243  not answering  2         0");
}

#[test]
fn status_names_the_main_process_and_its_generation() {
    let statuses = proto::WorkerStatuses {
        workers: Vec::new(),
        main_pid: Some(41),
        generation: Some(2),
        ..Default::default()
    };
    let response = proto::Response {
        status: proto::ResponseStatus::Ok as i32,
        message: String::new(),
        content: Some(proto::ResponseContent {
            content_type: Some(proto::response_content::ContentType::Workers(statuses)),
        }),
    };
    let cli = TestCli::try_parse_from(["ctl", "status"]).expect("parse");
    let text = super::output::render(&cli.ctl.command, &response);
    assert!(text.starts_with("main pid 41, generation 2\n"), "{text}");
}

#[test]
fn upgrade_takes_an_optional_binary_made_absolute() {
    let Ok(RequestType::UpgradeMain(upgrade)) = request_of("upgrade --binary bin/sluice") else {
        panic!("not an upgrade");
    };
    let binary = upgrade.binary.expect("a binary");
    assert!(
        binary.starts_with('/') && binary.ends_with("/bin/sluice"),
        "{binary}"
    );
    assert_eq!(
        request_of("upgrade").expect("request"),
        RequestType::UpgradeMain(proto::UpgradeMain { binary: None })
    );
}

#[test]
fn clusters_table_lists_backends_and_frontends() {
    let list = proto::ClusterList {
        clusters: vec![proto::ClusterInformation {
            cluster: proto::Cluster {
                cluster_id: "db".to_owned(),
                protocol: proto::ListenerProtocol::Tcp as i32,
                ..Default::default()
            },
            backends: vec![proto::Backend {
                cluster_id: "db".to_owned(),
                backend_id: "primary".to_owned(),
                address: "127.0.0.1:5432".to_owned(),
                sticky_id: None,
                weight: 100,
                backup: false,
                state: None,
                resolve_later: None,
                resolved_from: None,
            }],
            http_frontends: Vec::new(),
            tcp_frontends: vec![proto::TcpFrontend {
                address: "127.0.0.1:6432".to_owned(),
                cluster_id: "db".to_owned(),
            }],
        }],
        matched: None,
    };
    let text = clusters_table(&list);
    assert!(
        text.starts_with("CLUSTER  PROTOCOL  LB           BACKENDS"),
        "{text}"
    );
    assert!(
        text.contains("db       tcp       round_robin  primary (127.0.0.1:5432)  127.0.0.1:6432"),
        "{text}"
    );
}

#[test]
fn event_lines_name_what_they_concern() {
    let event = proto::Event {
        kind: proto::EventKind::BackendDown as i32,
        worker_id: Some(1),
        cluster_id: Some("db".to_owned()),
        backend_id: Some("primary".to_owned()),
        address: Some("127.0.0.1:5432".to_owned()),
        reason: Some("HTTP 503 on /health".to_owned()),
        timestamp_ms: Some(1_796_169_600_123),
    };
    assert_eq!(
        event_line(&event),
        "2026-12-02T00:00:00.123Z BACKEND_DOWN cluster=db backend=primary \
         address=127.0.0.1:5432 worker=1 reason=\"HTTP 503 on /health\""
    );
}

#[test]
fn a_health_check_timeout_defaults_to_at_most_its_interval() {
    let RequestType::SetHealthCheck(set) =
        request_of("health-check set --cluster api --uri /health --interval 1s").expect("valid")
    else {
        panic!("not SetHealthCheck")
    };
    let config = set.config.expect("a config");
    assert_eq!((config.interval_ms, config.timeout_ms), (1_000, 1_000));
    // Checked by the main process, with the message the configuration file gives.
    let RequestType::SetHealthCheck(set) =
        request_of("health-check set --cluster api --uri /h --interval 1s --timeout 3s")
            .expect("sent")
    else {
        panic!("not SetHealthCheck")
    };
    assert_eq!(set.config.map(|c| c.timeout_ms), Some(3_000));
}

#[test]
fn listener_tables_show_timeouts_and_the_body_limit() {
    let timeouts = proto::Timeouts {
        front_timeout_ms: 60_000,
        back_timeout_ms: 30_000,
        connect_timeout_ms: 3_000,
        request_timeout_ms: 250,
    };
    let list = proto::ListenerList {
        listeners: vec![
            proto::ListenerInformation {
                http: Some(proto::HttpListener {
                    tls: None,
                    address: "127.0.0.1:8080".into(),
                    timeouts,
                    answers: Vec::new(),
                    expect_proxy: false,
                    sticky_cookie_name: None,
                    max_request_body: Some(1 << 20),
                }),
                tcp: None,
                active: true,
            },
            proto::ListenerInformation {
                http: None,
                tcp: Some(proto::TcpListener {
                    tls: None,
                    address: "127.0.0.1:5432".into(),
                    timeouts,
                    expect_proxy: false,
                }),
                active: false,
            },
        ],
    };
    let text = listeners_table(&list);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0][7..], ["MAX", "BODY"], "{text}");
    assert_eq!(
        lines[1],
        [
            "http",
            "127.0.0.1:8080",
            "yes",
            "1m",
            "30s",
            "3s",
            "250ms",
            "1048576B"
        ],
        "{text}"
    );
    assert_eq!(lines[2][..3], ["tcp", "127.0.0.1:5432", "no"], "{text}");
    assert_eq!(lines[2][7], "-", "{text}");
}

#[test]
fn backend_set_names_the_backend_by_id_or_address() {
    let RequestType::ChangeBackend(set) =
        request_of("backend set --cluster api --id web1 --state drain").expect("valid")
    else {
        panic!("not ChangeBackend")
    };
    assert_eq!(set.backend_id.as_deref(), Some("web1"));
    assert_eq!(set.address, None);
    assert_eq!(set.state, Some(proto::BackendState::Drain as i32));
    assert_eq!(set.weight, None);
    let RequestType::ChangeBackend(set) =
        request_of("backend set --cluster api --address 127.0.0.1:81 --weight 30").expect("valid")
    else {
        panic!("not ChangeBackend")
    };
    assert_eq!(set.address.as_deref(), Some("127.0.0.1:81"));
    assert_eq!(set.weight, Some(30));
    assert!(
        request_of("backend set --cluster api --id web1").is_err(),
        "nothing to set"
    );
    assert!(
        request_of("backend set --cluster api --weight 3").is_err(),
        "no backend named"
    );
    assert!(request_of("backend set --cluster api --id w --state down").is_err());
}

#[test]
fn backend_remove_by_id_and_when_drained() {
    let RequestType::RemoveBackend(remove) =
        request_of("backend remove --cluster api --id web1 --when-drained").expect("valid")
    else {
        panic!("not RemoveBackend")
    };
    assert_eq!(remove.address, "");
    assert_eq!(remove.backend_id.as_deref(), Some("web1"));
    assert_eq!(remove.when_drained, Some(true));
    assert!(request_of("backend remove --cluster api").is_err());
}

#[test]
fn cluster_and_listener_updates_carry_only_what_they_name() {
    let RequestType::ChangeCluster(changes) =
        request_of("cluster update --id api --no-sticky --max-connect-retries 1").expect("valid")
    else {
        panic!("not ChangeCluster")
    };
    assert_eq!(changes.sticky_session, Some(false));
    assert_eq!(changes.max_connect_retries, Some(1));
    assert_eq!(changes.load_balancing, None);
    assert!(request_of("cluster update --id api").is_err());
    let RequestType::ChangeListener(changes) =
        request_of("listener update --protocol http --address 127.0.0.1:80 --connect-timeout 1s")
            .expect("valid")
    else {
        panic!("not ChangeListener")
    };
    assert_eq!(changes.connect_timeout_ms, Some(1_000));
    assert_eq!(changes.front_timeout_ms, None);
    assert_eq!(changes.expect_proxy, None);
}
