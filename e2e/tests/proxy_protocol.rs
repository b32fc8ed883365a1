//! Listeners with `expect_proxy`, end to end: a real `sluice worker`, clients that
//! start their connections with a PROXY protocol header (v1 or v2, whole or split),
//! and what the backends see.

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sluice_command::proto::{
    self, request::RequestType, response_content::ContentType, ListenerProtocol,
};
use sluice_e2e::tcp_client::{connect, expect_closed_within, expect_echo};
use sluice_e2e::*;

const HOST: &str = "example.com";
/// How long the worker has to close a connection it refuses.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// A pause between the pieces of a split header, so they leave as separate segments
/// (pacing, not synchronisation: the test passes however they are grouped).
const PIECE_PAUSE: Duration = Duration::from_millis(20);

/// A version 2 PROXY header (command PROXY) for TCP from `source` to `destination`.
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    let mut payload = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            header.push(0x11);
            payload.extend_from_slice(&s.ip().octets());
            payload.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            header.push(0x21);
            payload.extend_from_slice(&s.ip().octets());
            payload.extend_from_slice(&d.ip().octets());
        }
        _ => panic!("mixed address families in a test header"),
    }
    payload.extend_from_slice(&source.port().to_be_bytes());
    payload.extend_from_slice(&destination.port().to_be_bytes());
    // A TLV (unique id), which the worker must skip.
    payload.extend_from_slice(&[0x05, 0x00, 0x02, 0xab, 0xcd]);
    let len = u16::try_from(payload.len()).expect("small payload");
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&payload);
    header
}

fn get_request() -> Vec<u8> {
    format!("GET /who HTTP/1.1\r\nHost: {HOST}\r\n\r\n").into_bytes()
}

/// A worker with an HTTP listener that expects PROXY headers, routing to `backend`.
fn http_proxy(backend: SocketAddr) -> (WorkerHarness, SocketAddr) {
    let mut worker = WorkerHarness::start(1);
    let listen = free_addr();
    worker.expect_ok(&requests::add_cluster("app", ListenerProtocol::Http));
    worker.expect_ok(&requests::add_backend("app", backend));
    worker.expect_ok(&requests::add_http_listener_expecting_proxy(listen, true));
    worker.expect_ok(&requests::add_http_frontend(listen, HOST, "/", "app"));
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Http));
    worker.wait_for_listener(listen);
    (worker, listen)
}

/// Sends `pieces` one write each on a fresh connection, then reads one response.
fn exchange_in_pieces(listen: SocketAddr, pieces: &[&[u8]]) -> HttpResponse {
    let mut conn = HttpConn::connect(listen).expect("connect to the proxy");
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(PIECE_PAUSE);
        }
        conn.send(piece).expect("send a piece");
    }
    conn.read_response().expect("a response")
}

fn forwarded_for(backend: &MockHttpServer) -> Vec<String> {
    let seen = backend.requests_seen();
    let request = seen.last().expect("the backend saw a request");
    request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, value)| value.clone())
        .collect()
}

fn proxy_protocol_errors(worker: &mut WorkerHarness) -> u64 {
    let response = worker.expect_ok(&requests::query_metrics());
    let Some(ContentType::WorkerMetrics(metrics)) = response.content.and_then(|c| c.content_type)
    else {
        panic!("QueryMetrics answered no worker metrics");
    };
    metrics
        .proxy
        .iter()
        .find(|value| value.name == "proxy_protocol_errors")
        .map(|value| value.value)
        .expect("a proxy_protocol_errors metric")
}

#[test]
fn a_v1_header_names_the_client_the_backend_sees() {
    let backend = MockHttpServer::start(free_addr(), "app").expect("start the backend");
    let (_worker, listen) = http_proxy(backend.addr());
    let mut bytes = b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 80\r\n".to_vec();
    bytes.extend_from_slice(&get_request());
    let response = exchange_in_pieces(listen, &[&bytes]);
    assert_eq!(response.status, 200);
    assert_eq!(forwarded_for(&backend), ["203.0.113.7"]);
    let seen = backend.requests_seen();
    let forwarded = seen[0].header("Forwarded").expect("a Forwarded header");
    assert!(forwarded.contains("for=203.0.113.7"), "{forwarded}");
}

#[test]
fn a_v2_header_names_the_client_the_backend_sees() {
    let backend = MockHttpServer::start(free_addr(), "app").expect("start the backend");
    let (_worker, listen) = http_proxy(backend.addr());
    let source = SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).into(), 4000);
    let destination = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port());
    let mut bytes = v2_header(source, destination);
    bytes.extend_from_slice(&get_request());
    let response = exchange_in_pieces(listen, &[&bytes]);
    assert_eq!(response.status, 200);
    assert_eq!(forwarded_for(&backend), ["2001:db8::7"]);
}

#[test]
fn a_header_split_over_several_writes_is_read_whole() {
    let backend = MockHttpServer::start(free_addr(), "app").expect("start the backend");
    let (_worker, listen) = http_proxy(backend.addr());
    let request = get_request();
    let response = exchange_in_pieces(
        listen,
        &[
            b"PRO",
            b"XY TCP4 203.0.113.8 ",
            b"198.51.100.1 1234 80\r",
            b"\n",
            &request[..5],
            &request[5..],
        ],
    );
    assert_eq!(response.status, 200);
    assert_eq!(forwarded_for(&backend), ["203.0.113.8"]);

    let source: SocketAddr = "192.0.2.9:5555".parse().expect("address");
    let mut v2 = v2_header(source, listen);
    v2.extend_from_slice(&request);
    let response = exchange_in_pieces(listen, &[&v2[..7], &v2[7..15], &v2[15..20], &v2[20..]]);
    assert_eq!(response.status, 200);
    assert_eq!(forwarded_for(&backend), ["192.0.2.9"]);
}

#[test]
fn a_connection_without_header_is_closed_without_answer() {
    let backend = MockHttpServer::start(free_addr(), "app").expect("start the backend");
    let (mut worker, listen) = http_proxy(backend.addr());
    let errors_before = proxy_protocol_errors(&mut worker);
    let mut client = connect(listen);
    client.write_all(&get_request()).expect("send a request");
    expect_closed_within(&mut client, CLOSE_WITHIN);
    assert_eq!(backend.request_count(), 0);
    let counted = wait::poll_until(CLOSE_WITHIN, || {
        proxy_protocol_errors(&mut worker) > errors_before
    });
    assert!(counted, "the refused connection was not counted");
}

#[test]
fn a_client_that_never_sends_its_header_is_closed_at_the_request_timeout() {
    let mut worker = WorkerHarness::start(1);
    let listen = free_addr();
    let mut timeouts = requests::default_timeouts();
    timeouts.request_timeout_ms = 300;
    worker.expect_ok(&proto::Request {
        request_type: Some(RequestType::AddHttpListener(proto::HttpListener {
            tls: None,
            address: listen.to_string(),
            timeouts,
            answers: Vec::new(),
            expect_proxy: true,
            sticky_cookie_name: None,
            max_request_body: None,
        })),
    });
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Http));
    worker.wait_for_listener(listen);
    let start = Instant::now();
    let mut client = connect(listen);
    client
        .write_all(b"PROXY TCP4 ")
        .expect("send half a header");
    expect_closed_within(&mut client, CLOSE_WITHIN);
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "closed after {:?}, before the request timeout",
        start.elapsed()
    );
}

#[test]
fn a_tcp_listener_passes_the_bytes_after_a_v2_header_intact() {
    let echo = TcpEchoServer::start(free_addr()).expect("start the echo backend");
    let mut worker = WorkerHarness::start(1);
    let listen = free_addr();
    worker.expect_ok(&requests::add_cluster("echo", ListenerProtocol::Tcp));
    worker.expect_ok(&requests::add_backend("echo", echo.addr()));
    worker.expect_ok(&requests::add_tcp_listener_expecting_proxy(listen, true));
    worker.expect_ok(&requests::add_tcp_frontend(listen, "echo"));
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Tcp));
    worker.wait_for_listener(listen);

    let source: SocketAddr = "192.0.2.1:1000".parse().expect("address");
    let mut client: TcpStream = connect(listen);
    let first: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut bytes = v2_header(source, listen);
    bytes.extend_from_slice(&first);
    client.write_all(&bytes).expect("send header and data");
    let mut echoed = vec![0; first.len()];
    client
        .read_exact(&mut echoed)
        .expect("the bytes after the header, echoed");
    assert_eq!(echoed, first);
    let more: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 253) as u8).collect();
    expect_echo(&mut client, &more);

    // Without a header, the TCP listener closes without reaching the backend.
    let mut plain = connect(listen);
    plain.write_all(b"hello").expect("send");
    expect_closed_within(&mut plain, CLOSE_WITHIN);
}
