//! Waiting on conditions with a deadline instead of sleeping.
//!
//! Each wait polls its condition with a short back-off and panics with a
//! message naming what it waited for, so a failing test says why.

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Longest pause between two polls of a condition.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Timeout of one connection attempt while polling a port.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Polls `condition` until it returns true; panics with
/// "timed out after …s waiting for {what}" once `deadline` has passed.
pub fn wait_until(what: &str, deadline: Duration, condition: impl FnMut() -> bool) {
    if !poll_until(deadline, condition) {
        panic!(
            "timed out after {:.1}s waiting for {what}",
            deadline.as_secs_f64()
        );
    }
}

/// Polls `condition` until it returns true (`true`) or `deadline` has
/// passed (`false`). For callers that want to handle the timeout themselves.
pub fn poll_until(deadline: Duration, condition: impl FnMut() -> bool) -> bool {
    let mut pause = Duration::from_millis(1);
    poll(deadline, condition, move || {
        let this = pause;
        pause = (pause * 2).min(MAX_POLL_INTERVAL);
        this
    })
}

/// Polls `condition` every `interval` until it returns true (`true`) or `deadline` has
/// passed (`false`): for measuring how long something takes, where a growing pause would
/// add up to its length to the measure.
pub fn poll_every(deadline: Duration, interval: Duration, condition: impl FnMut() -> bool) -> bool {
    poll(deadline, condition, || interval)
}

/// Polls `condition`, sleeping `next_pause()` between two polls, until it returns true or
/// `deadline` has passed.
fn poll(
    deadline: Duration,
    mut condition: impl FnMut() -> bool,
    mut next_pause: impl FnMut() -> Duration,
) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            return false;
        }
        thread::sleep(next_pause().min(deadline - elapsed));
    }
}

/// Whether a TCP connection to `addr` succeeds now.
pub fn port_accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok()
}

/// Waits until a TCP connection to `addr` succeeds.
pub fn wait_for_port(addr: SocketAddr, deadline: Duration) {
    wait_until(&format!("{addr} to accept connections"), deadline, || {
        port_accepts(addr)
    });
}

/// Waits until a TCP connection to `addr` is refused (nobody listens).
pub fn wait_for_port_closed(addr: SocketAddr, deadline: Duration) {
    wait_until(&format!("{addr} to stop accepting"), deadline, || {
        !port_accepts(addr)
    });
}
