//! The main process (`sluice start`): it owns the [`ConfigState`], spawns and
//! supervises the workers, serves the command socket and handles signals. It
//! never proxies traffic itself.
//!
//! Threads, because main is not the data plane: one supervisor per worker
//! (spawns it, replays the state, reads its channel, respawns it when it
//! dies), one accepting `sluice ctl` clients plus one per client, and one
//! receiving signals. The main thread waits for a stop request.
//!
//! Locking order: `changes` (held for a whole state change, so that changes
//! and worker replays never interleave; replays share it), then `state`, then
//! a worker slot.

mod changes;
mod command_server;
mod ctl_changes;
mod dispatch;
mod dns;
mod event_merge;
mod events;
mod file_index;
mod http_endpoint;
mod metrics;
mod reload;
mod signals;
mod workers;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{info, warn};
use sluice_command::config::Config;
use sluice_command::state::ConfigState;

pub(crate) use signals::block_signals;

use events::EventHub;
use workers::WorkerPool;

/// How long a request waits for the workers' answers.
pub(crate) const WORKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How the main process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopKind {
    /// Stop accepting, drain sessions up to the grace period, exit 0.
    Soft,
    /// Close everything at once.
    Hard,
}

/// What every thread of the main process shares.
#[derive(Debug)]
pub(crate) struct MainProcess {
    /// The file `start` was given: what `reload` without a path reads, whatever other
    /// file an earlier reload named.
    start_path: Option<std::path::PathBuf>,
    /// What the file at `start_path` said when last read: tells which ctl changes its
    /// next reload would undo.
    file_index: Mutex<Option<file_index::FileIndex>>,
    /// The running `metrics_address` endpoint, if any (replaced when a reload moves it).
    metrics_endpoint: Mutex<Option<http_endpoint::Endpoint>>,
    /// Itself, for the threads a reload starts (set once it is shared).
    shared: std::sync::OnceLock<std::sync::Weak<MainProcess>>,
    config: Mutex<Config>,
    state: Mutex<ConfigState>,
    /// Held for writing by a state change, for reading by a worker's replay:
    /// replays run side by side, never while a change is in flight.
    changes: RwLock<()>,
    workers: WorkerPool,
    /// Backends given by host name and their names' resolution.
    dns: dns::Dns,
    events: EventHub,
    stop: Mutex<Option<StopKind>>,
    stop_requested: Condvar,
}

/// Locks a mutex, ignoring poisoning: a panicked thread leaves the data as consistent
/// as it was between two statements, and main must go on serving.
/// The request that gives workers `config`'s log level and access log.
pub(crate) fn logging_request(config: &Config) -> sluice_command::proto::Request {
    use sluice_command::proto;
    proto::Request {
        request_type: Some(proto::request::RequestType::SetLogging(
            proto::LoggingSettings {
                log_level: config.log_level.as_str().to_owned(),
                access_log: config.access_log.to_string(),
                access_log_format: Some(config.access_log_format.as_str().to_owned()),
            },
        )),
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `sluice start [-c FILE]`: loads the config and runs until stopped.
pub(crate) fn start(config_path: Option<&Path>) -> anyhow::Result<()> {
    let signals = block_signals().context("cannot block signals")?;
    let config = match config_path {
        Some(path) => {
            Config::load(path).with_context(|| format!("invalid config {}", path.display()))?
        }
        None => Config::default_embedded(),
    };
    run(config, signals)
}

/// Runs the main process on `config` until it is told to stop. `signals` must
/// have been blocked before any other thread of this process was spawned.
pub(crate) fn run(config: Config, signals: signals::Signals) -> anyhow::Result<()> {
    crate::init_logging(config.log_level.as_str(), "main");
    match sluice_lib::sys::raise_fd_limit() {
        Ok(limit) => log::debug!("open files limit: {limit}"),
        Err(error) => log::warn!("cannot raise the open files limit: {error}"),
    }
    let dns = dns::Dns::default();
    let prepared = dns
        .prepare_config(&config)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    dns.commit(prepared.templates);
    let state = prepared.state;
    let socket_path = config.command_socket.clone();
    let listener = command_server::bind(&socket_path)?;
    let bound = command_server::identity(&socket_path);
    let metrics_listener = match config.metrics_address {
        Some(address) => Some((address, http_endpoint::bind(address)?)),
        None => None,
    };
    let main = Arc::new(MainProcess::new(config, state, dns));
    let _ = main.shared.set(Arc::downgrade(&main));
    if let Err(error) = main.workers.start_all(&main) {
        main.workers.stop(&main, StopKind::Hard, Duration::ZERO);
        command_server::remove_socket(&socket_path, bound);
        return Err(error);
    }
    // Parsing the file and encoding the workers' replays used several times the memory
    // of the state they built.
    sluice_lib::sys::release_free_memory();
    command_server::serve(Arc::clone(&main), listener)?;
    if let Some((address, metrics_listener)) = metrics_listener {
        let endpoint = http_endpoint::serve(Arc::clone(&main), address, metrics_listener)?;
        *lock(&main.metrics_endpoint) = Some(endpoint);
    }
    signals::spawn_handler(Arc::clone(&main), signals)?;
    dns::spawn_refresher(&main)?;
    info!(
        "sluice is running: {} workers, command socket {}",
        main.workers.len(),
        socket_path.display()
    );
    let kind = main.wait_for_stop();
    let grace = lock(&main.config).shutdown_grace_period;
    main.workers.stop(&main, kind, grace);
    command_server::remove_socket(&socket_path, bound);
    info!("sluice stopped");
    Ok(())
}

/// The global settings of `config`, without its listeners and clusters: the
/// state holds those, and a second copy would double main's memory.
pub(crate) fn settings_only(mut config: Config) -> Config {
    config.listeners = Vec::new();
    config.clusters = Vec::new();
    config.backend_names = Vec::new();
    config
}

impl MainProcess {
    fn new(config: Config, state: ConfigState, dns: dns::Dns) -> MainProcess {
        let workers = WorkerPool::new(&config);
        MainProcess {
            start_path: config.path.clone(),
            file_index: Mutex::new(
                config
                    .path
                    .as_deref()
                    .map(|path| file_index::FileIndex::of(path, &state)),
            ),
            metrics_endpoint: Mutex::new(None),
            shared: std::sync::OnceLock::new(),
            config: Mutex::new(settings_only(config)),
            state: Mutex::new(state),
            changes: RwLock::new(()),
            workers,
            dns,
            events: EventHub::default(),
            stop: Mutex::new(None),
            stop_requested: Condvar::new(),
        }
    }

    /// Asks the main thread to stop; a hard stop overrides a soft one in progress.
    pub(crate) fn request_stop(&self, kind: StopKind) {
        let mut stop = lock(&self.stop);
        match (*stop, kind) {
            (Some(StopKind::Hard), _) | (Some(StopKind::Soft), StopKind::Soft) => return,
            _ => {}
        }
        info!(
            "{} stop requested",
            if kind == StopKind::Hard {
                "hard"
            } else {
                "soft"
            }
        );
        *stop = Some(kind);
        self.stop_requested.notify_all();
    }

    /// Whether a stop (soft or hard) was requested.
    pub(crate) fn stop_requested(&self) -> bool {
        lock(&self.stop).is_some()
    }

    fn wait_for_stop(&self) -> StopKind {
        let mut stop = lock(&self.stop);
        loop {
            if let Some(kind) = *stop {
                return kind;
            }
            stop = self
                .stop_requested
                .wait(stop)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `deadline` or until a hard stop is requested; true if it was.
    pub(crate) fn wait_for_hard_stop(&self, deadline: Instant) -> bool {
        let mut stop = lock(&self.stop);
        loop {
            if *stop == Some(StopKind::Hard) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stop = self
                .stop_requested
                .wait_timeout(stop, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Serializes state changes, and keeps replays out while one is in flight.
    pub(crate) fn lock_changes(&self) -> RwLockWriteGuard<'_, ()> {
        self.changes.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps state changes out while a worker is replayed the state; several
    /// replays (the workers of a start) go on at once.
    pub(crate) fn lock_replay(&self) -> RwLockReadGuard<'_, ()> {
        self.changes.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a warning for settings that only a restart applies.
    /// The global keys whose new value in `new` only a restart applies (`worker_count`,
    /// `buffer_size`, `max_connections`, `command_socket`), logged and returned so that a
    /// reload's answer names them.
    pub(crate) fn restart_only_changes(&self, new: &Config) -> Vec<&'static str> {
        let current = lock(&self.config);
        let mut keys = Vec::new();
        if current.worker_count != new.worker_count {
            keys.push("worker_count");
        }
        if current.buffer_size != new.buffer_size {
            keys.push("buffer_size");
        }
        if current.max_connections != new.max_connections {
            keys.push("max_connections");
        }
        if current.command_socket != new.command_socket {
            keys.push("command_socket");
        }
        if !keys.is_empty() {
            warn!("{} take effect at the next start", keys.join(", "));
        }
        keys
    }

    /// Serves the metrics endpoint on `address` (or nowhere), moving it if it listens
    /// elsewhere now. The new address is bound before the old one closes; a bind error
    /// leaves the endpoint as it was.
    pub(crate) fn move_metrics_endpoint(&self, address: Option<SocketAddr>) -> Result<(), String> {
        let mut endpoint = lock(&self.metrics_endpoint);
        if endpoint.as_ref().map(http_endpoint::Endpoint::address) == address {
            return Ok(());
        }
        let started = match address {
            Some(address) => {
                let listener = http_endpoint::bind(address).map_err(|e| format!("{e:#}"))?;
                let main = self
                    .shared
                    .get()
                    .and_then(std::sync::Weak::upgrade)
                    .ok_or("the main process is not running")?;
                let started =
                    http_endpoint::serve(main, address, listener).map_err(|e| format!("{e:#}"))?;
                info!("metrics endpoint on http://{address}/");
                Some(started)
            }
            None => None,
        };
        if let Some(old) = std::mem::replace(&mut *endpoint, started) {
            info!("metrics endpoint on {} closed", old.address());
            old.stop();
        }
        Ok(())
    }

    /// Sends `config`'s logging settings to every worker, which reopens its access log.
    /// Returns the workers' failures, if any, as one message.
    pub(crate) fn apply_logging(&self, config: &Config) -> Result<(), String> {
        if std::env::var_os("RUST_LOG").is_none() {
            log::set_max_level(
                config
                    .log_level
                    .as_str()
                    .parse()
                    .unwrap_or(log::LevelFilter::Info),
            );
        }
        let request = logging_request(config);
        self.workers.set_logging(config);
        let failures: Vec<(u32, String)> = self
            .workers
            .broadcast(&request, WORKER_ANSWER_TIMEOUT)
            .iter()
            .filter_map(|o| o.failure().map(|reason| (o.worker_id, reason)))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(dispatch::per_worker("logging settings", &failures))
        }
    }
}
