//! The three proxies compared: one Sluice worker, HAProxy (one thread,
//! `mode http`) and nginx (one worker, `proxy_pass`), each in front of its
//! own recording backend and configured as plainly as an operator would.

use std::any::Any;
use std::env;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_command::proto::{ListenerProtocol, ResponseStatus};
use sluice_e2e::binary::find_sluice_binary;
use sluice_e2e::worker::WorkerHarness;
use sluice_e2e::{free_addr, requests, wait, ChildGuard};

/// How long a proxy may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A running proxy: where clients connect, and what keeps it alive.
pub(crate) struct Proxy {
    /// Where clients connect.
    pub(crate) addr: SocketAddr,
    _keep_alive: Box<dyn Any>,
}

/// One Sluice worker routing every host and path to `backend`.
pub(crate) fn sluice(backend: SocketAddr) -> Result<Proxy, String> {
    if find_sluice_binary().is_none() {
        return Err("the sluice binary is missing: `cargo build -p sluice` first".into());
    }
    let mut worker =
        WorkerHarness::try_start(0, &["--log-level", "error"]).map_err(|e| e.to_string())?;
    let addr = free_addr();
    let protocol = ListenerProtocol::Http;
    let setup = [
        requests::add_cluster("app", protocol),
        requests::add_backend("app", backend),
        requests::add_http_listener(addr),
        requests::add_http_frontend(addr, "*", "/", "app"),
        requests::activate(addr, protocol),
    ];
    for request in &setup {
        let response = worker
            .try_request(request, START_DEADLINE)
            .map_err(|e| format!("{e}\n{}", worker.process().logs()))?;
        if response.status != ResponseStatus::Ok as i32 {
            return Err(format!("worker refused {request:?}: {}", response.message));
        }
    }
    if !wait::poll_until(START_DEADLINE, || wait::port_accepts(addr)) {
        return Err(format!("sluice did not listen on {addr}"));
    }
    Ok(Proxy {
        addr,
        _keep_alive: Box::new(worker),
    })
}

/// HAProxy 1 thread, `mode http`, defaults otherwise.
pub(crate) fn haproxy(backend: SocketAddr) -> Result<Proxy, String> {
    let program =
        find_program("haproxy").ok_or("haproxy is not installed (apt-get install -y haproxy)")?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let addr = free_addr();
    let config = format!(
        "global\n\
         \x20   nbthread 1\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 3s\n\
         \x20   timeout client 10s\n\
         \x20   timeout server 10s\n\
         \x20   timeout http-request 5s\n\
         frontend front\n\
         \x20   bind {addr}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   server b0 {backend}\n"
    );
    let path = dir.path().join("haproxy.cfg");
    fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut command = Command::new(program);
    command.arg("-f").arg(&path).arg("-db");
    let guard = spawn_listening(command, "haproxy", dir.path(), addr)?;
    Ok(Proxy {
        addr,
        _keep_alive: Box::new((guard, dir)),
    })
}

/// nginx 1 worker as a reverse proxy speaking HTTP/1.1 to `backend`, the
/// client's Host passed on (so that heads compare with the others').
pub(crate) fn nginx(backend: SocketAddr) -> Result<Proxy, String> {
    let program =
        find_program("nginx").ok_or("nginx is not installed (apt-get install -y nginx-light)")?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let addr = free_addr();
    // As root nginx would run its worker as `nobody`, who cannot enter the
    // private temp dir.
    let user = match fs::metadata("/proc/self").map(|m| m.uid()) {
        Ok(0) => "user root;\n",
        _ => "",
    };
    let d = dir.path().display();
    let config = format!(
        "{user}daemon off;\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   server {{\n\
         \x20       listen {addr};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://{backend};\n\
         \x20           proxy_http_version 1.1;\n\
         \x20           proxy_set_header Host $http_host;\n\
         \x20           proxy_set_header Connection \"\";\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    );
    let path = dir.path().join("nginx.conf");
    fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut command = Command::new(program);
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.path().join("error.log"));
    let guard = spawn_listening(command, "nginx", dir.path(), addr)?;
    Ok(Proxy {
        addr,
        _keep_alive: Box::new((guard, dir)),
    })
}

fn spawn_listening(
    command: Command,
    name: &str,
    dir: &Path,
    addr: SocketAddr,
) -> Result<ChildGuard, String> {
    let mut guard = ChildGuard::spawn_in(command, name, dir).map_err(|e| e.to_string())?;
    let listening = wait::poll_until(START_DEADLINE, || {
        wait::port_accepts(addr) || guard.has_exited()
    });
    if !listening || guard.has_exited() {
        return Err(format!("{name} did not start:\n{}", guard.logs()));
    }
    Ok(guard)
}

/// `name` in `$PATH`, or in `/usr/sbin` (not on every user's path).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}
