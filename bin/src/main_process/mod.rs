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
//! the listening sockets, then a worker slot.

mod certificate_metrics;
mod certificates;
mod changes;
mod command_server;
mod ctl_changes;
mod dispatch;
mod dns;
mod drop_aside;
mod etcd_source;
mod event_merge;
mod events;
mod file_index;
mod handover;
mod http_endpoint;
mod keep_alive;
mod listening_sockets;
mod metrics;
mod reload;
mod reload_part;
mod signals;
mod ticket_keys;
mod upgrade;
mod workers;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{info, warn};
use sluice_command::config::Config;
use sluice_command::state::ConfigState;

pub(crate) use etcd_source::push as etcd_push;
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
    /// A new main process took over (upgrade): the workers drain on their own, the
    /// command socket stays.
    HandedOver,
}

/// What every thread of the main process shares.
#[derive(Debug)]
pub(crate) struct MainProcess {
    /// The file `start` was given: what `reload` without a path reads, whatever other
    /// file an earlier reload named.
    start_path: Option<std::path::PathBuf>,
    /// What the file at `start_path` said when last read: tells which ctl changes its
    /// next reload would undo.
    file_index: file_index::IndexSlot,
    /// What the last read of a config file left for the next one to reuse.
    parse_cache: Mutex<sluice_command::config::ParseCache>,
    /// What the state was last made equal to, while nothing else changed it.
    converged: Mutex<Option<reload_part::Converged>>,
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
    /// The etcd source of clusters, when the config has an `[etcd]` table.
    etcd: std::sync::OnceLock<etcd_source::EtcdSource>,
    stop: Mutex<Option<StopKind>>,
    stop_requested: Condvar,
    /// TLS session ticket keys, sent to every worker before anything else.
    ticket_keys: Mutex<ticket_keys::TicketKeys>,
    /// The binary this process was started from, as named then (an upgrade's default).
    binary: PathBuf,
    /// 1 for a fresh start, one more for each upgrade since.
    generation: u32,
    /// The command socket's listening descriptor (a copy), handed over by an upgrade.
    command_fd: OwnedFd,
    /// The pid of the main process this one handed over to, once it has.
    handed_over_to: Mutex<Option<u32>>,
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
    // Main's threads take turns with large transient allocations (a reload's parse,
    // the index of the file): two arenas keep main's memory that of its state.
    sluice_lib::sys::limit_allocator_arenas(2);
    sluice_lib::sys::release_large_allocations_promptly(256 << 10, 1 << 20);
    let mut parse_cache = sluice_command::config::ParseCache::new();
    let config = match config_path {
        Some(path) => parse_cache
            .load(path)
            .with_context(|| format!("invalid config {}", path.display()))?,
        None => Config::default_embedded(),
    };
    run_cached(config, parse_cache, signals)
}

/// Runs the main process on `config` until it is told to stop. `signals` must
/// have been blocked before any other thread of this process was spawned.
pub(crate) fn run(config: Config, signals: signals::Signals) -> anyhow::Result<()> {
    run_cached(config, sluice_command::config::ParseCache::new(), signals)
}

/// [`run`], with what reading `config`'s file left for its reloads to reuse.
fn run_cached(
    mut config: Config,
    parse_cache: sluice_command::config::ParseCache,
    signals: signals::Signals,
) -> anyhow::Result<()> {
    crate::init_logging(config.log_level.as_str(), "main");
    match sluice_lib::sys::raise_fd_limit() {
        Ok(limit) => log::debug!("open files limit: {limit}"),
        Err(error) => log::warn!("cannot raise the open files limit: {error}"),
    }
    let mut inherited = handover::take_from_env()?;
    let dns = dns::Dns::default();
    let (prepared, built_from) = dns
        .prepare_config_taking(&mut config)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    dns.commit(prepared.templates);
    // An upgrade goes on from the state the previous main process served.
    let mut handed_over = Vec::new();
    let state = match inherited.as_mut() {
        Some(inherited) => {
            handed_over = etcd_source::not_in_file(&inherited.state, &prepared.state);
            std::mem::take(&mut inherited.state)
        }
        None => prepared.state,
    };
    let socket_path = config.command_socket.clone();
    let listener = match &inherited {
        Some(inherited) => inherited.command.try_clone()?,
        None => command_server::bind(&socket_path)?,
    };
    // The command socket of a main process that handed over stays for its successor.
    let bound = match inherited {
        Some(_) => None,
        None => command_server::identity(&socket_path),
    };
    let metrics_listener = match config.metrics_address {
        Some(address) => Some((address, bind_metrics(address, inherited.is_some())?)),
        None => None,
    };
    let etcd = etcd_source::EtcdSource::of(&config, handed_over);
    let identity = Identity {
        binary: started_from(),
        generation: inherited
            .as_ref()
            .map_or(1, |inherited| inherited.generation),
        command_fd: OwnedFd::from(listener.try_clone()?),
    };
    // The workers replay the requests the state was built from, encoded once for all of
    // them, when they build all of it; the state's own requests otherwise (an upgrade's,
    // or one with backends given by host name).
    let replay = match (&inherited, built_from) {
        (None, Some(requests)) => requests,
        _ => state.generate_requests(),
    };
    let (start_replay, replayed) = workers::StartReplay::prepare(state.writes(), replay)
        .context("cannot encode the state for the workers")?;
    let fresh = inherited.is_none();
    let writes = state.writes();
    // Freed once the workers serve, so that freeing them does not take their CPU while
    // they apply the state.
    let routes = take_routes(&mut config);
    let mut main = MainProcess::new(config, state, identity, dns);
    if fresh && parse_cache.generation() > 0 {
        main.converged = Mutex::new(Some(reload_part::Converged {
            read: parse_cache.generation(),
            writes,
        }));
    }
    main.parse_cache = Mutex::new(parse_cache);
    main.workers.offer_start_replay(start_replay);
    let main = Arc::new(main);
    // Tickets issued before an upgrade resume after it.
    if let Some(keys) = inherited.as_mut().and_then(|i| i.ticket_keys.take()) {
        *lock(&main.ticket_keys) = keys;
    }
    let _ = main.shared.set(Arc::downgrade(&main));
    let opened = {
        let state = lock(&main.state);
        let mut sockets = lock(&main.workers.sockets);
        for (address, socket, listening) in inherited
            .as_mut()
            .map(|inherited| std::mem::take(&mut inherited.listeners))
            .unwrap_or_default()
        {
            sockets.adopt(address, socket, listening);
        }
        sockets.open_for(&state)
    };
    if let Err(error) = opened {
        command_server::remove_socket(&socket_path, bound);
        anyhow::bail!("cannot start: {error}");
    }
    let started = start_workers(&main, inherited.as_mut());
    main.workers.forget_start_replay();
    if let Err(error) = started {
        main.workers.stop(&main, StopKind::Hard, Duration::ZERO);
        command_server::remove_socket(&socket_path, bound);
        return Err(error);
    }
    // Indexed once the workers applied the state, so that the thread indexing does not
    // take their CPU while they do; ctl, which needs the index, is served after. The index
    // describes the state as it holds the file's values, from its own requests.
    if let Some(path) = main.start_path.clone() {
        let requests = lock(&main.state).generate_requests();
        main.file_index.build(path, requests);
    }
    drop_aside::drop_aside((routes, replayed));
    if let Some(inherited) = inherited.as_mut() {
        inherited
            .confirm_ready()
            .context("cannot confirm to the previous main process")?;
        handover::now_main_process(std::process::id(), main.generation);
    }
    command_server::serve(Arc::clone(&main), listener)?;
    // Parsing the file and encoding the workers' replays used several times the memory
    // of the state they built. Handed back once ctl is served: no answer waits for it.
    sluice_lib::sys::release_free_memory();
    if let Some((address, metrics_listener)) = metrics_listener {
        let endpoint = http_endpoint::serve(Arc::clone(&main), address, metrics_listener)?;
        *lock(&main.metrics_endpoint) = Some(endpoint);
    }
    signals::spawn_handler(Arc::clone(&main), signals)?;
    ticket_keys::spawn_rotation(Arc::clone(&main))
        .context("cannot start the ticket keys' rotation")?;
    etcd_source::start(&main, etcd)?;
    dns::spawn_refresher(&main)?;
    info!(
        "sluice is running: {} workers, command socket {}",
        main.workers.len(),
        socket_path.display()
    );
    if let Some(mut inherited) = inherited {
        inherited.wait_for_retiring();
    }
    crate::notify::ready(&main.serving_status());
    let kind = main.wait_for_stop();
    if kind == StopKind::HandedOver {
        main.workers
            .release_all(lock(&main.config).shutdown_grace_period);
        main.events.wait_delivered(Duration::from_secs(1));
        info!("handed over: exiting, the workers finish their sessions on their own");
        return Ok(());
    }
    crate::notify::stopping();
    let grace = lock(&main.config).shutdown_grace_period;
    main.workers.stop(&main, kind, grace);
    command_server::remove_socket(&socket_path, bound);
    info!("sluice stopped");
    Ok(())
}

/// Starts the workers: all at once, or, when taking over from another main process, one at
/// a time, each announced once it serves so that the old main retires its counterpart.
fn start_workers(
    main: &Arc<MainProcess>,
    inherited: Option<&mut handover::Inherited>,
) -> anyhow::Result<()> {
    let Some(inherited) = inherited else {
        return main.workers.start_all(main);
    };
    for id in 0..main.workers.len() {
        main.workers.start_range(main, id..id + 1)?;
        inherited
            .announce_serving(id)
            .context("cannot tell the previous main process")?;
    }
    Ok(())
}

/// Binds the metrics endpoint; a main process taking over retries a moment while the
/// previous one lets the address go.
fn bind_metrics(address: SocketAddr, taking_over: bool) -> anyhow::Result<std::net::TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match http_endpoint::bind(address) {
            Err(_) if taking_over && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// The binary this process was started from, as its path was given then: a package upgrade
/// replaces the file there, while `/proc/self/exe` keeps naming the deleted one.
fn started_from() -> PathBuf {
    let given = std::env::args_os().next().map(PathBuf::from);
    match given {
        Some(path) if path.components().count() > 1 => std::path::absolute(&path).unwrap_or(path),
        _ => std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sluice")),
    }
}

/// Who this main process is: what an upgrade needs to hand over.
struct Identity {
    binary: PathBuf,
    generation: u32,
    command_fd: OwnedFd,
}

/// The global settings of `config`, without its listeners and clusters: the
/// state holds those, and a second copy would double main's memory.
pub(crate) fn settings_only(mut config: Config) -> Config {
    drop_aside::drop_aside(take_routes(&mut config));
    config
}

/// The listeners, clusters, certificates and backend names of `config`, taken out of it.
fn take_routes(config: &mut Config) -> impl Send + 'static {
    (
        std::mem::take(&mut config.listeners),
        std::mem::take(&mut config.clusters),
        std::mem::take(&mut config.certificates),
        std::mem::take(&mut config.backend_names),
    )
}

impl MainProcess {
    fn new(config: Config, state: ConfigState, identity: Identity, dns: dns::Dns) -> MainProcess {
        let workers = WorkerPool::new(&config);
        MainProcess {
            start_path: config.path.clone(),
            file_index: file_index::IndexSlot::default(),
            parse_cache: Mutex::default(),
            converged: Mutex::default(),
            metrics_endpoint: Mutex::new(None),
            shared: std::sync::OnceLock::new(),
            config: Mutex::new(settings_only(config)),
            state: Mutex::new(state),
            changes: RwLock::new(()),
            workers,
            dns,
            events: EventHub::default(),
            etcd: std::sync::OnceLock::new(),
            stop: Mutex::new(None),
            stop_requested: Condvar::new(),
            ticket_keys: Mutex::new(ticket_keys::TicketKeys::new(
                std::time::Instant::now(),
                ticket_keys::random_key,
            )),
            binary: identity.binary,
            generation: identity.generation,
            command_fd: identity.command_fd,
            handed_over_to: Mutex::new(None),
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
            match kind {
                StopKind::Hard => "hard",
                StopKind::Soft => "soft",
                StopKind::HandedOver => "handover",
            }
        );
        *stop = Some(kind);
        self.stop_requested.notify_all();
    }

    /// What `systemctl status` shows while main serves.
    pub(crate) fn serving_status(&self) -> String {
        format!("serving with {} workers", self.workers.len())
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

    /// The global keys whose new value in `new` only a restart applies (`buffer_size`,
    /// `max_connections`, `command_socket`), logged and returned so that a reload's answer
    /// names them.
    pub(crate) fn restart_only_changes(&self, new: &Config) -> Vec<&'static str> {
        let current = lock(&self.config);
        let mut keys = Vec::new();
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

    /// Runs `wanted` workers from now on (see `workers::resize`).
    pub(crate) fn resize_workers(&self, wanted: usize) -> Result<String, String> {
        let main = self
            .shared
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or("the main process is not running")?;
        let grace = lock(&self.config).shutdown_grace_period;
        self.workers.resize(&main, wanted, grace)
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
