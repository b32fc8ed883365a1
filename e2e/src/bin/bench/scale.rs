//! `bench scale`: Sluice (2 workers) on generated configurations of N HTTP
//! clusters (one host frontend and two nginx backends each), and HAProxy (one
//! thread, a `use_backend` map) on the same routes when it is installed.
//!
//! For each N it prints: the time from start to serving (every worker
//! running, the last cluster's host answered), the resident memory of each
//! process and what a backend costs, the time of a reload of 1 000 changes
//! and of the reload back (median, fastest and slowest of 5 rounds), of a
//! refused reload and `config check` of the
//! file with one bad value near its end, the time from a worker's kill to its
//! replacement serving with the whole state, the latency of `ctl` commands,
//! and keep-alive req/s through one route of the big configuration against
//! a configuration of one cluster (interleaved runs, medians).

use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sluice_e2e::free_addr;
use sluice_e2e::scale::{cluster_id, ScaleRoutes};

use crate::nginx;
use crate::scale_targets::{HaproxyScale, SluiceScale};
use crate::stats::Samples;
use crate::targets::find_on_path;
use crate::wrk::{self, Load};

/// Workers of every Sluice started here.
const WORKERS: u32 = 2;
/// Changes of the timed reload.
const RELOAD_CHANGES: usize = 1_000;

/// Reloads of the changes and back, timed each: one run on a shared machine
/// moves by tens of percent.
const RELOAD_ROUNDS: usize = 5;
/// Keep-alive connections of the throughput runs.
const CONNECTIONS: usize = 50;
/// Interleaved throughput repetitions.
const REPS: usize = 3;
/// Column names of the throughput table.
const RPS: &str = "req/s";

/// Runs the benchmark for each number of clusters in `sizes`.
pub(crate) fn run(sizes: &[usize], seconds: u64) -> Result<(), String> {
    let started = Instant::now();
    if find_on_path("wrk").is_none() {
        return Err("wrk is not installed (apt-get install -y wrk)".into());
    }
    let backends = nginx::backends()?;
    println!(
        "bench scale: Sluice with {WORKERS} workers; HAProxy 1 thread with a use_backend map; \
         each cluster: one host frontend, two nginx backends; reloads of {RELOAD_CHANGES} \
         changes (a quarter each: clusters removed, clusters added, backend weights, \
         frontend hostnames)."
    );
    let small = ScaleRoutes::new(free_addr(), 1, &backends.addrs);
    let one_cluster = SluiceScale::start(&small, WORKERS, &small.clusters[0].hostname)?;
    let (_, small_workers) = one_cluster.rss_kib();
    println!(
        "\n1 cluster: start to serving {}, worker RSS {} KiB",
        seconds_text(one_cluster.start_time),
        join(&small_workers)
    );
    for &size in sizes {
        println!("\n== {size} clusters, {} backends ==", size * 2);
        if let Err(error) = run_size(size, &backends.addrs, &one_cluster, &small, seconds) {
            println!("failed: {error}");
        }
    }
    println!("\n(whole run: {:.0}s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn run_size(
    size: usize,
    backends: &[SocketAddr; 2],
    one_cluster: &SluiceScale,
    small: &ScaleRoutes,
    seconds: u64,
) -> Result<(), String> {
    let routes = ScaleRoutes::new(free_addr(), size, backends);
    let last = routes.clusters[size - 1].hostname.clone();
    let mut sluice = SluiceScale::start(&routes, WORKERS, &last)?;
    let haproxy_routes = ScaleRoutes {
        listener: free_addr(),
        ..routes.clone()
    };
    let haproxy = match HaproxyScale::start(&haproxy_routes, &last) {
        Ok(haproxy) => haproxy,
        Err(error) => {
            println!("haproxy skipped: {error}");
            None
        }
    };
    print_start(&sluice, haproxy.as_ref(), one_cluster, &routes);
    print_ctl_latencies(&sluice, size);
    print_reloads(&sluice, &routes, backends)?;
    print_bad_file(&sluice, &routes);
    print_kill(&mut sluice, &routes, &last)?;
    let route = &routes.clusters[size / 2].hostname;
    print_throughput(
        &[
            (
                "sluice, 1 cluster",
                small.listener,
                small.clusters[0].hostname.as_str(),
            ),
            ("sluice, big config", routes.listener, route.as_str()),
            (
                "haproxy, big config",
                haproxy_routes.listener,
                route.as_str(),
            ),
        ][..if haproxy.is_some() { 3 } else { 2 }],
        seconds,
    );
    let (main, workers) = sluice.rss_kib();
    println!(
        "RSS after the runs: main {main} KiB, workers {} KiB{}",
        join(&workers),
        haproxy
            .as_ref()
            .map(|h| format!("; haproxy {} KiB", h.rss_kib()))
            .unwrap_or_default()
    );
    Ok(())
}

fn print_start(
    sluice: &SluiceScale,
    haproxy: Option<&HaproxyScale>,
    one_cluster: &SluiceScale,
    routes: &ScaleRoutes,
) {
    let (main, workers) = sluice.rss_kib();
    println!(
        "start to serving: sluice {}{}",
        seconds_text(sluice.start_time),
        haproxy
            .map(|h| format!(", haproxy {}", seconds_text(h.start_time)))
            .unwrap_or_default()
    );
    println!(
        "RSS: sluice main {main} KiB, workers {} KiB{}",
        join(&workers),
        haproxy
            .map(|h| format!("; haproxy {} KiB", h.rss_kib()))
            .unwrap_or_default()
    );
    let (_, small) = one_cluster.rss_kib();
    let extra: f64 = workers.iter().sum::<u64>() as f64 - small.iter().sum::<u64>() as f64;
    let per_worker = extra / workers.len().max(1) as f64;
    println!(
        "bytes per backend (worker RSS above the 1-cluster config / backends, clusters and \
         frontends included): {:.0}",
        per_worker * 1024.0 / routes.backend_count() as f64
    );
}

fn print_ctl_latencies(sluice: &SluiceScale, size: usize) {
    let middle = cluster_id(size / 2);
    let commands: [&[&str]; 6] = [
        &["status"],
        &["cluster", "list"],
        &["cluster", "show", &middle],
        &["frontend", "list"],
        &["listener", "list"],
        &["metrics"],
    ];
    let mut line = String::from("ctl latency:");
    for args in commands {
        match sluice.timed_ctl(args) {
            Ok((elapsed, output)) => line.push_str(&format!(
                " {} {} ({} lines);",
                args.join(" "),
                seconds_text(elapsed),
                output.stdout.iter().filter(|&&b| b == b'\n').count()
            )),
            Err(error) => line.push_str(&format!(" {error};")),
        }
    }
    println!("{line}");
}

fn print_reloads(
    sluice: &SluiceScale,
    routes: &ScaleRoutes,
    backends: &[SocketAddr; 2],
) -> Result<(), String> {
    let changes = RELOAD_CHANGES.min(routes.clusters.len());
    let changed = routes.changed(changes, backends);
    let changed_path = sluice.dir().join("changed.toml");
    fs::write(&changed_path, changed.sluice_config(WORKERS))
        .map_err(|e| format!("cannot write the changed config: {e}"))?;
    let original = sluice.dir().join("sluice.toml").display().to_string();
    let changed_path = changed_path.display().to_string();
    let (mut there, mut back) = (Vec::new(), Vec::new());
    for round in 0..RELOAD_ROUNDS {
        there.push(sluice.timed_ctl(&["reload", "-c", &changed_path])?.0);
        if round == 0 {
            let moved = changed
                .clusters
                .iter()
                .find(|c| c.hostname.starts_with("moved."))
                .map(|c| c.hostname.clone());
            if let Some(host) = moved {
                let answer = sluice_e2e::http_get(routes.listener, &host, "/");
                if !matches!(&answer, Ok(r) if r.status == 200) {
                    println!("  after the reload, {host} answered {answer:?}");
                }
            }
        }
        back.push(sluice.timed_ctl(&["reload", "-c", &original])?.0);
    }
    println!(
        "reload of {changes} changes (ctl reload, answered when every worker applied it; \
         {RELOAD_ROUNDS} rounds): {}, and back: {}",
        spread_text(&mut there),
        spread_text(&mut back)
    );
    Ok(())
}

/// `median M (min A, max B)` of `durations`.
fn spread_text(durations: &mut [Duration]) -> String {
    durations.sort_unstable();
    match (durations.first(), durations.last()) {
        (Some(min), Some(max)) => format!(
            "median {} (min {}, max {})",
            seconds_text(durations[durations.len() / 2]),
            seconds_text(*min),
            seconds_text(*max)
        ),
        _ => "none".to_owned(),
    }
}

/// A file with one bad value near its end, to `config check` and to `reload`.
fn print_bad_file(sluice: &SluiceScale, routes: &ScaleRoutes) {
    let mut config = routes.sluice_config(WORKERS);
    let Some(position) = config.rfind("weight = 100") else {
        return;
    };
    config.replace_range(position..position + "weight = 100".len(), "weight = 5000");
    let path = sluice.dir().join("bad.toml");
    if fs::write(&path, config).is_err() {
        return;
    }
    let path = path.display().to_string();
    let (check, output) = sluice.timed_command(&["config", "check", &path]);
    let message = String::from_utf8_lossy(&output.stderr);
    let first_line = message.lines().last().unwrap_or("").to_owned();
    let (reload, reload_output) = sluice.timed_command(&[
        "ctl",
        "-s",
        "sluice.sock",
        "--timeout",
        "120",
        "reload",
        "-c",
        &path,
    ]);
    println!(
        "one bad value near the end: config check refused it in {} ({}: {first_line}); \
         reload refused it in {} ({})",
        seconds_text(check),
        if output.status.success() {
            "ACCEPTED"
        } else {
            "refused"
        },
        seconds_text(reload),
        if reload_output.status.success() {
            "ACCEPTED"
        } else {
            "refused"
        },
    );
}

fn print_kill(sluice: &mut SluiceScale, routes: &ScaleRoutes, probe: &str) -> Result<(), String> {
    let Some(&victim) = sluice.worker_pids().first() else {
        return Err(format!("no running worker to kill:\n{}", sluice.logs()));
    };
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -KILL {victim} failed"));
    }
    sluice.wait_serving(routes.listener, probe, WORKERS as usize, Some(victim))?;
    println!(
        "worker killed to serving again with the whole state: {}",
        seconds_text(killed.elapsed())
    );
    Ok(())
}

fn print_throughput(targets: &[(&str, SocketAddr, &str)], seconds: u64) {
    let load = Load {
        connections: CONNECTIONS,
        close: false,
        seconds,
    };
    let mut samples: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
    for (_, addr, host) in targets {
        let _ = wrk::run_for_host(*addr, Load { seconds: 1, ..load }, Some(host));
    }
    for _ in 0..REPS {
        for ((_, addr, host), samples) in targets.iter().zip(&mut samples) {
            match wrk::run_for_host(*addr, load, Some(host)) {
                Ok(run) => {
                    samples.push(RPS, run.requests_per_s);
                    if run.errors > 0 {
                        samples.note(format!("{} errors or non-2xx in one run", run.errors));
                    }
                }
                Err(error) => samples.note(error),
            }
        }
    }
    println!(
        "keep-alive req/s through one route ({CONNECTIONS} connections, wrk 1 thread, \
         {seconds}s runs, {REPS} interleaved repetitions, medians):"
    );
    let reference = samples[0].median(RPS);
    for ((name, _, _), samples) in targets.iter().zip(&samples) {
        let median = samples.median(RPS);
        let ratio = median
            .zip(reference)
            .map(|(value, reference)| format!("{:.3}", value / reference))
            .unwrap_or_else(|| "-".into());
        println!(
            "  {name:<22}{:>10} req/s   ratio to sluice 1 cluster {ratio}",
            median.map_or("-".into(), |m| format!("{m:.0}"))
        );
        for note in samples.notes() {
            println!("    {note}");
        }
    }
}

fn seconds_text(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}

fn join(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}
