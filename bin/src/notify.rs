//! systemd's readiness protocol (`sd_notify(3)`), for a unit of `Type=notify`.
//!
//! The service manager passes the path of a Unix datagram socket in
//! `NOTIFY_SOCKET` (a file path, or `@name` for a socket in the abstract
//! namespace); the service sends it newline-separated `KEY=VALUE` lines. Nothing
//! is sent when the variable is unset, so a main process started by hand or by a
//! test behaves as before. A message that cannot be sent is logged and
//! otherwise ignored: the proxy serves whatever the service manager hears.
//!
//! What the main process says, and when:
//! - `READY=1` once every worker was replayed the initial state and serves, the
//!   command socket answers and the signals are handled ([`ready`]);
//! - `RELOADING=1` with `MONOTONIC_USEC=` when a reload starts (by `ctl reload`
//!   or SIGHUP), then `READY=1` when it is over, applied or refused
//!   ([`reloading`], [`ready`]); systemd ≥ 253 needs the timestamp for
//!   `Type=notify-reload`, and `Type=notify` accepts it;
//! - `STOPPING=1` as soon as a stop is asked for ([`stopping`]);
//! - `MAINPID=` after an upgrade, sent by the old main for the new one, so that
//!   systemd follows it ([`main_pid`]; `NotifyAccess=main` accepts it only from
//!   the current main); the new main says `READY=1` only once the old one has
//!   sent it (`main_process::handover`), so that systemd does not drop it;
//! - `STATUS=` with each of them, shown by `systemctl status`.
//!
//! No watchdog: the main process has no loop whose progress a `WATCHDOG=1` would
//! witness (its threads wait on workers, clients and signals), and workers that
//! die or stop answering are already respawned by their supervisors.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use log::{debug, warn};

/// The variable that names the service manager's socket.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Why a `NOTIFY_SOCKET` value cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    /// Neither an absolute path nor `@name`.
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor @name")]
    UnsupportedAddress(String),
    /// The address is too long or contains a NUL byte.
    #[error("NOTIFY_SOCKET={value:?} is not a valid socket address: {source}")]
    InvalidAddress {
        /// The variable's value.
        value: String,
        /// What the socket address constructor said.
        source: io::Error,
    },
    /// The datagram could not be sent.
    #[error("cannot send to NOTIFY_SOCKET: {0}")]
    Send(#[from] io::Error),
}

/// Tells the service manager that the main process serves: every worker runs
/// the current state. `status` is shown by `systemctl status`.
pub(crate) fn ready(status: &str) {
    send_logged(&format!("READY=1\nSTATUS={}\n", one_line(status)));
}

/// Tells the service manager that a reload started; [`ready`] ends it.
pub(crate) fn reloading() {
    let now = crate::sys::monotonic_usec();
    send_logged(&format!(
        "RELOADING=1\nMONOTONIC_USEC={now}\nSTATUS=reloading the configuration\n"
    ));
}

/// Tells the service manager that the main process is stopping.
pub(crate) fn stopping() {
    send_logged("STOPPING=1\nSTATUS=stopping\n");
}

/// Tells the service manager that `pid` is the service's main process from now
/// on. The current main sends it after an upgrade, once the new main confirmed
/// it is ready and before the old one exits.
pub(crate) fn main_pid(pid: u32) {
    send_logged(&main_pid_message(pid));
}

fn main_pid_message(pid: u32) -> String {
    format!("MAINPID={pid}\n")
}

/// `text` on one line: a newline would start another assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Sends `message` if `NOTIFY_SOCKET` is set; logs a failure.
fn send_logged(message: &str) {
    let Some(value) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    match send(&value, message) {
        Ok(()) => debug!("notified the service manager: {}", message.trim_end()),
        Err(error) => warn!("{error}"),
    }
}

/// Sends `message` as one datagram to the socket that `notify_socket` names.
fn send(notify_socket: &OsStr, message: &str) -> Result<(), NotifyError> {
    let address = socket_address(notify_socket)?;
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(message.as_bytes(), &address)?;
    Ok(())
}

/// The address a `NOTIFY_SOCKET` value names: `/path` or `@abstract-name`.
fn socket_address(value: &OsStr) -> Result<SocketAddr, NotifyError> {
    let bytes = value.as_bytes();
    let invalid = |source| NotifyError::InvalidAddress {
        value: value.to_string_lossy().into_owned(),
        source,
    };
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(value).map_err(invalid),
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]).map_err(invalid),
        _ => Err(NotifyError::UnsupportedAddress(
            value.to_string_lossy().into_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 512];
        let length = socket.recv(&mut buffer).expect("a datagram");
        String::from_utf8(buffer[..length].to_vec()).expect("utf-8")
    }

    #[test]
    fn a_path_and_an_abstract_name_are_addresses() {
        let path = socket_address(OsStr::new("/run/systemd/notify")).expect("a path");
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let name = socket_address(OsStr::new("@sluice/notify")).expect("an abstract name");
        assert_eq!(name.as_abstract_name(), Some(&b"sluice/notify"[..]));
    }

    #[test]
    fn a_relative_path_or_an_empty_value_is_refused() {
        for value in ["", "notify.sock", "./notify.sock"] {
            assert!(
                matches!(
                    socket_address(OsStr::new(value)),
                    Err(NotifyError::UnsupportedAddress(_))
                ),
                "{value:?}"
            );
        }
        let too_long = format!("/{}", "x".repeat(200));
        assert!(matches!(
            socket_address(OsStr::new(&too_long)),
            Err(NotifyError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn a_message_reaches_a_socket_by_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind");
        send(path.as_os_str(), "READY=1\n").expect("sent");
        assert_eq!(receive(&socket), "READY=1\n");
    }

    #[test]
    fn a_message_reaches_a_socket_in_the_abstract_namespace() {
        let name = format!("sluice-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("a name");
        let socket = UnixDatagram::bind_addr(&address).expect("bind");
        send(OsStr::new(&format!("@{name}")), "STOPPING=1\n").expect("sent");
        assert_eq!(receive(&socket), "STOPPING=1\n");
    }

    #[test]
    fn sending_to_a_missing_socket_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nobody.sock");
        assert!(matches!(
            send(path.as_os_str(), "READY=1\n"),
            Err(NotifyError::Send(_))
        ));
    }

    #[test]
    fn main_pid_names_the_new_main_process() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind");
        send(path.as_os_str(), &main_pid_message(4242)).expect("sent");
        assert_eq!(receive(&socket), "MAINPID=4242\n");
    }

    #[test]
    fn a_status_stays_on_one_line() {
        assert_eq!(
            one_line("reload refused:\nbad key"),
            "reload refused: bad key"
        );
    }
}
