//! Memory held per idle keep-alive client connection.

use std::net::SocketAddr;
use std::time::Duration;

use sluice_e2e::process::rss_kib_of;
use sluice_e2e::HttpConn;

/// Idle connections opened per measurement.
pub(crate) const IDLE_CONNECTIONS: usize = 5_000;
/// Read timeout of each request made before a connection goes idle.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Growth of the resident memory of `pid` (the proxy) per client connection
/// kept open and idle after one request, in KiB, with `count` of them open.
pub(crate) fn rss_per_connection(addr: SocketAddr, pid: u32, count: usize) -> Result<f64, String> {
    // One connection first, so that what every process allocates on its
    // first request is not counted.
    let mut warm = open_after_one_request(addr)?;
    for _ in 0..10 {
        request(&mut warm)?;
    }
    drop(warm);
    let before = rss_kib_of(pid).map_err(|e| e.to_string())?;
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        open.push(open_after_one_request(addr)?);
    }
    let after = rss_kib_of(pid).map_err(|e| e.to_string())?;
    drop(open);
    Ok(after.saturating_sub(before) as f64 / count as f64)
}

fn open_after_one_request(addr: SocketAddr) -> Result<HttpConn, String> {
    let mut conn = HttpConn::connect(addr).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(REQUEST_TIMEOUT)
        .map_err(|e| e.to_string())?;
    request(&mut conn)?;
    Ok(conn)
}

fn request(conn: &mut HttpConn) -> Result<(), String> {
    let response = conn
        .get("bench", "/")
        .map_err(|e| format!("request: {e}"))?;
    if response.status != 200 || response.closes_connection() {
        return Err(format!(
            "unexpected answer {} (closes: {})",
            response.status,
            response.closes_connection()
        ));
    }
    Ok(())
}
