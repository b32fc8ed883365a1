//! Probes against real sockets on 127.0.0.1, driven by a small poll loop bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use sluice_command::proto::{self, EventKind};

use super::*;
use crate::backends::BackendMap;

const CLUSTER: &str = "app";
const INTERVAL_MS: u32 = 50;
const TIMEOUT_MS: u32 = 40;
const UNHEALTHY: u32 = 3;
const HEALTHY: u32 = 2;
/// Longest any wait of these tests may take.
const WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------ mock backend

/// An HTTP backend in a thread answering every request with the status it is told.
struct MockBackend {
    address: SocketAddr,
    status: Arc<AtomicU16>,
    answered: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockBackend {
    fn start(status: u16) -> MockBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a mock backend");
        let address = listener.local_addr().expect("mock backend address");
        let status = Arc::new(AtomicU16::new(status));
        let answered = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (status, answered, stop) = (status.clone(), answered.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        answer(stream, status.load(Ordering::SeqCst), &answered);
                    }
                }
            })
        };
        MockBackend {
            address,
            status,
            answered,
            stop,
            thread: Some(thread),
        }
    }

    fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads a request head, answers `status` and closes.
fn answer(mut stream: TcpStream, status: u16, answered: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut head = Vec::new();
    let mut chunk = [0; 256];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
    }
    if !head.starts_with(b"GET /health HTTP/1.1\r\n") {
        return;
    }
    answered.fetch_add(1, Ordering::SeqCst);
    let response =
        format!("HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes());
}

/// An address where nothing listens.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

// ------------------------------------------------------------------ harness

fn check_config() -> proto::HealthCheckConfig {
    proto::HealthCheckConfig {
        uri: "/health".to_owned(),
        interval_ms: INTERVAL_MS,
        timeout_ms: TIMEOUT_MS,
        healthy_threshold: HEALTHY,
        unhealthy_threshold: UNHEALTHY,
        expected_status_min: None,
        expected_status_max: None,
        host: None,
    }
}

fn cluster_proto(
    protocol: proto::ListenerProtocol,
    check: Option<proto::HealthCheckConfig>,
) -> proto::Cluster {
    proto::Cluster {
        cluster_id: CLUSTER.to_owned(),
        protocol: protocol as i32,
        load_balancing: proto::LoadBalancingAlgorithm::RoundRobin as i32,
        load_metric: proto::LoadMetric::Connections as i32,
        sticky_session: false,
        sticky_cookie_name: None,
        health_check: check,
        answers: Vec::new(),
        max_connect_retries: None,
        prefer_last_backend: None,
    }
}

fn backend_proto(address: SocketAddr) -> proto::Backend {
    proto::Backend {
        cluster_id: CLUSTER.to_owned(),
        backend_id: format!("b{}", address.port()),
        address: address.to_string(),
        sticky_id: None,
        weight: 100,
        backup: false,
        state: None,
        resolve_later: None,
        resolved_from: None,
    }
}

/// The worker's side: a poll, the backends and the checker, as the event loop holds them.
struct Harness {
    poll: Poll,
    events: Events,
    backends: BackendMap,
    checker: HealthChecker,
    protocol: proto::ListenerProtocol,
}

impl Harness {
    fn new(protocol: proto::ListenerProtocol, addresses: &[SocketAddr]) -> Harness {
        let mut harness = Harness {
            poll: Poll::new().expect("poll"),
            events: Events::with_capacity(64),
            backends: BackendMap::with_seed(7),
            checker: HealthChecker::new(),
            protocol,
        };
        harness.set_check(Some(check_config()));
        for address in addresses {
            harness.add_backend(*address);
        }
        harness
    }

    /// Sets or removes the check as the loop does: on the backends and on the checker.
    fn set_check(&mut self, check: Option<proto::HealthCheckConfig>) {
        let now = Instant::now();
        let cluster = cluster_proto(self.protocol, check);
        self.backends.set_cluster(&cluster, now);
        self.checker.set_cluster(
            CLUSTER,
            self.protocol,
            cluster.health_check.as_ref(),
            self.poll.registry(),
            now,
        );
    }

    fn add_backend(&mut self, address: SocketAddr) {
        self.backends
            .add_backend(&backend_proto(address), Instant::now())
            .expect("add backend");
    }

    /// One turn of the loop: wait for probe events or the checker's deadline, dispatch, run
    /// what is due.
    fn turn(&mut self) {
        let timeout = self
            .checker
            .next_deadline()
            .map_or(Duration::from_millis(10), |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
        self.poll
            .poll(
                &mut self.events,
                Some(timeout.min(Duration::from_millis(100))),
            )
            .expect("poll");
        for event in self.events.iter() {
            let token = event.token().0;
            assert!((PROBE_BASE..PROBE_BASE + MAX_PROBES).contains(&token));
            self.checker.ready(
                token - PROBE_BASE,
                event,
                &mut self.backends,
                self.poll.registry(),
                Instant::now(),
            );
        }
        let now = Instant::now();
        if self.checker.next_deadline().is_some_and(|d| d <= now) {
            self.checker
                .run_due(&mut self.backends, self.poll.registry(), now);
        }
        if self
            .checker
            .next_recovery_deadline(&self.backends, now)
            .is_some_and(|d| d <= now)
        {
            self.checker
                .run_recovery(&mut self.backends, self.poll.registry(), now);
        }
    }

    /// Turns the loop until `done` holds, at most [`WAIT`].
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Harness) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.turn();
        }
    }

    /// Health of the backend at `address`: (healthy, successes in a row, failures in a row).
    fn health(&self, address: SocketAddr) -> (bool, u32, u32) {
        let backend = self.backends.backend(CLUSTER, &address).expect("backend");
        let health = backend.borrow().health().clone();
        (
            health.is_healthy(),
            health.consecutive_successes(),
            health.consecutive_failures(),
        )
    }

    /// Events of `kind` about `address` since the last call, and drains the rest.
    fn count_events(&mut self, kind: EventKind, address: SocketAddr) -> usize {
        let address = address.to_string();
        self.backends
            .take_events()
            .iter()
            .filter(|e| e.kind == kind as i32 && e.address.as_deref() == Some(address.as_str()))
            .count()
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn failing_backend_goes_down_after_the_threshold_and_comes_back() {
    let backend = MockBackend::start(500);
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[backend.address]);
    let mut failures_seen_healthy = 0;
    harness.run_until("the backend to become unhealthy", |h| {
        let (healthy, _, failures) = h.health(backend.address);
        if healthy {
            failures_seen_healthy = failures_seen_healthy.max(failures);
        }
        !healthy
    });
    assert_eq!(failures_seen_healthy, UNHEALTHY - 1);
    assert_eq!(harness.health(backend.address), (false, 0, UNHEALTHY));
    assert_eq!(
        backend.answered(),
        UNHEALTHY as usize,
        "one probe per failure"
    );
    assert_eq!(
        harness.count_events(EventKind::BackendDown, backend.address),
        1
    );

    backend.answer_with(200);
    harness.run_until("the backend to become healthy", |h| {
        h.health(backend.address).0
    });
    assert_eq!(harness.health(backend.address), (true, HEALTHY, 0));
    assert_eq!(
        harness.count_events(EventKind::BackendUp, backend.address),
        1
    );
    assert_eq!(
        harness.count_events(EventKind::BackendDown, backend.address),
        0
    );
}

#[test]
fn closed_port_fails_while_a_live_backend_stays_healthy() {
    let live = MockBackend::start(204);
    let closed = closed_port();
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[live.address, closed]);
    harness.run_until("the closed port to become unhealthy", |h| {
        !h.health(closed).0
    });
    harness.run_until("the live backend to pass twice", |h| {
        h.health(live.address).1 >= 2
    });
    assert!(harness.health(live.address).0);
    let events = harness.backends.take_events();
    let down: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::BackendDown as i32)
        .collect();
    assert_eq!(down.len(), 1, "{events:?}");
    assert_eq!(
        down[0].address.as_deref(),
        Some(closed.to_string().as_str())
    );
}

#[test]
fn tcp_cluster_is_probed_with_a_connect() {
    // The kernel completes the handshake from the backlog: no accept is needed.
    let listening = TcpListener::bind("127.0.0.1:0").expect("bind");
    let live = listening.local_addr().expect("address");
    let closed = closed_port();
    let mut harness = Harness::new(proto::ListenerProtocol::Tcp, &[live, closed]);
    harness.run_until("the closed port to become unhealthy", |h| {
        !h.health(closed).0
    });
    harness.run_until("the live port to pass twice", |h| h.health(live).1 >= 2);
    assert_eq!(harness.health(live), (true, harness.health(live).1, 0));
    assert_eq!(harness.count_events(EventKind::BackendDown, closed), 1);
}

#[test]
fn silent_backend_times_out() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("address");
    // Before the harness: it may start the first probe as it is built.
    let started = Instant::now();
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[address]);
    harness.run_until("the silent backend to become unhealthy", |h| {
        !h.health(address).0
    });
    // Three probes, each failing only at its timeout, the last starting two intervals in.
    let least = Duration::from_millis(u64::from(2 * INTERVAL_MS + TIMEOUT_MS));
    assert!(started.elapsed() >= least, "{:?}", started.elapsed());
    assert_eq!(harness.checker.probes_in_flight(), 0);
}

#[test]
fn removing_the_check_resets_health_and_stops_probing() {
    let closed = closed_port();
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[closed]);
    harness.run_until("the closed port to become unhealthy", |h| {
        !h.health(closed).0
    });
    assert_eq!(harness.count_events(EventKind::BackendDown, closed), 1);

    harness.set_check(None);
    assert!(!harness.checker.is_checked(CLUSTER));
    assert_eq!(harness.checker.next_deadline(), None);
    assert_eq!(harness.checker.probes_in_flight(), 0);
    assert_eq!(harness.health(closed), (true, 0, 0));
    let events = harness.backends.take_events();
    let kinds: Vec<i32> = events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&(EventKind::BackendUp as i32)), "{events:?}");
    assert!(
        kinds.contains(&(EventKind::ClusterRecovered as i32)),
        "{events:?}"
    );
}

#[test]
fn added_backend_is_probed_and_removed_one_is_dropped() {
    let first = MockBackend::start(200);
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[first.address]);
    harness.run_until("the first backend to be probed", |_| first.answered() >= 1);

    let added = MockBackend::start(500);
    harness.add_backend(added.address);
    let added_at = Instant::now();
    harness.run_until("the added backend to be probed", |_| added.answered() >= 1);
    // Noticed within an interval, then probed within its first interval.
    let bound = Duration::from_millis(u64::from(2 * INTERVAL_MS) + 500);
    assert!(added_at.elapsed() < bound, "{:?}", added_at.elapsed());

    harness
        .backends
        .remove_backend(CLUSTER, &added.address, Instant::now())
        .expect("remove backend");
    let probed = added.answered();
    let until = first.answered() + 3;
    harness.run_until("three more probes of the first backend", |_| {
        first.answered() >= until
    });
    assert!(
        added.answered() <= probed + 1,
        "a removed backend is no longer probed"
    );
    assert!(harness.checker.probes_in_flight() <= 1);
}

#[test]
fn same_check_set_again_keeps_the_schedule() {
    let backend = MockBackend::start(200);
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[backend.address]);
    harness.run_until("a first probe", |_| backend.answered() >= 1);
    let deadline = harness.checker.next_deadline();
    harness.set_check(Some(check_config()));
    assert_eq!(harness.checker.next_deadline(), deadline);

    let mut changed = check_config();
    changed.expected_status_min = Some(500);
    changed.expected_status_max = Some(599);
    harness.set_check(Some(changed));
    assert_eq!(harness.checker.probes_in_flight(), 0);
    harness.run_until("the backend to fail the new range", |h| {
        !h.health(backend.address).0
    });
}

#[test]
fn a_backend_down_for_failed_connects_comes_back_by_a_connect_probe_within_a_second() {
    // Bound to a port nobody listens on yet: the backend is down, then starts.
    let address = closed_port();
    let mut harness = Harness::new(proto::ListenerProtocol::Http, &[]);
    harness.set_check(None);
    harness.add_backend(address);
    let backend = std::rc::Rc::clone(harness.backends.backend(CLUSTER, &address).expect("added"));
    let mut now = Instant::now();
    while !backend.borrow().retry_policy().is_exhausted() {
        now += Duration::from_secs(20);
        harness.backends.connect_failed(&backend, now);
    }
    harness.backends.take_events();
    // Probes fail while nothing listens; nothing comes back.
    let pause = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < pause {
        harness.turn();
    }
    assert_eq!(harness.count_events(EventKind::BackendUp, address), 0);
    let listener = TcpListener::bind(address).expect("the backend starts");
    let started = Instant::now();
    harness.run_until("the backend to be up again", |h| {
        h.backends
            .backend(CLUSTER, &address)
            .is_some_and(|b| b.borrow().is_up())
    });
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "back after {:?}",
        started.elapsed()
    );
    assert_eq!(harness.checker.probes_in_flight(), 0);
    drop(listener);
}
