//! HTTP helpers for the operator tests: config files with HTTP routes, mock
//! backends and a client load that counts every failed request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sluice_e2e::{free_addr, http_get, HttpConn, HttpResponse, MockHttpServer};

/// One HTTP cluster: requests with `Host: hostname` go to its backends.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) cluster: String,
    pub(crate) hostname: String,
    pub(crate) backends: Vec<SocketAddr>,
    /// An inline TOML table for `health_check`, if any.
    pub(crate) health_check: Option<String>,
}

impl Route {
    /// A route `cluster` for `hostname` without health check.
    pub(crate) fn new(cluster: &str, hostname: &str, backends: &[SocketAddr]) -> Route {
        Route {
            cluster: cluster.to_owned(),
            hostname: hostname.to_owned(),
            backends: backends.to_vec(),
            health_check: None,
        }
    }
}

/// A config with `workers` workers, one HTTP listener and `routes` on it.
pub(crate) fn http_config(workers: u32, listener: SocketAddr, routes: &[Route]) -> String {
    let mut config = format!(
        "command_socket = \"sluice.sock\"\nworker_count = {workers}\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"10s\"\n\n\
         [[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\n"
    );
    for route in routes {
        config.push_str(&format!(
            "\n[clusters.{}]\nprotocol = \"http\"\nfrontends = [ {{ address = \"{listener}\", \
             hostname = \"{}\", path = \"/\" }} ]\nbackends = [ {} ]\n",
            route.cluster,
            route.hostname,
            route
                .backends
                .iter()
                .map(|b| format!("{{ address = \"{b}\" }}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(check) = &route.health_check {
            config.push_str(&format!("health_check = {check}\n"));
        }
    }
    config
}

/// A mock HTTP backend named `name` on a free port. A port found free can be
/// taken by some other test's connection before the bind: a few tries.
pub(crate) fn mock(name: &str) -> MockHttpServer {
    let mut last_error = None;
    for _ in 0..5 {
        match MockHttpServer::start(free_addr(), name) {
            Ok(server) => return server,
            Err(error) => last_error = Some(error),
        }
    }
    panic!("cannot start the mock backend {name}: {last_error:?}")
}

/// `GET /` for `host` on a new connection.
pub(crate) fn get(listener: SocketAddr, host: &str) -> Result<HttpResponse, String> {
    http_get(listener, host, "/").map_err(|e| e.to_string())
}

/// Whether `response` is a 200 from one of the backends named `backend_prefix…`.
pub(crate) fn served_by(response: &HttpResponse, backend_prefix: &str) -> bool {
    response.status == 200
        && response
            .body_text()
            .starts_with(&format!("backend: {backend_prefix}"))
}

/// How a load client connects.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// One connection reused for every request (reopened after a close).
    KeepAlive,
    /// A new connection per request.
    NewConnections,
}

/// Clients sending `GET /` for one host in a loop until stopped; every answer
/// that is not a 200 from the expected backends is a failure.
pub(crate) struct Load {
    running: Arc<AtomicBool>,
    succeeded: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    /// Starts one client per entry of `modes`.
    pub(crate) fn start(
        listener: SocketAddr,
        host: &str,
        backend_prefix: &str,
        modes: &[Mode],
    ) -> Load {
        let running = Arc::new(AtomicBool::new(true));
        let succeeded = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = modes
            .iter()
            .map(|&mode| {
                let client = Client {
                    listener,
                    host: host.to_owned(),
                    backend_prefix: backend_prefix.to_owned(),
                    running: Arc::clone(&running),
                    succeeded: Arc::clone(&succeeded),
                    failures: Arc::clone(&failures),
                };
                thread::spawn(move || client.run(mode))
            })
            .collect();
        Load {
            running,
            succeeded,
            failures,
            threads,
        }
    }

    /// Requests answered right so far.
    pub(crate) fn succeeded(&self) -> u64 {
        self.succeeded.load(Ordering::SeqCst)
    }

    /// How many requests failed so far.
    pub(crate) fn failure_count(&self) -> usize {
        self.failures.lock().expect("failures").len()
    }

    /// Waits until at least `count` more requests succeeded (bounded).
    pub(crate) fn wait_for_more(&self, count: u64) {
        let target = self.succeeded() + count;
        super::wait_until("the load to make progress", Duration::from_secs(20), || {
            self.succeeded() >= target
        });
    }

    /// Stops the clients; returns (succeeded, failures).
    pub(crate) fn stop(mut self) -> (u64, Vec<String>) {
        self.running.store(false, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            thread.join().expect("load client");
        }
        let failures = std::mem::take(&mut *self.failures.lock().expect("failures"));
        (self.succeeded(), failures)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
    }
}

struct Client {
    listener: SocketAddr,
    host: String,
    backend_prefix: String,
    running: Arc<AtomicBool>,
    succeeded: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Client {
    fn run(&self, mode: Mode) {
        let mut conn: Option<HttpConn> = None;
        while self.running.load(Ordering::SeqCst) {
            let result = match mode {
                Mode::NewConnections => get(self.listener, &self.host),
                Mode::KeepAlive => self.keep_alive_get(&mut conn),
            };
            match result {
                Ok(response) if served_by(&response, &self.backend_prefix) => {
                    self.succeeded.fetch_add(1, Ordering::SeqCst);
                }
                Ok(response) => self.fail(format!(
                    "{mode:?}: {} {:?}",
                    response.status,
                    response.body_text()
                )),
                Err(error) => self.fail(format!("{mode:?}: {error}")),
            }
        }
    }

    fn keep_alive_get(&self, conn: &mut Option<HttpConn>) -> Result<HttpResponse, String> {
        if conn.is_none() {
            *conn = Some(HttpConn::connect(self.listener).map_err(|e| e.to_string())?);
        }
        let open = conn.as_mut().expect("connected");
        let result = open.get(&self.host, "/").map_err(|e| e.to_string());
        if !matches!(&result, Ok(response) if !response.closes_connection()) {
            *conn = None;
        }
        result
    }

    fn fail(&self, reason: String) {
        self.failures.lock().expect("failures").push(reason);
    }
}
