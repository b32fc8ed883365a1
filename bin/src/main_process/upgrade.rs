//! `sluice ctl upgrade [--binary PATH]`, in the running (old) main process.
//!
//! With state changes held off, main saves its state and its TLS ticket keys to private
//! files (mode 0600; the new main deletes the keys file as soon as it opened it), closes
//! its metrics endpoint (the new main binds it), and starts the new binary with the command socket,
//! the listening sockets and the state file handed over ([`super::handover`]). The new main
//! starts its workers one at a time, gives each the sockets and the whole state, and says
//! when each serves: this main then soft-stops its own worker of that id (it finishes its
//! sessions within `shutdown_grace_period`, even after this main exits). Once the new main
//! confirms that all of them serve, this main answers, tells the event subscribers,
//! soft-stops what is left and exits without removing the command socket, which the new
//! main serves. Right after the confirmation it names the new main to the service manager
//! (`MAINPID=`) and says so to the new main (`retiring`), which then says `READY=1`.
//!
//! A new binary that cannot be started, exits, or does not confirm within
//! [`CONFIRM_TIMEOUT`] is killed; this main and its workers go on as before (a worker it
//! already soft-stopped is respawned once it drained), and the answer says what failed.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use sluice_command::proto::{self, Response};

use super::dispatch::{failure, ok};
use super::handover::{create_private, Handover, Progress, HANDOVER_ENV, RETIRING};
use super::ticket_keys::handover_file;
use super::{lock, MainProcess};
use crate::sys;

/// How long the new main may take to confirm that its workers serve.
pub(crate) const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an upgrade failed; the running instance is as it was.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpgradeError {
    /// The state could not be written for the new main.
    #[error("cannot write the state for the new main process to {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The binary could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The new main exited before it confirmed.
    #[error("the new main process exited ({status}) before its workers served; see its log")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// No confirmation in time.
    #[error("the new main process did not confirm within {}s: killed", CONFIRM_TIMEOUT.as_secs())]
    Timeout,
    /// The socket the confirmation comes on failed.
    #[error("cannot hear from the new main process: {0}")]
    Io(#[from] std::io::Error),
}

/// Handles `UpgradeMain`: hands over to `binary` (or the binary main was started from).
pub(crate) fn upgrade(main: &MainProcess, request: &proto::UpgradeMain) -> Response {
    let _serial = main.lock_changes();
    let binary = request
        .binary
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| main.binary.clone());
    info!("upgrade to {} started", binary.display());
    main.events.publish(upgrade_event(
        proto::EventKind::UpgradeStarted,
        binary.display().to_string(),
    ));
    let metrics_address = lock(&main.config).metrics_address;
    if let Err(error) = main.move_metrics_endpoint(None) {
        warn!("cannot close the metrics endpoint for the new main process: {error}");
    }
    let shared = main.shared.get().and_then(std::sync::Weak::upgrade);
    let grace = lock(&main.config).shutdown_grace_period;
    let on_serving = |id: u32| {
        if let Some(shared) = &shared {
            main.workers.hand_over_worker(shared, id, grace);
        }
    };
    match hand_over(main, &binary, on_serving) {
        Ok((pid, ready)) => {
            *lock(&main.handed_over_to) = Some(pid);
            name_successor(pid, ready);
            let generation = main.generation + 1;
            let text = format!(
                "upgraded to {}: main process {pid}, generation {generation}",
                binary.display()
            );
            info!("{text}; this main process retires");
            main.events.publish(upgrade_event(
                proto::EventKind::UpgradeFinished,
                text.clone(),
            ));
            ok(&text)
        }
        Err(error) => {
            let text = format!(
                "upgrade to {} failed, the running instance goes on: {error}",
                binary.display()
            );
            error!("{text}");
            if let Some(shared) = &shared {
                main.workers.take_back_workers(shared);
            }
            if let Err(error) = main.move_metrics_endpoint(metrics_address) {
                warn!("cannot reopen the metrics endpoint: {error}");
            }
            main.events
                .publish(upgrade_event(proto::EventKind::UpgradeFailed, text.clone()));
            failure(&text)
        }
    }
}

/// Tells the service manager that `pid` is the main process from now on, then tells that
/// process (on its `ready` socket) that it may say it is ready.
fn name_successor(pid: u32, mut ready: UnixStream) {
    crate::notify::main_pid(pid);
    if let Err(error) = ready.write_all(format!("{RETIRING}\n").as_bytes()) {
        warn!("cannot tell the new main process that this one retires: {error}");
    }
}

fn upgrade_event(kind: proto::EventKind, reason: String) -> proto::Event {
    proto::Event {
        kind: kind as i32,
        reason: Some(reason),
        ..Default::default()
    }
}

/// Starts `binary` with everything handed over and waits for its confirmation; returns its
/// pid and the socket it confirmed on. On any failure the new process is killed.
fn hand_over(
    main: &MainProcess,
    binary: &Path,
    on_serving: impl FnMut(u32),
) -> Result<(u32, UnixStream), UpgradeError> {
    let base = std::env::temp_dir().join(format!(
        "sluice-upgrade-{}-{}",
        std::process::id(),
        main.generation
    ));
    let state_path = base.with_extension("state");
    write_state(main, &state_path).map_err(|reason| UpgradeError::State {
        path: state_path.clone(),
        reason,
    })?;
    let keys_path = base.with_extension("ticket-keys");
    let keys_written = write_ticket_keys(main, &keys_path);
    let result = start_and_confirm(main, binary, &state_path, keys_written, on_serving);
    if let Err(error) = std::fs::remove_file(&state_path) {
        warn!("cannot remove {}: {error}", state_path.display());
    }
    // The new main deleted it once it read it; it is still there if it never got that far.
    match std::fs::remove_file(&keys_path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            warn!("cannot remove {}: {error}", keys_path.display());
        }
        _ => {}
    }
    result
}

/// Writes main's ticket keys to `path` for the new main; `None` (and a warning) if it
/// cannot: the new main then makes fresh ones, which is no reason to fail the upgrade.
fn write_ticket_keys<'a>(main: &MainProcess, path: &'a Path) -> Option<&'a Path> {
    let keys = lock(&main.ticket_keys);
    match handover_file::write(path, &keys, Instant::now()) {
        Ok(()) => Some(path),
        Err(error) => {
            warn!(
                "cannot write the TLS ticket keys to {}: {error}; the new main process \
                 makes fresh ones",
                path.display()
            );
            None
        }
    }
}

fn write_state(main: &MainProcess, path: &Path) -> Result<(), String> {
    let file = create_private(path).map_err(|e| e.to_string())?;
    let mut writer = std::io::BufWriter::new(file);
    lock(&main.state)
        .save(&mut writer)
        .map_err(|e| e.to_string())?;
    std::io::Write::flush(&mut writer).map_err(|e| e.to_string())
}

fn start_and_confirm(
    main: &MainProcess,
    binary: &Path,
    state_path: &Path,
    ticket_keys_path: Option<&Path>,
    on_serving: impl FnMut(u32),
) -> Result<(u32, UnixStream), UpgradeError> {
    let (mut ready, theirs) = UnixStream::pair()?;
    let mut child = {
        let sockets = lock(&main.workers.sockets);
        let listeners: Vec<(std::net::SocketAddr, RawFd, bool)> = sockets
            .all()
            .map(|(address, socket, listening)| (address, socket.as_raw_fd(), listening))
            .collect();
        let handover = Handover {
            generation: main.generation + 1,
            command_fd: main.command_fd.as_raw_fd(),
            ready_fd: theirs.as_raw_fd(),
            state_path: state_path.to_path_buf(),
            ticket_keys_path: ticket_keys_path.map(Path::to_path_buf),
            listeners,
        };
        let mut inherited = vec![handover.command_fd, handover.ready_fd];
        inherited.extend(handover.listeners.iter().map(|(_, fd, _)| *fd));
        let mut command = Command::new(binary);
        command.arg("start");
        if let Some(path) = &main.start_path {
            command.arg("-c").arg(path);
        }
        command
            .env(HANDOVER_ENV, handover.encode())
            .stdin(Stdio::null());
        sys::prepare_upgrade_command(&mut command, inherited);
        command.spawn().map_err(|source| UpgradeError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?
    };
    drop(theirs);
    let pid = child.id();
    info!("new main process {pid} started: waiting for its confirmation");
    match wait_for_confirmation(&mut child, &mut ready, on_serving) {
        Ok(()) => Ok((pid, ready)),
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(error)
        }
    }
}

/// Waits until the new main writes `ready`, exits, or [`CONFIRM_TIMEOUT`] passes, calling
/// `on_serving` for each of its workers that serves meanwhile.
fn wait_for_confirmation(
    child: &mut Child,
    ready: &mut UnixStream,
    mut on_serving: impl FnMut(u32),
) -> Result<(), UpgradeError> {
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    ready.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16];
    let mut closed = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(UpgradeError::Exited { status });
        }
        if Instant::now() >= deadline {
            return Err(UpgradeError::Timeout);
        }
        if closed {
            // Closed without a word: it is exiting, or will be killed at the deadline.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match ready.read(&mut buffer) {
            Ok(0) => closed = true,
            Ok(read) => {
                received.extend_from_slice(&buffer[..read]);
                while let Some(end) = received.iter().position(|&byte| byte == b'\n') {
                    let line: Vec<u8> = received.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line[..end]).into_owned();
                    match Progress::parse(&line) {
                        Some(Progress::Serving(id)) => on_serving(id),
                        Some(Progress::Ready) => return Ok(()),
                        None => warn!("new main process: unexpected {line:?}"),
                    }
                }
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
}
