//! What every load of client threads shares: the threads, a flag that stops them, the
//! count of requests served right, the failures each load records in its own shape, and
//! the kept connections found closed between two requests and reopened.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The counters one client thread updates, shared with the load that started it.
pub(crate) struct Tally<F> {
    running: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<F>>>,
    reconnects: Arc<AtomicU64>,
}

impl<F> Clone for Tally<F> {
    fn clone(&self) -> Self {
        Tally {
            running: Arc::clone(&self.running),
            served: Arc::clone(&self.served),
            failures: Arc::clone(&self.failures),
            reconnects: Arc::clone(&self.reconnects),
        }
    }
}

impl<F> Tally<F> {
    fn new() -> Self {
        Tally {
            running: Arc::new(AtomicBool::new(true)),
            served: Arc::new(AtomicU64::new(0)),
            failures: Arc::new(Mutex::new(Vec::new())),
            reconnects: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the client should send another request.
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// One request served right.
    pub(crate) fn served(&self) {
        self.served.fetch_add(1, Ordering::SeqCst);
    }

    /// One request failed.
    pub(crate) fn failed(&self, failure: F) {
        self.failures.lock().expect("failures").push(failure);
    }

    /// A kept connection was found closed between two requests and reopened.
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::SeqCst);
    }
}

/// Client threads running until stopped; `F` is what a failed request records.
pub(crate) struct LoadClients<F> {
    tally: Tally<F>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl<F: Send + 'static> LoadClients<F> {
    /// One thread per client, each running `run(client, tally)` until stopped.
    pub(crate) fn spawn<C: Send + 'static>(clients: Vec<C>, run: fn(C, Tally<F>)) -> Self {
        let tally = Tally::new();
        let threads = clients
            .into_iter()
            .map(|client| {
                let tally = tally.clone();
                thread::spawn(move || run(client, tally))
            })
            .collect();
        LoadClients { tally, threads }
    }

    /// Requests served right so far.
    pub(crate) fn served(&self) -> u64 {
        self.tally.served.load(Ordering::SeqCst)
    }

    /// Kept connections found closed between two requests and reopened so far.
    pub(crate) fn reconnects(&self) -> u64 {
        self.tally.reconnects.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` more requests were served (bounded).
    pub(crate) fn wait_for_more(&self, what: &str, count: u64) {
        let target = self.served() + count;
        super::wait_until(what, Duration::from_secs(30), || self.served() >= target);
    }

    /// Stops the clients; returns (served, failed requests).
    pub(crate) fn stop(mut self) -> (u64, Vec<F>) {
        self.tally.running.store(false, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            thread.join().expect("load client");
        }
        let failures = std::mem::take(&mut *self.tally.failures.lock().expect("failures"));
        (self.served(), failures)
    }
}

impl<F> Drop for LoadClients<F> {
    fn drop(&mut self) {
        self.tally.running.store(false, Ordering::SeqCst);
    }
}
