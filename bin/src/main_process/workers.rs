//! Spawning, supervising and talking to the workers.
//!
//! Each worker has a slot (pid, run state, restarts, the writing half of its
//! channel) and a supervisor thread that spawns it, replays the whole state
//! to it, then reads its channel: answers are routed to the request waiting
//! for them by request id, events are fanned out. When the channel ends, the
//! supervisor reaps the process and respawns it with the same id; repeated
//! quick crashes back off exponentially, up to [`MAX_BACKOFF`].

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use log::{debug, error, info, warn};
use sluice_command::channel::{Channel, ChannelError, CONTROL_MAX_FRAME_SIZE};
use sluice_command::config::defaults::MAX_WORKER_COUNT;
use sluice_command::config::Config;
use sluice_command::proto::{
    self, request::RequestType, worker_message::MessageType, Request, WorkerMessage, WorkerRequest,
    WorkerResponse, WorkerRunState,
};

mod asking;
mod resize;
mod start_replay;

pub(crate) use start_replay::StartReplay;

use asking::Delivery;

use super::listening_sockets::ListeningSockets;
use super::{lock, MainProcess, StopKind};
use crate::sys;

type WorkerChannel = Channel<WorkerRequest, WorkerMessage>;

/// A worker that lived at least this long before dying starts a new crash series.
const STABLE_RUN: Duration = Duration::from_secs(30);
/// The longest wait before respawning a crash-looping worker.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The first wait after two quick crashes in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How long a blocked write to a worker may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one worker answered to a broadcast request.
#[derive(Debug)]
pub(crate) struct WorkerOutcome {
    /// The worker's id.
    pub(crate) worker_id: u32,
    /// Its answer, or why there is none.
    pub(crate) result: Result<WorkerResponse, String>,
}

impl WorkerOutcome {
    /// The reason this worker failed the request, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        match &self.result {
            Ok(response) if response.status == proto::ResponseStatus::Failure as i32 => {
                Some(response.message.clone())
            }
            Ok(_) => None,
            Err(reason) => Some(reason.clone()),
        }
    }
}

impl WorkerOutcome {
    /// Whether the worker answered that it refused the request: a worker
    /// applies a change whole or not at all, so it kept its state.
    pub(crate) fn refused(&self) -> bool {
        matches!(&self.result, Ok(response) if response.status == proto::ResponseStatus::Failure as i32)
    }
}

/// The workers and the requests waiting for their answers.
#[derive(Debug)]
pub(crate) struct WorkerPool {
    /// One slot per possible worker id; the first `wanted` are meant to run, the others
    /// are idle or hold a retired worker finishing its sessions.
    slots: Vec<Mutex<WorkerSlot>>,
    /// How many workers should run (`worker_count`, changed live by a reload).
    wanted: AtomicUsize,
    /// The requests waiting for an answer, by worker id and request id.
    pending: Mutex<HashMap<(u32, String), mpsc::Sender<Delivery>>>,
    next_request: AtomicU64,
    stopping: AtomicBool,
    launch: Mutex<Launch>,
    /// The state a start replays to its workers, encoded once for all of them.
    start_replay: Mutex<Option<Arc<StartReplay>>>,
    /// The listening sockets handed to every worker (locked before any slot).
    pub(crate) sockets: Mutex<ListeningSockets>,
}

#[derive(Debug)]
struct WorkerSlot {
    pid: u32,
    run_state: WorkerRunState,
    restarts: u32,
    writer: Option<WorkerChannel>,
    child: Option<Child>,
    /// A supervisor thread looks after this slot.
    supervised: bool,
    /// An upgrade's new worker of the same id serves: this one drains and is not respawned.
    handed_over: bool,
}

/// How a worker process is started.
#[derive(Debug, Clone)]
struct Launch {
    max_connections: usize,
    buffer_size: usize,
    log_level: String,
    access_log: String,
    access_log_format: &'static str,
}

impl WorkerPool {
    /// One stopped slot per configured worker.
    pub(crate) fn new(config: &Config) -> WorkerPool {
        let count = config.worker_count.max(1) as usize;
        let slots = (0..(MAX_WORKER_COUNT as usize).max(count))
            .map(|_| {
                Mutex::new(WorkerSlot {
                    pid: 0,
                    run_state: WorkerRunState::Stopped,
                    restarts: 0,
                    writer: None,
                    child: None,
                    supervised: false,
                    handed_over: false,
                })
            })
            .collect();
        WorkerPool {
            slots,
            wanted: AtomicUsize::new(count),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            launch: Mutex::new(Launch {
                max_connections: config.max_connections,
                buffer_size: config.buffer_size,
                log_level: config.log_level.as_str().to_owned(),
                access_log: config.access_log.to_string(),
                access_log_format: config.access_log_format.as_str(),
            }),
            sockets: Mutex::new(ListeningSockets::default()),
            start_replay: Mutex::new(None),
        }
    }

    /// Workers spawned from now on replay `replay` instead of generating the state's
    /// requests again, while the state has seen no other write.
    pub(crate) fn offer_start_replay(&self, replay: Arc<StartReplay>) {
        *lock(&self.start_replay) = Some(replay);
    }

    /// The start is over: a respawn generates the state it replays.
    pub(crate) fn forget_start_replay(&self) {
        *lock(&self.start_replay) = None;
    }

    /// Workers started from now on log at `config`'s level to its access log.
    pub(crate) fn set_logging(&self, config: &Config) {
        let mut launch = lock(&self.launch);
        launch.log_level = config.log_level.as_str().to_owned();
        launch.access_log = config.access_log.to_string();
        launch.access_log_format = config.access_log_format.as_str();
    }

    /// How many workers should run.
    pub(crate) fn len(&self) -> usize {
        self.wanted.load(Ordering::SeqCst)
    }

    /// Starts every worker and waits until each has applied the state; the
    /// first failure (e.g. a listening address that cannot be bound) is returned.
    pub(crate) fn start_all(&self, main: &Arc<MainProcess>) -> anyhow::Result<()> {
        self.start_range(main, 0..self.len())
    }

    /// Starts a supervisor for each slot of `ids` without one and waits until their
    /// workers applied the state. A slot whose retired worker still drains gets no
    /// second supervisor: the one there respawns it once it exits.
    pub(crate) fn start_range(
        &self,
        main: &Arc<MainProcess>,
        ids: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let (ready_rx, started) = self.spawn_supervisors(main, ids)?;
        for _ in 0..started {
            match ready_rx.recv_timeout(super::WORKER_ANSWER_TIMEOUT * 3) {
                Ok((id, Ok(pid))) => info!("worker {id} ready (pid {pid})"),
                Ok((_, Err(reason))) => bail!("cannot start: {reason}"),
                Err(_) => bail!("cannot start: a worker did not become ready in time"),
            }
        }
        Ok(())
    }

    /// Starts a supervisor for each slot of `ids` without one; returns where they report
    /// their first start, and how many there are.
    #[allow(clippy::type_complexity)]
    fn spawn_supervisors(
        &self,
        main: &Arc<MainProcess>,
        ids: std::ops::Range<usize>,
    ) -> anyhow::Result<(mpsc::Receiver<(u32, Result<u32, String>)>, usize)> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut started = 0;
        for id in ids {
            let mut slot = lock(&self.slots[id]);
            if slot.supervised {
                continue;
            }
            slot.supervised = true;
            let main = Arc::clone(main);
            let ready = ready_tx.clone();
            let id = id as u32;
            thread::Builder::new()
                .name(format!("supervisor-{id}"))
                .spawn(move || supervise(&main, id, ready))
                .context("cannot spawn a supervisor thread")?;
            started += 1;
        }
        Ok((ready_rx, started))
    }

    /// Every worker as main sees it, with the session counts they reported.
    pub(crate) fn statuses(&self) -> proto::WorkerStatuses {
        let request = Request {
            request_type: Some(RequestType::QueryStatus(proto::QueryStatus {})),
        };
        let outcomes = self.broadcast(&request, Duration::from_secs(2));
        let workers = self
            .shown_slots()
            .map(|(id, slot)| {
                let answer = outcomes.iter().find(|o| o.worker_id == id);
                let sessions = answer.and_then(reported_sessions);
                let state = match (slot.run_state, sessions) {
                    (WorkerRunState::Running, None) => WorkerRunState::NotAnswering,
                    (state, _) => state,
                };
                proto::WorkerInfo {
                    id,
                    pid: slot.pid,
                    state: state as i32,
                    restarts: slot.restarts,
                    sessions: sessions.unwrap_or(0),
                }
            })
            .collect();
        proto::WorkerStatuses {
            workers,
            ..Default::default()
        }
    }

    /// Every worker as main's slots see it, without asking the workers (sessions left at 0).
    pub(crate) fn slot_states(&self) -> Vec<proto::WorkerInfo> {
        self.shown_slots()
            .map(|(id, slot)| proto::WorkerInfo {
                id,
                pid: slot.pid,
                state: slot.run_state as i32,
                restarts: slot.restarts,
                sessions: 0,
            })
            .collect()
    }

    /// The slots `status` shows: those meant to run, and retired ones still draining.
    fn shown_slots(&self) -> impl Iterator<Item = (u32, std::sync::MutexGuard<'_, WorkerSlot>)> {
        let wanted = self.len();
        self.slots
            .iter()
            .enumerate()
            .map(|(id, slot)| (id as u32, lock(slot)))
            .filter(move |(id, slot)| (*id as usize) < wanted || slot.child.is_some())
    }

    /// Kills a worker that diverged from main's state; its supervisor respawns
    /// it and replays the whole state.
    pub(crate) fn resync(&self, worker_id: u32) {
        let Some(slot) = self.slots.get(worker_id as usize) else {
            return;
        };
        let mut slot = lock(slot);
        warn!("worker {worker_id} diverged from the main process's state: restarting it");
        if let Some(child) = slot.child.as_mut() {
            if let Err(error) = child.kill() {
                error!("cannot kill worker {worker_id}: {error}");
            }
        }
    }

    /// Stops every worker: a soft stop lets them drain up to `grace`, a hard
    /// stop (or a hard stop requested meanwhile) kills what is left.
    pub(crate) fn stop(&self, main: &MainProcess, kind: StopKind, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let request_type = match kind {
            StopKind::Soft | StopKind::HandedOver => RequestType::SoftStop(soft_stop(grace)),
            StopKind::Hard => RequestType::HardStop(proto::HardStop {}),
        };
        let request = Request {
            request_type: Some(request_type),
        };
        for outcome in self.broadcast(&request, Duration::from_secs(2)) {
            if let Some(reason) = outcome.failure() {
                warn!(
                    "worker {} did not accept the stop: {reason}",
                    outcome.worker_id
                );
            }
        }
        let deadline = Instant::now()
            + if kind == StopKind::Soft {
                grace
            } else {
                Duration::from_secs(1)
            };
        loop {
            if self.all_stopped() {
                return;
            }
            let hard =
                main.wait_for_hard_stop(deadline.min(Instant::now() + Duration::from_millis(50)));
            if hard || Instant::now() >= deadline {
                break;
            }
        }
        for (id, slot) in self.slots.iter().enumerate() {
            let mut slot = lock(slot);
            if let Some(mut child) = slot.child.take() {
                warn!(
                    "worker {id} (pid {}) still running at shutdown: killing it",
                    slot.pid
                );
                let _ = child.kill();
                let _ = child.wait();
            }
            slot.run_state = WorkerRunState::Stopped;
        }
    }

    /// Soft-stops every worker and lets them go: they finish their sessions on their own
    /// after this main process exits (it handed over to a new one).
    pub(crate) fn release_all(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let request = Request {
            request_type: Some(RequestType::SoftStop(soft_stop(grace))),
        };
        for outcome in self.broadcast(&request, Duration::from_secs(2)) {
            if let Some(reason) = outcome.failure() {
                warn!(
                    "worker {} did not accept its soft stop: {reason}",
                    outcome.worker_id
                );
            }
        }
    }

    fn all_stopped(&self) -> bool {
        self.slots.iter().all(|slot| lock(slot).child.is_none())
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// A soft stop that lets sessions finish for `grace`.
fn soft_stop(grace: Duration) -> proto::SoftStop {
    proto::SoftStop {
        drain_timeout_ms: Some(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)),
    }
}

fn reported_sessions(outcome: &WorkerOutcome) -> Option<u64> {
    let response = outcome.result.as_ref().ok()?;
    match response.content.as_ref()?.content_type.as_ref()? {
        proto::response_content::ContentType::Workers(statuses) => {
            Some(statuses.workers.iter().map(|w| w.sessions).sum())
        }
        _ => None,
    }
}

/// The life of one worker id: spawn, replay, read, reap, respawn.
fn supervise(main: &Arc<MainProcess>, id: u32, ready: mpsc::Sender<(u32, Result<u32, String>)>) {
    let mut ready = Some(ready);
    let mut quick_crashes: u32 = 0;
    loop {
        let started = Instant::now();
        match launch(main, id) {
            Ok((pid, reader)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send((id, Ok(pid)));
                } else {
                    let restarts = lock(&main.workers.slots[id as usize]).restarts;
                    info!("worker {id} respawned (pid {pid}, restart {restarts}) and replayed the state");
                    main.events
                        .publish(worker_event(proto::EventKind::WorkerRespawned, id));
                }
                read_channel(main, id, reader);
            }
            Err(error) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send((id, Err(format!("{error:#}"))));
                    lock(&main.workers.slots[id as usize]).supervised = false;
                    return;
                }
                error!("worker {id} could not be restarted: {error:#}");
            }
        }
        let (pid, status) = reap(main, id);
        if main.workers.is_stopping() {
            info!("worker {id} (pid {pid}) exited: {status}");
            return;
        }
        if main.workers.retire_supervisor(id) {
            info!("worker {id} (pid {pid}) retired: {status}");
            return;
        }
        error!("worker {id} (pid {pid}) died: {status}");
        main.events
            .publish(worker_event(proto::EventKind::WorkerCrashed, id));
        quick_crashes = if started.elapsed() >= STABLE_RUN {
            0
        } else {
            quick_crashes + 1
        };
        let delay = backoff(quick_crashes);
        if !delay.is_zero() {
            warn!("worker {id} crashed {quick_crashes} times in a row: waiting {delay:?} before respawning it");
            thread::sleep(delay);
        }
        if main.workers.is_stopping() || main.workers.retire_supervisor(id) {
            return;
        }
        lock(&main.workers.slots[id as usize]).restarts += 1;
    }
}

/// No wait after an isolated crash (respawn within a second), then
/// 250 ms, 500 ms, 1 s, … up to [`MAX_BACKOFF`] for a crash loop.
pub(crate) fn backoff(quick_crashes: u32) -> Duration {
    if quick_crashes <= 1 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(quick_crashes - 2).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

fn worker_event(kind: proto::EventKind, id: u32) -> proto::Event {
    proto::Event {
        kind: kind as i32,
        worker_id: Some(id),
        ..Default::default()
    }
}

/// Spawns worker `id` and replays the state to it; no change can happen meanwhile.
fn launch(main: &MainProcess, id: u32) -> anyhow::Result<(u32, WorkerChannel)> {
    let _changes = main.lock_replay();
    let launch = lock(&main.workers.launch).clone();
    let (mut child, stream) = spawn_process(&launch, id)?;
    let pid = child.id();
    let result = (|| {
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let mut writer =
            Channel::new(stream.try_clone()?).with_max_frame_size(CONTROL_MAX_FRAME_SIZE);
        let mut reader = Channel::new(stream).with_max_frame_size(CONTROL_MAX_FRAME_SIZE);
        send_ticket_keys(main, id, &mut writer, &mut reader)?;
        replay(main, id, &mut writer, &mut reader)?;
        Ok::<_, anyhow::Error>((writer, reader))
    })();
    let (writer, reader) = match result {
        Ok(channels) => channels,
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(error);
        }
    };
    let mut slot = lock(&main.workers.slots[id as usize]);
    slot.pid = pid;
    slot.child = Some(child);
    slot.writer = Some(writer);
    slot.run_state = WorkerRunState::Running;
    Ok((pid, reader))
}

fn spawn_process(launch: &Launch, id: u32) -> anyhow::Result<(Child, UnixStream)> {
    let (parent_end, child_end) = UnixStream::pair().context("cannot create a socketpair")?;
    let child_fd = child_end.as_raw_fd();
    let exe: PathBuf = std::env::current_exe().context("cannot find the sluice executable")?;
    let parent_pid = sys::current_pid();
    let mut command = Command::new(exe);
    command
        .arg("worker")
        .args(["--id", &id.to_string()])
        .args(["--channel-fd", &child_fd.to_string()])
        .args(["--max-connections", &launch.max_connections.to_string()])
        .args(["--buffer-size", &launch.buffer_size.to_string()])
        .args(["--log-level", &launch.log_level])
        .args(["--access-log", &launch.access_log])
        .args(["--access-log-format", launch.access_log_format])
        .stdin(Stdio::null())
        // Its own process group, so that a terminal's Ctrl-C reaches main only and
        // main decides how the workers stop.
        .process_group(0);
    sys::prepare_worker_command(&mut command, parent_pid, child_fd);
    let child = command
        .spawn()
        .with_context(|| format!("cannot spawn worker {id}"))?;
    // The worker holds the only other copy: its exit closes the channel.
    drop(child_end);
    Ok((child, parent_end))
}

/// Sends the TLS ticket keys, before any listener. A worker without TLS support refuses
/// them, which is no reason not to run it: its refusal is logged at debug level.
fn send_ticket_keys(
    main: &MainProcess,
    id: u32,
    writer: &mut WorkerChannel,
    reader: &mut WorkerChannel,
) -> anyhow::Result<()> {
    let request_id = format!("ticket-keys-{id}");
    let message = WorkerRequest {
        id: request_id.clone(),
        content: lock(&main.ticket_keys).request(),
    };
    write_blocking(writer, &message, &[]).context("cannot send the ticket keys")?;
    let response = await_response(main, id, reader, &request_id)?;
    if response.status == proto::ResponseStatus::Failure as i32 {
        debug!(
            "worker {id} did not take the ticket keys: {}",
            response.message
        );
    }
    Ok(())
}

/// Sends the whole state as one batch, applied by the worker in one go: the replay is
/// linear in the size of the state, with one round trip. A start's workers share the
/// batch it encoded once ([`StartReplay`]); a respawn generates it from the state.
fn replay(
    main: &MainProcess,
    id: u32,
    writer: &mut WorkerChannel,
    reader: &mut WorkerChannel,
) -> anyhow::Result<()> {
    let prepared = lock(&main.workers.start_replay).clone();
    let state = lock(&main.state);
    match prepared.filter(|prepared| prepared.is_current(state.writes())) {
        Some(prepared) => {
            drop(state);
            let Some(frame) = prepared.frame() else {
                return Ok(());
            };
            let sockets = lock(&main.workers.sockets).handed_over_at(prepared.listeners())?;
            let borrowed: Vec<_> = sockets.iter().map(AsFd::as_fd).collect();
            writer
                .write_encoded_with_fds(frame, &borrowed)
                .and_then(|()| flush_blocking(writer))
                .context("cannot send the state")?;
        }
        None => {
            let requests = state.generate_requests();
            drop(state);
            if requests.is_empty() {
                return Ok(());
            }
            let message = start_replay::replay_request(requests);
            let sockets = lock(&main.workers.sockets)
                .handed_over_by(std::slice::from_ref(&message.content))?;
            write_blocking(writer, &message, &sockets).context("cannot send the state")?;
        }
    }
    let response = await_response(main, id, reader, start_replay::REPLAY_REQUEST_ID)?;
    if response.status == proto::ResponseStatus::Failure as i32 {
        bail!("worker {id} refused the state: {}", response.message);
    }
    Ok(())
}

fn await_response(
    main: &MainProcess,
    id: u32,
    reader: &mut WorkerChannel,
    request_id: &str,
) -> anyhow::Result<WorkerResponse> {
    let deadline = Instant::now() + super::WORKER_ANSWER_TIMEOUT;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let message = reader
            .read_message_timeout(remaining)
            .map_err(|error| anyhow!("worker {id} did not answer during the replay: {error}"))?;
        match message.message_type {
            Some(MessageType::Response(response))
                if response.id == request_id
                    && response.status != proto::ResponseStatus::Processing as i32 =>
            {
                return Ok(response);
            }
            Some(MessageType::Response(response)) => {
                debug!(
                    "worker {id}: answer {} while waiting for {request_id}",
                    response.id
                )
            }
            Some(MessageType::Event(event)) => {
                main.events.publish_from_worker(with_worker(event, id))
            }
            None => {}
        }
    }
}

/// Reads a running worker's frames until its channel ends.
fn read_channel(main: &MainProcess, id: u32, mut reader: WorkerChannel) {
    loop {
        match reader.read_message() {
            Ok(WorkerMessage {
                message_type: Some(MessageType::Response(response)),
            }) => main.workers.deliver(id, response),
            Ok(WorkerMessage {
                message_type: Some(MessageType::Event(event)),
            }) => main.events.publish_from_worker(with_worker(event, id)),
            Ok(WorkerMessage { message_type: None }) => debug!("worker {id}: empty frame"),
            Err(ChannelError::Eof) => return,
            Err(error) => {
                error!("worker {id}: channel error: {error}");
                return;
            }
        }
    }
}

fn with_worker(mut event: proto::Event, id: u32) -> proto::Event {
    event.worker_id.get_or_insert(id);
    event
}

/// Marks the worker stopped, fails what waited for it and collects its exit status.
fn reap(main: &MainProcess, id: u32) -> (u32, String) {
    let (pid, child) = {
        let mut slot = lock(&main.workers.slots[id as usize]);
        slot.run_state = WorkerRunState::Stopped;
        slot.writer = None;
        (slot.pid, slot.child.take())
    };
    main.workers.fail_pending(id);
    let Some(mut child) = child else {
        return (pid, "not running".to_owned());
    };
    // The channel closed: the process is exiting or already gone. A worker that
    // closed its channel but lingers is of no use, so it gets a bounded grace.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (pid, status.to_string()),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string());
                return (pid, status.unwrap_or_else(|e| e.to_string()));
            }
        }
    }
}

/// Sends `message` with the listening `sockets` it hands over (see
/// `sluice_command::listener_sockets`).
fn write_blocking(
    writer: &mut WorkerChannel,
    message: &WorkerRequest,
    sockets: &[OwnedFd],
) -> Result<(), ChannelError> {
    let borrowed: Vec<_> = sockets.iter().map(AsFd::as_fd).collect();
    writer.write_message_with_fds(message, &borrowed)?;
    flush_blocking(writer)
}

/// Writes what `writer` still holds queued.
fn flush_blocking(writer: &mut WorkerChannel) -> Result<(), ChannelError> {
    while !writer.flush()? {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_the_second_quick_crash_and_is_bounded() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(6), Duration::from_secs(4));
        assert_eq!(backoff(12), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
