//! `bench tls`: HTTPS termination by one Sluice worker, HAProxy (one thread, OpenSSL)
//! and nginx (one worker, OpenSSL), with the same certificates (ECDSA P-256 and
//! RSA-2048, made at start with `openssl`) and the same two nginx backends.
//!
//! Per target: full TLS 1.3 handshakes per second per key type (a new connection per
//! request, `Connection: close`), resumed handshakes per second (TLS 1.3 tickets), the
//! proxy's CPU time per handshake; HTTPS keep-alive throughput with `wrk` (50
//! connections): req/s, p50/p99 and CPU per request; and the resident memory per idle
//! TLS keep-alive connection with 5 000 open. The handshake client is the e2e crate's
//! rustls client, in threads, skipping signature checks so that it costs less than the
//! servers it loads. Runs are interleaved and medians printed, with ratios to HAProxy:
//! the machine is shared, so only figures of the same run compare. With
//! `BENCH_OTHER_SLUICE=PATH`, a second Sluice build is measured too (`sluice-2`), e.g.
//! one with the other crypto provider.

use std::any::Any;
use std::fs;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_command::proto::{ListenerProtocol, ResponseStatus};
use sluice_e2e::process::{cpu_ticks_of, rss_kib_of};
use sluice_e2e::requests::{self, certificate_and_key, tls_settings};
use sluice_e2e::tls::{KeyType, TestCertificate};
use sluice_e2e::tls_client::{load_client_config, TlsConn};
use sluice_e2e::worker::WorkerHarness;
use sluice_e2e::{clock_ticks_per_second, free_addr, raise_fd_limit, wait, ChildGuard};
use tempfile::TempDir;

use crate::nginx;
use crate::stats::Samples;
use crate::targets::find_on_path;
use crate::wrk::{self, Load};

const FULL_ECDSA: &str = "full hs/s ECDSA";
const FULL_RSA: &str = "full hs/s RSA";
const RESUMED: &str = "resumed hs/s";
const CPU_ECDSA: &str = "CPU us/hs ECDSA";
const CPU_RSA: &str = "CPU us/hs RSA";
const CPU_RESUMED: &str = "CPU us/resumed";
const RPS: &str = "keep-alive req/s";
const P50: &str = "p50 ms";
const P99: &str = "p99 ms";
const CPU: &str = "CPU us/req";
const IDLE: &str = "KiB/idle conn";
/// Client threads of the handshake runs.
const HANDSHAKE_THREADS: usize = 4;
/// Idle TLS connections of the memory measurement.
const IDLE_CONNECTIONS: usize = 5_000;
const START_DEADLINE: Duration = Duration::from_secs(10);
const REFERENCE: &str = "haproxy";
const NAME: &str = "bench.test";

/// One proxy terminating TLS on two addresses: one with the ECDSA certificate, one
/// with the RSA one.
struct TlsTarget {
    name: &'static str,
    ecdsa: SocketAddr,
    rsa: SocketAddr,
    pid: u32,
    _keep_alive: Box<dyn Any>,
}

/// The certificates every target serves, as PEM files too.
struct Certificates {
    ecdsa: TestCertificate,
    rsa: TestCertificate,
    dir: TempDir,
}

/// Runs the TLS benchmark: `reps` interleaved repetitions of `seconds` per run.
pub(crate) fn run(reps: usize, seconds: u64) -> Result<(), String> {
    let started = Instant::now();
    let fd_limit = raise_fd_limit().map_err(|e| format!("cannot raise the fd limit: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let certs = Certificates {
        ecdsa: TestCertificate::generate(dir.path(), &[NAME], KeyType::EcdsaP256),
        rsa: TestCertificate::generate(dir.path(), &[NAME], KeyType::Rsa2048),
        dir,
    };
    let backends = nginx::backends()?;
    let mut targets = Vec::new();
    // A second Sluice build to compare with (another crypto provider, …).
    let other = super::targets::other_sluice_binary();
    let other = other.map(|program| sluice(&certs, &backends.addrs, Some(&program)).map(Some));
    for (name, started) in [
        ("sluice", sluice(&certs, &backends.addrs, None).map(Some)),
        ("sluice-2", other.unwrap_or(Ok(None))),
        ("haproxy", haproxy(&certs, &backends.addrs)),
        ("nginx", nginx_proxy(&certs, &backends.addrs)),
    ] {
        match started {
            Ok(Some(target)) => targets.push(target),
            Ok(None) if name == "sluice-2" => {}
            Ok(None) => println!("{name} skipped: not installed"),
            Err(why) => println!("{name} skipped: {why}"),
        }
    }
    let mut samples: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
    let duration = Duration::from_secs(seconds);
    for target in &targets {
        // Warm-up: first connections, caches, pools.
        let _ = handshakes(target.ecdsa, false, Duration::from_secs(1));
    }
    for rep in 0..reps {
        for (target, samples) in targets.iter().zip(samples.iter_mut()) {
            measure_handshakes(target, duration, samples);
            measure_keep_alive(target, seconds, samples);
        }
        eprintln!(
            "tls: repetition {}/{reps} done after {:.0}s",
            rep + 1,
            started.elapsed().as_secs_f64()
        );
    }
    if fd_limit < IDLE_CONNECTIONS as u64 + 500 {
        println!("idle connections skipped: the fd limit is {fd_limit}");
    } else {
        for (target, samples) in targets.iter().zip(samples.iter_mut()) {
            match idle_kib_per_connection(target) {
                Ok(kib) => samples.push(IDLE, kib),
                Err(e) => samples.note(format!("idle connections: {e}")),
            }
        }
    }
    println!(
        "HTTPS through each proxy to 2 nginx backends; TLS 1.3, key exchange X25519 for \
         every proxy; {HANDSHAKE_THREADS} rustls client threads for handshakes (Connection: \
         close), wrk (1 thread, 50 connections, \
         ECDSA) for keep-alive; {seconds}s per run, {reps} interleaved repetitions, medians; \
         ratios to {REFERENCE}."
    );
    print_table(
        &targets,
        &samples,
        &[
            FULL_ECDSA,
            FULL_RSA,
            RESUMED,
            CPU_ECDSA,
            CPU_RSA,
            CPU_RESUMED,
        ],
    );
    print_table(&targets, &samples, &[RPS, P50, P99, CPU, IDLE]);
    println!("\n(whole run: {:.0}s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn measure_handshakes(target: &TlsTarget, duration: Duration, samples: &mut Samples) {
    for (addr, resumption, rate, cpu) in [
        (target.ecdsa, false, FULL_ECDSA, CPU_ECDSA),
        (target.rsa, false, FULL_RSA, CPU_RSA),
        (target.ecdsa, true, RESUMED, CPU_RESUMED),
    ] {
        let before = cpu_ticks_of(target.pid).ok();
        let run = handshakes(addr, resumption, duration);
        let after = cpu_ticks_of(target.pid).ok();
        samples.push(rate, run.per_second);
        if let (Some(before), Some(after)) = (before, after) {
            let cpu_seconds = after.saturating_sub(before) as f64 / clock_ticks_per_second() as f64;
            if run.done > 0 {
                samples.push(cpu, cpu_seconds * 1e6 / run.done as f64);
            }
        }
        if run.errors > 0 {
            samples.note(format!(
                "{rate}: {} failed handshakes in one run",
                run.errors
            ));
        }
        if resumption && run.resumed * 10 < run.done * 9 {
            samples.note(format!(
                "{rate}: only {} of {} handshakes resumed",
                run.resumed, run.done
            ));
        }
    }
}

fn measure_keep_alive(target: &TlsTarget, seconds: u64, samples: &mut Samples) {
    let load = Load {
        connections: 50,
        close: false,
        seconds,
    };
    let before = cpu_ticks_of(target.pid).ok();
    let run = match wrk::run_url(&format!("https://{}/", target.ecdsa), load, Some(NAME)) {
        Ok(run) => run,
        Err(e) => return samples.note(e),
    };
    let after = cpu_ticks_of(target.pid).ok();
    samples.push(RPS, run.requests_per_s);
    samples.push(P50, run.p50_ms);
    samples.push(P99, run.p99_ms);
    if let (Some(before), Some(after)) = (before, after) {
        if run.requests > 0 {
            let cpu_seconds = after.saturating_sub(before) as f64 / clock_ticks_per_second() as f64;
            samples.push(CPU, cpu_seconds * 1e6 / run.requests as f64);
        }
    }
    if run.errors > 0 {
        samples.note(format!("keep-alive: {} errors in one run", run.errors));
    }
}

/// What one handshake run counted.
struct HandshakeRun {
    per_second: f64,
    done: u64,
    resumed: u64,
    errors: u64,
}

/// Handshakes (each with one `Connection: close` request) from several threads for
/// `duration`.
fn handshakes(addr: SocketAddr, resumption: bool, duration: Duration) -> HandshakeRun {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let config = load_client_config(resumption);
    let started = Instant::now();
    let threads: Vec<_> = (0..HANDSHAKE_THREADS)
        .map(|_| {
            let (stop, counts, config) = (stop.clone(), counts.clone(), config.clone());
            std::thread::spawn(move || {
                let request =
                    format!("GET / HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n");
                while !stop.load(Ordering::Relaxed) {
                    let outcome = TlsConn::connect(addr, NAME, &config).and_then(|mut conn| {
                        let resumed = conn.resumed();
                        conn.request(request.as_bytes())
                            .map_err(|e| std::io::Error::other(e.to_string()))
                            .map(|response| (response.status, resumed))
                    });
                    match outcome {
                        Ok((200, resumed)) => {
                            counts[0].fetch_add(1, Ordering::Relaxed);
                            counts[1].fetch_add(u64::from(resumed), Ordering::Relaxed);
                        }
                        _ => {
                            counts[2].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = counts[0].load(Ordering::Relaxed);
    HandshakeRun {
        per_second: done as f64 / elapsed,
        done,
        resumed: counts[1].load(Ordering::Relaxed),
        errors: counts[2].load(Ordering::Relaxed),
    }
}

/// Growth of the proxy's resident memory per idle TLS keep-alive connection (after one
/// request each), with [`IDLE_CONNECTIONS`] open.
fn idle_kib_per_connection(target: &TlsTarget) -> Result<f64, String> {
    let config = load_client_config(false);
    let open_one = || -> Result<TlsConn, String> {
        let mut conn = TlsConn::connect(target.ecdsa, NAME, &config).map_err(|e| e.to_string())?;
        let response = conn.get(NAME, "/").map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("answer {}", response.status));
        }
        Ok(conn)
    };
    drop(open_one()?);
    let before = rss_kib_of(target.pid).map_err(|e| e.to_string())?;
    let mut open = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        open.push(open_one()?);
    }
    let after = rss_kib_of(target.pid).map_err(|e| e.to_string())?;
    drop(open);
    Ok(after.saturating_sub(before) as f64 / IDLE_CONNECTIONS as f64)
}

fn print_table(targets: &[TlsTarget], samples: &[Samples], metrics: &[&'static str]) {
    let reference = targets
        .iter()
        .position(|t| t.name == REFERENCE)
        .map(|i| &samples[i]);
    println!();
    print!("{:<10}", "target");
    for metric in metrics {
        print!("{metric:>17}");
    }
    println!();
    for (target, samples) in targets.iter().zip(samples) {
        print!("{:<10}", target.name);
        for metric in metrics {
            match samples.median(metric) {
                Some(value) => print!("{value:>17.1}"),
                None => print!("{:>17}", "-"),
            }
        }
        println!();
        print!("{:<10}", "  ratio");
        for metric in metrics {
            let ratio = reference
                .and_then(|r| r.median(metric))
                .zip(samples.median(metric))
                .map(|(r, value)| value / r);
            match ratio {
                Some(ratio) => print!("{:>17}", format!("{ratio:.2}x")),
                None => print!("{:>17}", "-"),
            }
        }
        println!();
    }
    for (target, samples) in targets.iter().zip(samples) {
        for note in samples.notes() {
            println!("  {}: {note}", target.name);
        }
    }
}

/// One Sluice worker with two HTTPS listeners, one per certificate; from `program`
/// when given (the target is then named `sluice-2`).
fn sluice(
    certs: &Certificates,
    backends: &[SocketAddr; 2],
    program: Option<&std::path::Path>,
) -> Result<TlsTarget, String> {
    let args = ["--log-level", "warn"];
    let mut worker = match program {
        Some(program) => WorkerHarness::try_start_program(program, 0, &args),
        None => WorkerHarness::try_start(0, &args),
    }
    .map_err(|e| e.to_string())?;
    let (ecdsa, rsa) = (free_addr(), free_addr());
    let mut setup = vec![requests::add_cluster("bench", ListenerProtocol::Http)];
    setup.extend(backends.iter().map(|b| requests::add_backend("bench", *b)));
    for (addr, cert) in [(ecdsa, &certs.ecdsa), (rsa, &certs.rsa)] {
        let mut certificate = certificate_and_key(&cert.certificate, &cert.key, &[NAME], true);
        certificate.listeners = vec![addr.to_string()];
        setup.push(requests::add_certificate(certificate));
        setup.push(requests::add_https_listener(addr, tls_settings()));
        setup.push(requests::add_http_frontend(addr, "*", "/", "bench"));
        setup.push(requests::activate(addr, ListenerProtocol::Https));
    }
    for request in &setup {
        let response = worker
            .try_request(request, START_DEADLINE)
            .map_err(|e| format!("{e}\n{}", worker.process().logs()))?;
        if response.status != ResponseStatus::Ok as i32 {
            return Err(format!("worker refused a request: {}", response.message));
        }
    }
    if !wait::poll_until(START_DEADLINE, || wait::port_accepts(rsa)) {
        return Err(format!(
            "sluice did not listen\n{}",
            worker.process().logs()
        ));
    }
    let pid = worker.process().pid();
    Ok(TlsTarget {
        name: if program.is_some() {
            "sluice-2"
        } else {
            "sluice"
        },
        ecdsa,
        rsa,
        pid,
        _keep_alive: Box::new(worker),
    })
}

/// Writes a certificate and its key to files; returns (certificate, key, both).
fn write_pem(
    certs: &Certificates,
    cert: &TestCertificate,
    stem: &str,
) -> Result<[String; 3], String> {
    let paths = ["crt", "key", "pem"].map(|ext| certs.dir.path().join(format!("{stem}.{ext}")));
    let contents = [
        cert.certificate.clone(),
        cert.key.clone(),
        format!("{}{}", cert.certificate, cert.key),
    ];
    for (path, content) in paths.iter().zip(&contents) {
        fs::write(path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(paths.map(|p| p.display().to_string()))
}

/// HAProxy, one thread, one frontend per certificate.
fn haproxy(certs: &Certificates, backends: &[SocketAddr; 2]) -> Result<Option<TlsTarget>, String> {
    let Some(program) = find_on_path("haproxy") else {
        return Ok(None);
    };
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let (ecdsa, rsa) = (free_addr(), free_addr());
    let [_, _, ecdsa_pem] = write_pem(certs, &certs.ecdsa, "ecdsa")?;
    let [_, _, rsa_pem] = write_pem(certs, &certs.rsa, "rsa")?;
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("    server b{i} {b}\n"))
        .collect();
    let config = format!(
        "global\n    maxconn 9000\n    nbthread 1\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n\
         \x20   timeout server 60s\n    timeout http-keep-alive 60s\n\
         frontend ecdsa\n    bind {ecdsa} ssl crt {ecdsa_pem} alpn http/1.1\n\
         \x20   default_backend servers\n\
         frontend rsa\n    bind {rsa} ssl crt {rsa_pem} alpn http/1.1\n\
         \x20   default_backend servers\n\
         backend servers\n    balance roundrobin\n    http-reuse always\n{servers}"
    );
    let path = dir.path().join("haproxy.cfg");
    fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut command = std::process::Command::new(program);
    command.arg("-f").arg(&path).arg("-db");
    let mut guard =
        ChildGuard::spawn_in(command, "haproxy-tls", dir.path()).map_err(|e| e.to_string())?;
    let listening = wait::poll_until(START_DEADLINE, || {
        wait::port_accepts(rsa) || guard.has_exited()
    });
    if !listening || guard.has_exited() {
        return Err(format!("haproxy did not start:\n{}", guard.logs()));
    }
    let pid = guard.pid();
    Ok(Some(TlsTarget {
        name: "haproxy",
        ecdsa,
        rsa,
        pid,
        _keep_alive: Box::new((guard, dir)),
    }))
}

/// nginx, one worker, one server block per certificate.
fn nginx_proxy(
    certs: &Certificates,
    backends: &[SocketAddr; 2],
) -> Result<Option<TlsTarget>, String> {
    if find_on_path("nginx").is_none() && !std::path::Path::new("/usr/sbin/nginx").is_file() {
        return Ok(None);
    }
    let (ecdsa, rsa) = (free_addr(), free_addr());
    let [ecdsa_crt, ecdsa_key, _] = write_pem(certs, &certs.ecdsa, "ecdsa")?;
    let [rsa_crt, rsa_key, _] = write_pem(certs, &certs.rsa, "rsa")?;
    let servers: String = backends
        .iter()
        .map(|backend| format!("    server {backend};\n"))
        .collect();
    let server = |addr: SocketAddr, crt: &str, key: &str| {
        format!(
            "server {{\n    listen {addr} ssl;\n    ssl_certificate {crt};\n\
             \x20   ssl_certificate_key {key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n\
             \x20   location / {{\n        proxy_pass http://backends;\n\
             \x20       proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n\
             \x20   }}\n}}\n"
        )
    };
    let config = format!(
        "upstream backends {{\n{servers}    keepalive 128;\n    keepalive_requests 1000000;\n}}\n{}{}",
        server(ecdsa, &ecdsa_crt, &ecdsa_key),
        server(rsa, &rsa_crt, &rsa_key)
    );
    let (guard, dir) = nginx::start("nginx-tls", 1, &config, rsa)?;
    let pid = nginx::wait_for_worker(&guard)?;
    Ok(Some(TlsTarget {
        name: "nginx",
        ecdsa,
        rsa,
        pid,
        _keep_alive: Box::new((guard, dir)),
    }))
}
