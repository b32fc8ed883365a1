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
//! and worker replays never interleave), then `state`, then a worker slot.

mod changes;
mod command_server;
mod dispatch;
mod events;
mod http_endpoint;
mod metrics;
mod reload;
mod signals;
mod workers;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
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
    config: Mutex<Config>,
    state: Mutex<ConfigState>,
    changes: Mutex<()>,
    workers: WorkerPool,
    events: EventHub,
    stop: Mutex<Option<StopKind>>,
    stop_requested: Condvar,
}

/// Locks a mutex, ignoring poisoning: a panicked thread leaves the data as consistent
/// as it was between two statements, and main must go on serving.
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
    let state = state_from_config(&config)?;
    let socket_path = config.command_socket.clone();
    let listener = command_server::bind(&socket_path)?;
    let bound = command_server::identity(&socket_path);
    let metrics_listener = match config.metrics_address {
        Some(address) => Some(http_endpoint::bind(address)?),
        None => None,
    };
    let main = Arc::new(MainProcess::new(config, state));
    if let Err(error) = main.workers.start_all(&main) {
        main.workers.stop(&main, StopKind::Hard, Duration::ZERO);
        command_server::remove_socket(&socket_path, bound);
        return Err(error);
    }
    command_server::serve(Arc::clone(&main), listener)?;
    if let Some(metrics_listener) = metrics_listener {
        http_endpoint::serve(Arc::clone(&main), metrics_listener)?;
    }
    signals::spawn_handler(Arc::clone(&main), signals)?;
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

/// The state a config describes: its requests applied in order to an empty state.
pub(crate) fn state_from_config(config: &Config) -> anyhow::Result<ConfigState> {
    let mut state = ConfigState::default();
    for request in config.to_requests() {
        if let Err(error) = state.apply(&request) {
            bail!(
                "invalid config: {}: {error}",
                ConfigState::summary_of(&request)
            );
        }
    }
    Ok(state)
}

impl MainProcess {
    fn new(config: Config, state: ConfigState) -> MainProcess {
        let workers = WorkerPool::new(&config);
        MainProcess {
            config: Mutex::new(config),
            state: Mutex::new(state),
            changes: Mutex::new(()),
            workers,
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

    /// Serializes state changes and worker replays.
    pub(crate) fn lock_changes(&self) -> MutexGuard<'_, ()> {
        lock(&self.changes)
    }

    /// Logs a warning for settings that only a restart applies.
    pub(crate) fn warn_restart_only_changes(&self, new: &Config) {
        let current = lock(&self.config);
        if current.worker_count != new.worker_count
            || current.buffer_size != new.buffer_size
            || current.max_connections != new.max_connections
            || current.command_socket != new.command_socket
        {
            warn!("worker_count, buffer_size, max_connections and command_socket changes take effect at the next start");
        }
    }
}
