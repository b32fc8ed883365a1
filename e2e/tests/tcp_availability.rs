//! Backends of a TCP cluster stopping and restarting under a real
//! `sluice worker`: retries hide a stopped backend from clients, and the
//! cluster's availability events are published once per transition.
//!
//! Without a health check a stopped backend is found out by failed connects:
//! it backs off (100 ms doubling, ±20 %) and stops counting as available
//! after 6 failures in a row (about 3 s); a restarted one is tried again
//! after at most the 10 s cap, and only a client connection makes that trial.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sluice_command::proto::EventKind;
use sluice_e2e::tcp_client::{connect, peer_end_within, read_greeting, PeerEnd};
use sluice_e2e::*;

const DEADLINE: Duration = Duration::from_secs(10);
/// Longest a cluster may take to be declared down once its backends stop.
const DOWN_DEADLINE: Duration = Duration::from_secs(15);
/// Longest a restarted backend may take to be tried again (cap + margin).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(20);

fn named_backends(names: &[&str]) -> Vec<TcpNamedServer> {
    names
        .iter()
        .map(|name| TcpNamedServer::start(free_addr(), name).expect("start a named backend"))
        .collect()
}

fn addrs(backends: &[TcpNamedServer]) -> Vec<SocketAddr> {
    backends.iter().map(|b| b.addr()).collect()
}

fn count(worker: &WorkerHarness, kind: EventKind) -> usize {
    worker
        .events_seen()
        .iter()
        .filter(|e| e.kind == kind as i32)
        .count()
}

/// A client connection through a cluster with no backend to go to: the
/// worker closes it without a greeting.
fn expect_refused_by_worker(front: SocketAddr) {
    let mut client = connect(front);
    match peer_end_within(&mut client, DEADLINE) {
        PeerEnd::Closed => {}
        other => panic!("expected the worker to close the connection, got {other:?}"),
    }
}

#[test]
fn a_stopped_backend_is_skipped_without_client_errors() {
    let mut backends = named_backends(&["b1", "b2", "b3"]);
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &addrs(&backends));

    backends[1].stop();
    let mut names = Vec::new();
    for _ in 0..30 {
        let mut client = connect(front);
        names.push(read_greeting(&mut client, 2));
    }
    assert!(
        names.iter().all(|name| name == "b1" || name == "b3"),
        "a connection went to the stopped backend: {names:?}"
    );
    for name in ["b1", "b3"] {
        let served = names.iter().filter(|n| *n == name).count();
        assert!(served >= 10, "{name} served only {served} of 30: {names:?}");
    }
    worker
        .collect_events_for(Duration::from_millis(100))
        .expect("read events");
    assert_eq!(count(&worker, EventKind::NoAvailableBackends), 0);

    // Back, it is found again: its retries end with a successful trial.
    backends[1].restart().expect("restart b2");
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < RECOVERY_DEADLINE,
            "the restarted backend never got a connection again"
        );
        let mut client = connect(front);
        if read_greeting(&mut client, 2) == "b2" {
            break;
        }
    }
}

#[test]
fn all_backends_down_is_published_once_and_recovery_once_under_100_attempts() {
    let mut backends = named_backends(&["b1", "b2"]);
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &addrs(&backends));
    for backend in &mut backends {
        backend.stop();
    }

    // Each backend must fail 6 times in a row, one trial per backoff: keep
    // clients coming until the cluster is declared down.
    let start = Instant::now();
    let mut attempts = 0;
    while count(&worker, EventKind::NoAvailableBackends) == 0 {
        assert!(
            start.elapsed() < DOWN_DEADLINE,
            "no NoAvailableBackends after {attempts} attempts; events: {:?}",
            worker.events_seen()
        );
        expect_refused_by_worker(front);
        attempts += 1;
        worker
            .collect_events_for(Duration::from_millis(20))
            .expect("read events");
    }
    // Many more attempts while down: no new event.
    while attempts < 100 {
        expect_refused_by_worker(front);
        attempts += 1;
    }
    worker
        .collect_events_for(Duration::from_millis(300))
        .expect("read events");
    assert_eq!(count(&worker, EventKind::NoAvailableBackends), 1);
    assert_eq!(count(&worker, EventKind::ClusterRecovered), 0);
    let down = worker.wait_event(EventKind::NoAvailableBackends, DEADLINE);
    assert_eq!(down.cluster_id.as_deref(), Some("c1"));
    assert_eq!(down.worker_id, Some(1));

    // One backend back: the first client the worker lets try it recovers
    // the cluster; until then clients are closed.
    backends[0].restart().expect("restart b1");
    let start = Instant::now();
    let mut served = 0;
    while count(&worker, EventKind::ClusterRecovered) == 0 {
        assert!(
            start.elapsed() < RECOVERY_DEADLINE,
            "no ClusterRecovered; events: {:?}",
            worker.events_seen()
        );
        let mut client = connect(front);
        match peer_end_within(&mut client, DEADLINE) {
            PeerEnd::Sent(greeting) => {
                assert_eq!(greeting, b"b1");
                served += 1;
            }
            PeerEnd::Closed => {}
            PeerEnd::Silent => panic!("a client got neither a greeting nor a close"),
        }
        worker
            .collect_events_for(Duration::from_millis(20))
            .expect("read events");
    }
    assert!(served <= 1, "{served} clients served before the recovery");
    for _ in 0..100 {
        let mut client = connect(front);
        assert_eq!(read_greeting(&mut client, 2), "b1");
    }
    worker
        .collect_events_for(Duration::from_millis(300))
        .expect("read events");
    assert_eq!(count(&worker, EventKind::ClusterRecovered), 1);
    assert_eq!(count(&worker, EventKind::NoAvailableBackends), 1);
}
