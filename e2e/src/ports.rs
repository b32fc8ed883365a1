//! A port registry: hands out free TCP ports on 127.0.0.1 that no other
//! caller in this process has been given.
//!
//! Tests run in parallel threads of one process, so asking the kernel for a
//! free port is not enough: the port is released as soon as we drop the
//! probe socket, and a second test could be told the same one before the
//! first test binds it. The process-wide set closes that window between our
//! own callers. Ports come from below the kernel's ephemeral range (32768 and
//! up on Linux), so the local port of some test's outgoing connection can
//! never take a port between the moment it is handed out and its bind.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Ports handed out: below the ephemeral range, above the well-known ones.
const FIRST_PORT: u16 = 20_000;
const PORT_COUNT: u16 = 12_000;

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Where this process starts in the range: spread by pid and time, so that test
/// processes running side by side rarely probe the same ports.
fn cursor() -> &'static AtomicU32 {
    static CURSOR: OnceLock<AtomicU32> = OnceLock::new();
    CURSOR.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        AtomicU32::new(std::process::id().wrapping_mul(7919) ^ nanos)
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no earlier
/// call in this process returned.
///
/// Panics when no port of the range can be bound (the test cannot go on).
pub fn free_port() -> u16 {
    for _ in 0..PORT_COUNT {
        let offset = (cursor().fetch_add(1, Ordering::Relaxed) % u32::from(PORT_COUNT)) as u16;
        let port = FIRST_PORT + offset;
        // A poisoned lock only means another test panicked while holding it;
        // the set itself is still consistent.
        let mut ports = handed_out().lock().unwrap_or_else(|p| p.into_inner());
        if ports.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.insert(port);
            return port;
        }
    }
    panic!("no free port in {FIRST_PORT}..{}", FIRST_PORT + PORT_COUNT)
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}
