//! Passive health checking of TCP backends: a backend that accepts connections and
//! resets them before sending anything is taken out like one that refuses them,
//! without an active health check.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_command::proto::EventKind;
use sluice_e2e::tcp_client::{connect, peer_end_within, PeerEnd};
use sluice_e2e::*;

/// Resets every connection it accepts, at once.
fn resetting_backend() -> MockServer {
    let handler = Arc::new(|stream: TcpStream| {
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
    });
    MockServer::start(free_addr(), handler).expect("start the resetting backend")
}

#[test]
fn a_backend_resetting_every_connection_goes_down() {
    let backend = resetting_backend();
    let front = free_addr();
    let mut worker = WorkerHarness::start(0);
    worker.setup_tcp_proxy(front, "reset", &[backend.addr()]);

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut client = connect(front);
        let _ = client.write_all(b"hello");
        match peer_end_within(&mut client, Duration::from_secs(5)) {
            PeerEnd::Sent(bytes) => panic!("the client got {bytes:?} from a resetting backend"),
            PeerEnd::Closed | PeerEnd::Silent => {}
        }
        worker
            .collect_events_for(Duration::from_millis(50))
            .expect("the worker's channel");
        let down = worker
            .events_seen()
            .iter()
            .any(|e| e.kind == EventKind::BackendDown as i32);
        if down {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no BACKEND_DOWN after {attempts} connections through a resetting backend"
        );
    }
    let event = worker
        .events_seen()
        .iter()
        .find(|e| e.kind == EventKind::BackendDown as i32)
        .cloned()
        .expect("seen above");
    assert_eq!(
        event.address.as_deref(),
        Some(backend.addr().to_string().as_str())
    );
}

/// Holds every connection it accepts, silent, until `release` is set, then resets them all.
fn backend_resetting_together(release: Arc<std::sync::atomic::AtomicBool>) -> MockServer {
    let handler = Arc::new(move |stream: TcpStream| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !release.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
    });
    MockServer::start(free_addr(), handler).expect("start the backend")
}

#[test]
fn sessions_broken_together_cost_one_backoff_step_not_the_backend() {
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backend = backend_resetting_together(Arc::clone(&release));
    let front = free_addr();
    let mut worker = WorkerHarness::start(0);
    worker.setup_tcp_proxy(front, "blip", &[backend.addr()]);
    let sessions = 10;
    let mut clients: Vec<TcpStream> = (0..sessions)
        .map(|_| {
            let mut client = connect(front);
            let _ = client.write_all(b"hello");
            client
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.active_connections() < sessions {
        assert!(
            Instant::now() < deadline,
            "the sessions did not reach the backend"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // One blip: every session breaks at once, more than the 6 failures that take a
    // backend out if each counted.
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    for client in &mut clients {
        assert!(!matches!(
            peer_end_within(client, Duration::from_secs(5)),
            PeerEnd::Sent(_)
        ));
    }
    worker
        .collect_events_for(Duration::from_millis(300))
        .expect("the worker's channel");
    let down: Vec<_> = worker
        .events_seen()
        .iter()
        .filter(|e| e.kind == EventKind::BackendDown as i32)
        .collect();
    assert!(down.is_empty(), "one blip took the backend out: {down:?}");
}
