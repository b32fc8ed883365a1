//! What an upgrading main process hands to the new one, and how the new one takes it.
//!
//! The old main starts the new binary (`sluice start [-c FILE]`) with these descriptors
//! inherited under their numbers, named by the environment variable [`HANDOVER_ENV`]:
//!
//! ```text
//! SLUICE_UPGRADE=generation=2;command=5;ready=6;state=/tmp/sluice-upgrade-41-1.state;
//!                ticket_keys=/tmp/sluice-upgrade-41-1.ticket-keys;
//!                listener=127.0.0.1:8080,7,listening;listener=[::1]:8443,8,bound
//! ```
//!
//! - `command`: the listening command socket (the file stays where it is);
//! - `listener`: each listening socket with its address and whether it listens;
//! - `state`: a state file (`state save` format, mode 0600) holding main's state, ctl
//!   changes included; the new main loads it instead of building the state from the file;
//! - `ticket_keys` (optional): a file (mode 0600) holding the TLS session ticket keys and
//!   the current one's age (format in `ticket_keys::handover_file`), so that tickets
//!   issued before the upgrade resume after it. The new main deletes it as soon as it has
//!   opened it. Without it, or if it cannot be read, the new main logs a warning and makes
//!   fresh keys: the upgrade goes on, clients make full handshakes once;
//! - `ready`: one end of a socket pair. The new main starts its workers one at a time and
//!   writes `serving N` once its worker N applied the state and serves: the old main then
//!   soft-stops its own worker N. It writes `ready` once every worker serves, and that is
//!   the old main's cue to retire. The old main then tells the service manager the new
//!   main's pid (`MAINPID=`, see `notify`) and writes `retiring` back: the new main says
//!   `READY=1` only after that (or once the socket closes, or after
//!   [`RETIRING_TIMEOUT`]), because with `NotifyAccess=main` systemd drops a message from
//!   a process that is not yet the service's main process;
//! - `generation`: the new main's generation (the old one's plus one), shown by `status`.
//!
//! The new main takes the variable out of its environment at once, so that its workers
//! and any later upgrade do not see it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{info, warn};
use sluice_command::state::ConfigState;
use socket2::Socket;

use super::ticket_keys::{handover_file, TicketKeys};
use crate::sys;

/// The environment variable that names the inherited descriptors.
pub(crate) const HANDOVER_ENV: &str = "SLUICE_UPGRADE";

/// The line the old main writes once it named the new main to the service manager.
pub(crate) const RETIRING: &str = "retiring";

/// How long the new main waits for [`RETIRING`] before it says `READY=1` anyway.
pub(crate) const RETIRING_TIMEOUT: Duration = Duration::from_secs(10);

/// The descriptors and files one main process hands to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handover {
    pub(crate) generation: u32,
    pub(crate) command_fd: RawFd,
    pub(crate) ready_fd: RawFd,
    pub(crate) state_path: PathBuf,
    /// The TLS ticket keys file, if the old main could write one.
    pub(crate) ticket_keys_path: Option<PathBuf>,
    /// Address, descriptor, listening.
    pub(crate) listeners: Vec<(SocketAddr, RawFd, bool)>,
}

/// Why the handover variable cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum HandoverError {
    /// A part is not `key=value`, or its value does not parse.
    #[error("{HANDOVER_ENV}: invalid part {0:?}")]
    Invalid(String),
    /// A required key is missing.
    #[error("{HANDOVER_ENV}: no {0}")]
    Missing(&'static str),
}

impl Handover {
    /// The variable's value (the file paths must not hold `;`).
    pub(crate) fn encode(&self) -> String {
        let mut parts = vec![
            format!("generation={}", self.generation),
            format!("command={}", self.command_fd),
            format!("ready={}", self.ready_fd),
            format!("state={}", self.state_path.display()),
        ];
        if let Some(path) = &self.ticket_keys_path {
            parts.push(format!("ticket_keys={}", path.display()));
        }
        for (address, fd, listening) in &self.listeners {
            let how = if *listening { "listening" } else { "bound" };
            parts.push(format!("listener={address},{fd},{how}"));
        }
        parts.join(";")
    }

    /// Reads the variable's value.
    pub(crate) fn decode(text: &str) -> Result<Handover, HandoverError> {
        let (mut generation, mut command_fd, mut ready_fd, mut state_path) =
            (None, None, None, None);
        let mut ticket_keys_path = None;
        let mut listeners = Vec::new();
        for part in text.split(';').filter(|part| !part.is_empty()) {
            let invalid = || HandoverError::Invalid(part.to_owned());
            let (key, value) = part.split_once('=').ok_or_else(invalid)?;
            match key {
                "generation" => generation = Some(value.parse().map_err(|_| invalid())?),
                "command" => command_fd = Some(value.parse().map_err(|_| invalid())?),
                "ready" => ready_fd = Some(value.parse().map_err(|_| invalid())?),
                "state" => state_path = Some(PathBuf::from(value)),
                "ticket_keys" => ticket_keys_path = Some(PathBuf::from(value)),
                "listener" => {
                    let mut fields = value.split(',');
                    let address = fields.next().and_then(|a| a.parse().ok());
                    let fd = fields.next().and_then(|fd| fd.parse().ok());
                    let listening = match fields.next() {
                        Some("listening") => Some(true),
                        Some("bound") => Some(false),
                        _ => None,
                    };
                    match (address, fd, listening, fields.next()) {
                        (Some(address), Some(fd), Some(listening), None) => {
                            listeners.push((address, fd, listening))
                        }
                        _ => return Err(invalid()),
                    }
                }
                _ => return Err(invalid()),
            }
        }
        Ok(Handover {
            generation: generation.ok_or(HandoverError::Missing("generation"))?,
            command_fd: command_fd.ok_or(HandoverError::Missing("command"))?,
            ready_fd: ready_fd.ok_or(HandoverError::Missing("ready"))?,
            state_path: state_path.ok_or(HandoverError::Missing("state"))?,
            ticket_keys_path,
            listeners,
        })
    }
}

/// What a new main process took over from the old one.
#[derive(Debug)]
pub(crate) struct Inherited {
    pub(crate) generation: u32,
    pub(crate) command: UnixListener,
    pub(crate) listeners: Vec<(SocketAddr, Socket, bool)>,
    pub(crate) state: ConfigState,
    /// The old main's TLS ticket keys, if they could be read.
    pub(crate) ticket_keys: Option<TicketKeys>,
    ready: UnixStream,
}

/// Creates a new file at `path` that only this user can read (mode 0600), replacing a
/// stale one; for what an upgrade hands over.
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    let _ = std::fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Takes over what the old main handed over, if this process was started by an upgrade.
pub(crate) fn take_from_env() -> anyhow::Result<Option<Inherited>> {
    let Some(text) = std::env::var_os(HANDOVER_ENV) else {
        return Ok(None);
    };
    std::env::remove_var(HANDOVER_ENV);
    let handover = Handover::decode(&text.to_string_lossy())?;
    let command = UnixListener::from(
        sys::inherited_fd(handover.command_fd).context("the inherited command socket")?,
    );
    let ready = UnixStream::from(
        sys::inherited_fd(handover.ready_fd).context("the inherited ready socket")?,
    );
    let mut listeners = Vec::new();
    for (address, fd, listening) in &handover.listeners {
        let socket = sys::inherited_fd(*fd)
            .with_context(|| format!("the inherited listening socket {address}"))?;
        listeners.push((*address, Socket::from(socket), *listening));
    }
    let file = std::fs::File::open(&handover.state_path)
        .with_context(|| format!("cannot open {}", handover.state_path.display()))?;
    let state = ConfigState::load(std::io::BufReader::new(file))
        .with_context(|| format!("invalid state in {}", handover.state_path.display()))?;
    let ticket_keys = take_ticket_keys(handover.ticket_keys_path.as_deref());
    info!(
        "taking over from the previous main process: generation {}, {} listening sockets",
        handover.generation,
        listeners.len()
    );
    Ok(Some(Inherited {
        generation: handover.generation,
        command,
        listeners,
        state,
        ticket_keys,
        ready,
    }))
}

/// The ticket keys handed over in the file at `path`, or `None` (with a warning).
fn take_ticket_keys(path: Option<&Path>) -> Option<TicketKeys> {
    let consequence = "new TLS ticket keys are made: sessions from before the upgrade \
                       are not resumed";
    let Some(path) = path else {
        warn!("no TLS ticket keys handed over; {consequence}");
        return None;
    };
    match handover_file::take(path, Instant::now()) {
        Ok(keys) => Some(keys),
        Err(error) => {
            warn!("{error}; {consequence}");
            None
        }
    }
}

impl Inherited {
    /// Tells the old main that worker `id` serves: it retires its own worker `id`.
    pub(crate) fn announce_serving(&mut self, id: usize) -> std::io::Result<()> {
        self.ready.write_all(format!("serving {id}\n").as_bytes())
    }

    /// Tells the old main that every worker serves: it retires from now on.
    pub(crate) fn confirm_ready(&mut self) -> std::io::Result<()> {
        self.ready.write_all(b"ready\n")
    }

    /// Waits (at most [`RETIRING_TIMEOUT`]) until the old main says it is retiring, or
    /// closes the socket: it has named this process to the service manager by then.
    pub(crate) fn wait_for_retiring(&mut self) {
        let mut line = String::new();
        let read = self
            .ready
            .set_read_timeout(Some(RETIRING_TIMEOUT))
            .and_then(|()| BufReader::new(&self.ready).read_line(&mut line));
        match read {
            Ok(_) if line.trim_end() == RETIRING || line.is_empty() => {}
            Ok(_) => warn!("previous main process: unexpected {line:?}"),
            Err(error) => warn!("previous main process did not say it retires: {error}"),
        }
    }
}

/// One line the new main writes on the ready socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Its worker of this id serves.
    Serving(u32),
    /// Every worker serves.
    Ready,
}

impl Progress {
    /// Reads one line (without its newline); `None` for anything else.
    pub(crate) fn parse(line: &str) -> Option<Progress> {
        match line.split_once(' ') {
            Some(("serving", id)) => id.parse().ok().map(Progress::Serving),
            None if line == "ready" => Some(Progress::Ready),
            _ => None,
        }
    }
}

/// This process is the main process now, in place of the one that started it (the one
/// that started it tells the service manager the new main pid, see `notify::main_pid`).
pub(crate) fn now_main_process(pid: u32, generation: u32) {
    info!("main process {pid} (generation {generation}) took over");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handover_reads_back_what_was_written() {
        let handover = Handover {
            generation: 3,
            command_fd: 5,
            ready_fd: 6,
            state_path: PathBuf::from("/tmp/sluice-upgrade-1-2.state"),
            ticket_keys_path: Some(PathBuf::from("/tmp/sluice-upgrade-1-2.ticket-keys")),
            listeners: vec![
                ("127.0.0.1:8080".parse().unwrap(), 7, true),
                ("[::1]:8443".parse().unwrap(), 8, false),
            ],
        };
        let text = handover.encode();
        assert!(
            text.contains(";ticket_keys=/tmp/sluice-upgrade-1-2.ticket-keys;"),
            "{text}"
        );
        assert_eq!(Handover::decode(&text), Ok(handover));
    }

    #[test]
    fn a_handover_without_ticket_keys_is_read_as_such() {
        let handover = Handover::decode("generation=2;command=5;ready=6;state=/x").expect("valid");
        assert_eq!(handover.ticket_keys_path, None);
        assert!(!handover.encode().contains("ticket_keys"));
    }

    #[test]
    fn missing_or_broken_ticket_keys_give_fresh_keys_not_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(take_ticket_keys(None).is_none());
        assert!(take_ticket_keys(Some(&dir.path().join("missing"))).is_none());
        let broken = dir.path().join("broken");
        std::fs::write(&broken, "not keys\n").expect("write");
        assert!(take_ticket_keys(Some(&broken)).is_none());
        assert!(!broken.exists(), "a file taken is deleted, read or not");
    }

    fn inherited_with(ready: UnixStream) -> (Inherited, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let command = UnixListener::bind(dir.path().join("command.sock")).expect("bind");
        let inherited = Inherited {
            generation: 2,
            command,
            listeners: Vec::new(),
            state: ConfigState::default(),
            ticket_keys: None,
            ready,
        };
        (inherited, dir)
    }

    #[test]
    fn the_new_main_waits_until_the_old_one_retires_or_goes() {
        let bound = RETIRING_TIMEOUT / 2;
        let (ours, mut theirs) = UnixStream::pair().expect("a pair");
        let (mut inherited, _dir) = inherited_with(ours);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            theirs.write_all(b"retiring\n").expect("written");
            theirs
        });
        let started = Instant::now();
        inherited.wait_for_retiring();
        assert!(started.elapsed() < bound);
        drop(writer.join().expect("writer"));

        let (ours, theirs) = UnixStream::pair().expect("a pair");
        let (mut inherited, _dir) = inherited_with(ours);
        drop(theirs);
        let started = Instant::now();
        inherited.wait_for_retiring();
        assert!(started.elapsed() < bound);
    }

    #[test]
    fn progress_lines_parse() {
        assert_eq!(Progress::parse("serving 3"), Some(Progress::Serving(3)));
        assert_eq!(Progress::parse("ready"), Some(Progress::Ready));
        assert_eq!(Progress::parse("serving x"), None);
        assert_eq!(Progress::parse("readyy"), None);
    }

    #[test]
    fn a_broken_handover_says_which_part() {
        assert_eq!(
            Handover::decode("generation=2;command=5;ready=6"),
            Err(HandoverError::Missing("state"))
        );
        assert_eq!(
            Handover::decode("generation=2;command=5;ready=6;state=/x;listener=1.2.3.4:5,7"),
            Err(HandoverError::Invalid("listener=1.2.3.4:5,7".to_owned()))
        );
        assert_eq!(
            Handover::decode("generation=two"),
            Err(HandoverError::Invalid("generation=two".to_owned()))
        );
    }
}
