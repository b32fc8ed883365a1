//! Tests of the e2e infrastructure itself: if a mock misbehaves, every e2e
//! test built on it proves nothing.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_e2e::wait::port_accepts;
use sluice_e2e::*;

const DEADLINE: Duration = Duration::from_secs(5);

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream
}

#[test]
fn the_port_registry_never_repeats_a_port() {
    let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
    let unique: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(unique.len(), ports.len());
    assert!(free_addr().ip().is_loopback());
}

#[test]
#[should_panic(expected = "timed out after 0.1s waiting for the impossible")]
fn a_failed_wait_says_what_it_waited_for() {
    wait_until("the impossible", Duration::from_millis(100), || false);
}

#[test]
fn the_echo_server_echoes_counts_stops_and_restarts() {
    let addr = free_addr();
    let mut server = TcpEchoServer::start(addr).expect("start");
    let mut client = connect(addr);
    client.write_all(b"ping").unwrap();
    let mut answer = [0; 4];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"ping");
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.active_connections(), 1);

    server.stop();
    let mut rest = Vec::new();
    let closed = client
        .read_to_end(&mut rest)
        .map(|n| n == 0)
        .unwrap_or(true);
    assert!(closed, "stop must close open connections");
    assert!(!port_accepts(addr));
    assert_eq!(server.active_connections(), 0);

    server.restart().expect("restart on the same port");
    wait_for_port(addr, DEADLINE);
    let mut client = connect(addr);
    client.write_all(b"again").unwrap();
    let mut answer = [0; 5];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"again");
    drop(client);
    wait_until("the echo connections to end", DEADLINE, || {
        server.active_connections() == 0
    });
    // The probe of wait_for_port counts too.
    assert_eq!(server.connections_accepted(), 3);
}

#[test]
fn the_named_server_greets_with_its_name() {
    let addr = free_addr();
    let server = TcpNamedServer::start(addr, "b1").expect("start");
    let mut client = connect(addr);
    let mut name = [0; 2];
    client.read_exact(&mut name).unwrap();
    assert_eq!(&name, b"b1");
    client.write_all(b"x").unwrap();
    client.read_exact(&mut name[..1]).unwrap();
    assert_eq!(name[0], b'x');
    assert_eq!(server.name(), "b1");
}

#[test]
fn wait_for_port_closed_sees_a_stopped_server() {
    let addr = free_addr();
    let mut server = TcpEchoServer::start(addr).expect("start");
    wait_for_port(addr, DEADLINE);
    server.stop();
    wait_for_port_closed(addr, DEADLINE);
}

#[test]
fn the_http_mock_names_itself_and_keeps_connections_alive() {
    let addr = free_addr();
    let server = MockHttpServer::start(addr, "web1").expect("start");
    let mut conn = HttpConn::connect(addr).unwrap();
    for path in ["/a", "/b?x=1"] {
        let response = conn.get("example.com", path).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), "backend: web1\n");
        assert_eq!(response.header("x-backend"), Some("web1"));
    }
    assert_eq!(server.connections_accepted(), 1);
    let seen = server.requests_seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/b?x=1");
    assert_eq!(seen[1].path_only(), "/b");
    assert_eq!(seen[1].header("host"), Some("example.com"));
}

#[test]
fn the_http_mock_closes_when_asked() {
    let addr = free_addr();
    let _server = MockHttpServer::start(addr, "web1").expect("start");
    let mut conn = HttpConn::connect(addr).unwrap();
    let response = conn
        .request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(response.closes_connection());
    assert!(conn.is_closed_by_peer(DEADLINE));

    let mut conn = HttpConn::connect(addr).unwrap();
    let response = conn.request(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(response.status, 200);
    assert!(
        conn.is_closed_by_peer(DEADLINE),
        "HTTP/1.0 closes by default"
    );
}

#[test]
fn request_bodies_are_read_with_both_framings() {
    let addr = free_addr();
    let server = MockHttpServer::start(addr, "web1").expect("start");
    let mut conn = HttpConn::connect(addr).unwrap();
    let sized = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(conn.request(sized).unwrap().status, 200);
    let chunked = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n4;ext\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n";
    assert_eq!(conn.request(chunked).unwrap().status, 200);
    let expect =
        b"PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    conn.send(expect).unwrap();
    conn.send(b"ok").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);

    let seen = server.requests_seen();
    let bodies: Vec<(&str, u64, &[u8])> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.body_len, r.body.as_slice()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            ("POST", 5, &b"hello"[..]),
            ("POST", 7, b"abcdefg"),
            ("PUT", 2, b"ok")
        ]
    );
}

#[test]
fn handlers_script_status_headers_and_chunked_bodies() {
    let addr = free_addr();
    let server = MockHttpServer::start(addr, "web1").expect("start");
    server.set_handler("/teapot", |_| {
        MockResponse::new(418, "short and stout")
            .header("X-Kind", "teapot")
            .chunked()
    });
    server.set_default_handler(|request| MockResponse::new(404, format!("no {}", request.path)));
    let teapot = http_get(addr, "a", "/teapot?q").unwrap();
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.header("transfer-encoding"), Some("chunked"));
    assert_eq!(teapot.header("x-kind"), Some("teapot"));
    assert_eq!(teapot.body_text(), "short and stout");
    let other = http_get(addr, "a", "/nope").unwrap();
    assert_eq!(
        (other.status, other.body_text().as_str()),
        (404, "no /nope")
    );
}

#[test]
fn head_answers_have_a_length_but_no_body() {
    let addr = free_addr();
    let _server = MockHttpServer::start(addr, "web1").expect("start");
    let mut conn = HttpConn::connect(addr).unwrap();
    conn.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let head = conn.read_head_response().unwrap();
    assert_eq!(head.header("content-length"), Some("14"));
    assert!(head.body.is_empty());
    assert_eq!(conn.get("a", "/").unwrap().body_text(), "backend: web1\n");
}

#[test]
fn the_health_status_switches_at_runtime() {
    let addr = free_addr();
    let server = MockHttpServer::start(addr, "web1").expect("start");
    assert_eq!(http_get(addr, "a", "/health").unwrap().status, 200);
    server.set_health_status(500);
    assert_eq!(http_get(addr, "a", "/health").unwrap().status, 500);
}

#[test]
fn broken_responses_are_seen_as_errors_by_the_client() {
    let addr = free_addr();
    let server = MockHttpServer::start(addr, "web1").expect("start");
    let body = vec![b'x'; 100_000];
    let cut_body = body.clone();
    server.set_handler("/cut", |_| {
        MockResponse::new(200, "promised").close_after_head()
    });
    server.set_handler("/reset", move |_| {
        MockResponse::new(200, cut_body.clone()).reset_mid_body()
    });
    assert!(http_get(addr, "a", "/cut").is_err());
    assert!(http_get(addr, "a", "/reset").is_err());
}

#[test]
fn a_delayed_response_is_late_and_a_stop_abandons_it() {
    let addr = free_addr();
    let mut server = MockHttpServer::start(addr, "web1").expect("start");
    server.set_handler("/slow", |_| {
        MockResponse::new(200, "late").delay(Duration::from_millis(300))
    });
    let start = Instant::now();
    assert_eq!(http_get(addr, "a", "/slow").unwrap().body_text(), "late");
    assert!(start.elapsed() >= Duration::from_millis(300));

    server.set_handler("/slow", |_| {
        MockResponse::new(200, "never").delay(Duration::from_secs(60))
    });
    let mut conn = HttpConn::connect(addr).unwrap();
    conn.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    wait_until("the slow request to arrive", DEADLINE, || {
        server.request_count() == 2
    });
    let start = Instant::now();
    server.stop();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "stop waits for no delay"
    );
    assert!(conn.read_response().is_err());
}

#[test]
fn malformed_requests_get_400_and_a_close() {
    let addr = free_addr();
    let server = MockHttpServer::start(addr, "web1").expect("start");
    let smuggle = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\
                    Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
    let bytes = raw_exchange(addr, smuggle, DEADLINE).unwrap();
    let responses = parse_responses(&bytes);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(responses[0].status, 400);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn raw_exchange_returns_every_pipelined_answer() {
    let addr = free_addr();
    let _server = MockHttpServer::start(addr, "web1").expect("start");
    let two = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let bytes = raw_exchange(addr, two, DEADLINE).unwrap();
    let statuses: Vec<u16> = parse_responses(&bytes).iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200]);
}

#[test]
fn a_child_guard_kills_its_process_on_drop() {
    let mut command = Command::new("sleep");
    command.arg("30");
    let guard = ChildGuard::spawn(command, "sleeper").expect("spawn sleep");
    let pid = guard.pid();
    assert!(guard.rss_kib().unwrap() > 0);
    guard.cpu_ticks().unwrap();
    drop(guard);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the process was killed and reaped"
    );
}

#[test]
fn a_child_guard_signals_waits_and_keeps_logs() {
    use std::os::unix::process::ExitStatusExt;
    let mut command = Command::new("sh");
    command.args(["-c", "echo to-out; echo to-err >&2; exec sleep 30"]);
    let mut guard = ChildGuard::spawn(command, "talker").expect("spawn sh");
    wait_until("the child's output", DEADLINE, || {
        guard.logs().contains("to-err")
    });
    assert!(guard.wait_exit(Duration::from_millis(50)).is_none());
    guard.send_signal(libc::SIGTERM).unwrap();
    let status = guard.wait_exit(DEADLINE).expect("exit after SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let logs = guard.logs();
    assert!(logs.contains("to-out") && logs.contains("to-err"), "{logs}");
}

#[test]
fn an_inherited_descriptor_reaches_only_the_child() {
    use std::os::unix::net::UnixStream;
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut command = Command::new("sh");
    command.args(["-c", "echo through-fd-5 >&5"]);
    process::inherit_fd(&mut command, &theirs, 5);
    let mut guard = ChildGuard::spawn(command, "fd-writer").expect("spawn sh");
    drop(theirs);
    guard.wait_exit(DEADLINE).expect("sh exits");
    let mut ours = ours;
    ours.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = String::new();
    // Reading to the end also proves no other copy of the descriptor is open.
    ours.read_to_string(&mut got).unwrap();
    assert_eq!(got, "through-fd-5\n");
}
