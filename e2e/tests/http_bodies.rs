//! Bodies through the real worker: Content-Length and chunked (with
//! trailers) both ways, `Expect: 100-continue`, bodiless responses, and real
//! `curl` runs.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{mock, raw_backend, read_head, read_until, Proxy, HOST};
use sluice_e2e::{raw_exchange, HttpConn, MockResponse};

#[test]
fn content_length_bodies_both_ways() {
    let backend = mock("app");
    backend.set_default_handler(|r| {
        MockResponse::new(200, r.body.iter().rev().copied().collect::<Vec<u8>>())
    });
    let proxy = Proxy::to(&[backend.addr()]);
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut request = format!(
        "PUT /up HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let response = conn.request(&request).expect("response");
    assert_eq!(response.status, 200);
    let reversed: Vec<u8> = body.iter().rev().copied().collect();
    assert_eq!(response.body, reversed);
    assert_eq!(backend.requests_seen()[0].body_len, body.len() as u64);
    // Same connection, again: the framing left nothing behind.
    let again = conn.get(HOST, "/next").expect("second response");
    assert_eq!(again.status, 200);
}

#[test]
fn chunked_bodies_with_trailers_pass_both_ways() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let backend = raw_backend(move |mut stream| {
        let Some(head) = read_head(&mut stream) else {
            return;
        };
        let body = read_until(&mut stream, b"0\r\nX-Check: 1\r\n\r\n");
        record.lock().unwrap().push((head, body));
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
        );
        let _ = read_head(&mut stream);
    });
    let proxy = Proxy::to(&[backend.addr()]);
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    conn.send(
        format!(
            "POST /c HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Check: 1\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("send");
    let mut raw = Vec::new();
    conn.socket()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut socket = conn.socket().try_clone().unwrap();
    while !raw.ends_with(b"X-Sum: 42\r\n\r\n") {
        let mut buf = [0u8; 4096];
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"),
        "{text}"
    );
    let seen = seen.lock().unwrap();
    let (head, body) = &seen[0];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(body, b"3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Check: 1\r\n\r\n");
}

#[test]
fn expect_100_continue_is_relayed() {
    let backend = mock("app");
    let proxy = Proxy::to(&[backend.addr()]);
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    conn.send(
        format!(
            "POST /e HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("head");
    let mut socket = conn.socket().try_clone().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let interim = read_until(&mut socket, b"\r\n\r\n");
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    conn.send(b"hello").expect("body");
    let response = conn.read_response().expect("final response");
    assert_eq!(response.status, 200);
    assert_eq!(backend.requests_seen()[0].body, b"hello");
}

#[test]
fn bodiless_responses_carry_no_body() {
    let backend = raw_backend(|mut stream| {
        while let Some(head) = read_head(&mut stream) {
            let text = String::from_utf8_lossy(&head).into_owned();
            let answer: &[u8] = if text.starts_with("HEAD") {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
            } else if text.contains("/204") {
                b"HTTP/1.1 204 No Content\r\n\r\n"
            } else if text.contains("/304") {
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n"
            } else if text.contains("/103") {
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast"
            };
            if stream.write_all(answer).is_err() {
                return;
            }
        }
    });
    let proxy = Proxy::to(&[backend.addr()]);
    let requests = format!(
        "HEAD /h HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /204 HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         GET /304 HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /103 HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         GET /end HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    );
    let raw =
        raw_exchange(proxy.listen, requests.as_bytes(), Duration::from_secs(5)).expect("exchange");
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(
        statuses,
        ["200", "204", "304", "103", "200", "200"],
        "{text}"
    );
    // Nothing between the heads but the final bodies: "ok" and "last".
    assert!(text.ends_with("\r\n\r\nlast"), "{text}");
    assert!(text.contains("\r\n\r\nokHTTP/1.1 200"), "{text}");
    let body_bytes: usize = text
        .split("\r\n\r\n")
        .skip(1)
        .map(|part| part.find("HTTP/1.1").unwrap_or(part.len()))
        .sum();
    assert_eq!(body_bytes, "ok".len() + "last".len(), "{text}");
}

fn curl(args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn curl_get_post_http10_and_expect_variants() {
    let backend = mock("app");
    backend.set_default_handler(|r| {
        MockResponse::new(
            200,
            format!(
                "{} {} 1.{} {}",
                r.method, r.path, r.minor_version, r.body_len
            ),
        )
    });
    let proxy = Proxy::to(&[backend.addr()]);
    let url = format!("http://{HOST}:{}/c", proxy.listen.port());
    let resolve = format!("{HOST}:{}:127.0.0.1", proxy.listen.port());
    let (out, _) = curl(&["--resolve", &resolve, &url]);
    assert_eq!(out, "GET /c 1.1 0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    let body: Vec<u8> = (0..100 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let (out, _) = curl(&["--resolve", &resolve, "-d", &data, &url]);
    assert_eq!(out, format!("POST /c 1.1 {}", body.len()));
    assert_eq!(backend.requests_seen()[1].body[..], body[..]);
    // curl sends Expect: 100-continue on large bodies; -H 'Expect:' removes it.
    let (out, _) = curl(&["--resolve", &resolve, "-H", "Expect:", "-d", &data, &url]);
    assert_eq!(out, format!("POST /c 1.1 {}", body.len()));
    let (out, _) = curl(&[
        "--resolve",
        &resolve,
        "-H",
        "Expect: 100-continue",
        "-d",
        &data,
        &url,
    ]);
    assert_eq!(out, format!("POST /c 1.1 {}", body.len()));
    let (out, _) = curl(&["--resolve", &resolve, "--http1.0", &url]);
    assert_eq!(out, "GET /c 1.0 0");
    let (out, _) = curl(&["--resolve", &resolve, "--http1.0", "-d", &data, &url]);
    assert_eq!(out, format!("POST /c 1.0 {}", body.len()));
    // Two URLs on one curl: the connection is reused.
    let (out, err) = curl(&["-v", "--resolve", &resolve, &url, &url]);
    assert_eq!(out, "GET /c 1.1 0GET /c 1.1 0");
    assert!(
        err.contains("Re-using existing connection") || err.contains("Reusing existing"),
        "{err}"
    );
}
