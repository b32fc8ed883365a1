//! The `metrics_address` endpoint: a small blocking HTTP/1.1 server on a thread of the main
//! process (it is not the data plane). One request per connection, answered with
//! `Connection: close`:
//!
//! - `GET /metrics`: every worker's metrics, merged, as Prometheus text;
//! - `GET /health`: `200 ok` while running, `503` with the reason while stopping or while a
//!   worker is down or being respawned;
//! - `GET /status`: workers, clusters and backends as JSON;
//! - `GET /`: a live HTML status page (no external assets) that refreshes itself from
//!   `/status`.
//!
//! Other paths get 404, other methods 405. A request head larger than [`MAX_HEAD`] or slower
//! than [`READ_TIMEOUT`] is dropped with a 400 or 408.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use log::{debug, warn};
use serde_json::{json, Value};
use sluice_command::metrics::table::percentile_us;
use sluice_command::metrics::{names, prometheus};
use sluice_command::proto::{self, LoadBalancingAlgorithm, WorkerRunState};

use super::{lock, metrics, MainProcess};

/// The live status page served on `/`: one self-contained file (inline style and script).
const STATUS_PAGE: &str = include_str!("status_page.html");
/// Failed connects in a row after which a backend's retry policy gives up on it
/// (the worker's passive-check threshold): shown as down.
const RETRY_EXHAUSTED_AFTER: u64 = 6;

/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request, and to read the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// An answer: status line, content type, body.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Binds the endpoint's address.
pub(crate) fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).with_context(|| format!("cannot listen on {address} for metrics"))
}

/// A running endpoint: its address, and how to stop its thread (a reload may move it).
#[derive(Debug)]
pub(crate) struct Endpoint {
    address: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl Endpoint {
    /// Where it listens.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving: the thread sees the flag at its next accept, which a connection of
    /// its own wakes, and closes the listening socket.
    pub(crate) fn stop(self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.address, READ_TIMEOUT);
    }
}

/// Serves the endpoint on a thread of its own until the process exits or it is stopped.
pub(crate) fn serve(
    main: Arc<MainProcess>,
    address: SocketAddr,
    listener: TcpListener,
) -> anyhow::Result<Endpoint> {
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&stopped);
    thread::Builder::new()
        .name("metrics-endpoint".to_owned())
        .spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match stream {
                    Ok(stream) => {
                        if let Err(error) = handle(&main, stream) {
                            debug!("metrics endpoint client: {error}");
                        }
                    }
                    Err(error) => warn!("metrics endpoint accept: {error}"),
                }
            }
        })
        .context("cannot start the metrics endpoint thread")?;
    Ok(Endpoint { address, stopped })
}

fn handle(main: &MainProcess, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let reply = match read_head(&mut stream) {
        Ok(head) => match parse_request_line(&head) {
            Some((method, path)) => route(main, method, path),
            None => Reply::text(400, "bad request\n"),
        },
        Err(HeadError::TooLarge) => Reply::text(431, "request head too large\n"),
        Err(HeadError::Timeout) => Reply::text(408, "request timeout\n"),
        Err(HeadError::Io(error)) => return Err(error),
    };
    write_reply(&mut stream, &reply)
}

enum HeadError {
    TooLarge,
    Timeout,
    Io(io::Error),
}

/// Reads up to the end of the request head (the body, if any, is ignored).
fn read_head(stream: &mut TcpStream) -> Result<String, HeadError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if head.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(String::from_utf8_lossy(&head).into_owned()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Timeout)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// `GET /path HTTP/1.1` → (`GET`, `/path`), the query dropped.
fn parse_request_line(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let method = parts.next().filter(|m| !m.is_empty())?;
    let target = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some((method, path))
}

fn route(main: &MainProcess, method: &str, path: &str) -> Reply {
    if !matches!(path, "/" | "/metrics" | "/health" | "/status") {
        return Reply::text(404, "not found\n");
    }
    if method != "GET" {
        return Reply::text(405, "method not allowed\n");
    }
    match path {
        "/metrics" => metrics_page(main),
        "/health" => health(main),
        "/status" => status(main),
        _ => Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: STATUS_PAGE.to_owned(),
        },
    }
}

fn metrics_page(main: &MainProcess) -> Reply {
    match metrics::collect(main, &proto::QueryMetrics::default()) {
        Ok(collected) => {
            let mut body = String::new();
            prometheus::render(&collected.metrics, &mut body);
            super::certificate_metrics::render(&lock(&main.state), &mut body);
            if let Some(source) = main.etcd.get() {
                body.push_str(&source.metrics_text());
            }
            super::dns::write_metrics(main, &mut body);
            Reply {
                status: 200,
                content_type: prometheus::CONTENT_TYPE,
                body,
            }
        }
        Err(reason) => Reply::text(503, format!("{reason}\n")),
    }
}

fn health(main: &MainProcess) -> Reply {
    if main.stop_requested() {
        return Reply::text(503, "stopping\n");
    }
    let down = main
        .workers
        .slot_states()
        .into_iter()
        .find(|worker| worker.state != WorkerRunState::Running as i32);
    match down {
        Some(worker) => Reply::text(
            503,
            format!("worker {} is {}\n", worker.id, state_name(worker.state)),
        ),
        None => Reply::text(200, "ok\n"),
    }
}

fn status(main: &MainProcess) -> Reply {
    let workers: Vec<Value> = main
        .workers
        .statuses()
        .workers
        .iter()
        .map(|worker| {
            json!({
                "id": worker.id,
                "pid": worker.pid,
                "state": state_name(worker.state),
                "restarts": worker.restarts,
                "sessions": worker.sessions,
            })
        })
        .collect();
    let collected = metrics::collect(main, &proto::QueryMetrics::default()).ok();
    let total = collected.as_ref().and_then(|c| c.metrics.total.as_ref());
    let state = lock(&main.state);
    let clusters: Vec<Value> = state
        .clusters()
        .values()
        .map(|cluster| {
            let counted = total.and_then(|t| {
                t.clusters
                    .iter()
                    .find(|c| c.cluster_id == cluster.cluster_id)
            });
            let backends: Vec<Value> = state
                .backends(&cluster.cluster_id)
                .map(|backend| backend_status(backend, counted))
                .collect();
            let algorithm = LoadBalancingAlgorithm::try_from(cluster.load_balancing)
                .map_or("unknown", |a| a.as_str_name());
            let health_check = cluster.health_check.as_ref().map(|check| {
                json!({
                    "uri": check.uri,
                    "interval_ms": check.interval_ms,
                    "timeout_ms": check.timeout_ms,
                })
            });
            json!({
                "cluster_id": cluster.cluster_id,
                "algorithm": algorithm.to_lowercase(),
                "health_check": health_check,
                "available_backends": counted.and_then(|c| value(&c.values, names::AVAILABLE_BACKENDS)),
                "total_backends": counted.and_then(|c| value(&c.values, names::TOTAL_BACKENDS)),
                "backends": backends,
            })
        })
        .collect();
    drop(state);
    let body = json!({
        "state": if main.stop_requested() { "stopping" } else { "running" },
        "workers": workers,
        "clusters": clusters,
        "source": main.etcd.get().and_then(|source| serde_json::to_value(source.status()).ok()),
        "dns_names": super::dns::status_json(main),
    });
    Reply {
        status: 200,
        content_type: "application/json",
        body: format!("{body:#}\n"),
    }
}

fn backend_status(backend: &proto::Backend, cluster: Option<&proto::ClusterMetrics>) -> Value {
    let counted = cluster.and_then(|c| {
        c.backends
            .iter()
            .find(|b| b.backend_id == backend.backend_id)
    });
    let get = |name: &str| counted.and_then(|b| value(&b.values, name));
    let retry_failures = get(names::RETRY_FAILURES);
    let healthy = counted.and_then(|b| b.healthy);
    let state = match (backend.state(), counted, healthy, retry_failures) {
        (proto::BackendState::Drain, ..) => "drain",
        (proto::BackendState::Maint, ..) => "maint",
        (_, counted, healthy, retry_failures) => run_state(counted, healthy, retry_failures),
    };
    let latency = counted
        .and_then(|b| {
            b.histograms
                .iter()
                .find(|h| h.name == names::TOTAL_REQUEST_TIME)
        })
        .map(|h| {
            let ms = |percent| percentile_us(&h.histogram, percent).map(|us| us as f64 / 1000.0);
            json!({ "p50": ms(50.0), "p90": ms(90.0), "p99": ms(99.0) })
        });
    json!({
        "backend_id": backend.backend_id,
        "address": backend.address,
        "state": state,
        "healthy": healthy,
        "latency_ms": latency,
        "retry": match retry_failures {
            Some(0) => json!({"state": "ok", "failures": 0}),
            Some(failures) => json!({"state": "backing_off", "failures": failures}),
            None => Value::Null,
        },
        "active_connections": get(names::ACTIVE_CONNECTIONS),
        "requests": get(names::REQUESTS),
    })
}

/// `up`, `backing_off`, `down` or `unknown` (no worker counted it), as the workers see it.
fn run_state(
    counted: Option<&proto::BackendMetrics>,
    healthy: Option<bool>,
    retry_failures: Option<u64>,
) -> &'static str {
    match (counted, healthy, retry_failures) {
        (None, _, _) => "unknown",
        (_, Some(false), _) => "down",
        (_, _, Some(failures)) if failures >= RETRY_EXHAUSTED_AFTER => "down",
        (_, _, Some(failures)) if failures > 0 => "backing_off",
        _ => "up",
    }
}

fn value(values: &[proto::MetricValue], name: &str) -> Option<u64> {
    values.iter().find(|v| v.name == name).map(|v| v.value)
}

fn state_name(state: i32) -> String {
    WorkerRunState::try_from(state)
        .map_or("unknown", |s| s.as_str_name())
        .to_lowercase()
}

fn write_reply(stream: &mut TcpStream, reply: &Reply) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(reply.body.as_bytes())?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_or_refused() {
        assert_eq!(
            parse_request_line("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line("POST /health HTTP/1.0\r\n\r\n"),
            Some(("POST", "/health"))
        );
        assert_eq!(parse_request_line("GET /metrics\r\n\r\n"), None);
        assert_eq!(parse_request_line("GET /metrics SPDY/3\r\n\r\n"), None);
        assert_eq!(parse_request_line(""), None);
    }
}
