//! `sluice ctl backend set` under keep-alive load: drain, maintenance and weight take effect
//! within a second on every worker, without a failed request; `backend remove
//! --when-drained` removes the backend once its last connection closed.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{http_config, mock, Load, Mode, Route};
use common::{free_port, wait_until, EventStream, Sluice};
use sluice_e2e::MockHttpServer;

const HOST: &str = "web.test";
/// What the issue allows for a change to reach every worker and its sessions.
const SETTLE: Duration = Duration::from_secs(1);

/// Sluice with `workers` workers in front of two mock backends (ids web-1 and web-2),
/// probed on /health every 200 ms.
fn setup(workers: u32) -> (Sluice, SocketAddr, MockHttpServer, MockHttpServer) {
    let first = mock("web-1");
    let second = mock("web-2");
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let mut route = Route::new("web", HOST, &[first.addr(), second.addr()]);
    route.health_check = Some("{ uri = \"/health\", interval = \"200ms\" }".to_owned());
    let config = http_config(workers, listener, &[route]);
    let sluice = Sluice::start(&config);
    (sluice, listener, first, second)
}

/// Keep-alive clients (the hard case: they stay on their backend) and a few that connect
/// for each request.
fn load(listener: SocketAddr) -> Load {
    let mut modes = vec![Mode::KeepAlive; 6];
    modes.extend([Mode::NewConnections; 2]);
    Load::start(listener, HOST, "web-", &modes)
}

/// Client requests a mock saw (health probes apart).
fn client_requests(backend: &MockHttpServer) -> usize {
    backend
        .requests_seen()
        .iter()
        .filter(|r| r.path_only() != "/health")
        .count()
}

fn probes(backend: &MockHttpServer) -> usize {
    backend
        .requests_seen()
        .iter()
        .filter(|r| r.path_only() == "/health")
        .count()
}

/// Runs the load for `duration` from now.
fn run_for(load: &Load, duration: Duration) {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(load.succeeded() > 0);
}

#[test]
fn drain_under_keep_alive_load_sends_nothing_new_within_a_second() {
    let (sluice, listener, first, second) = setup(2);
    let events = EventStream::subscribe(&sluice);
    let load = load(listener);
    load.wait_for_more(200);
    wait_until("both backends to serve", Duration::from_secs(5), || {
        client_requests(&first) > 0 && client_requests(&second) > 0
    });
    let answer = sluice.ctl_ok(&[
        "backend",
        "set",
        "--cluster",
        "web",
        "--id",
        &first.addr().to_string(),
        "--state",
        "drain",
    ]);
    assert!(answer.contains("state drain"), "{answer}");
    thread::sleep(SETTLE);
    first.clear_requests();
    second.clear_requests();
    let served = load.succeeded();
    run_for(&load, Duration::from_millis(1500));
    assert!(load.succeeded() > served + 100, "the load went on");
    assert_eq!(
        client_requests(&first),
        0,
        "a drained backend got a request"
    );
    assert!(probes(&first) > 0, "health checks go on while draining");
    assert!(client_requests(&second) > 0);
    events.wait_for("BACKEND_DRAINING", Duration::from_secs(5), || {});
    let show = sluice.ctl_ok(&["cluster", "show", "web"]);
    assert!(show.contains("drain"), "{show}");

    sluice.ctl_ok(&[
        "backend",
        "set",
        "--cluster",
        "web",
        "--address",
        &first.addr().to_string(),
        "--state",
        "ready",
    ]);
    events.wait_for("BACKEND_READY", Duration::from_secs(5), || {});
    wait_until(
        "the ready backend to serve again",
        Duration::from_secs(5),
        || client_requests(&first) > 0,
    );
    let (succeeded, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {succeeded} failed: {failures:?}",
        failures.len()
    );
}

#[test]
fn maint_under_keep_alive_load_sends_nothing_and_closes_kept_connections() {
    let (sluice, listener, first, second) = setup(2);
    let load = load(listener);
    load.wait_for_more(200);
    wait_until(
        "the first backend to hold connections",
        Duration::from_secs(5),
        || client_requests(&first) > 0 && first.active_connections() > 0,
    );
    sluice.ctl_ok(&[
        "backend",
        "set",
        "--cluster",
        "web",
        "--address",
        &first.addr().to_string(),
        "--state",
        "maint",
    ]);
    thread::sleep(SETTLE);
    first.clear_requests();
    run_for(&load, Duration::from_millis(1500));
    assert_eq!(
        first.requests_seen().len(),
        0,
        "no traffic, no health check in maint"
    );
    assert!(client_requests(&second) > 0);
    wait_until(
        "its kept connections to be closed",
        Duration::from_secs(2),
        || first.active_connections() == 0,
    );
    let status = sluice.ctl_json(&["cluster", "show", "web"]);
    let text = status.to_string();
    assert!(text.contains("\"state\":\"maint\""), "{text}");
    let (succeeded, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {succeeded} failed: {failures:?}",
        failures.len()
    );
}

#[test]
fn a_weight_change_moves_the_split_within_a_second() {
    let (sluice, listener, first, second) = setup(1);
    let load = load(listener);
    load.wait_for_more(300);
    let share = |first: &MockHttpServer, second: &MockHttpServer| {
        let (a, b) = (client_requests(first), client_requests(second));
        a as f64 / (a + b).max(1) as f64
    };
    first.clear_requests();
    second.clear_requests();
    run_for(&load, Duration::from_secs(1));
    let before = share(&first, &second);
    assert!((0.3..0.7).contains(&before), "even split before: {before}");
    sluice.ctl_ok(&[
        "backend",
        "set",
        "--cluster",
        "web",
        "--address",
        &second.addr().to_string(),
        "--weight",
        "25",
    ]);
    thread::sleep(SETTLE);
    first.clear_requests();
    second.clear_requests();
    run_for(&load, Duration::from_millis(1500));
    let after = share(&first, &second);
    assert!(
        after > 0.65,
        "weights 100:25, first backend's share {after}"
    );
    let (succeeded, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {succeeded} failed: {failures:?}",
        failures.len()
    );
}

#[test]
fn remove_when_drained_waits_for_the_last_connection() {
    let (sluice, listener, first, second) = setup(2);
    let load = load(listener);
    load.wait_for_more(100);
    let answer = sluice.ctl_ok(&[
        "backend",
        "remove",
        "--cluster",
        "web",
        "--id",
        &first.addr().to_string(),
        "--when-drained",
    ]);
    assert!(answer.contains("draining"), "{answer}");
    wait_until(
        "the drained backend to be removed",
        Duration::from_secs(10),
        || {
            let show = sluice.ctl_ok(&["cluster", "show", "web"]);
            !show.contains(&first.addr().to_string())
        },
    );
    first.clear_requests();
    second.clear_requests();
    run_for(&load, Duration::from_millis(500));
    assert_eq!(client_requests(&first), 0);
    let (succeeded, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {succeeded} failed: {failures:?}",
        failures.len()
    );
}
