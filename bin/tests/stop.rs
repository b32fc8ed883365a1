//! Stopping with a request in flight: a soft stop lets it finish, a hard stop
//! does not wait for it.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{http_config, mock, Route};
use common::{wait_until, Sluice};
use sluice_e2e::{free_addr, http_get, HttpResponse, MockHttpServer, MockResponse};

/// A sluice routing `slow.test` to a backend whose `/slow` answers after `delay`.
fn slow_setup(delay: Duration) -> (MockHttpServer, SocketAddr, Sluice) {
    let backend = mock("slow");
    backend.set_handler("/slow", move |_| {
        MockResponse::new(200, "slow done\n").delay(delay)
    });
    let listener = free_addr();
    let sluice = Sluice::start(&http_config(
        2,
        listener,
        &[Route::new("slow", "slow.test", &[backend.addr()])],
    ));
    (backend, listener, sluice)
}

/// Sends `GET /slow` on a thread and waits until the backend has it.
fn request_in_flight(
    backend: &MockHttpServer,
    listener: SocketAddr,
) -> thread::JoinHandle<Result<HttpResponse, String>> {
    let client =
        thread::spawn(move || http_get(listener, "slow.test", "/slow").map_err(|e| e.to_string()));
    wait_until(
        "the backend to get the request",
        Duration::from_secs(10),
        || backend.request_count() == 1,
    );
    client
}

#[test]
fn a_soft_stop_drains_a_slow_request_before_exiting() {
    let (backend, listener, mut sluice) = slow_setup(Duration::from_millis(1500));
    let client = request_in_flight(&backend, listener);
    sluice.ctl_ok(&["shutdown"]);
    let response = client.join().expect("client thread");
    assert!(
        matches!(&response, Ok(r) if r.status == 200 && r.body_text() == "slow done\n"),
        "the in-flight request must complete: {response:?}\n{}",
        sluice.log()
    );
    let status = sluice.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", sluice.log());
}

#[test]
fn a_hard_stop_does_not_wait_for_a_slow_request() {
    let delay = Duration::from_secs(8);
    let (backend, listener, mut sluice) = slow_setup(delay);
    let client = request_in_flight(&backend, listener);
    let stopped_at = Instant::now();
    sluice.ctl_ok(&["shutdown", "--hard"]);
    let status = sluice.wait_exit(Duration::from_secs(5));
    let exit_after = stopped_at.elapsed();
    assert_eq!(status.code(), Some(0), "{}", sluice.log());
    let response = client.join().expect("client thread");
    assert!(
        !matches!(&response, Ok(r) if r.status == 200),
        "a hard stop must cut the request: {response:?}"
    );
    assert!(
        stopped_at.elapsed() < delay && exit_after < Duration::from_secs(3),
        "the hard stop waited: exit after {exit_after:?}, client done after {:?}",
        stopped_at.elapsed()
    );
}

#[test]
fn a_soft_stop_does_not_wait_for_idle_keep_alive_connections() {
    let (_backend, listener, mut sluice) = slow_setup(Duration::from_millis(10));
    // Idle keep-alive clients, one request done on each, connections kept open.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut conn = sluice_e2e::HttpConn::connect(listener).expect("connect");
        let response = conn.get("slow.test", "/").expect("a first request");
        assert_eq!(response.status, 200);
        idle.push(conn);
    }
    let stopped_at = Instant::now();
    sluice.ctl_ok(&["shutdown"]);
    let status = sluice.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", sluice.log());
    // The grace period (30 s) and the idle timeout (60 s) are far longer.
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "idle connections held the stop for {:?}",
        stopped_at.elapsed()
    );
    for conn in &mut idle {
        assert!(
            conn.is_closed_by_peer(Duration::from_secs(2)),
            "an idle connection was left open"
        );
    }
}
