//! nginx in the HTTP benchmark: the backends (a small fixed body on two
//! ports) and, as a target, a one-worker reverse proxy in front of them.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_e2e::process::child_pids;
use sluice_e2e::{free_addr, wait, ChildGuard};
use tempfile::TempDir;

use crate::targets::{find_on_path, Target};

/// How long nginx may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// The body every backend request gets.
pub(crate) const BODY: &str = "hello from the sluice bench backend\n";

/// The nginx backends: one nginx process serving [`BODY`] on two ports.
pub(crate) struct Backends {
    /// The two backend addresses.
    pub(crate) addrs: [SocketAddr; 2],
    _guard: ChildGuard,
    _dir: TempDir,
}

/// Starts the backends (two workers, so that they are not the bottleneck of
/// the direct runs).
pub(crate) fn backends() -> Result<Backends, String> {
    let addrs = [free_addr(), free_addr()];
    let server = format!(
        "server {{\n\
         \x20   listen {};\n\
         \x20   listen {};\n\
         \x20   location / {{ return 200 \"{}\"; }}\n\
         }}\n",
        addrs[0],
        addrs[1],
        BODY.escape_default()
    );
    let (guard, dir) = start("nginx-backends", 2, &server, addrs[0])?;
    Ok(Backends {
        addrs,
        _guard: guard,
        _dir: dir,
    })
}

/// nginx with one worker as a reverse proxy to `backends`, keeping idle
/// connections to them (`keepalive`); `Ok(None)` when nginx is missing.
pub(crate) fn proxy(backends: &[SocketAddr]) -> Result<Option<Target>, String> {
    if find_on_path("nginx").is_none() {
        return Ok(None);
    }
    let addr = free_addr();
    let servers: String = backends
        .iter()
        .map(|backend| format!("    server {backend};\n"))
        .collect();
    let config = format!(
        "upstream backends {{\n{servers}\
         \x20   keepalive 128;\n\
         \x20   keepalive_requests 1000000;\n\
         }}\n\
         server {{\n\
         \x20   listen {addr};\n\
         \x20   location / {{\n\
         \x20       proxy_pass http://backends;\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Connection \"\";\n\
         \x20   }}\n\
         }}\n"
    );
    let (guard, dir) = start("nginx-proxy", 1, &config, addr)?;
    let worker = wait_for_worker(&guard)?;
    Ok(Some(Target {
        name: "nginx",
        addr,
        pid: Some(worker),
        _keep_alive: Box::new((guard, dir)),
    }))
}

/// Starts nginx in the foreground with `workers` workers and `server`
/// blocks; waits until `probe` accepts.
pub(crate) fn start(
    name: &str,
    workers: usize,
    server: &str,
    probe: SocketAddr,
) -> Result<(ChildGuard, TempDir), String> {
    let program = find_on_path("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .ok_or("nginx is not installed (apt-get install -y nginx-light)")?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let config_path = dir.path().join("nginx.conf");
    fs::write(&config_path, config(dir.path(), workers, server))
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let mut command = Command::new(program);
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&config_path)
        .arg("-e")
        .arg(dir.path().join("error.log"));
    let mut guard =
        ChildGuard::spawn_group_in(command, name, dir.path()).map_err(|e| e.to_string())?;
    let listening = wait::poll_until(START_DEADLINE, || {
        wait::port_accepts(probe) || guard.has_exited()
    });
    if !listening || guard.has_exited() {
        let errors = fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        return Err(format!("{name} did not start:\n{}\n{errors}", guard.logs()));
    }
    Ok((guard, dir))
}

/// The whole configuration: foreground, files in `dir`, no access log,
/// keep-alive without a request limit, as many connections as the fd
/// limit allows.
fn config(dir: &Path, workers: usize, server: &str) -> String {
    // As root nginx would run its workers as `nobody`, who cannot enter the
    // private temp dir.
    let user = match fs::metadata("/proc/self").map(|m| m.uid()) {
        Ok(0) => "user root;\n",
        _ => "",
    };
    let dir = dir.display();
    format!(
        "{user}daemon off;\n\
         master_process on;\n\
         worker_processes {workers};\n\
         worker_rlimit_nofile 20000;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 16000; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   default_type text/plain;\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   keepalive_timeout 300s;\n\
         \x20   client_body_temp_path {dir}/client_body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         {server}\
         }}\n"
    )
}

/// The pid of the single worker of an nginx master.
pub(crate) fn wait_for_worker(master: &ChildGuard) -> Result<u32, String> {
    let mut worker = None;
    wait::poll_until(START_DEADLINE, || {
        worker = child_pids(master.pid()).into_iter().next();
        worker.is_some()
    });
    worker.ok_or_else(|| format!("nginx {} has no worker process", master.pid()))
}
