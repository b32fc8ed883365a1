//! The Sluice load benchmark: measures, in one run and side by side, the
//! backend reached directly, through Sluice and through HAProxy.
//!
//! ```text
//! cargo build --release -p sluice            # the binary under test
//! cargo run --release -p sluice-e2e --bin bench -- tcp [--reps N] [--mib N] [--seconds S]
//! cargo run --release -p sluice-e2e --bin bench -- http [--reps N] [--seconds S]
//! cargo run --release -p sluice-e2e --bin bench -- tls [--reps N] [--seconds S]
//! cargo run --release -p sluice-e2e --bin bench -- scale [--clusters N,N…] [--seconds S]
//! ```
//!
//! `scale` mode: see `scale.rs` (thousands of clusters: start, memory,
//! reloads, a worker's kill, ctl latencies, throughput through one route;
//! needs `wrk` and `nginx`, compares with HAProxy when installed).
//!
//! `tls` mode: see `tls.rs` (HTTPS termination against HAProxy and nginx: handshakes
//! per key type, resumption, keep-alive, idle memory; needs `openssl`, `wrk`, `nginx`).
//!
//! `http` mode: see `http.rs` (wrk, nginx backends, Sluice, HAProxy and
//! nginx as proxies; needs `wrk` and `nginx`, skips what is missing).
//!
//! `tcp` mode: an in-process echo backend; per target, the echo throughput
//! over one connection and over 50, and the rate of new connections
//! (connect, one byte echoed, close). Repetitions are interleaved (A B C A B
//! C …) so that drifts of the machine hit every target alike; medians are
//! printed.

mod http;
mod idle;
mod load;
mod nginx;
mod scale;
mod scale_targets;
mod stats;
mod targets;
mod tls;
mod wrk;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sluice_e2e::{free_addr, TcpEchoServer};

use stats::Samples;
use targets::{Mode, Target};

/// Metric names, in column order.
const SINGLE: &str = "1 conn MB/s";
const MULTI: &str = "50 conns MB/s";
const RATE: &str = "new conns/s";
/// Connections of the multi-connection stream.
const MULTI_CONNECTIONS: usize = 50;
/// Client threads of the connection-rate run.
const RATE_THREADS: usize = 4;
/// Cap of one stream measurement, whatever its size.
const MAX_STREAM_RUN: Duration = Duration::from_secs(6);

/// Command-line settings.
struct Options {
    mode: String,
    reps: usize,
    mib: u64,
    /// Length of one timed run; each mode has its default.
    seconds: Option<f64>,
    /// Numbers of clusters of the scale mode.
    clusters: Vec<usize>,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        mode: args.next().ok_or_else(usage)?,
        reps: 3,
        mib: 1024,
        seconds: None,
        clusters: vec![1_000, 10_000],
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        match flag.as_str() {
            "--reps" => options.reps = parse_value(&flag, &value)?,
            "--mib" => options.mib = parse_value(&flag, &value)?,
            "--seconds" => options.seconds = Some(parse_value(&flag, &value)?),
            "--clusters" => {
                options.clusters = value
                    .split(',')
                    .map(|count| parse_value(&flag, count))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown option {flag}\n{}", usage())),
        }
    }
    if options.reps == 0
        || options.mib == 0
        || options.seconds.is_some_and(|s| s <= 0.0)
        || options.clusters.iter().any(|&count| count < 4)
    {
        return Err("--reps, --mib and --seconds must be positive, --clusters at least 4".into());
    }
    Ok(options)
}

fn parse_value<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad value {value:?} for {flag}"))
}

fn usage() -> String {
    "usage: bench tcp [--reps N (3)] [--mib N streamed per measurement (1024)] \
     [--seconds S per connection-rate run (2)]\n\
     \x20      bench http [--reps N (3)] [--seconds S per wrk run (3)]\n\
     \x20      bench tls [--reps N (3)] [--seconds S per run (3)]\n\
     \x20      bench scale [--clusters N,N… (1000,10000)] [--seconds S per wrk run (3)]"
        .into()
}

fn main() -> ExitCode {
    let result = parse_options().and_then(|options| match options.mode.as_str() {
        "tcp" => run_tcp(&options),
        "http" => http::run(
            options.reps,
            http::wrk_seconds(options.seconds.unwrap_or(3.0)),
        ),
        "tls" => tls::run(
            options.reps,
            http::wrk_seconds(options.seconds.unwrap_or(3.0)),
        ),
        "scale" => scale::run(
            &options.clusters,
            http::wrk_seconds(options.seconds.unwrap_or(3.0)),
        ),
        other => Err(format!("unknown mode {other:?}\n{}", usage())),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_tcp(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let backend_addr = free_addr();
    let _backend = TcpEchoServer::start(backend_addr)
        .map_err(|e| format!("cannot start the echo backend: {e}"))?;
    let mut targets = vec![targets::direct(backend_addr)];
    match targets::sluice(Mode::Tcp, &[backend_addr]) {
        Ok(target) => targets.push(target),
        Err(why) => println!("sluice skipped: {why}"),
    }
    match targets::haproxy(Mode::Tcp, &[backend_addr]) {
        Ok(Some(target)) => targets.push(target),
        Ok(None) => println!("haproxy not installed: skipped"),
        Err(why) => println!("haproxy skipped: {why}"),
    }
    let bytes = options.mib * 1024 * 1024;
    let rate_seconds = options.seconds.unwrap_or(2.0);
    println!(
        "TCP echo, {} interleaved repetitions, medians. Streams: {} MiB per measurement \
         (capped at {}s); new connections: {RATE_THREADS} client threads for {}s.",
        options.reps,
        options.mib,
        MAX_STREAM_RUN.as_secs(),
        rate_seconds
    );
    let mut samples: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
    for rep in 0..options.reps {
        for (target, samples) in targets.iter().zip(&mut samples) {
            measure_streams(target, bytes, samples);
        }
        log_progress(rep, options.reps, started);
    }
    let rate_duration = Duration::from_secs_f64(rate_seconds);
    for _ in 0..options.reps {
        for (target, samples) in targets.iter().zip(&mut samples) {
            let rate = load::connection_rate(target.addr, RATE_THREADS, rate_duration);
            samples.push(RATE, rate.per_second);
            if rate.errors > 0 {
                samples.note(format!(
                    "{} failed connections in one rate run",
                    rate.errors
                ));
            }
        }
    }
    let rows: Vec<(&str, &Samples)> = targets.iter().map(|t| t.name).zip(&samples).collect();
    stats::print_table(&[SINGLE, MULTI, RATE], &rows);
    println!("(whole run: {:.0}s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn measure_streams(target: &Target, bytes: u64, samples: &mut Samples) {
    for (metric, connections) in [(SINGLE, 1), (MULTI, MULTI_CONNECTIONS)] {
        match load::stream_throughput(target.addr, connections, bytes, MAX_STREAM_RUN) {
            Ok(mb_per_s) => samples.push(metric, mb_per_s),
            Err(e) => samples.note(format!("{metric}: {e}")),
        }
    }
}

fn log_progress(rep: usize, reps: usize, started: Instant) {
    eprintln!(
        "streams: repetition {}/{reps} done after {:.0}s",
        rep + 1,
        started.elapsed().as_secs_f64()
    );
}
