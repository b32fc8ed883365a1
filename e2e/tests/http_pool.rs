//! Idle backend connections kept by the worker for later client sessions: reuse
//! across clients, a backend closing a kept connection, removal of a backend,
//! idle expiry, and requests that must not take a kept connection.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{mock, raw_backend, read_head, Proxy, DEADLINE, HOST};
use sluice_e2e::{requests, wait_until, HttpConn, MockHttpServer};

fn get_and_close() -> String {
    format!("GET /r HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")
}

/// Opens `n` clients at once, one request each (so `n` backend connections),
/// then closes them all; their backend connections are kept.
fn fill_pool(proxy: &mut Proxy, n: usize) {
    let mut clients: Vec<HttpConn> = (0..n)
        .map(|_| HttpConn::connect(proxy.listen).expect("connect"))
        .collect();
    for conn in &mut clients {
        assert_eq!(conn.get(HOST, "/fill").expect("response").status, 200);
    }
    drop(clients);
    proxy.wait_no_sessions();
}

#[test]
fn sequential_closing_clients_share_one_backend_connection() {
    let backend = mock("app");
    let mut proxy = Proxy::to(&[backend.addr()]);
    for i in 0..20 {
        let mut conn = HttpConn::connect(proxy.listen).expect("connect");
        let response = conn.request(get_and_close().as_bytes()).expect("response");
        assert_eq!(response.status, 200, "request {i}");
        assert!(response.closes_connection());
        assert!(conn.is_closed_by_peer(DEADLINE));
    }
    assert_eq!(backend.request_count(), 20);
    assert_eq!(backend.connections_accepted(), 1);
    proxy.wait_no_sessions();
    assert_eq!(backend.active_connections(), 1, "the connection is kept");
}

/// Answers keep-alive, and closes a connection idle for 100 ms.
fn idle_closing_backend(connections: Arc<AtomicUsize>) -> sluice_e2e::MockServer {
    raw_backend(move |mut stream| {
        connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        while read_head(&mut stream).is_some() {
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(answer).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_kept_connection_the_backend_closed_is_not_a_failure() {
    let connections = Arc::new(AtomicUsize::new(0));
    let backend = idle_closing_backend(Arc::clone(&connections));
    let mut proxy = Proxy::to(&[backend.addr()]);
    for round in 0..3 {
        let mut conn = HttpConn::connect(proxy.listen).expect("connect");
        let response = conn.request(get_and_close().as_bytes()).expect("response");
        assert_eq!(response.status, 200, "round {round}");
        // The backend drops the kept connection after its idle timeout.
        wait_until("the backend to close its idle connection", DEADLINE, || {
            backend.active_connections() == 0
        });
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    proxy.wait_no_sessions();
}

#[test]
fn removing_a_backend_closes_its_kept_connections() {
    let backend = mock("app");
    let mut proxy = Proxy::to(&[backend.addr()]);
    fill_pool(&mut proxy, 3);
    assert_eq!(backend.connections_accepted(), 3);
    // Kept, not closed: a new client takes one of them.
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    assert_eq!(conn.get(HOST, "/again").expect("response").status, 200);
    drop(conn);
    proxy.wait_no_sessions();
    assert_eq!(backend.connections_accepted(), 3);
    assert_eq!(backend.active_connections(), 3);

    proxy
        .worker
        .expect_ok(&requests::remove_backend("app", backend.addr()));
    // Well before they would expire (10 s idle).
    wait_until(
        "the kept connections to be closed",
        Duration::from_secs(3),
        || backend.active_connections() == 0,
    );
}

#[test]
fn kept_connections_expire_after_the_backend_timeout() {
    let backend = mock("app");
    let mut proxy = Proxy::with_listener(|listener| listener.timeouts.back_timeout_ms = 300);
    proxy.cluster("app", &[backend.addr()], |_| {});
    proxy.route(
        HOST,
        sluice_command::proto::PathRuleKind::Prefix,
        "/",
        None,
        Some("app"),
    );
    fill_pool(&mut proxy, 2);
    assert_eq!(backend.connections_accepted(), 2);
    wait_until("the idle connections to expire", DEADLINE, || {
        backend.active_connections() == 0
    });
}

fn post(body: &str) -> String {
    format!(
        "POST /p HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn accepted_after(backend: &MockHttpServer, proxy: &Proxy, request: &str) -> usize {
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let response = conn.request(request.as_bytes()).expect("response");
    assert_eq!(response.status, 200, "{request}");
    assert!(conn.is_closed_by_peer(DEADLINE));
    backend.connections_accepted()
}

#[test]
fn a_post_on_a_new_client_session_goes_on_a_fresh_connection() {
    let backend = mock("app");
    let proxy = Proxy::to(&[backend.addr()]);
    assert_eq!(accepted_after(&backend, &proxy, &get_and_close()), 1);
    // A connection is kept, but a request that cannot be sent twice does not take it.
    assert_eq!(accepted_after(&backend, &proxy, &post("hello")), 2);
    assert_eq!(backend.requests_seen()[1].body, b"hello");
    // Both connections are kept now; a GET takes one.
    assert_eq!(accepted_after(&backend, &proxy, &get_and_close()), 2);
    assert_eq!(backend.request_count(), 3);
}
