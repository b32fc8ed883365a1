//! The access log: one line per request, with the request's id, to the configured file.

mod common;

use std::time::Duration;

use common::http::{http_config, mock, Route};
use common::{wait_until, Sluice};
use sluice_e2e::{free_addr, HttpConn};

#[test]
fn each_request_gets_one_line_with_its_timings_and_id() {
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
        .request(b"GET /kept?q=1 HTTP/1.1\r\nHost: site.test\r\nSluice-Request-Id: abc-123\r\n\r\n")
        .expect("a response");
    assert_eq!(kept.status, 200);
    // On the same connection: the earlier request's cluster is not this one's.
    let unrouted = conn
        .request(b"GET /x HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n")
        .expect("a response");
    assert_eq!(unrouted.status, 404);
    // The client closes after this one: the backend connection goes back to the pool
    // before the line is written, and the line still names the backend.
    let mut conn = HttpConn::connect(listener).expect("connect");
    let generated = conn
        .request(b"POST /made HTTP/1.1\r\nHost: site.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .expect("a response");
    assert_eq!(generated.status, 200);

    let path = sluice.config_path().with_file_name("access.log");
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    wait_until("three access-log lines", Duration::from_secs(10), || {
        read().lines().count() >= 3
    });
    let text = read();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    for fields in &lines {
        assert_eq!(fields.len(), 13, "{fields:?}");
        assert_eq!(fields[0], "127.0.0.1");
    }
    let address = backend.addr().to_string();
    let first = &lines[0];
    assert_eq!(
        &first[1..7],
        ["GET", "site.test", "/kept", "200", "site", address.as_str()]
    );
    assert_eq!(first[12], "abc-123", "the client's id is kept: {text}");
    let second = &lines[2];
    assert_eq!(
        &second[1..7],
        [
            "POST",
            "site.test",
            "/made",
            "200",
            "site",
            address.as_str()
        ]
    );
    // The id in the log is the one the backend received.
    let seen = backend.requests_seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("sluice-request-id"),
        Some(second[12]),
        "{text}"
    );
    assert_eq!(second[12].len(), 16, "a generated id: {text}");
    let third = &lines[1];
    assert_eq!(
        &third[1..7],
        ["GET", "elsewhere.test", "/x", "404", "-", "-"]
    );
    assert_eq!(third[12], "-", "an unrouted request has no id: {text}");
}
