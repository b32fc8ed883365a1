//! The worker's TCP proxy end to end: a real `sluice worker`, driven over its
//! channel, real sockets on 127.0.0.1 and mock backends. Bytes both ways,
//! round robin, half-close, timeouts, `max_connections`, removed backends and
//! refused requests.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_command::proto::{self, EventKind, ListenerProtocol, Timeouts};
use sluice_e2e::tcp_client::{
    connect, expect_closed_within, expect_echo, peer_end_within, read_greeting, PeerEnd,
};
use sluice_e2e::*;
use socket2::{Domain, Socket, Type};

const DEADLINE: Duration = Duration::from_secs(10);
/// How long a test watches for something that must NOT happen.
const QUIET: Duration = Duration::from_millis(300);

fn named_backends(names: &[&str]) -> Vec<TcpNamedServer> {
    names
        .iter()
        .map(|name| TcpNamedServer::start(free_addr(), name).expect("start a named backend"))
        .collect()
}

fn addrs(backends: &[TcpNamedServer]) -> Vec<SocketAddr> {
    backends.iter().map(|b| b.addr()).collect()
}

/// Bytes that differ from position to position, so a shifted or truncated
/// echo is caught.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn sessions_drop_to(worker: &mut WorkerHarness, expected: u64) {
    let mut last = u64::MAX;
    let ok = wait::poll_until(DEADLINE, || {
        last = worker.sessions();
        last == expected
    });
    assert!(
        ok,
        "the worker still has {last} sessions, expected {expected}"
    );
}

#[test]
fn bytes_round_trip_through_three_backends_in_round_robin_order() {
    let backends = named_backends(&["b1", "b2", "b3"]);
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &addrs(&backends));

    let data = payload(100_000);
    let mut names = Vec::new();
    for _ in 0..9 {
        let mut client = connect(front);
        names.push(read_greeting(&mut client, 2));
        expect_echo(&mut client, &data);
    }
    let mut first_round = names[..3].to_vec();
    first_round.sort();
    assert_eq!(first_round, ["b1", "b2", "b3"], "picks: {names:?}");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(name, &names[i % 3], "not a round robin: {names:?}");
    }
    sessions_drop_to(&mut worker, 0);
}

#[test]
fn a_half_closed_client_still_receives_the_backends_answer() {
    // The backend answers only once it has seen the client's end of stream.
    let handler: mock_server::ConnectionHandler = Arc::new(|mut stream: TcpStream| {
        let mut request = Vec::new();
        if stream.read_to_end(&mut request).is_ok() {
            let _ = stream.write_all(format!("got {} bytes", request.len()).as_bytes());
        }
    });
    let backend = MockServer::start(free_addr(), handler).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);

    let mut client = connect(front);
    client.write_all(&payload(70_000)).expect("send");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = String::new();
    client.read_to_string(&mut answer).expect("read the answer");
    assert_eq!(answer, "got 70000 bytes");
    sessions_drop_to(&mut worker, 0);
}

#[test]
fn a_backend_that_half_closes_first_still_receives_the_client_bytes() {
    // The backend says its piece, ends its side, then counts what comes.
    let (counts, received) = std::sync::mpsc::channel();
    let counts = Mutex::new(counts);
    let handler: mock_server::ConnectionHandler = Arc::new(move |mut stream: TcpStream| {
        let _ = stream.write_all(b"hello, then silence");
        let _ = stream.shutdown(Shutdown::Write);
        let mut request = Vec::new();
        let outcome = stream.read_to_end(&mut request).map(|_| request.len());
        let _ = counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(outcome.map_err(|e| e.to_string()));
    });
    let backend = MockServer::start(free_addr(), handler).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);
    // The probe connection of the setup is counted too.
    let probe = received.recv_timeout(DEADLINE).expect("the probe's count");
    assert_eq!(probe, Ok(0));

    let mut client = connect(front);
    let mut greeting = String::new();
    client
        .read_to_string(&mut greeting)
        .expect("the backend's words");
    assert_eq!(greeting, "hello, then silence");
    client
        .write_all(&payload(50_000))
        .expect("send after the EOF");
    client.shutdown(Shutdown::Write).expect("half-close");
    let count = received
        .recv_timeout(DEADLINE)
        .expect("the backend's count");
    assert_eq!(count, Ok(50_000));
    expect_closed_within(&mut client, DEADLINE);
    sessions_drop_to(&mut worker, 0);
}

#[test]
fn a_client_reset_mid_stream_closes_the_session_and_the_backend_connection() {
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);
    wait_until("the probe's backend connection to close", DEADLINE, || {
        backend.active_connections() == 0
    });

    let mut client = connect(front);
    expect_echo(&mut client, b"before the reset");
    // Unread echo in flight, then a reset (linger 0).
    client.write_all(&payload(200_000)).expect("send");
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .expect("linger 0");
    drop(client);
    sessions_drop_to(&mut worker, 0);
    wait_until("the backend connection to close", DEADLINE, || {
        backend.active_connections() == 0
    });
    expect_echo(&mut connect(front), b"after the reset");
}

#[test]
fn an_idle_connection_is_closed_after_the_front_timeout() {
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    let timeouts = Timeouts {
        front_timeout_ms: 400,
        ..requests::default_timeouts()
    };
    worker.expect_ok(&requests::add_cluster("c1", ListenerProtocol::Tcp));
    worker.expect_ok(&requests::add_backend("c1", backend.addr()));
    worker.expect_ok(&requests::add_tcp_listener_with_timeouts(front, timeouts));
    worker.expect_ok(&requests::add_tcp_frontend(front, "c1"));
    worker.expect_ok(&requests::activate(front, ListenerProtocol::Tcp));
    worker.wait_for_listener(front);

    let mut client = connect(front);
    // Activity keeps the connection open past the timeout…
    for _ in 0..4 {
        expect_echo(&mut client, b"still here");
        assert_eq!(
            peer_end_within(&mut client, Duration::from_millis(150)),
            PeerEnd::Silent
        );
    }
    // …silence closes it.
    expect_echo(&mut client, b"last words");
    let idle_since = Instant::now();
    expect_closed_within(&mut client, DEADLINE);
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(300),
        "closed after only {idle:?}"
    );
    wait_until("the backend connection to close", DEADLINE, || {
        backend.active_connections() == 0
    });
    sessions_drop_to(&mut worker, 0);
}

/// A listener whose accept queue is full and never drained: Linux drops the
/// SYNs of further connects, which then neither succeed nor fail. The
/// returned streams fill the queue and must be kept alive.
fn black_hole() -> (Socket, SocketAddr, Vec<TcpStream>) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket
        .local_addr()
        .expect("local address")
        .as_socket()
        .expect("an IP address");
    let probe = Duration::from_millis(300);
    let mut fillers = Vec::new();
    // A backlog of 0 still queues one connection; keep connecting until one
    // hangs (then the queue is full).
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, probe) {
            Ok(stream) => fillers.push(stream),
            Err(_) => return (socket, addr, fillers),
        }
    }
    panic!("cannot fill the accept queue of {addr}: connects keep succeeding");
}

#[test]
fn a_connect_to_a_black_hole_times_out_and_goes_to_the_next_backend() {
    let (_hole, hole_addr, _fillers) = black_hole();
    let good = TcpNamedServer::start(free_addr(), "ok").expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    let timeouts = Timeouts {
        connect_timeout_ms: 500,
        ..requests::default_timeouts()
    };
    worker.expect_ok(&requests::add_cluster("c1", ListenerProtocol::Tcp));
    worker.expect_ok(&requests::add_backend("c1", hole_addr));
    worker.expect_ok(&requests::add_backend("c1", good.addr()));
    worker.expect_ok(&requests::add_tcp_listener_with_timeouts(front, timeouts));
    worker.expect_ok(&requests::add_tcp_frontend(front, "c1"));
    worker.expect_ok(&requests::activate(front, ListenerProtocol::Tcp));
    worker.wait_for_listener(front);

    // Connections that round robin sends to the black hole (once it is not
    // backing off) reach the good backend after the connect timeout; none
    // fails.
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    while slowest < Duration::from_millis(450) {
        assert!(
            start.elapsed() < DEADLINE,
            "no connection waited for the connect timeout"
        );
        let connected = Instant::now();
        let mut client = connect(front);
        assert_eq!(read_greeting(&mut client, 2), "ok");
        slowest = slowest.max(connected.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(3),
        "a connection waited {slowest:?}"
    );
}

#[test]
fn a_connect_to_a_lone_black_hole_times_out_and_closes_the_client() {
    let (_hole, hole_addr, _fillers) = black_hole();
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    let timeouts = Timeouts {
        connect_timeout_ms: 500,
        ..requests::default_timeouts()
    };
    worker.expect_ok(&requests::add_cluster("c1", ListenerProtocol::Tcp));
    worker.expect_ok(&requests::add_backend("c1", hole_addr));
    worker.expect_ok(&requests::add_tcp_listener_with_timeouts(front, timeouts));
    worker.expect_ok(&requests::add_tcp_frontend(front, "c1"));
    worker.expect_ok(&requests::activate(front, ListenerProtocol::Tcp));
    // No `wait_for_listener`: its probe would take the black hole's trial.
    wait_for_port(front, DEADLINE);
    sessions_drop_to(&mut worker, 0);
    // The probe of wait_for_port may have started the connect; a new client
    // is closed at once (backing off) or after the timeout, never later.
    let mut client = connect(front);
    let took = expect_closed_within(&mut client, Duration::from_secs(3));
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    sessions_drop_to(&mut worker, 0);
}

#[test]
fn a_full_worker_leaves_new_clients_in_the_backlog_until_one_closes() {
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start_with_args(1, &["--max-connections", "2"]);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);
    sessions_drop_to(&mut worker, 0);

    let mut first = connect(front);
    expect_echo(&mut first, b"first");
    let mut second = connect(front);
    expect_echo(&mut second, b"second");
    // The kernel completes the handshake, but the worker does not accept.
    let mut third = connect(front);
    third.write_all(b"third").expect("send");
    assert_eq!(peer_end_within(&mut third, QUIET), PeerEnd::Silent);
    assert_eq!(worker.sessions(), 2);

    drop(first);
    let mut answer = [0; 5];
    third
        .read_exact(&mut answer)
        .expect("the echo once accepted");
    assert_eq!(&answer, b"third");
    expect_echo(&mut second, b"still served");
    drop((second, third));
    sessions_drop_to(&mut worker, 0);
    // Room again: accepting resumed for good.
    let mut fourth = connect(front);
    expect_echo(&mut fourth, b"fourth");
}

#[test]
fn a_removed_backend_keeps_its_open_connection_and_leaves_when_it_closes() {
    let backends = named_backends(&["b1", "b2"]);
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &addrs(&backends));

    let mut on_b1 = None;
    for _ in 0..4 {
        let mut client = connect(front);
        if read_greeting(&mut client, 2) == "b1" {
            on_b1 = Some(client);
            break;
        }
    }
    let mut on_b1 = on_b1.expect("round robin never chose b1");
    worker.expect_ok(&requests::remove_backend("c1", backends[0].addr()));

    expect_echo(&mut on_b1, b"still through b1");
    for _ in 0..6 {
        let mut client = connect(front);
        assert_eq!(read_greeting(&mut client, 2), "b2");
    }
    worker.collect_events_for(QUIET).expect("read events");
    let removed = EventKind::RemovedBackendHasNoConnections as i32;
    assert!(
        worker.events_seen().iter().all(|e| e.kind != removed),
        "gone while its connection is open: {:?}",
        worker.events_seen()
    );

    drop(on_b1);
    let event = worker.wait_event(EventKind::RemovedBackendHasNoConnections, DEADLINE);
    let b1_id = format!("c1-{}", backends[0].addr().port());
    assert_eq!(event.backend_id.as_deref(), Some(b1_id.as_str()));
    assert_eq!(event.cluster_id.as_deref(), Some("c1"));
}

#[test]
fn invalid_requests_get_clear_failures_and_the_worker_keeps_serving() {
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);
    let mut client = connect(front);
    expect_echo(&mut client, b"before");

    let other = free_addr();
    let cases = [
        (
            requests::add_backend("nope", backend.addr()),
            "cluster nope does not exist",
        ),
        (
            requests::add_tcp_frontend(front, "nope"),
            "cluster nope does not exist",
        ),
        (requests::add_tcp_listener(front), "already exists"),
        (
            requests::activate(other, ListenerProtocol::Tcp),
            "no listener exists",
        ),
        (requests::remove_backend("c1", other), "has no backend"),
    ];
    for (request, expected) in &cases {
        let message = worker.expect_failure(request);
        assert!(
            message.contains(expected),
            "failure {message:?} does not say {expected:?}"
        );
        expect_echo(&mut client, b"still serving");
    }

    // An address another process holds: the harness (in main's seat) cannot bind it and
    // sends the request without a socket; the worker, which never binds, refuses it, and
    // the failed add leaves no trace (the same add works once the address is free).
    let squatter = TcpListener::bind(other).expect("hold an address");
    let message = worker.expect_failure(&requests::add_tcp_listener(other));
    assert!(
        message.contains(&other.to_string()) && message.contains("no socket"),
        "failure {message:?} does not say the socket is missing"
    );
    drop(squatter);
    worker.expect_ok(&requests::add_tcp_listener(other));
    worker.expect_ok(&requests::add_tcp_frontend(other, "c1"));
    worker.expect_ok(&requests::activate(other, ListenerProtocol::Tcp));
    worker.wait_for_listener(other);
    expect_echo(&mut connect(other), b"second listener");
    expect_echo(&mut client, b"after");
    assert!(!worker.process_mut().has_exited());
}

#[test]
fn a_refused_replay_leaves_a_new_worker_empty() {
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    let setup = [
        requests::add_cluster("c1", ListenerProtocol::Tcp),
        requests::add_backend("c1", backend.addr()),
        requests::add_tcp_listener(front),
        requests::add_tcp_frontend(front, "c1"),
        requests::activate(front, ListenerProtocol::Tcp),
    ];
    let batch_of = |last: Option<proto::Request>| proto::Request {
        request_type: Some(proto::request::RequestType::Batch(proto::RequestBatch {
            requests: setup.iter().cloned().chain(last).collect(),
        })),
    };

    // Refused by the worker's mirror of the state, then by the live part (a listener
    // without its socket): each time the worker is left as empty as it started.
    let message = worker.expect_failure(&batch_of(Some(requests::add_backend(
        "nope",
        backend.addr(),
    ))));
    assert!(message.contains("cluster nope does not exist"), "{message}");
    let other = free_addr();
    let squatter = TcpListener::bind(other).expect("hold an address");
    let message = worker.expect_failure(&batch_of(Some(requests::add_tcp_listener(other))));
    assert!(message.contains("no socket"), "{message}");
    drop(squatter);

    // Nothing of them stayed: the same batch, whole, applies (a listener, cluster,
    // backend or frontend left behind would refuse it) and serves.
    worker.expect_ok(&batch_of(None));
    worker.wait_for_listener(front);
    expect_echo(&mut connect(front), b"after two refusals");
    assert!(!worker.process_mut().has_exited());
}
