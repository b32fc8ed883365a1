//! `bench http`: `wrk` against nginx backends directly, and through Sluice
//! (one worker), HAProxy (one thread) and nginx (one worker), each keeping
//! connections to the backends alive.
//!
//! Three loads: 50 keep-alive connections (throughput), one connection
//! (latency) and 50 connections sending `Connection: close` (a new
//! connection per request). Runs are interleaved (A B C D A B C D …) and the
//! medians printed, with the proxy's CPU time per request (from
//! `/proc/PID/stat` before and after each run: the steadiest figure on a
//! shared machine) and the ratios to HAProxy. Then the resident memory per
//! idle keep-alive client connection, with 5 000 of them open. With
//! `BENCH_OTHER_SLUICE=PATH`, a second Sluice build is measured in the same run
//! (`sluice-2`), e.g. the commit before a change to a hot path.

use std::time::{Duration, Instant};

use sluice_e2e::process::cpu_ticks_of;
use sluice_e2e::{clock_ticks_per_second, raise_fd_limit};

use crate::idle::{self, IDLE_CONNECTIONS};
use crate::nginx;
use crate::stats::Samples;
use crate::targets::{self, find_on_path, Mode, Target};
use crate::wrk::{self, Load};

/// Metric names.
const RPS: &str = "req/s";
const P50: &str = "p50 ms";
const P99: &str = "p99 ms";
const CPU: &str = "CPU us/req";
const IDLE: &str = "KiB/idle conn";
/// Files the idle measurement needs open at once, with some room.
const FDS_NEEDED: u64 = IDLE_CONNECTIONS as u64 + 500;
/// Name of the target the ratios are computed against.
const REFERENCE: &str = "haproxy";

/// One load applied to every target.
struct Scenario {
    title: &'static str,
    connections: usize,
    close: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        title: "50 keep-alive connections",
        connections: 50,
        close: false,
    },
    Scenario {
        title: "1 keep-alive connection (latency)",
        connections: 1,
        close: false,
    },
    Scenario {
        title: "50 connections, Connection: close (one connection per request)",
        connections: 50,
        close: true,
    },
];

/// Runs the HTTP benchmark: `reps` interleaved repetitions of `seconds`
/// per `wrk` run.
pub(crate) fn run(reps: usize, seconds: u64) -> Result<(), String> {
    let started = Instant::now();
    if find_on_path("wrk").is_none() {
        return Err("wrk is not installed (apt-get install -y wrk)".into());
    }
    let fd_limit = raise_fd_limit().map_err(|e| format!("cannot raise the fd limit: {e}"))?;
    let backends = nginx::backends()?;
    let targets = start_targets(&backends.addrs);
    let mut idle_samples: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
    if fd_limit < FDS_NEEDED {
        println!("idle connections skipped: the fd limit is {fd_limit}, {FDS_NEEDED} are needed");
    } else {
        measure_idle(&targets, &mut idle_samples);
    }
    let load = |scenario: &Scenario, seconds| Load {
        connections: scenario.connections,
        close: scenario.close,
        seconds,
    };
    for target in &targets {
        // Warm-up: first connections, pools, caches.
        let _ = wrk::run(target.addr, load(&SCENARIOS[0], 1));
    }
    let mut samples: Vec<Vec<Samples>> = SCENARIOS
        .iter()
        .map(|_| targets.iter().map(|_| Samples::default()).collect())
        .collect();
    for rep in 0..reps {
        for (scenario, samples) in SCENARIOS.iter().zip(&mut samples) {
            for (target, samples) in targets.iter().zip(samples.iter_mut()) {
                measure(target, load(scenario, seconds), samples);
            }
        }
        eprintln!(
            "http: repetition {}/{reps} done after {:.0}s",
            rep + 1,
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "HTTP through each proxy to 2 nginx backends (body of {} bytes); wrk, 1 thread, \
         {seconds}s per run, {reps} interleaved repetitions, medians; ratios to {REFERENCE}.",
        nginx::BODY.len()
    );
    for (scenario, samples) in SCENARIOS.iter().zip(&samples) {
        println!("\n{}", scenario.title);
        print_scenario(&targets, samples);
    }
    println!("\n{IDLE_CONNECTIONS} idle keep-alive client connections (after one request each)");
    print_idle(&targets, &idle_samples);
    println!("\n(whole run: {:.0}s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn start_targets(backends: &[std::net::SocketAddr; 2]) -> Vec<Target> {
    let mut targets = vec![targets::direct(backends[0])];
    match targets::sluice(Mode::Http, backends) {
        Ok(target) => targets.push(target),
        Err(why) => println!("sluice skipped: {why}"),
    }
    if let Some(other) = targets::other_sluice_binary() {
        match targets::sluice_from(&other, "sluice-2", Mode::Http, backends) {
            Ok(target) => targets.push(target),
            Err(why) => println!("sluice-2 ({}) skipped: {why}", other.display()),
        }
    }
    match targets::haproxy(Mode::Http, backends) {
        Ok(Some(target)) => targets.push(target),
        Ok(None) => println!("haproxy skipped: not installed (apt-get install -y haproxy)"),
        Err(why) => println!("haproxy skipped: {why}"),
    }
    match nginx::proxy(backends) {
        Ok(Some(target)) => targets.push(target),
        Ok(None) => println!("nginx skipped: not installed (apt-get install -y nginx-light)"),
        Err(why) => println!("nginx skipped: {why}"),
    }
    targets
}

fn measure_idle(targets: &[Target], samples: &mut [Samples]) {
    for (target, samples) in targets.iter().zip(samples) {
        let Some(pid) = target.pid else {
            continue;
        };
        match idle::rss_per_connection(target.addr, pid, IDLE_CONNECTIONS) {
            Ok(kib) => samples.push(IDLE, kib),
            Err(e) => samples.note(format!("idle connections: {e}")),
        }
    }
}

/// One `wrk` run, with the CPU time the proxy spent meanwhile.
fn measure(target: &Target, load: Load, samples: &mut Samples) {
    let ticks = || target.pid.and_then(|pid| cpu_ticks_of(pid).ok());
    let before = ticks();
    let run = match wrk::run(target.addr, load) {
        Ok(run) => run,
        Err(e) => return samples.note(e),
    };
    let after = ticks();
    samples.push(RPS, run.requests_per_s);
    samples.push(P50, run.p50_ms);
    samples.push(P99, run.p99_ms);
    if let (Some(before), Some(after)) = (before, after) {
        if run.requests > 0 {
            let seconds = after.saturating_sub(before) as f64 / clock_ticks_per_second() as f64;
            samples.push(CPU, seconds * 1e6 / run.requests as f64);
        }
    }
    if run.errors > 0 {
        samples.note(format!(
            "{} errors or non-2xx answers in one run ({} connections{})",
            run.errors,
            load.connections,
            if load.close { ", close" } else { "" }
        ));
    }
}

fn print_scenario(targets: &[Target], samples: &[Samples]) {
    let reference = targets.iter().position(|t| t.name == REFERENCE);
    print!("{:<10}", "target");
    for header in [RPS, P50, P99, CPU, "req/s ratio", "p99 ratio", "CPU ratio"] {
        print!("{header:>12}");
    }
    println!();
    let reference = reference.map(|i| &samples[i]);
    for (target, samples) in targets.iter().zip(samples) {
        print!("{:<10}", target.name);
        for (metric, decimals) in [(RPS, 0), (P50, 3), (P99, 3), (CPU, 2)] {
            print_cell(samples.median(metric), decimals);
        }
        for metric in [RPS, P99, CPU] {
            let ratio = reference
                .and_then(|r| r.median(metric))
                .zip(samples.median(metric))
                .map(|(r, value)| value / r);
            print_cell(ratio, 2);
        }
        println!();
    }
    print_notes(targets, samples);
}

fn print_idle(targets: &[Target], samples: &[Samples]) {
    println!("{:<10}{:>14}", "target", IDLE);
    for (target, samples) in targets.iter().zip(samples) {
        if target.pid.is_some() {
            print!("{:<10}", target.name);
            match samples.median(IDLE) {
                Some(value) => println!("{value:>14.2}"),
                None => println!("{:>14}", "-"),
            }
        }
    }
    print_notes(targets, samples);
}

fn print_cell(value: Option<f64>, decimals: usize) {
    match value {
        Some(value) => print!("{value:>12.decimals$}"),
        None => print!("{:>12}", "-"),
    }
}

fn print_notes(targets: &[Target], samples: &[Samples]) {
    for (target, samples) in targets.iter().zip(samples) {
        for note in samples.notes() {
            println!("  {}: {note}", target.name);
        }
    }
}

/// Longest run of `wrk` allowed by `--seconds`.
pub(crate) fn wrk_seconds(seconds: f64) -> u64 {
    Duration::from_secs_f64(seconds.max(1.0)).as_secs()
}
