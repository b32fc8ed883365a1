//! A port registry: hands out free TCP ports on 127.0.0.1 that no other
//! caller in this process has been given.
//!
//! Tests run in parallel threads of one process, so asking the kernel for a
//! free port is not enough: the port is released as soon as we drop the
//! probe socket, and a second test could be told the same one before the
//! first test binds it. The process-wide set closes that window between our
//! own callers. Ports come from outside the kernel's ephemeral range (read from
//! `/proc/sys/net/ipv4/ip_local_port_range`), so the local port of some test's
//! outgoing connection cannot take a port between the moment it is handed out
//! and its bind, and a port that any socket still uses (in whatever state, as
//! `/proc/net/tcp` lists it) is skipped: the probe bind alone, with
//! `SO_REUSEADDR`, would not see every socket that can make a later bind fail.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Ports handed out when the ephemeral range is Linux's default one: below it,
/// above the well-known ones. `.ci/run` reserves this range from automatic
/// assignment as well.
const FIRST_PORT: u16 = 20_000;
const PORT_COUNT: u16 = 12_000;

/// The lowest port ever handed out.
const LOWEST_PORT: u16 = 10_000;

/// The ports to hand out: `FIRST_PORT..FIRST_PORT + PORT_COUNT`, or, when the
/// ephemeral range overlaps it, the larger gap beside the ephemeral range.
fn port_window() -> (u16, u16) {
    static WINDOW: OnceLock<(u16, u16)> = OnceLock::new();
    *WINDOW.get_or_init(|| {
        let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| {
                let mut bounds = text.split_whitespace().map(str::parse::<u16>);
                Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
            });
        window_beside(ephemeral)
    })
}

/// The window of test ports given the ephemeral range `(low, high)`, as
/// `(first, count)`.
fn window_beside(ephemeral: Option<(u16, u16)>) -> (u16, u16) {
    let default_end = FIRST_PORT + PORT_COUNT;
    let Some((low, high)) = ephemeral else {
        return (FIRST_PORT, PORT_COUNT);
    };
    if high < FIRST_PORT || low >= default_end {
        return (FIRST_PORT, PORT_COUNT);
    }
    let below = low.saturating_sub(LOWEST_PORT);
    let above = u16::MAX - high;
    if below >= above && below > 0 {
        (LOWEST_PORT, below)
    } else if above > 0 {
        (high + 1, above)
    } else {
        (FIRST_PORT, PORT_COUNT)
    }
}

/// Whether some socket, in any state, has `port` as its local port.
fn in_use_by_any_socket(port: u16) -> bool {
    let wanted = format!("{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                // "  sl  local_address rem_address …": the local address is the
                // second column, `HEXADDR:HEXPORT`.
                line.split_whitespace()
                    .nth(1)
                    .and_then(|local| local.rsplit(':').next())
                    .is_some_and(|local_port| local_port == wanted)
            })
        })
    })
}

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
    let (first, count) = port_window();
    for _ in 0..count {
        let offset = (cursor().fetch_add(1, Ordering::Relaxed) % u32::from(count)) as u16;
        let port = first + offset;
        // A poisoned lock only means another test panicked while holding it;
        // the set itself is still consistent.
        let mut ports = handed_out().lock().unwrap_or_else(|p| p.into_inner());
        if ports.contains(&port) {
            continue;
        }
        if !in_use_by_any_socket(port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.insert(port);
            return port;
        }
    }
    panic!(
        "no free port in {first}..{}",
        u32::from(first) + u32::from(count)
    )
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_window_is_kept_when_the_ephemeral_range_is_above_it() {
        assert_eq!(
            window_beside(Some((32_768, 60_999))),
            (FIRST_PORT, PORT_COUNT)
        );
        assert_eq!(window_beside(None), (FIRST_PORT, PORT_COUNT));
    }

    #[test]
    fn a_wide_ephemeral_range_moves_the_window_beside_it() {
        assert_eq!(window_beside(Some((15_000, 60_999))), (LOWEST_PORT, 5_000));
        assert_eq!(window_beside(Some((10_500, 40_000))), (40_001, 25_535));
    }

    #[test]
    fn handed_out_ports_are_distinct_and_bindable() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
        for port in ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind a handed-out port");
        }
    }
}
