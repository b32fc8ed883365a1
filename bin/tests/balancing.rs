//! Every HTTP request is balanced: keep-alive clients that never reconnect reach a
//! backend added with `ctl`, follow a weight change made by a reload, come back to a
//! backend that restarted, and stay on their backend only when the cluster says
//! `prefer_last_backend = true`.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::http::mock;
use common::{wait_until, Sluice};
use sluice_e2e::{free_addr, HttpConn, MockHttpServer};

const HOST: &str = "app.test";
const CLIENTS: usize = 20;
/// How long the split of the requests is measured after a change.
const WINDOW: Duration = Duration::from_secs(1);

/// A one-worker config with cluster `app` on `backends` (address, weight), with
/// `extra` lines added to the cluster's table.
fn config(listener: SocketAddr, backends: &[(SocketAddr, u32)], extra: &str) -> String {
    let backends = backends
        .iter()
        .map(|(address, weight)| format!("{{ address = \"{address}\", weight = {weight} }}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "command_socket = \"sluice.sock\"\nworker_count = 1\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"5s\"\n\n\
         [[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\n\n\
         [clusters.app]\nprotocol = \"http\"\n{extra}\
         frontends = [ {{ address = \"{listener}\", hostname = \"{HOST}\", path = \"/\" }} ]\n\
         backends = [ {backends} ]\n"
    )
}

/// Keep-alive clients, each on one connection for its whole life: a request that
/// fails or a connection that closes is recorded, and the client opens a new
/// connection (counted) only then.
struct KeepAliveLoad {
    running: Arc<AtomicBool>,
    succeeded: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    /// The backend names each client was served by, in order (when recorded).
    served: Arc<Mutex<Vec<Vec<String>>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl KeepAliveLoad {
    fn start(listener: SocketAddr, clients: usize, record: bool) -> KeepAliveLoad {
        let mut load = KeepAliveLoad {
            running: Arc::new(AtomicBool::new(true)),
            succeeded: Arc::new(AtomicU64::new(0)),
            connections: Arc::new(AtomicU64::new(0)),
            failures: Arc::new(Mutex::new(Vec::new())),
            served: Arc::new(Mutex::new(vec![Vec::new(); clients])),
            threads: Vec::new(),
        };
        load.threads = (0..clients)
            .map(|index| {
                let running = Arc::clone(&load.running);
                let succeeded = Arc::clone(&load.succeeded);
                let connections = Arc::clone(&load.connections);
                let failures = Arc::clone(&load.failures);
                let served = Arc::clone(&load.served);
                thread::spawn(move || {
                    let mut conn: Option<HttpConn> = None;
                    while running.load(Ordering::SeqCst) {
                        if conn.is_none() {
                            match HttpConn::connect(listener) {
                                Ok(open) => conn = Some(open),
                                Err(error) => {
                                    failures.lock().unwrap().push(format!("connect: {error}"));
                                    thread::sleep(Duration::from_millis(10));
                                    continue;
                                }
                            }
                            connections.fetch_add(1, Ordering::SeqCst);
                        }
                        let open = conn.as_mut().expect("connected");
                        match open.get(HOST, "/") {
                            Ok(response) if response.status == 200 => {
                                succeeded.fetch_add(1, Ordering::SeqCst);
                                if record {
                                    served.lock().unwrap()[index].push(response.body_text());
                                }
                                if response.closes_connection() {
                                    conn = None;
                                }
                            }
                            Ok(response) => {
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("status {}", response.status));
                                conn = None;
                            }
                            Err(error) => {
                                failures.lock().unwrap().push(error.to_string());
                                conn = None;
                            }
                        }
                    }
                })
            })
            .collect();
        load
    }

    fn succeeded(&self) -> u64 {
        self.succeeded.load(Ordering::SeqCst)
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    fn wait_for_more(&self, count: u64) {
        let target = self.succeeded() + count;
        wait_until("the load to make progress", Duration::from_secs(20), || {
            self.succeeded() >= target
        });
    }

    /// Stops the clients; returns what each was served by.
    fn stop(mut self) -> Vec<Vec<String>> {
        self.running.store(false, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            thread.join().expect("load client");
        }
        std::mem::take(&mut *self.served.lock().unwrap())
    }
}

impl Drop for KeepAliveLoad {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
    }
}

/// Requests each backend received during `WINDOW` from now.
fn split_over_window(backends: &[&MockHttpServer]) -> Vec<usize> {
    let before: Vec<usize> = backends.iter().map(|b| b.request_count()).collect();
    thread::sleep(WINDOW);
    backends
        .iter()
        .zip(before)
        .map(|(backend, before)| backend.request_count() - before)
        .collect()
}

fn percent(part: usize, counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    assert!(total > 0, "no request in the window");
    100.0 * part as f64 / total as f64
}

#[test]
fn a_backend_added_by_ctl_takes_its_share_of_keep_alive_clients_at_once() {
    let first = mock("first");
    let second = mock("second");
    let listener = free_addr();
    let sluice = Sluice::start(&config(listener, &[(first.addr(), 1)], ""));
    let load = KeepAliveLoad::start(listener, CLIENTS, false);
    load.wait_for_more(200);
    let connections = load.connections();
    let address = second.addr().to_string();
    sluice.ctl_ok(&["backend", "add", "--cluster", "app", "--address", &address]);
    let split = split_over_window(&[&first, &second]);
    let share = percent(split[1], &split);
    assert!(
        share >= 30.0,
        "the new backend served {share:.0}% of {split:?}\n{}",
        sluice.log()
    );
    assert_eq!(load.failures(), Vec::<String>::new(), "failed requests");
    assert_eq!(load.connections(), connections, "a client reconnected");
    load.stop();
}

#[test]
fn a_reload_that_changes_weights_changes_the_split_of_keep_alive_clients() {
    let light = mock("light");
    let heavy = mock("heavy");
    let listener = free_addr();
    let sluice = Sluice::start(&config(
        listener,
        &[(light.addr(), 1), (heavy.addr(), 1)],
        "",
    ));
    let load = KeepAliveLoad::start(listener, CLIENTS, false);
    load.wait_for_more(200);
    let even = split_over_window(&[&light, &heavy]);
    let even_share = percent(even[1], &even);
    assert!(
        (40.0..=60.0).contains(&even_share),
        "1:1 gave {even_share:.0}% of {even:?}"
    );
    let reweighted = config(listener, &[(light.addr(), 1), (heavy.addr(), 3)], "");
    std::fs::write(sluice.config_path(), reweighted).expect("rewrite the config");
    sluice.ctl_ok(&["reload"]);
    let split = split_over_window(&[&light, &heavy]);
    let share = percent(split[1], &split);
    assert!(
        (65.0..=85.0).contains(&share),
        "1:3 gave {share:.0}% of {split:?} to the heavier backend\n{}",
        sluice.log()
    );
    assert_eq!(load.failures(), Vec::<String>::new(), "failed requests");
    load.stop();
}

#[test]
fn a_restarted_backend_serves_keep_alive_clients_again_without_reconnections() {
    let steady = mock("steady");
    let mut restarted = mock("restarted");
    let listener = free_addr();
    let sluice = Sluice::start(&config(
        listener,
        &[(steady.addr(), 1), (restarted.addr(), 1)],
        "",
    ));
    let load = KeepAliveLoad::start(listener, CLIENTS, false);
    load.wait_for_more(200);
    restarted.stop();
    load.wait_for_more(500);
    thread::sleep(Duration::from_secs(2));
    restarted.restart().expect("restart the backend");
    let restarted_at = Instant::now();
    let connections = load.connections();
    let before = restarted.request_count();
    wait_until(
        "the restarted backend to serve again",
        Duration::from_secs(30),
        || restarted.request_count() >= before + 100,
    );
    assert_eq!(
        load.connections(),
        connections,
        "clients reconnected to reach the restarted backend"
    );
    eprintln!(
        "serving again {:?} after the restart",
        restarted_at.elapsed()
    );
    let split = split_over_window(&[&steady, &restarted]);
    let share = percent(split[1], &split);
    assert!(
        share >= 30.0,
        "the restarted backend served {share:.0}% of {split:?}\n{}",
        sluice.log()
    );
    load.stop();
}

#[test]
fn prefer_last_backend_keeps_each_client_on_its_backend() {
    let one = mock("one");
    let two = mock("two");
    let listener = free_addr();
    let _sluice = Sluice::start(&config(
        listener,
        &[(one.addr(), 1), (two.addr(), 1)],
        "prefer_last_backend = true\n",
    ));
    let load = KeepAliveLoad::start(listener, 4, true);
    load.wait_for_more(400);
    assert_eq!(load.failures(), Vec::<String>::new(), "failed requests");
    let served = load.stop();
    for (client, names) in served.iter().enumerate() {
        assert!(
            names.len() > 10,
            "client {client}: {} requests",
            names.len()
        );
        assert!(
            names.iter().all(|name| name == &names[0]),
            "client {client} moved between backends: {:?}",
            &names[..names.len().min(20)]
        );
    }
    assert!(one.request_count() > 0 && two.request_count() > 0);
}

#[test]
fn without_prefer_last_backend_a_client_is_balanced_over_both_backends() {
    let one = mock("one");
    let two = mock("two");
    let listener = free_addr();
    let _sluice = Sluice::start(&config(listener, &[(one.addr(), 1), (two.addr(), 1)], ""));
    let load = KeepAliveLoad::start(listener, 1, true);
    load.wait_for_more(20);
    let served = load.stop();
    let names = &served[0];
    assert!(
        names.iter().any(|name| name != &names[0]),
        "one keep-alive client stayed on one backend: {:?}",
        &names[..names.len().min(20)]
    );
}
