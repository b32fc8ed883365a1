//! The worker's TCP proxy under load: many concurrent connections, and one
//! long stream in bounded memory. State sizes are in the test names.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sluice_e2e::tcp_client::connect;
use sluice_e2e::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// A one-way gate: threads wait until it is opened (or a deadline passes).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.opened.notify_all();
    }

    fn wait(&self, deadline: Duration) -> bool {
        let guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .opened
            .wait_timeout_while(guard, deadline, |open| !*open)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard
    }
}

/// Bytes that depend on the connection and the position.
fn connection_payload(connection: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ connection.wrapping_mul(7919)) as u8)
        .collect()
}

fn echo_once(
    front: SocketAddr,
    index: usize,
    connected: &AtomicU64,
    go: &Gate,
) -> Result<(), String> {
    let mut stream = connect(front);
    connected.fetch_add(1, Ordering::SeqCst);
    if !go.wait(DEADLINE) {
        return Err("the test never let the echo start".to_owned());
    }
    let payload = connection_payload(index, 64 * 1024);
    stream
        .write_all(&payload)
        .map_err(|e| format!("connection {index}: send: {e}"))?;
    let mut answer = vec![0; payload.len()];
    stream
        .read_exact(&mut answer)
        .map_err(|e| format!("connection {index}: echo: {e}"))?;
    if answer != payload {
        return Err(format!("connection {index}: the echo differs"));
    }
    Ok(())
}

#[test]
fn concurrent_connections_1000_each_echo_64kib_then_sessions_return_to_zero() {
    const CONNECTIONS: usize = 1000;
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);

    let connected = Arc::new(AtomicU64::new(0));
    let go = Arc::new(Gate::default());
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|index| {
            let (connected, go) = (Arc::clone(&connected), Arc::clone(&go));
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || echo_once(front, index, &connected, &go))
                .expect("spawn a client thread")
        })
        .collect();

    // All of them open at once, through the worker, before any echo.
    let mut sessions = 0;
    let all_open = wait::poll_until(DEADLINE, || {
        sessions = worker.sessions();
        connected.load(Ordering::SeqCst) == CONNECTIONS as u64
            && sessions == CONNECTIONS as u64
            && backend.active_connections() == CONNECTIONS
    });
    go.open();
    assert!(
        all_open,
        "not all open at once: {} clients connected, {sessions} sessions, {} backend connections",
        connected.load(Ordering::SeqCst),
        backend.active_connections()
    );

    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|client| match client.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("a client thread panicked".to_owned()),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let mut sessions = u64::MAX;
    let drained = wait::poll_until(DEADLINE, || {
        sessions = worker.sessions();
        sessions == 0 && backend.active_connections() == 0
    });
    assert!(
        drained,
        "after the clients closed: {sessions} sessions, {} backend connections",
        backend.active_connections()
    );
    assert_eq!(
        backend.connections_accepted(),
        CONNECTIONS + 1,
        "one per client and the probe"
    );
}

/// Size of the long stream.
const STREAM_BYTES: u64 = 1 << 30;
/// Length of the repeating pattern: prime, so that no chunk size lines up
/// with it and a lost or repeated chunk shows.
const PATTERN_PERIOD: usize = 65_521;
/// Bytes written or compared at once.
const CHUNK: usize = 256 * 1024;
/// The bound the worker's resident memory must stay under.
const MAX_RSS_KIB: u64 = 64 * 1024;
/// Time between two samples of the worker's memory.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);
/// The whole stream's bound, debug build included.
const STREAM_DEADLINE: Duration = Duration::from_secs(90);

/// The pattern, extended by a chunk so that the window at any offset is one
/// slice.
fn stream_pattern() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let period: Vec<u8> = (0..PATTERN_PERIOD)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    (0..PATTERN_PERIOD + CHUNK)
        .map(|i| period[i % PATTERN_PERIOD])
        .collect()
}

fn window(pattern: &[u8], offset: u64, len: usize) -> &[u8] {
    let start = (offset % PATTERN_PERIOD as u64) as usize;
    &pattern[start..start + len]
}

fn send_stream(mut stream: std::net::TcpStream, pattern: &[u8]) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < STREAM_BYTES {
        let len = CHUNK.min((STREAM_BYTES - sent) as usize);
        stream.write_all(window(pattern, sent, len))?;
        sent += len as u64;
    }
    stream.shutdown(Shutdown::Write)
}

/// Reads the echo to its end, comparing every byte with what was sent;
/// returns how many bytes came.
fn check_stream(stream: &mut std::net::TcpStream, pattern: &[u8]) -> u64 {
    let mut buffer = vec![0; CHUNK];
    let mut received = 0;
    loop {
        let n = stream
            .read(&mut buffer)
            .unwrap_or_else(|e| panic!("reading the echo after {received} bytes: {e}"));
        if n == 0 {
            return received;
        }
        assert!(
            received + n as u64 <= STREAM_BYTES,
            "more bytes came back than were sent"
        );
        assert!(
            buffer[..n] == *window(pattern, received, n),
            "the echo differs from what was sent within bytes {received}..{}",
            received + n as u64
        );
        received += n as u64;
    }
}

#[test]
fn one_stream_echoes_intact_while_the_worker_stays_under_64mib_1gib() {
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let binary = fastest_sluice_binary();
    let mut worker = WorkerHarness::try_start_program(&binary, 1, &[])
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);

    let pattern = Arc::new(stream_pattern());
    let start = Instant::now();
    let client = connect(front);
    client
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let writer = {
        let stream = client.try_clone().expect("clone the stream");
        let pattern = Arc::clone(&pattern);
        thread::spawn(move || send_stream(stream, &pattern))
    };
    let reader = {
        let mut stream = client;
        let pattern = Arc::clone(&pattern);
        thread::spawn(move || check_stream(&mut stream, &pattern))
    };
    // Sample the worker's memory all along the transfer.
    let (mut peak_kib, mut samples) = (0, 0);
    while !reader.is_finished() {
        assert!(
            start.elapsed() < STREAM_DEADLINE,
            "the stream takes too long"
        );
        let rss = worker.process().rss_kib().expect("the worker's RSS");
        peak_kib = peak_kib.max(rss);
        samples += 1;
        thread::sleep(RSS_SAMPLE_INTERVAL);
    }
    let received = reader.join().expect("the reader thread");
    let took = start.elapsed();
    writer
        .join()
        .expect("the writer thread")
        .expect("sending the stream");

    assert_eq!(received, STREAM_BYTES, "the echo ended early");
    assert!(samples >= 10, "only {samples} memory samples in {took:?}");
    assert!(
        peak_kib < MAX_RSS_KIB,
        "the worker ({}) reached {peak_kib} KiB resident",
        binary.display()
    );
    let rss_after = worker.process().rss_kib().expect("rss after");
    assert!(
        rss_after < MAX_RSS_KIB,
        "{rss_after} KiB resident after the stream"
    );
    eprintln!(
        "1 GiB echoed in {took:?} through {}, peak RSS {peak_kib} KiB",
        binary.display()
    );
}

#[test]
fn a_client_that_does_not_read_stalls_its_stream_in_bounded_memory_256mib() {
    const OFFERED: u64 = 256 << 20;
    let backend = TcpEchoServer::start(free_addr()).expect("start the backend");
    let mut worker = WorkerHarness::start(1);
    let front = free_addr();
    worker.setup_tcp_proxy(front, "c1", &[backend.addr()]);

    let pattern = stream_pattern();
    let mut client = connect(front);
    client
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("write timeout");
    // Socket buffers fill along the way, then the worker stops reading: a
    // write times out long before everything offered is taken.
    let mut sent = 0;
    let start = Instant::now();
    while sent < OFFERED {
        assert!(start.elapsed() < DEADLINE, "writing took too long");
        match client.write(window(&pattern, sent, CHUNK)) {
            Ok(n) => sent += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("write after {sent} bytes: {e}"),
        }
    }
    assert!(
        sent < OFFERED,
        "all {OFFERED} bytes taken without being read"
    );
    let rss = worker.process().rss_kib().expect("the worker's RSS");
    assert!(
        rss < MAX_RSS_KIB,
        "{rss} KiB resident with {sent} bytes in flight"
    );

    // Reading again drains every byte taken, in order.
    client.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(check_stream(&mut client, &pattern), sent);
    drop(client);
    let mut sessions = u64::MAX;
    let drained = wait::poll_until(DEADLINE, || {
        sessions = worker.sessions();
        sessions == 0
    });
    assert!(drained, "{sessions} sessions left");
}
