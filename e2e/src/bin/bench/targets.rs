//! The things a benchmark measures: the backend itself, Sluice and HAProxy
//! in front of it (nginx as a proxy is in `nginx.rs`). Each target owns what it started and stops it on drop.

use std::any::Any;
use std::env;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sluice_command::proto::{ListenerProtocol, ResponseStatus};
use sluice_e2e::binary::find_sluice_binary;
use sluice_e2e::worker::WorkerHarness;
use sluice_e2e::{free_addr, requests, wait, ChildGuard};

/// How long a proxy may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The protocol a proxy target is configured for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Layer 4: bytes are passed through.
    Tcp,
    /// HTTP/1.1 with keep-alive on both sides.
    Http,
}

/// One column of results: where clients connect, and what must stay alive
/// meanwhile.
pub(crate) struct Target {
    /// Name printed in the table.
    pub(crate) name: &'static str,
    /// Where clients connect.
    pub(crate) addr: SocketAddr,
    /// The process doing the proxying (its CPU time and memory are measured).
    pub(crate) pid: Option<u32>,
    pub(crate) _keep_alive: Box<dyn Any>,
}

/// Clients talk to the backend directly: the baseline.
pub(crate) fn direct(backend: SocketAddr) -> Target {
    Target {
        name: "direct",
        addr: backend,
        pid: None,
        _keep_alive: Box::new(()),
    }
}

/// HAProxy with one frontend and one server, one thread (like one Sluice
/// worker); `Ok(None)` when `haproxy` is not installed.
pub(crate) fn haproxy(mode: Mode, backends: &[SocketAddr]) -> Result<Option<Target>, String> {
    let Some(program) = find_on_path("haproxy") else {
        return Ok(None);
    };
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let addr = free_addr();
    let config = dir.path().join("haproxy.cfg");
    fs::write(&config, haproxy_config(mode, addr, backends))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut command = Command::new(program);
    command.arg("-f").arg(&config).arg("-db");
    let mut guard =
        ChildGuard::spawn_in(command, "haproxy", dir.path()).map_err(|e| e.to_string())?;
    let listening = wait::poll_until(START_DEADLINE, || {
        wait::port_accepts(addr) || guard.has_exited()
    });
    if !listening || guard.has_exited() {
        return Err(format!("haproxy did not start:\n{}", guard.logs()));
    }
    let pid = Some(guard.pid());
    Ok(Some(Target {
        name: "haproxy",
        addr,
        pid,
        _keep_alive: Box::new((guard, dir)),
    }))
}

fn haproxy_config(mode: Mode, listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let mode = match mode {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    };
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, backend)| format!("    server b{i} {backend}\n"))
        .collect();
    format!(
        "global\n\
         \x20   maxconn 8000\n\
         \x20   nbthread 1\n\
         defaults\n\
         \x20   mode {mode}\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 60s\n\
         \x20   timeout server 60s\n\
         frontend bench\n\
         \x20   bind {listen}\n\
         \x20   default_backend servers\n\
         backend servers\n\
         \x20   balance roundrobin\n\
         {servers}"
    )
}

/// The first executable file named `name` in `$PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// One Sluice worker (driven directly, without a main process; logging
/// warnings only, no access log) with one listener sending to a cluster of
/// `backends`.
pub(crate) fn sluice(mode: Mode, backends: &[SocketAddr]) -> Result<Target, String> {
    let Some(program) = find_sluice_binary() else {
        return Err("the sluice binary is missing: build it first with \
                    `cargo build --release -p sluice`"
            .into());
    };
    sluice_from(&program, "sluice", mode, backends)
}

/// The path of a second `sluice` build given in `BENCH_OTHER_SLUICE`, measured beside the
/// first as `sluice-2` (a build of an earlier commit, to compare before and after a change).
pub(crate) fn other_sluice_binary() -> Option<std::path::PathBuf> {
    std::env::var_os(OTHER_SLUICE_ENV).map(std::path::PathBuf::from)
}

/// The variable naming a second `sluice` build to measure.
pub(crate) const OTHER_SLUICE_ENV: &str = "BENCH_OTHER_SLUICE";

/// One worker of the `sluice` binary at `program`, shown as `name`.
pub(crate) fn sluice_from(
    program: &std::path::Path,
    name: &'static str,
    mode: Mode,
    backends: &[SocketAddr],
) -> Result<Target, String> {
    let mut worker = WorkerHarness::try_start_program(program, 0, &["--log-level", "warn"])
        .map_err(|e| e.to_string())?;
    let addr = free_addr();
    let (protocol, listener, frontend) = match mode {
        Mode::Tcp => (
            ListenerProtocol::Tcp,
            requests::add_tcp_listener(addr),
            requests::add_tcp_frontend(addr, "bench"),
        ),
        Mode::Http => (
            ListenerProtocol::Http,
            requests::add_http_listener(addr),
            requests::add_http_frontend(addr, "*", "/", "bench"),
        ),
    };
    let mut setup = vec![requests::add_cluster("bench", protocol)];
    setup.extend(backends.iter().map(|b| requests::add_backend("bench", *b)));
    setup.extend([listener, frontend, requests::activate(addr, protocol)]);
    for request in &setup {
        let response = worker
            .try_request(request, START_DEADLINE)
            .map_err(|e| format!("{e}\n{}", worker.process().logs()))?;
        if response.status != ResponseStatus::Ok as i32 {
            return Err(format!("worker refused {request:?}: {}", response.message));
        }
    }
    if !wait::poll_until(START_DEADLINE, || wait::port_accepts(addr)) {
        return Err(format!(
            "sluice did not listen on {addr}\n{}",
            worker.process().logs()
        ));
    }
    let pid = Some(worker.process().pid());
    Ok(Target {
        name,
        addr,
        pid,
        _keep_alive: Box::new(worker),
    })
}
