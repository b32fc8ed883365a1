//! A port registry: hands out free TCP ports on 127.0.0.1 that no other
//! caller in this process has been given.
//!
//! Tests run in parallel threads of one process, so asking the kernel for a
//! free port is not enough: the port is released as soon as we drop the
//! probe socket, and a second test could be told the same one before the
//! first test binds it. The process-wide set closes that window between our
//! own callers; the kernel's ephemeral range makes collisions with other
//! processes unlikely.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// Attempts before giving up: each one asks the kernel for a fresh port.
const MAX_ATTEMPTS: usize = 1000;

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no earlier
/// call in this process returned.
///
/// Panics when the kernel cannot give a port (the test cannot go on).
pub fn free_port() -> u16 {
    for _ in 0..MAX_ATTEMPTS {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        let port = probe
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the probe socket's address: {e}"))
            .port();
        // A poisoned lock only means another test panicked while holding it;
        // the set itself is still consistent.
        let mut ports = handed_out().lock().unwrap_or_else(|p| p.into_inner());
        if ports.insert(port) {
            return port;
        }
    }
    panic!("no unused free port after {MAX_ATTEMPTS} attempts")
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}
