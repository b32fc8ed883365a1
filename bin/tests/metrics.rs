//! Metrics end to end: `ctl metrics` counts, the `metrics_address` endpoint, fail-open and
//! health flips seen through metrics and events, with real `sluice start` processes.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{free_port, wait_until, EventStream, Sluice};
use serde_json::Value;

/// An HTTP backend answering 200 to everything but `/health`, which gets `health_status`.
struct HttpBackend {
    address: String,
    health_status: Arc<AtomicU16>,
    /// Answers to `/health` with a status of 400 or more.
    failed_probes: Arc<AtomicU64>,
    /// Answers to `/health` with a status below 400.
    good_probes: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl HttpBackend {
    fn start(health_status: u16) -> HttpBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let backend = HttpBackend {
            address: listener.local_addr().expect("address").to_string(),
            health_status: Arc::new(AtomicU16::new(health_status)),
            failed_probes: Arc::default(),
            good_probes: Arc::default(),
            running: Arc::new(AtomicBool::new(true)),
        };
        let (status, failed, good, running) = (
            Arc::clone(&backend.health_status),
            Arc::clone(&backend.failed_probes),
            Arc::clone(&backend.good_probes),
            Arc::clone(&backend.running),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if !running.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (status, failed, good) =
                    (Arc::clone(&status), Arc::clone(&failed), Arc::clone(&good));
                thread::spawn(move || serve(stream, &status, &failed, &good));
            }
        });
        backend
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.address);
    }
}

/// Answers every request head of one connection (requests have no body).
fn serve(mut stream: TcpStream, health: &AtomicU16, failed: &AtomicU64, good: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut pending = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let status = if path == "/health" {
                let status = health.load(Ordering::SeqCst);
                let counter = if status >= 400 { failed } else { good };
                counter.fetch_add(1, Ordering::SeqCst);
                status
            } else {
                200
            };
            let body = "hello";
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One `GET path` on its own connection; the status, or 0 if there was no answer.
fn get_status(address: &str, path: &str) -> u16 {
    let answer = http_get(address, path);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// One `GET path` with `Connection: close`: the whole answer.
fn http_get(address: &str, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The body of an answer.
fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

struct Setup {
    config: String,
    listener: String,
    metrics: String,
}

/// A config with an HTTP listener, a metrics address, and `clusters` (TOML text).
fn setup(workers: u32, clusters: &str) -> Setup {
    let listener = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "command_socket = \"sluice.sock\"\nworker_count = {workers}\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"5s\"\nmetrics_address = \"{metrics}\"\n\
         \n[[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\n\n{}",
        clusters.replace("LISTENER", &listener)
    );
    Setup {
        config,
        listener,
        metrics,
    }
}

/// The merged metrics from `ctl --json metrics`.
fn total_metrics(sluice: &Sluice) -> Value {
    sluice.ctl_json(&["metrics"])
}

/// `name` → value of the counters and gauges of a metrics object (histograms and
/// nested objects left out).
fn values(object: &Value) -> BTreeMap<String, u64> {
    object
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn cluster<'a>(total: &'a Value, id: &str) -> &'a Value {
    total["clusters"]
        .get(id)
        .unwrap_or_else(|| panic!("no cluster {id} in {total:#}"))
}

/// The first (in these tests, the only) backend of a cluster's metrics.
fn first_backend(cluster: &Value) -> (&String, &Value) {
    cluster["backends"]
        .as_object()
        .and_then(|backends| backends.iter().next())
        .unwrap_or_else(|| panic!("no backend in {cluster:#}"))
}

fn counter(values: &BTreeMap<String, u64>, name: &str) -> u64 {
    *values
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {values:?}"))
}

const TWO_CLUSTERS: &str = "[clusters.app]\nprotocol = \"http\"\n\
    frontends = [ { address = \"LISTENER\", hostname = \"*\", path = \"/app\" } ]\n\
    backends = [ { address = \"BACKEND\", id = \"app-1\" } ]\n\n\
    [clusters.empty]\nprotocol = \"http\"\n\
    frontends = [ { address = \"LISTENER\", hostname = \"*\", path = \"/empty\" } ]\n\
    backends = []\n";

#[test]
fn ctl_metrics_counts_each_request_by_status_class() {
    let backend = HttpBackend::start(200);
    let setup = setup(2, &TWO_CLUSTERS.replace("BACKEND", &backend.address));
    let sluice = Sluice::start(&setup.config);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(get_status(&setup.listener, "/app/page"));
    }
    for _ in 0..3 {
        statuses.push(get_status(&setup.listener, "/nowhere"));
    }
    for _ in 0..2 {
        statuses.push(get_status(&setup.listener, "/empty"));
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 200, 404, 404, 404, 503, 503]
    );

    let total = total_metrics(&sluice);
    let app = values(cluster(&total, "app"));
    assert_eq!(counter(&app, "requests"), 7);
    assert_eq!(counter(&app, "responses_2xx"), 7);
    assert_eq!(counter(&app, "responses_5xx"), 0);
    // Backend connections opened: each worker keeps its idle one in its pool and
    // reuses it for the next client, so at most one per worker.
    assert!(
        (1..=2).contains(&counter(&app, "connections")),
        "{}",
        counter(&app, "connections")
    );
    assert_eq!(counter(&app, "available_backends"), 1);
    assert!(counter(&app, "sent_bytes") >= 7 * 5);
    let (app_backend_id, app_backend) = first_backend(cluster(&total, "app"));
    assert_eq!(app_backend_id, "app-1");
    assert_eq!(counter(&values(app_backend), "requests"), 7);
    let empty = values(cluster(&total, "empty"));
    assert_eq!(counter(&empty, "requests"), 2);
    assert_eq!(counter(&empty, "answers_503"), 2);
    assert_eq!(counter(&empty, "responses_5xx"), 2);
    assert_eq!(counter(&empty, "refused_connections"), 2);
    let proxy = values(&total["proxy"]);
    assert_eq!(counter(&proxy, "answers_404"), 3);
    assert_eq!(counter(&proxy, "unrouted_requests"), 3);
    assert_eq!(counter(&proxy, "accepted_connections"), 12);

    let filtered = sluice.ctl_json(&["metrics", "--cluster", "empty"]);
    let clusters = filtered["clusters"].as_object().expect("clusters by id");
    assert_eq!(
        clusters.keys().collect::<Vec<_>>(),
        ["empty"],
        "{filtered:#}"
    );
    let tables = sluice.ctl_ok(&["metrics"]);
    assert!(
        tables.contains("app") && tables.contains("empty"),
        "{tables}"
    );
}

/// `name{labels}` → value of every sample of a Prometheus text.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Runs `promtool check metrics` on `text`; false (with a visible message) without promtool.
fn promtool_check(text: &str) -> bool {
    sluice_command::metrics::promtool::assert_promtool_accepts("/metrics", text)
}

#[test]
fn metrics_endpoint_serves_monotonic_prometheus_text_and_health() {
    let backend = HttpBackend::start(200);
    let setup = setup(2, &TWO_CLUSTERS.replace("BACKEND", &backend.address));
    let mut sluice = Sluice::start(&setup.config);
    for _ in 0..3 {
        assert_eq!(get_status(&setup.listener, "/app/x"), 200);
    }
    let first = http_get(&setup.metrics, "/metrics");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        first.contains("Content-Type: text/plain; version=0.0.4"),
        "{first}"
    );
    for _ in 0..4 {
        assert_eq!(get_status(&setup.listener, "/app/x"), 200);
    }
    assert_eq!(get_status(&setup.listener, "/nowhere"), 404);
    let second = http_get(&setup.metrics, "/metrics");
    let (before, after) = (samples(body(&first)), samples(body(&second)));
    let mut compared = 0;
    for (key, old) in before.iter().filter(|(k, _)| k.contains("_total")) {
        let new = after.get(key).unwrap_or_else(|| panic!("{key} vanished"));
        assert!(new >= old, "{key} went from {old} to {new}");
        compared += 1;
    }
    assert!(compared > 10, "too few counters: {before:?}");
    let app_requests = |samples: &BTreeMap<String, f64>| -> f64 {
        samples
            .iter()
            .filter(|(k, _)| k.starts_with("sluice_cluster_requests_total{"))
            .filter(|(k, _)| k.contains("cluster=\"app\""))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(app_requests(&before), 3.0, "{first}");
    assert_eq!(app_requests(&after), 7.0, "{second}");
    promtool_check(body(&second));

    assert!(http_get(&setup.metrics, "/nothing").starts_with("HTTP/1.1 404"));
    let post = {
        let mut stream = TcpStream::connect(&setup.metrics).expect("connect");
        stream
            .write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let status: Value =
        serde_json::from_str(body(&http_get(&setup.metrics, "/status"))).expect("JSON status");
    assert_eq!(status["workers"].as_array().map(Vec::len), Some(2));
    let app = status["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["cluster_id"] == "app"))
        .expect("app in /status");
    assert_eq!(app["algorithm"], "round_robin");
    assert_eq!(app["backends"][0]["address"], backend.address.as_str());
    assert_eq!(app["backends"][0]["retry"]["state"], "ok");

    let health = http_get(&setup.metrics, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(body(&health), "ok\n");
    // An idle client keeps the workers draining for the grace period.
    let mut idle = TcpStream::connect(&setup.listener).expect("idle client");
    idle.write_all(b"GET /app/slow HTTP/1.1\r\n")
        .expect("partial");
    sluice.signal("TERM");
    wait_until("/health to answer 503", Duration::from_secs(4), || {
        http_get(&setup.metrics, "/health").starts_with("HTTP/1.1 503")
    });
    drop(idle);
    sluice.wait_exit(Duration::from_secs(15));
}

const CHECKED_CLUSTER: &str = "[clusters.app]\nprotocol = \"http\"\n\
    health_check = { uri = \"/health\", interval = \"INTERVAL\", unhealthy_threshold = 3, healthy_threshold = 2 }\n\
    frontends = [ { address = \"LISTENER\", hostname = \"*\", path = \"/\" } ]\n\
    backends = [ { address = \"BACKEND\", id = \"app-1\" } ]\n";

#[test]
fn failing_health_checks_leave_traffic_failing_open_and_counted() {
    let backend = HttpBackend::start(500);
    let clusters = CHECKED_CLUSTER
        .replace("BACKEND", &backend.address)
        .replace("INTERVAL", "100ms");
    let setup = setup(1, &clusters);
    let sluice = Sluice::start(&setup.config);
    wait_until(
        "the backend to be unhealthy",
        Duration::from_secs(10),
        || {
            let total = total_metrics(&sluice);
            first_backend(cluster(&total, "app")).1["healthy"] == false
        },
    );
    let before = counter(
        &values(cluster(&total_metrics(&sluice), "app")),
        "fail_open",
    );
    for _ in 0..5 {
        assert_eq!(get_status(&setup.listener, "/page"), 200);
    }
    let app = values(cluster(&total_metrics(&sluice), "app"));
    assert_eq!(counter(&app, "fail_open"), before + 5);
    assert_eq!(counter(&app, "available_backends"), 0);
}

#[test]
fn a_backend_goes_down_after_the_threshold_and_comes_back() {
    let backend = HttpBackend::start(200);
    let clusters = CHECKED_CLUSTER
        .replace("BACKEND", &backend.address)
        .replace("INTERVAL", "300ms");
    let setup = setup(1, &clusters);
    let sluice = Sluice::start(&setup.config);
    let events = EventStream::subscribe(&sluice);
    wait_until("a first good probe", Duration::from_secs(5), || {
        backend.good_probes.load(Ordering::SeqCst) > 0
    });
    backend.health_status.store(500, Ordering::SeqCst);
    events.wait_for("BACKEND_DOWN", Duration::from_secs(10), || {});
    assert_eq!(backend.failed_probes.load(Ordering::SeqCst), 3);
    let good_before = backend.good_probes.load(Ordering::SeqCst);
    backend.health_status.store(200, Ordering::SeqCst);
    events.wait_for("BACKEND_UP", Duration::from_secs(10), || {});
    assert_eq!(backend.good_probes.load(Ordering::SeqCst) - good_before, 2);
    let seen = events.lines();
    let downs = seen.iter().filter(|l| l.contains(" BACKEND_DOWN ")).count();
    let ups = seen.iter().filter(|l| l.contains(" BACKEND_UP ")).count();
    assert_eq!((downs, ups), (1, 1), "{seen:?}");
}

#[test]
fn every_worker_reports_a_backend_down_once() {
    let backend = HttpBackend::start(200);
    let clusters = CHECKED_CLUSTER
        .replace("BACKEND", &backend.address)
        .replace("INTERVAL", "100ms");
    let setup = setup(2, &clusters);
    let sluice = Sluice::start(&setup.config);
    let events = EventStream::subscribe_with(&sluice, &["--per-worker"]);
    backend.health_status.store(500, Ordering::SeqCst);
    events.wait_for(
        "BACKEND_DOWN cluster=app backend=app-1",
        Duration::from_secs(10),
        || {},
    );
    let down_lines = |events: &EventStream| {
        let mut per_worker = BTreeMap::new();
        events.wait_for("BACKEND_DOWN", Duration::from_secs(1), || {});
        for line in events
            .lines()
            .iter()
            .filter(|l| l.contains(" BACKEND_DOWN "))
        {
            let worker = line
                .split(' ')
                .find_map(|field| field.strip_prefix("worker="))
                .unwrap_or("")
                .to_owned();
            *per_worker.entry(worker).or_insert(0) += 1;
        }
        per_worker
    };
    // Several more failing probes must not repeat the event.
    let failed = backend.failed_probes.load(Ordering::SeqCst);
    wait_until("more failing probes", Duration::from_secs(5), || {
        backend.failed_probes.load(Ordering::SeqCst) >= failed + 6
    });
    let per_worker = down_lines(&events);
    assert_eq!(
        per_worker,
        BTreeMap::from([("0".to_owned(), 1), ("1".to_owned(), 1)]),
        "{:?}",
        events.lines()
    );
}

#[test]
fn tcp_sessions_count_connections_and_bytes() {
    let echo = common::EchoBackend::start();
    let listener = format!("127.0.0.1:{}", free_port());
    let mut config = common::config_with_tcp_listeners(1, std::slice::from_ref(&listener));
    config.push_str(&format!(
        "\n[clusters.db]\nprotocol = \"tcp\"\n\
         frontends = [ {{ address = \"{listener}\" }} ]\n\
         backends = [ {{ address = \"{}\", id = \"db-1\" }} ]\n",
        echo.address
    ));
    let sluice = Sluice::start(&config);
    for _ in 0..2 {
        let echoed = common::round_trip(&listener, b"ping-pong!").expect("round trip");
        assert_eq!(echoed, b"ping-pong!");
    }
    wait_until("both sessions to close", Duration::from_secs(5), || {
        let total = total_metrics(&sluice);
        counter(&values(cluster(&total, "db")), "active_connections") == 0
    });
    let total = total_metrics(&sluice);
    let db = values(cluster(&total, "db"));
    assert_eq!(counter(&db, "requests"), 2);
    assert_eq!(counter(&db, "connections"), 2);
    assert_eq!(counter(&db, "received_bytes"), 20);
    assert_eq!(counter(&db, "sent_bytes"), 20);
    let backend = values(first_backend(cluster(&total, "db")).1);
    assert_eq!(counter(&backend, "connections"), 2);
    assert_eq!(counter(&backend, "received_bytes"), 20);
    assert_eq!(counter(&values(&total["proxy"]), "active_sessions"), 0);
}
