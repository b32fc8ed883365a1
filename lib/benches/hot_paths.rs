//! Micro-benchmarks of the worker's per-request hot paths, printing nanoseconds per
//! operation: the request head parser, the router, a whole sans-IO keep-alive exchange
//! through an HTTP session, and recording one request's metrics into a cluster's and
//! a backend's stats (what the loop does per request). The last line relates the
//! metrics' cost to the session's, which is how "metrics on" is budgeted.
//!
//! Run: `cargo bench -p sluice-lib --bench hot_paths` (release profile).

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_lib::http::parser::{parse_request, RequestOptions};
use sluice_lib::http::session::SessionAction;
use sluice_lib::metrics::TrafficStats;

#[path = "../tests/support/session_driver.rs"]
#[allow(dead_code)]
mod session_driver;

/// Runs `op` repeatedly for about `budget` and returns nanoseconds per call
/// (the best of five rounds, the steadiest figure on a shared machine).
fn measure(budget: Duration, mut op: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut iterations = 0u64;
        let start = Instant::now();
        while start.elapsed() < budget / 5 {
            for _ in 0..1000 {
                op();
            }
            iterations += 1000;
        }
        best = best.min(start.elapsed().as_nanos() as f64 / iterations as f64);
    }
    best
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("SLUICE_BENCH_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(1500),
    );
    let request: &[u8] = session_driver::REQUEST;
    let options = RequestOptions {
        sticky_cookie: Some(b"SLUICEID"),
    };
    let mut headers = Vec::with_capacity(32);
    let parse = measure(budget, || {
        let parsed = parse_request(black_box(request), &options, &mut headers);
        black_box(parsed.is_ok());
    });

    let (mut worker, mut session) = session_driver::Worker::with_session();
    let lookup = measure(budget, || {
        let route = worker
            .router
            .lookup(black_box(b"example.com"), b"/x", b"GET")
            .is_some();
        black_box(route);
    });

    let mut actions: Vec<SessionAction> = Vec::with_capacity(16);
    let exchange = measure(budget, || {
        worker.exchange(&mut session, &mut actions);
        actions.clear();
    });

    let (cluster, backend) = (TrafficStats::default(), TrafficStats::default());
    let record = measure(budget, || {
        for stats in [&cluster, &backend] {
            stats.requests.increment();
            stats.record_status(black_box(200));
            stats.received_bytes.add(black_box(120));
            stats.sent_bytes.add(black_box(64));
            stats.record_timings(
                None,
                Some(Duration::from_micros(black_box(180))),
                Duration::from_micros(black_box(260)),
            );
        }
    });

    println!("operation                                   ns/op");
    println!("parse a request head                     {parse:8.1}");
    println!("route (host, path, method)               {lookup:8.1}");
    println!("keep-alive exchange through a session    {exchange:8.1}");
    println!("record one request's metrics             {record:8.1}");
    println!(
        "metrics / session exchange: {:.1} % (of the sans-IO work alone; a proxied request \
         also costs its system calls: see `bench http` for CPU per request)",
        100.0 * record / exchange
    );
}
