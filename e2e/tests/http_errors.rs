//! Refusals and failures through the real worker: RFC 9112 smuggling cases
//! (400/501, connection closed, nothing reaches the backend), 408, 431, 502,
//! 503 and 504.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{mock, raw_backend, read_head, Proxy, HOST};
use sluice_command::proto::PathRuleKind;
use sluice_e2e::{free_addr, parse_responses, raw_exchange, HttpConn, MockResponse};

const WAIT: Duration = Duration::from_secs(5);

/// Sends `request`, then a valid request on the same connection; expects
/// one answer `status`, the connection closed, and nothing at the backend.
fn refused(request: &str, status: u16) {
    let backend = mock("app");
    let mut proxy = Proxy::to(&[backend.addr()]);
    let follow = format!("GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let bytes = format!("{request}{follow}");
    let started = Instant::now();
    let raw = raw_exchange(proxy.listen, bytes.as_bytes(), WAIT).expect("exchange");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the connection was not closed"
    );
    let responses = parse_responses(&raw);
    assert_eq!(
        responses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [status],
        "{request:?} got {}",
        String::from_utf8_lossy(&raw)
    );
    assert!(responses[0].closes_connection());
    assert_eq!(
        backend.requests_seen(),
        [],
        "{request:?} reached the backend"
    );
    assert_eq!(
        backend.connections_accepted(),
        0,
        "{request:?} opened a backend connection"
    );
    proxy.wait_no_sessions();
}

#[test]
fn smuggling_framing_is_refused() {
    let cases: &[(&str, u16)] = &[
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3, 4\r\n\r\nabcd", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: +3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0x3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3 3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        ("POST / HTTP/1.0\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: example.com\r\nX-Folded: a\r\n b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: example.com\r\nX-Ctl: a\x01b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: exa\x7fmple.com\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: example.com\r\nHost: example.com\r\n\r\n", 400),
        ("GET / HTTP/1.1\nHost: example.com\n\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", 505),
        ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 501),
    ];
    for (request, status) in cases {
        refused(request, *status);
    }
}

#[test]
fn invalid_chunked_bodies_are_refused_before_the_bad_bytes() {
    for body in [
        "zz\r\nabc\r\n0\r\n\r\n",
        "-1\r\n\r\n",
        "3\r\nabcXY0\r\n\r\n",
        "fffffffffffffffff1\r\n",
    ] {
        let backend = mock("app");
        let proxy = Proxy::to(&[backend.addr()]);
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n{body}GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        );
        let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
        let responses = parse_responses(&raw);
        // The head may have been forwarded before the bad chunk arrived: the
        // client gets a 400 (or a close once the backend answered), never
        // a response to the smuggled request.
        assert!(
            responses.len() <= 1,
            "{body:?}: {}",
            String::from_utf8_lossy(&raw)
        );
        if let Some(response) = responses.first() {
            assert_eq!(response.status, 400, "{body:?}");
        }
        assert!(
            backend
                .requests_seen()
                .iter()
                .all(|r| r.path != "/smuggled"),
            "{body:?} smuggled a request"
        );
    }
}

#[test]
fn head_larger_than_the_buffer_is_431() {
    let backend = mock("app");
    let proxy = Proxy::to(&[backend.addr()]);
    let big = "a".repeat(40_000);
    let request =
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {big}\r\nX-Big2: {big}\r\n\r\n");
    let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
    let responses = parse_responses(&raw);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(responses[0].status, 431);
    assert_eq!(backend.request_count(), 0);
}

#[test]
fn slow_client_is_answered_408_by_request_timeout() {
    let backend = mock("app");
    let mut proxy = Proxy::with_listener(|l| l.timeouts.request_timeout_ms = 1_000);
    proxy.cluster("app", &[backend.addr()], |_| {});
    proxy.route(HOST, PathRuleKind::Prefix, "/", None, Some("app"));
    let mut stream = TcpStream::connect(proxy.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(1_000)))
        .unwrap();
    let started = Instant::now();
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let mut received = Vec::new();
    for byte in request.bytes() {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
                received.extend(rest);
                break;
            }
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "never timed out"
        );
    }
    let responses = parse_responses(&received);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&received));
    assert_eq!(responses[0].status, 408);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(backend.request_count(), 0);
    // A slow body is cut the same way.
    let mut conn = HttpConn::connect(proxy.listen).unwrap();
    conn.send(
        format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\nabc").as_bytes(),
    )
    .unwrap();
    let response = conn.read_response().expect("408 on a slow body");
    assert_eq!(response.status, 408);
    proxy.wait_no_sessions();
}

#[test]
fn backend_failures_are_502_never_a_hang() {
    let backend = mock("app");
    backend.set_handler("/head-only", |_| {
        MockResponse::new(200, vec![b'x'; 1000]).close_after_head()
    });
    backend.set_handler("/reset", |_| {
        MockResponse::new(200, vec![b'x'; 100_000]).reset_mid_body()
    });
    backend.set_handler("/close-now", |_| {
        MockResponse::new(200, "x")
            .close_after_head()
            .header("Content-Length", "0")
    });
    let garbage = raw_backend(|mut stream| {
        let _ = read_head(&mut stream);
        let _ = stream.write_all(b"SSH-2.0-OpenSSH\r\n\r\n");
    });
    let silent_close = raw_backend(|mut stream| {
        let _ = read_head(&mut stream);
    });
    let mut proxy = Proxy::to(&[backend.addr()]);
    proxy.cluster("garbage", &[garbage.addr()], |_| {});
    proxy.cluster("silent", &[silent_close.addr()], |_| {});
    proxy.route(
        "garbage.test",
        PathRuleKind::Prefix,
        "/",
        None,
        Some("garbage"),
    );
    proxy.route(
        "silent.test",
        PathRuleKind::Prefix,
        "/",
        None,
        Some("silent"),
    );
    for (host, path) in [(HOST, "/head-only"), (HOST, "/reset")] {
        let started = Instant::now();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
        assert!(started.elapsed() < Duration::from_secs(4), "{path} hung");
        // The head was forwarded: the client sees a truncated response and a close.
        assert!(
            raw.starts_with(b"HTTP/1.1 200") || raw.starts_with(b"HTTP/1.1 502"),
            "{path}"
        );
        let full = parse_responses(&raw);
        assert!(
            full.iter().all(|r| r.status != 200),
            "{path} looked complete"
        );
    }
    for host in ["garbage.test", "silent.test"] {
        let started = Instant::now();
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
        assert!(started.elapsed() < Duration::from_secs(4), "{host} hung");
        let responses = parse_responses(&raw);
        assert_eq!(
            responses.len(),
            1,
            "{host}: {}",
            String::from_utf8_lossy(&raw)
        );
        assert_eq!(responses[0].status, 502, "{host}");
    }
    proxy.wait_no_sessions();
}

#[test]
fn no_backend_and_refused_connects_are_503() {
    let closed = free_addr();
    let mut proxy = Proxy::to(&[closed]);
    proxy.cluster("empty", &[], |_| {});
    proxy.route("empty.test", PathRuleKind::Prefix, "/", None, Some("empty"));
    for host in [HOST, "empty.test"] {
        let started = Instant::now();
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
        let responses = parse_responses(&raw);
        assert_eq!(
            responses.len(),
            1,
            "{host}: {}",
            String::from_utf8_lossy(&raw)
        );
        assert_eq!(responses[0].status, 503, "{host}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{host} was slow"
        );
    }
    proxy.wait_no_sessions();
}

#[test]
fn silent_backend_is_504_after_back_timeout() {
    let backend = mock("app");
    backend.set_default_handler(|_| MockResponse::new(200, "late").delay(Duration::from_secs(4)));
    let mut proxy = Proxy::with_listener(|l| l.timeouts.back_timeout_ms = 1_000);
    proxy.cluster("app", &[backend.addr()], |_| {});
    proxy.route(HOST, PathRuleKind::Prefix, "/", None, Some("app"));
    let started = Instant::now();
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
    let elapsed = started.elapsed();
    let responses = parse_responses(&raw);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(responses[0].status, 504);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    proxy.wait_no_sessions();
}
