//! Running `wrk` once and reading its report.

use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use sluice_e2e::ChildGuard;

/// Time `wrk` may take beyond its run before it is called stuck.
const GRACE: Duration = Duration::from_secs(15);

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WrkRun {
    /// Completed requests per second.
    pub(crate) requests_per_s: f64,
    /// Median latency, in milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub(crate) p99_ms: f64,
    /// Completed requests.
    pub(crate) requests: u64,
    /// Socket errors plus non-2xx/3xx responses.
    pub(crate) errors: u64,
}

/// How `wrk` loads the target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Connections kept open at once.
    pub(crate) connections: usize,
    /// Send `Connection: close`: one connection per request.
    pub(crate) close: bool,
    /// Length of the run.
    pub(crate) seconds: u64,
}

/// Runs one thread of `wrk` against `http://addr/` and parses its report.
pub(crate) fn run(addr: SocketAddr, load: Load) -> Result<WrkRun, String> {
    run_for_host(addr, load, None)
}

/// Like [`run`], with `Host: host` on every request when a host is given.
pub(crate) fn run_for_host(
    addr: SocketAddr,
    load: Load,
    host: Option<&str>,
) -> Result<WrkRun, String> {
    run_url(&format!("http://{addr}/"), load, host)
}

/// Runs one thread of `wrk` against `url` (http or https) and parses its report.
pub(crate) fn run_url(url: &str, load: Load, host: Option<&str>) -> Result<WrkRun, String> {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", "--latency", "--timeout", "5s"])
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds));
    if load.close {
        command.args(["-H", "Connection: close"]);
    }
    if let Some(host) = host {
        command.arg("-H").arg(format!("Host: {host}"));
    }
    command.arg(url);
    let mut guard = ChildGuard::spawn(command, "wrk").map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(load.seconds) + GRACE;
    match guard.wait_exit(limit) {
        Some(status) if status.success() => {}
        Some(status) => return Err(format!("wrk failed ({status}):\n{}", guard.logs())),
        None => return Err(format!("wrk still running after {limit:?}")),
    }
    let report = fs::read_to_string(guard.log_dir().join("wrk.stdout"))
        .map_err(|e| format!("cannot read the wrk report: {e}"))?;
    parse(&report).ok_or_else(|| format!("unexpected wrk report:\n{report}"))
}

/// Reads the figures of a `wrk --latency` report.
fn parse(report: &str) -> Option<WrkRun> {
    let mut requests_per_s = None;
    let (mut p50_ms, mut p99_ms, mut requests) = (None, None, None);
    let mut errors = 0;
    for line in report.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(value)) => p50_ms = parse_time_ms(value),
            (Some("99%"), Some(value)) => p99_ms = parse_time_ms(value),
            (Some("Requests/sec:"), Some(value)) => requests_per_s = value.parse().ok(),
            (Some(count), Some("requests")) => requests = count.parse().ok(),
            (Some("Socket"), Some("errors:")) => errors += sum_numbers(line),
            (Some("Non-2xx"), _) => errors += last_number(line),
            _ => {}
        }
    }
    Some(WrkRun {
        requests_per_s: requests_per_s?,
        p50_ms: p50_ms?,
        p99_ms: p99_ms?,
        requests: requests?,
        errors,
    })
}

/// A `wrk` duration (`812.00us`, `1.25ms`, `2.00s`, `1.00m`) in milliseconds.
fn parse_time_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let value: f64 = text[..split].parse().ok()?;
    let scale = match &text[split..] {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(value * scale)
}

/// The number ending a line (`Non-2xx or 3xx responses: 5`).
fn last_number(line: &str) -> u64 {
    line.split_whitespace()
        .last()
        .and_then(|word| word.parse().ok())
        .unwrap_or(0)
}

/// Sum of the integers of a line (`connect 0, read 2, write 0, timeout 1`).
fn sum_numbers(line: &str) -> u64 {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 3s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   452.12us  100.00us   5.00ms   90.00%
    Req/Sec   100.00k     5.00k  110.00k    80.00%
  Latency Distribution
     50%  440.00us
     75%  500.00us
     90%  600.00us
     99%    1.50ms
  300000 requests in 3.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec: 100000.50
Transfer/sec:     13.33MB
";

    #[test]
    fn a_latency_report_is_read() {
        let run = parse(REPORT).expect("parsed");
        assert_eq!(run.requests, 300_000);
        assert_eq!(run.errors, 8);
        assert!((run.requests_per_s - 100_000.5).abs() < 1e-9);
        assert!((run.p50_ms - 0.44).abs() < 1e-9);
        assert!((run.p99_ms - 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_report_without_percentiles_is_refused() {
        assert_eq!(parse("Requests/sec: 5\n  10 requests in 1.00s"), None);
    }

    #[test]
    fn times_in_every_unit() {
        assert_eq!(parse_time_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_time_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_time_ms("3.5ms"), Some(3.5));
        assert_eq!(parse_time_ms("7"), None);
        assert_eq!(parse_time_ms("7xs"), None);
    }
}
