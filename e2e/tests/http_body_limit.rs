//! The HTTP listener's `max_request_body` through the real worker: 413 and a
//! closed connection; nothing at the backend when the Content-Length is over
//! the limit, a dropped backend connection when a chunked body crosses it.

mod common;

use std::time::Duration;

use common::{mock, Proxy, HOST};
use sluice_command::proto::ListenerProtocol;
use sluice_e2e::{free_addr, parse_responses, raw_exchange, requests, WorkerHarness};

const WAIT: Duration = Duration::from_secs(5);
/// The listener's limit in these tests.
const LIMIT: u64 = 1024;

/// A worker whose listener accepts bodies of at most [`LIMIT`] bytes and
/// routes [`HOST`] to `backend`.
fn limited_proxy(backend: std::net::SocketAddr) -> Proxy {
    let mut worker = WorkerHarness::start(1);
    let listen = free_addr();
    worker.expect_ok(&requests::add_cluster("app", ListenerProtocol::Http));
    worker.expect_ok(&requests::add_backend("app", backend));
    worker.expect_ok(&requests::add_http_listener_with_body_limit(listen, LIMIT));
    worker.expect_ok(&requests::add_http_frontend(listen, HOST, "/", "app"));
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Http));
    worker.wait_for_listener(listen);
    Proxy { worker, listen }
}

/// The statuses answered to `bytes` sent on one connection, which must close.
fn statuses_of(proxy: &Proxy, bytes: &[u8]) -> Vec<u16> {
    let raw = raw_exchange(proxy.listen, bytes, WAIT).expect("exchange");
    let responses = parse_responses(&raw);
    if let Some(last) = responses.last() {
        assert!(
            last.status != 413 || last.closes_connection(),
            "a 413 closes: {}",
            String::from_utf8_lossy(&raw)
        );
    }
    responses.iter().map(|r| r.status).collect()
}

#[test]
fn a_content_length_over_the_limit_gets_413_and_never_reaches_the_backend() {
    let backend = mock("app");
    let mut proxy = limited_proxy(backend.addr());
    let over = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n{}",
        LIMIT + 1,
        "x".repeat(LIMIT as usize + 1)
    );
    assert_eq!(statuses_of(&proxy, over.as_bytes()), [413]);
    let expecting = format!(
        "PUT /upload HTTP/1.1\r\nHost: {HOST}\r\nExpect: 100-continue\r\n\
         Content-Length: 1073741824\r\n\r\n"
    );
    assert_eq!(
        statuses_of(&proxy, expecting.as_bytes()),
        [413],
        "no 100 Continue before the 413"
    );
    assert_eq!(
        backend.requests_seen(),
        [],
        "a refused request reached the backend"
    );
    assert_eq!(
        backend.connections_accepted(),
        0,
        "a backend connection was opened"
    );
    proxy.wait_no_sessions();
}

#[test]
fn bodies_at_the_limit_pass_and_a_chunked_body_over_it_gets_413() {
    let backend = mock("app");
    let mut proxy = limited_proxy(backend.addr());
    let at_limit = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Length: {LIMIT}\r\n\r\n{}",
        "x".repeat(LIMIT as usize)
    );
    assert_eq!(statuses_of(&proxy, at_limit.as_bytes()), [200]);
    let seen = backend.requests_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body_len, LIMIT);

    let half = "y".repeat(LIMIT as usize / 2 + 1);
    let chunked = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n\
         {len:x}\r\n{half}\r\n{len:x}\r\n{half}\r\n0\r\n\r\n",
        len = half.len()
    );
    assert_eq!(statuses_of(&proxy, chunked.as_bytes()), [413]);
    assert_eq!(
        backend.requests_seen().len(),
        1,
        "the chunked body never completed"
    );
    proxy.wait_no_sessions();
}
