//! The access log: one line per request (finished or not), with its time, its
//! request id, who ended it and the backend's id, as text or JSON, to the
//! configured file.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::http::{http_config, mock, Route};
use common::{wait_until, Sluice};
use serde_json::Value;
use sluice_e2e::{free_addr, HttpConn};

/// Waits for `count` lines in the access log next to `sluice`'s config.
fn access_log_lines(sluice: &Sluice, count: usize) -> Vec<String> {
    let path = sluice.config_path().with_file_name("access.log");
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    wait_until(
        &format!("{count} access-log lines"),
        Duration::from_secs(10),
        || read().lines().count() >= count,
    );
    read().lines().map(str::to_owned).collect()
}

fn is_rfc3339_millis(time: &str) -> bool {
    time.len() == 24
        && time.ends_with('Z')
        && time.as_bytes()[10] == b'T'
        && time.as_bytes()[19] == b'.'
}

#[test]
fn each_request_gets_one_text_line_with_its_time_termination_and_id() {
    let backend = mock("logged");
    let listener = free_addr();
    let config = http_config(
        1,
        listener,
        &[Route::new("site", "site.test", &[backend.addr()])],
    )
    .replace("access_log = \"off\"", "access_log = \"access.log\"");
    let sluice = Sluice::start(&config);
    let mut conn = HttpConn::connect(listener).expect("connect");
    let kept = conn
        .request(
            b"GET /kept?q=1 HTTP/1.1\r\nHost: site.test\r\nSluice-Request-Id: abc-123\r\n\
              User-Agent: probe/1.0 (\"test\")\r\n\r\n",
        )
        .expect("a response");
    assert_eq!(kept.status, 200);
    // On the same connection: the earlier request's cluster is not this one's.
    let unrouted = conn
        .request(b"GET /x HTTP/1.0\r\nHost: elsewhere.test\r\nConnection: keep-alive\r\n\r\n")
        .expect("a response");
    assert_eq!(unrouted.status, 404);
    // The client closes after this one: the backend connection goes back to the pool
    // before the line is written, and the line still names the backend.
    let mut conn = HttpConn::connect(listener).expect("connect");
    let request = b"POST /made HTTP/1.1\r\nHost: site.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    let generated = conn.request(request).expect("a response");
    assert_eq!(generated.status, 200);

    let lines = access_log_lines(&sluice, 3);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    // time client method host path version status termination cluster backend_id
    // backend_address bytes_in bytes_out connect_ms response_ms total_ms request_id "ua"
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.splitn(18, ' ').collect()).collect();
    for line in &fields {
        assert_eq!(line.len(), 18, "{line:?}");
        assert!(is_rfc3339_millis(line[0]), "{line:?}");
        assert!(line[1].starts_with("127.0.0.1:"), "client port: {line:?}");
    }
    let address = backend.addr().to_string();
    let first = &fields[0];
    assert_eq!(
        &first[2..11],
        [
            "GET",
            "site.test",
            "/kept",
            "HTTP/1.1",
            "200",
            "complete",
            "site",
            address.as_str(),
            address.as_str()
        ]
    );
    assert_eq!(first[16], "abc-123", "the client's id is kept: {lines:#?}");
    assert_eq!(first[17], "\"probe/1.0 (\\x22test\\x22)\"");
    let third = &fields[2];
    assert_eq!(
        &third[2..9],
        [
            "POST",
            "site.test",
            "/made",
            "HTTP/1.1",
            "200",
            "complete",
            "site"
        ]
    );
    assert_eq!(
        third[11],
        request.len().to_string(),
        "bytes_in counts the client's bytes"
    );
    // The id in the log is the one the backend received.
    let seen = backend.requests_seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("sluice-request-id"), Some(third[16]));
    assert_eq!(third[16].len(), 16, "a generated id: {lines:#?}");
    assert_eq!(third[17], "\"\"", "no user agent");
    let second = &fields[1];
    assert_eq!(
        &second[2..11],
        [
            "GET",
            "elsewhere.test",
            "/x",
            "HTTP/1.0",
            "404",
            "answered",
            "-",
            "-",
            "-"
        ]
    );
    assert_eq!(second[16], "-", "an unrouted request has no id");
}

#[test]
fn json_lines_say_who_ended_each_exchange() {
    let backend = mock("logged");
    let listener = free_addr();
    let config = http_config(
        1,
        listener,
        &[Route::new("site", "site.test", &[backend.addr()])],
    )
    .replace(
        "access_log = \"off\"",
        "access_log = \"access.log\"\naccess_log_format = \"json\"",
    );
    let sluice = Sluice::start(&config);
    let mut conn = HttpConn::connect(listener).expect("connect");
    let ok = conn
        .request(b"GET /ok HTTP/1.1\r\nHost: site.test\r\nUser-Agent: curl/8.5.0\r\n\r\n")
        .expect("a response");
    assert_eq!(ok.status, 200);
    // A client that leaves in the middle of its request body.
    let mut leaving = TcpStream::connect(listener).expect("connect");
    leaving
        .write_all(b"POST /upload HTTP/1.1\r\nHost: site.test\r\nContent-Length: 100\r\n\r\nabc")
        .expect("send");
    std::thread::sleep(Duration::from_millis(200));
    drop(leaving);

    let lines = access_log_lines(&sluice, 2);
    let documents: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let ok = &documents[0];
    assert!(is_rfc3339_millis(ok["time"].as_str().unwrap_or("")), "{ok}");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["path"], "/ok");
    assert_eq!(ok["version"], "HTTP/1.1");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["termination"], "complete");
    assert_eq!(ok["cluster"], "site");
    assert_eq!(ok["backend"], backend.addr().to_string());
    assert_eq!(ok["user_agent"], "curl/8.5.0");
    assert!(ok["total_ms"].as_f64().is_some(), "{ok}");
    let aborted = &documents[1];
    assert_eq!(aborted["path"], "/upload", "{aborted}");
    assert_eq!(aborted["termination"], "client_abort", "{aborted}");
    assert_eq!(aborted["user_agent"], Value::Null);
}

/// A backend that switches protocols and then echoes what it reads, upper-cased.
fn upgrading_backend() -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                );
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[test]
fn an_upgrade_is_logged_when_its_pipe_closes_with_the_bytes_piped() {
    use std::io::Read;
    let backend = upgrading_backend();
    let listener = free_addr();
    let config = http_config(1, listener, &[Route::new("ws", "ws.test", &[backend])]).replace(
        "access_log = \"off\"",
        "access_log = \"access.log\"\naccess_log_format = \"json\"",
    );
    let sluice = Sluice::start(&config);
    let request =
        "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let mut client = TcpStream::connect(listener).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    client.write_all(request.as_bytes()).expect("send");
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.ends_with(b"\r\n\r\n") {
        let n = client.read(&mut buf).expect("the 101");
        assert!(n > 0, "closed before the 101");
        received.extend_from_slice(&buf[..n]);
    }
    let head_len = received.len();
    let payload = b"ping-pong-0123456789";
    client.write_all(payload).expect("send through the pipe");
    let mut echoed = Vec::new();
    while echoed.len() < payload.len() {
        let n = client.read(&mut buf).expect("the echo");
        assert!(n > 0, "closed before the echo");
        echoed.extend_from_slice(&buf[..n]);
    }
    assert_eq!(echoed, payload.to_ascii_uppercase());
    // Nothing is logged while the pipe is open: the line would not have its bytes.
    std::thread::sleep(Duration::from_millis(300));
    let path = sluice.config_path().with_file_name("access.log");
    let before_close = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(before_close, "", "logged before the pipe closed");
    drop(client);

    let lines = access_log_lines(&sluice, 1);
    let line: Value = serde_json::from_str(&lines[0]).expect("JSON");
    assert_eq!(line["status"], 101, "{line}");
    assert_eq!(line["termination"], "upgraded", "{line}");
    assert_eq!(line["path"], "/chat", "{line}");
    assert_eq!(
        line["bytes_in"],
        (request.len() + payload.len()) as u64,
        "{line}"
    );
    assert_eq!(
        line["bytes_out"],
        (head_len + payload.len()) as u64,
        "{line}"
    );
    assert_eq!(lines.len(), 1, "one line per upgrade: {lines:#?}");
}
