use std::{path::PathBuf, time::Duration};

use super::*;
use crate::proto::request::RequestType;

#[test]
fn the_embedded_default_parses() {
    let config = Config::default_embedded();
    assert_eq!(config.command_socket, PathBuf::from("sluice.sock"));
    assert_eq!(config.worker_count, 2);
    assert_eq!(config.path, None);
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listeners[0].address(), "127.0.0.1:8080");
    assert_eq!(
        config.listeners[0].protocol(),
        proto::ListenerProtocol::Http
    );
    let [demo] = config.clusters.as_slice() else {
        panic!("one cluster expected: {:?}", config.clusters);
    };
    assert_eq!(demo.cluster.cluster_id, "demo");
    assert_eq!(
        demo.cluster.load_balancing,
        proto::LoadBalancingAlgorithm::RoundRobin as i32
    );
    let addresses: Vec<&str> = demo.backends.iter().map(|b| b.address.as_str()).collect();
    assert_eq!(addresses, ["127.0.0.1:8081", "127.0.0.1:8082"]);
    assert_eq!(demo.http_frontends.len(), 1);
    assert_eq!(demo.http_frontends[0].hostname, "*");
    assert_eq!(demo.http_frontends[0].path.value, "/");
}

#[test]
fn request_body_limits_read_units_and_plain_bytes() {
    let cases = [
        (r#""512k""#, Some(512 * 1024)),
        (r#""10m""#, Some(10 * 1024 * 1024)),
        (r#""1g""#, Some(1 << 30)),
        (r#""2048""#, Some(2048)),
        ("4096", Some(4096)),
        ("0", None),
        (r#""0m""#, None),
    ];
    for (value, expected) in cases {
        let text = base_with(
            6,
            &format!("address = \"127.0.0.1:8080\"\nmax_request_body = {value}"),
        );
        let config = parse(&text).unwrap_or_else(|e| panic!("{value}: {e}"));
        let ListenerConfig::Http(listener) = &config.listeners[0] else {
            panic!("an http listener expected");
        };
        assert_eq!(listener.max_request_body, expected, "{value}");
    }
}

#[test]
fn defaults_fill_every_omitted_key() {
    let text = r#"
[[listeners]]
address = "127.0.0.1:8080"

[clusters.web]
health_check = { uri = "/health" }
frontends = [ { address = "127.0.0.1:8080" } ]
backends = [ { address = "127.0.0.1:8081" } ]
"#;
    let config = parse(text).expect("valid config");
    let base = Path::new(BASE_DIR);
    assert_eq!(
        config.command_socket,
        base.join(defaults::DEFAULT_COMMAND_SOCKET)
    );
    assert_eq!(config.worker_count, defaults::DEFAULT_WORKER_COUNT);
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.access_log, AccessLogTarget::Stdout);
    assert_eq!(config.max_connections, defaults::DEFAULT_MAX_CONNECTIONS);
    assert_eq!(config.buffer_size, defaults::DEFAULT_BUFFER_SIZE);
    assert_eq!(config.metrics_address, None);
    assert_eq!(config.shutdown_grace_period, Duration::from_secs(30));

    let expected_listener = ListenerConfig::Http(proto::HttpListener {
        tls: None,
        address: "127.0.0.1:8080".to_owned(),
        timeouts: proto::Timeouts {
            front_timeout_ms: 60_000,
            back_timeout_ms: 30_000,
            connect_timeout_ms: 3_000,
            request_timeout_ms: 10_000,
        },
        answers: Vec::new(),
        expect_proxy: false,
        sticky_cookie_name: None,
        max_request_body: None,
    });
    assert_eq!(config.listeners, [expected_listener]);

    let expected_cluster = proto::ClusterInformation {
        cluster: proto::Cluster {
            cluster_id: "web".to_owned(),
            protocol: proto::ListenerProtocol::Http as i32,
            load_balancing: proto::LoadBalancingAlgorithm::RoundRobin as i32,
            load_metric: proto::LoadMetric::Connections as i32,
            sticky_session: false,
            sticky_cookie_name: Some("SLUICEID".to_owned()),
            health_check: Some(proto::HealthCheckConfig {
                uri: "/health".to_owned(),
                interval_ms: 5_000,
                timeout_ms: 2_000,
                healthy_threshold: 2,
                unhealthy_threshold: 3,
                expected_status_min: Some(200),
                expected_status_max: Some(399),
                host: None,
            }),
            answers: Vec::new(),
            max_connect_retries: Some(3),
            prefer_last_backend: None,
        },
        backends: vec![proto::Backend {
            cluster_id: "web".to_owned(),
            backend_id: "127.0.0.1:8081".to_owned(),
            address: "127.0.0.1:8081".to_owned(),
            sticky_id: Some("127.0.0.1:8081".to_owned()),
            weight: 100,
            backup: false,
            state: None,
            resolve_later: None,
            resolved_from: None,
        }],
        http_frontends: vec![proto::HttpFrontend {
            hsts: None,
            redirect_https: None,
            address: "127.0.0.1:8080".to_owned(),
            hostname: "*".to_owned(),
            path: proto::PathRule {
                kind: proto::PathRuleKind::Prefix as i32,
                value: "/".to_owned(),
            },
            method: None,
            cluster_id: Some("web".to_owned()),
        }],
        tcp_frontends: Vec::new(),
    };
    assert_eq!(config.clusters, [expected_cluster]);
}

#[test]
fn every_key_is_read() {
    let text = r#"
command_socket = "/run/sluice/sluice.sock"
worker_count = 4
log_level = "debug"
access_log = "/dev/null"
max_connections = 500
buffer_size = 4096
metrics_address = "[::1]:9090"
shutdown_grace_period = "2m"

[[listeners]]
protocol = "http"
address = "[::1]:8080"
front_timeout = "90s"
back_timeout = "1h"
connect_timeout = "250ms"
request_timeout = "5s"
expect_proxy = true

[clusters.api]
protocol = "http"
load_balancing = "power_of_two"
load_metric = "connect_time"
sticky_session = true
sticky_cookie = "API_STICKY"
max_connect_retries = 0
prefer_last_backend = true
health_check = { uri = "/ready", interval = "10s", timeout = "10s", healthy_threshold = 1, unhealthy_threshold = 5, expected_status = "204", host = "API.example.com" }
frontends = [
  { address = "[::1]:8080", hostname = "API.Example.com", path = "^/v[0-9]+/", path_type = "regex", method = "POST" },
  { address = "[::1]:8080", hostname = "*.example.com", path = "/exact", path_type = "exact" },
]
backends = [
  { address = "10.0.0.1:80", weight = 0, backup = true, sticky_id = "s1", id = "api-1" },
  { address = "[fd00::2]:80", weight = 1000 },
]
"#;
    let config = parse(text).expect("valid config");
    assert_eq!(
        config.command_socket,
        PathBuf::from("/run/sluice/sluice.sock")
    );
    assert_eq!(config.worker_count, 4);
    assert_eq!(config.log_level, LogLevel::Debug);
    assert_eq!(
        config.access_log,
        AccessLogTarget::File(PathBuf::from("/dev/null"))
    );
    assert_eq!(config.max_connections, 500);
    assert_eq!(config.buffer_size, 4096);
    assert_eq!(
        config.metrics_address,
        Some("[::1]:9090".parse().expect("address"))
    );
    assert_eq!(config.shutdown_grace_period, Duration::from_secs(120));

    let ListenerConfig::Http(listener) = &config.listeners[0] else {
        panic!("an http listener expected");
    };
    assert_eq!(listener.address, "[::1]:8080");
    assert!(listener.expect_proxy);
    let timeouts = &listener.timeouts;
    let millis = [
        timeouts.front_timeout_ms,
        timeouts.back_timeout_ms,
        timeouts.connect_timeout_ms,
        timeouts.request_timeout_ms,
    ];
    assert_eq!(millis, [90_000, 3_600_000, 250, 5_000]);

    let api = &config.clusters[0];
    let cluster = &api.cluster;
    assert_eq!(
        cluster.load_balancing,
        proto::LoadBalancingAlgorithm::PowerOfTwo as i32
    );
    assert_eq!(cluster.load_metric, proto::LoadMetric::ConnectTime as i32);
    assert!(cluster.sticky_session);
    assert_eq!(cluster.sticky_cookie_name.as_deref(), Some("API_STICKY"));
    assert_eq!(cluster.max_connect_retries, Some(0));
    assert_eq!(cluster.prefer_last_backend, Some(true));
    let check = cluster.health_check.as_ref().expect("a health check");
    assert_eq!(
        (check.uri.as_str(), check.interval_ms, check.timeout_ms),
        ("/ready", 10_000, 10_000)
    );
    assert_eq!((check.healthy_threshold, check.unhealthy_threshold), (1, 5));
    assert_eq!(
        (check.expected_status_min, check.expected_status_max),
        (Some(204), Some(204))
    );
    assert_eq!(check.host.as_deref(), Some("api.example.com"));

    let regex = &api.http_frontends[0];
    assert_eq!(regex.hostname, "api.example.com");
    assert_eq!(regex.path.kind, proto::PathRuleKind::Regex as i32);
    assert_eq!(regex.method.as_deref(), Some("POST"));
    assert_eq!(
        api.http_frontends[1].path.kind,
        proto::PathRuleKind::Exact as i32
    );
    assert_eq!(api.http_frontends[1].hostname, "*.example.com");

    let first = &api.backends[0];
    assert_eq!(
        (
            first.backend_id.as_str(),
            first.sticky_id.as_deref(),
            first.weight,
            first.backup
        ),
        ("api-1", Some("s1"), 0, true)
    );
    let second = &api.backends[1];
    assert_eq!(second.backend_id, "[fd00::2]:80");
    assert_eq!(second.sticky_id.as_deref(), Some("[fd00::2]:80"));
    assert_eq!(second.weight, 1000);
}

#[test]
fn answers_are_read_relative_to_the_config_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let answers = dir.path().join("answers");
    std::fs::create_dir(&answers).expect("answers dir");
    let response = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";
    std::fs::write(answers.join("503.http"), response).expect("answer file");
    let text = base_with(
        6,
        "address = \"127.0.0.1:8080\"\nanswers = { 503 = \"answers/503.http\" }",
    );
    let text = text.replace(
        "protocol = \"http\"\nload_balancing",
        "protocol = \"http\"\nanswers = { 503 = \"answers/503.http\" }\nload_balancing",
    );
    let config = Config::parse(&text, "sluice.toml", dir.path()).expect("valid config");
    let expected = vec![proto::CustomAnswer {
        status: 503,
        content: response.to_owned(),
    }];
    let ListenerConfig::Http(listener) = &config.listeners[0] else {
        panic!("an http listener expected");
    };
    assert_eq!(listener.answers, expected);
    assert_eq!(config.clusters[0].cluster.answers, expected);
}

#[test]
fn load_names_the_file_and_resolves_against_its_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, BASE).expect("config file");
    let config = Config::load(&path).expect("valid config");
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
    let folder = std::fs::canonicalize(dir.path()).expect("canonical folder");
    assert_eq!(config.command_socket, folder.join("sluice.sock"));

    let missing = dir.path().join("missing.toml");
    let error = Config::load(&missing).expect_err("no such file");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot read the configuration file: No such file or directory (os error 2)",
            missing.display()
        )
    );

    std::fs::write(&path, "worker_count = 0\n").expect("config file");
    let error = Config::load(&path).expect_err("invalid worker count");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:1:16: worker_count: ", path.display())),
        "{error}"
    );
}

#[test]
fn requests_build_listeners_then_clusters_backends_frontends_then_activate() {
    let config = parse(BASE).expect("valid config");
    let kinds: Vec<String> = config
        .to_requests()
        .into_iter()
        .map(|request| match request.request_type {
            Some(RequestType::AddHttpListener(l)) => format!("http listener {}", l.address),
            Some(RequestType::AddTcpListener(l)) => format!("tcp listener {}", l.address),
            Some(RequestType::AddCluster(c)) => format!("cluster {}", c.cluster_id),
            Some(RequestType::AddBackend(b)) => {
                format!("backend {} {}", b.backend.cluster_id, b.backend.address)
            }
            Some(RequestType::AddHttpFrontend(f)) => format!("http frontend {}", f.address),
            Some(RequestType::AddTcpFrontend(f)) => format!("tcp frontend {}", f.address),
            Some(RequestType::ActivateListener(a)) => {
                let protocol = proto::ListenerProtocol::try_from(a.protocol)
                    .expect("a known protocol")
                    .as_str_name();
                format!("activate {protocol} {}", a.address)
            }
            other => panic!("unexpected request {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "http listener 127.0.0.1:8080",
            "tcp listener 127.0.0.1:5432",
            "cluster demo",
            "cluster db",
            "backend demo 127.0.0.1:8081",
            "backend demo 127.0.0.1:8082",
            "backend db 127.0.0.1:15432",
            "http frontend 127.0.0.1:8080",
            "tcp frontend 127.0.0.1:5432",
            "activate HTTP 127.0.0.1:8080",
            "activate TCP 127.0.0.1:5432",
        ]
    );
}

#[test]
fn requests_taken_from_a_config_are_its_requests() {
    let config = parse(BASE).expect("valid config");
    let mut taken = config.clone();
    let requests = taken.take_requests();
    assert_eq!(requests, config.to_requests());
    assert!(taken.clusters.is_empty());
    assert_eq!(taken.listeners, config.listeners);
}

#[test]
fn backend_ids_follow_addresses_not_positions() {
    let swapped = base_with(17, "  { address = \"127.0.0.1:8082\" },").replacen(
        "  { address = \"127.0.0.1:8082\" },\n]",
        "  { address = \"127.0.0.1:8081\", weight = 100 },\n]",
        1,
    );
    let ids = |text: &str| -> Vec<(String, String)> {
        let config = parse(text).expect("valid config");
        let mut ids: Vec<(String, String)> = config.clusters[0]
            .backends
            .iter()
            .map(|b| (b.address.clone(), b.backend_id.clone()))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(BASE), ids(&swapped));
}

#[test]
fn backends_given_by_host_name_keep_their_name_and_where_they_were_written() {
    let text = base_with(
        17,
        r#"  { address = "API.internal:8081", id = "api", resolve_later = true },"#,
    )
    .replace(
        "worker_count = 2",
        "worker_count = 2\ndns_servers = [\"127.0.0.1:5353\"]\ndns_refresh = \"200ms\"",
    );
    let config = Config::parse(&text, "sluice.toml", Path::new("/etc/sluice")).expect("valid");
    let backend = &config.clusters[0].backends[0];
    assert_eq!(backend.address, "api.internal:8081");
    assert_eq!(backend.resolve_later, Some(true));
    assert_eq!(config.dns_servers, ["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(config.dns_refresh, std::time::Duration::from_millis(200));
    assert_eq!(
        config.backend_names,
        [BackendNameOrigin {
            cluster_id: "demo".into(),
            backend_id: "api".into(),
            location: "sluice.toml:19:15: clusters.demo.backends[0].address".into(),
        }]
    );
}
