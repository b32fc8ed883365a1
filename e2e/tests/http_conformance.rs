//! Rows found by the differential run against HAProxy and nginx
//! (`cargo run -p sluice-e2e --bin differential`), through the real worker:
//! the answers where Sluice was fixed, and what reaches the backend.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{mock, raw_backend, read_head, Proxy, HOST};
use sluice_command::proto::PathRuleKind;
use sluice_e2e::{parse_responses, raw_exchange};

const WAIT: Duration = Duration::from_secs(5);

/// Refused requests: (request, status); a follow-up request on the same
/// connection must never be answered, nothing may reach the backend.
#[test]
fn refusals_agree_with_the_rfc() {
    let long_line = format!(
        "GET /{} HTTP/1.1\r\nHost: {HOST}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let cases: Vec<(String, u16)> = vec![
        // RFC 9112 §6.1: a coding Sluice does not decode (nginx 501, HAProxy 422).
        (format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 501),
        (format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400),
        // RFC 9112 §3.2: no fragment in a request-target (HAProxy 400).
        (format!("GET /a#frag HTTP/1.1\r\nHost: {HOST}\r\n\r\n"), 400),
        // RFC 9110 §15.5.15 (nginx 414).
        (long_line, 414),
    ];
    for (request, status) in cases {
        let backend = mock("app");
        let mut proxy = Proxy::to(&[backend.addr()]);
        let bytes = format!("{request}GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        let raw = raw_exchange(proxy.listen, bytes.as_bytes(), WAIT).expect("exchange");
        let statuses: Vec<u16> = parse_responses(&raw).iter().map(|r| r.status).collect();
        let shown = &request[..request.len().min(80)];
        assert_eq!(statuses, [status], "{shown:?}");
        assert_eq!(backend.request_count(), 0, "{shown:?} reached the backend");
        proxy.wait_no_sessions();
    }
}

/// Forwarded requests: what the backend sees.
#[test]
fn forwarded_heads_keep_host_and_clean_framing() {
    let backend = mock("app");
    let mut proxy = Proxy::to(&[backend.addr()]);
    proxy.route("other.test", PathRuleKind::Prefix, "/", None, Some("app"));
    // (request, path seen, Host seen, Transfer-Encoding seen)
    let cases: &[(String, &str, &str, Option<&str>)] = &[
        // Host is end-to-end: `Connection: Host` used to strip it.
        (format!("GET /c HTTP/1.1\r\nHost: {HOST}\r\nConnection: Host\r\n\r\n"), "/c", HOST, None),
        // RFC 9112 §3.2.2: Host generated from an absolute-form target.
        (format!("GET http://other.test/abs HTTP/1.1\r\nHost: {HOST}\r\n\r\n"), "http://other.test/abs", "other.test", None),
        // RFC 9110 §2.5: a later minor version is handled as HTTP/1.1.
        (format!("GET /v12 HTTP/1.2\r\nHost: {HOST}\r\n\r\n"), "/v12", HOST, None),
        (format!("POST /te HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: , Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), "/te", HOST, Some("chunked")),
    ];
    for (request, path, host, te) in cases {
        backend.clear_requests();
        let raw = raw_exchange(proxy.listen, request.as_bytes(), Duration::from_secs(2))
            .expect("exchange");
        let statuses: Vec<u16> = parse_responses(&raw).iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200], "{request:?}");
        let seen = backend.requests_seen();
        assert_eq!(seen.len(), 1, "{request:?}");
        assert_eq!(seen[0].path, *path);
        assert_eq!(seen[0].minor_version, 1);
        let hosts: Vec<&str> = seen[0]
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(hosts, [*host], "{request:?}");
        assert_eq!(seen[0].header("Transfer-Encoding"), *te, "{request:?}");
    }
}

/// Backend answers HAProxy and nginx pass on and Sluice used to turn into 502s.
#[test]
fn lenient_backend_answers_are_forwarded() {
    let cases: &[(&[u8], &str)] = &[
        // RFC 9112 §6.1: decode, then close the backend connection.
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "ok",
        ),
        // RFC 9110 §2.5.
        (b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok"),
    ];
    for (answer, body) in cases {
        let answer = answer.to_vec();
        let backend = raw_backend(move |mut stream| {
            if read_head(&mut stream).is_some() {
                let _ = stream.write_all(&answer);
            }
        });
        let mut proxy = Proxy::to(&[backend.addr()]);
        let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
        let raw = raw_exchange(proxy.listen, request.as_bytes(), WAIT).expect("exchange");
        let responses = parse_responses(&raw);
        assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(responses[0].status, 200);
        assert_eq!(responses[0].body_text(), *body);
        proxy.wait_no_sessions();
    }
}
