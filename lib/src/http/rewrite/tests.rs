use super::*;
use crate::http::parser::{parse_request, parse_response, Parsed, RequestOptions};

fn client() -> SocketAddr {
    "192.0.2.7:51000".parse().unwrap()
}

fn listener() -> SocketAddr {
    "10.0.0.1:8080".parse().unwrap()
}

fn rewrite_request(raw: &[u8], request_id: Option<&[u8]>) -> String {
    rewrite_request_over(raw, request_id, false)
}

fn rewrite_request_over(raw: &[u8], request_id: Option<&[u8]>, https: bool) -> String {
    let mut headers = Vec::new();
    let Ok(Parsed::Complete(head)) = parse_request(raw, &RequestOptions::default(), &mut headers)
    else {
        panic!("not parsed");
    };
    let forwarded = ForwardedValues::new(client(), listener(), https);
    let mut out = Vec::new();
    write_request_head(
        &mut out,
        raw,
        &head,
        &headers,
        &RequestRewrite {
            forwarded: &forwarded,
            request_id,
        },
    );
    String::from_utf8(out).unwrap()
}

fn rewrite_response(raw: &[u8], rewrite: ResponseRewrite<'_>) -> String {
    let mut headers = Vec::new();
    let Ok(Parsed::Complete(head)) = parse_response(raw, false, &mut headers) else {
        panic!("not parsed");
    };
    let mut out = Vec::new();
    write_response_head(&mut out, raw, &head, &headers, &rewrite);
    String::from_utf8(out).unwrap()
}

#[test]
fn request_gets_forwarding_fields() {
    let out = rewrite_request(
        b"GET /p?q HTTP/1.1\r\nHost: a.com\r\nAccept: */*\r\n\r\n",
        Some(b"00000000000000ff"),
    );
    assert_eq!(
        out,
        "GET /p?q HTTP/1.1\r\nHost: a.com\r\nAccept: */*\r\n\
         X-Forwarded-For: 192.0.2.7\r\n\
         Forwarded: for=192.0.2.7;proto=http;by=\"10.0.0.1:8080\"\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\
         Sluice-Request-Id: 00000000000000ff\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn a_request_over_tls_is_forwarded_as_https() {
    let out = rewrite_request_over(b"GET / HTTP/1.1\r\nHost: a.com\r\n\r\n", None, true);
    assert!(
        out.contains("Forwarded: for=192.0.2.7;proto=https;by=\"10.0.0.1:8080\"\r\n"),
        "{out}"
    );
    assert!(
        out.contains("X-Forwarded-Proto: https\r\nX-Forwarded-Port: 8080\r\n"),
        "{out}"
    );
}

#[test]
fn request_hop_by_hop_fields_are_removed() {
    let raw =
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n\
        Proxy-Connection: x\r\nTE: trailers\r\nX-Secret: s\r\nUpgrade: h2c\r\nTrailer: X-T\r\n\
        Transfer-Encoding: chunked\r\nSluice-Request-Id: mine\r\n\r\n";
    let out = rewrite_request(raw, None);
    for gone in [
        "Keep-Alive",
        "Proxy-Connection",
        "TE:",
        "X-Secret",
        "Upgrade",
        "keep-alive, X-Secret",
    ] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    for kept in [
        "Trailer: X-T\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Sluice-Request-Id: mine\r\n",
        "Connection: keep-alive\r\n",
    ] {
        assert!(out.contains(kept), "{kept} not in {out}");
    }
    assert_eq!(out.matches("Sluice-Request-Id").count(), 1);
}

#[test]
fn request_appends_to_existing_forwarding_fields() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\
        Forwarded: for=1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\n\r\n";
    let out = rewrite_request(raw, None);
    assert!(
        out.contains("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 192.0.2.7\r\n"),
        "{out}"
    );
    assert!(
        out.contains("Forwarded: for=1.1.1.1, for=192.0.2.7;proto=http;by=\"10.0.0.1:8080\"\r\n"),
        "{out}"
    );
    assert!(
        out.contains("X-Forwarded-Proto: http\r\n") && !out.contains("https"),
        "{out}"
    );
    assert!(
        out.contains("X-Forwarded-Port: 8080\r\n") && !out.contains("Port: 1\r"),
        "{out}"
    );
}

#[test]
fn request_content_length_is_normalised() {
    let out = rewrite_request(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n",
        None,
    );
    assert_eq!(out.matches("Content-Length").count(), 1, "{out}");
    assert!(out.contains("Content-Length: 5\r\n"));
    let out = rewrite_request(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n",
        None,
    );
    assert!(out.contains("Content-Length: 0\r\n"), "{out}");
    let out = rewrite_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None);
    assert!(!out.contains("Content-Length"), "{out}");
}

#[test]
fn request_upgrade_is_kept_when_upgrading() {
    let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let out = rewrite_request(raw, None);
    assert!(
        out.contains("Upgrade: websocket\r\n") && out.contains("Connection: upgrade\r\n"),
        "{out}"
    );
}

#[test]
fn ipv6_forwarded_nodes_are_quoted() {
    let forwarded = ForwardedValues::new(
        "[2001:db8::1]:5000".parse().unwrap(),
        "[::1]:80".parse().unwrap(),
        false,
    );
    assert_eq!(
        forwarded.forwarded_element(),
        &b"for=\"[2001:db8::1]\";proto=http;by=\"[::1]:80\""[..]
    );
    assert_eq!(forwarded.client_ip(), &b"2001:db8::1"[..]);
    assert_eq!(forwarded.listener_port(), &b"80"[..]);
}

#[test]
fn response_rewrites() {
    let raw = b"HTTP/1.0 200 Fine\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\n";
    let keep = ResponseRewrite {
        connection: ClientConnection::KeepAlive,
        set_cookie: None,
        hsts: None,
    };
    assert_eq!(
        rewrite_response(raw, keep),
        "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\n"
    );
    let close = ResponseRewrite {
        connection: ClientConnection::Close,
        set_cookie: Some((b"SLUICEID", b"b1")),
        hsts: None,
    };
    assert_eq!(
        rewrite_response(raw, close),
        "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nSet-Cookie: SLUICEID=b1; Path=/\r\nConnection: close\r\n\r\n"
    );
    let ten = ResponseRewrite {
        connection: ClientConnection::KeepAliveHttp10,
        set_cookie: None,
        hsts: None,
    };
    assert!(rewrite_response(raw, ten).ends_with("Connection: keep-alive\r\n\r\n"));
}

#[test]
fn response_te_wins_over_content_length() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    let out = rewrite_response(
        raw,
        ResponseRewrite {
            connection: ClientConnection::Close,
            set_cookie: None,
            hsts: None,
        },
    );
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn response_switching_protocols_keeps_upgrade() {
    let raw = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n";
    let out = rewrite_response(
        raw,
        ResponseRewrite {
            connection: ClientConnection::Upgrade,
            set_cookie: None,
            hsts: None,
        },
    );
    assert_eq!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\nConnection: upgrade\r\n\r\n"
    );
}

#[test]
fn request_ids_are_distinct_hex() {
    let mut ids = RequestIds::new(42);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let id = ids.next_id();
        assert!(id.iter().all(|b| b.is_ascii_hexdigit()));
        assert!(seen.insert(id));
    }
}

#[test]
fn decimals() {
    for n in [0, 7, 10, 12345, u64::MAX] {
        let mut out = Vec::new();
        write_decimal(&mut out, n);
        assert_eq!(out, n.to_string().into_bytes());
    }
}

/// Rows found by the differential run against HAProxy and nginx
/// (`e2e/src/bin/differential`): what reaches the backend.
#[test]
fn end_to_end_fields_survive_and_framing_is_normalised() {
    let cases: &[(&[u8], &[&str], &[&str])] = &[
        // Host is end-to-end: a `Connection` listing must not strip it
        // (RFC 9110 §7.6.1), or the backend gets an HTTP/1.1 request without Host.
        (b"GET / HTTP/1.1\r\nHost: a.com\r\nConnection: Host\r\n\r\n", &["Host: a.com\r\n"], &[]),
        // Absolute form: Host comes from the target (RFC 9112 §3.2.2), once.
        (
            b"GET http://b.test/p HTTP/1.1\r\nHost: a.com\r\n\r\n",
            &["GET http://b.test/p HTTP/1.1\r\nHost: b.test\r\n"],
            &["a.com"],
        ),
        (
            b"GET http://B.test:81/p HTTP/1.1\r\nHost: b.test:81\r\nConnection: Host\r\n\r\n",
            &["Host: B.test:81\r\n"],
            &["Host: b.test:81"],
        ),
        // One clean Transfer-Encoding whatever the spelling and list shape.
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , CHUNKED\r\n\r\n",
            &["Transfer-Encoding: chunked\r\n"],
            &["CHUNKED"],
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["Transfer-Encoding: chunked\r\n"],
            &[],
        ),
    ];
    for (raw, present, absent) in cases {
        let out = rewrite_request(raw, None);
        for part in *present {
            assert!(out.contains(part), "{part:?} not in {out:?}");
        }
        for part in *absent {
            assert!(!out.contains(part), "{part:?} in {out:?}");
        }
        assert_eq!(out.matches("Host:").count(), 1, "{out:?}");
        assert!(out.matches("Transfer-Encoding:").count() <= 1, "{out:?}");
    }
}

#[test]
fn response_framing_fields_survive_a_connection_listing() {
    let out = rewrite_response(
        b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
        ResponseRewrite {
            connection: ClientConnection::KeepAlive,
            set_cookie: None,
            hsts: None,
        },
    );
    assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out:?}");
}
