//! Connection persistence through the real worker: one backend connection
//! for many requests, HTTP/1.0 and `Connection: close` both ways, pipelining,
//! and the replay of a request whose kept backend connection was closed idle.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{mock, raw_backend, read_head, Proxy, HOST};
use sluice_e2e::{parse_responses, raw_exchange, HttpConn, MockResponse};

#[test]
fn a_client_keeps_its_backend_connection() {
    let backend = mock("app");
    let mut proxy = Proxy::to(&[backend.addr()]);
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    for i in 0..20 {
        let response = conn.get(HOST, &format!("/{i}")).expect("response");
        assert_eq!(response.status, 200);
        assert!(!response.closes_connection());
    }
    assert_eq!(backend.request_count(), 20);
    assert_eq!(backend.connections_accepted(), 1);
    drop(conn);
    proxy.wait_no_sessions();
}

#[test]
fn http10_and_connection_close_are_honoured_both_ways() {
    let backend = mock("app");
    let proxy = Proxy::to(&[backend.addr()]);
    // HTTP/1.0 without keep-alive: answered, then closed.
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let response = conn
        .request(format!("GET /a HTTP/1.0\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .expect("response");
    assert_eq!(response.status, 200);
    assert!(conn.is_closed_by_peer(Duration::from_secs(3)));
    // HTTP/1.0 with keep-alive: kept.
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    for _ in 0..2 {
        let response = conn
            .request(
                format!("GET /b HTTP/1.0\r\nHost: {HOST}\r\nConnection: keep-alive\r\n\r\n")
                    .as_bytes(),
            )
            .expect("response");
        assert_eq!(response.status, 200);
        assert!(response
            .header("Connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive")));
    }
    // HTTP/1.1 Connection: close from the client.
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let response = conn
        .request(format!("GET /c HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("response");
    assert!(response.closes_connection());
    assert!(conn.is_closed_by_peer(Duration::from_secs(3)));
    // Connection: close from the backend: the client stays, the next
    // request goes on a new backend connection. (POSTs: they never take a
    // connection kept from the sessions above, so the count is exact.)
    backend.set_handler("/bye", |_| MockResponse::new(200, "bye").close());
    let accepted = backend.connections_accepted();
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let post =
        |path: &str| format!("POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n");
    let response = conn.request(post("/bye").as_bytes()).expect("response");
    assert_eq!(response.body, b"bye");
    assert!(!response.closes_connection());
    let response = conn
        .request(post("/after").as_bytes())
        .expect("response after the backend closed");
    assert_eq!(response.status, 200);
    assert_eq!(backend.connections_accepted(), accepted + 2);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let backend = mock("app");
    backend.set_default_handler(|r| {
        // The first answer is the slowest: order must still hold.
        let delay = if r.path == "/0" { 200 } else { 0 };
        MockResponse::new(200, r.path.clone()).delay(Duration::from_millis(delay))
    });
    let proxy = Proxy::to(&[backend.addr()]);
    let mut bytes = String::new();
    for i in 0..10 {
        bytes.push_str(&format!("GET /{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"));
    }
    bytes.push_str(&format!(
        "POST /post HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 3\r\n\r\nabc"
    ));
    bytes.push_str(&format!(
        "GET /last HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    ));
    let raw =
        raw_exchange(proxy.listen, bytes.as_bytes(), Duration::from_secs(10)).expect("exchange");
    let bodies: Vec<String> = parse_responses(&raw)
        .iter()
        .map(|r| r.body_text())
        .collect();
    let mut expected: Vec<String> = (0..10).map(|i| format!("/{i}")).collect();
    expected.push("/post".into());
    expected.push("/last".into());
    assert_eq!(bodies, expected);
    assert_eq!(backend.requests_seen()[10].body, b"abc");
}

/// A backend answering without `Connection: close` that closes connections
/// idle for 100 ms, like a keep-alive timeout shorter than the client's pace.
fn idle_closing_backend(connections: Arc<AtomicUsize>) -> sluice_e2e::MockServer {
    raw_backend(move |mut stream| {
        connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut first = true;
        loop {
            if !first {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            }
            first = false;
            if read_head(&mut stream).is_none() {
                return;
            }
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    })
}

#[test]
fn a_kept_connection_closed_by_the_backend_while_idle_is_replaced() {
    let connections = Arc::new(AtomicUsize::new(0));
    let backend = idle_closing_backend(Arc::clone(&connections));
    let mut proxy = Proxy::to(&[backend.addr()]);
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    for method in ["GET", "HEAD", "GET", "DELETE", "GET"] {
        let request = format!("{method} /r HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        conn.send(request.as_bytes()).expect("send");
        let response = if method == "HEAD" {
            conn.read_head_response()
        } else {
            conn.read_response()
        }
        .expect("response");
        assert_eq!(response.status, 200, "{method}");
        // Longer than the backend's idle timeout.
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 5);
    drop(conn);
    proxy.wait_no_sessions();
}
