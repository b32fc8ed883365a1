//! systemd's notify protocol: the test binds the datagram socket that systemd
//! would, passes it as `NOTIFY_SOCKET` and checks what the main process says,
//! in order: `READY=1` once it serves, `RELOADING=1` … `READY=1` around each
//! reload (applied or refused, by `ctl reload` or SIGHUP), `STOPPING=1` on stop; after
//! `ctl upgrade`, `MAINPID=` of the new main sent by the old one, then `READY=1` from the
//! new one (each checked against the sender's pid, as systemd's `NotifyAccess=main` does).

mod common;

use std::ffi::OsStr;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use common::http::{get, http_config, mock, served_by, Route};
use common::upgrade::upgrade_in_place;
use common::{process_alive, wait_until, Sluice};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use sluice_e2e::free_addr;

/// Longest wait for one notification on a loaded machine.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(20);

/// The next datagram, as its `KEY=VALUE` lines; panics after [`NOTIFY_TIMEOUT`].
fn next_message(socket: &UnixDatagram, sluice: &Sluice) -> Vec<String> {
    socket
        .set_read_timeout(Some(NOTIFY_TIMEOUT))
        .expect("read timeout");
    let mut buffer = [0u8; 4096];
    let length = match socket.recv(&mut buffer) {
        Ok(length) => length,
        Err(error) => panic!(
            "no notification within {NOTIFY_TIMEOUT:?}: {error}\n{}",
            sluice.log()
        ),
    };
    let text = std::str::from_utf8(&buffer[..length]).expect("utf-8 notification");
    assert!(text.ends_with('\n'), "{text:?} must end with a newline");
    text.lines().map(str::to_owned).collect()
}

/// No message waits on `socket` after `STOPPING=1`.
fn assert_nothing_after_stopping(socket: &UnixDatagram) {
    socket
        .set_nonblocking(true)
        .expect("non-blocking notify socket");
    let mut buffer = [0u8; 4096];
    let after = socket.recv(&mut buffer).map(|n| buffer[..n].to_vec());
    assert!(
        after.is_err(),
        "nothing may follow STOPPING=1: {:?}",
        after.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
}

/// Asserts that `message` starts with `first` and returns its `STATUS=` value.
fn expect_first(message: &[String], first: &str, sluice: &Sluice) -> String {
    assert_eq!(
        message.first().map(String::as_str),
        Some(first),
        "{message:?}\n{}",
        sluice.log()
    );
    message
        .iter()
        .find_map(|line| line.strip_prefix("STATUS="))
        .unwrap_or_default()
        .to_owned()
}

/// Asserts that `message` is a reload start with a monotonic timestamp.
fn expect_reloading(message: &[String], sluice: &Sluice) {
    expect_first(message, "RELOADING=1", sluice);
    let usec = message
        .iter()
        .find_map(|line| line.strip_prefix("MONOTONIC_USEC="))
        .and_then(|value| value.parse::<u64>().ok());
    assert!(
        usec.is_some_and(|usec| usec > 0),
        "RELOADING=1 needs MONOTONIC_USEC: {message:?}"
    );
}

#[test]
fn ready_reloading_and_stopping_arrive_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let backend = mock("notified");
    let listener = free_addr();
    let route = Route::new("web", "web.test", &[backend.addr()]);
    let config = http_config(2, listener, std::slice::from_ref(&route));
    let mut sluice = Sluice::start_with_env(&config, &[("NOTIFY_SOCKET", socket_path.as_os_str())]);

    let ready = next_message(&socket, &sluice);
    let status = expect_first(&ready, "READY=1", &sluice);
    assert_eq!(status, "serving with 2 workers");
    // Once READY=1 is sent, every worker serves the initial state: no retry needed.
    for attempt in 0..8 {
        let response = get(listener, "web.test");
        assert!(
            matches!(&response, Ok(r) if served_by(r, "notified")),
            "request {attempt} after READY=1: {response:?}\n{}",
            sluice.log()
        );
    }

    // A refused file: the reload still ends with READY=1, and the status says so.
    std::fs::write(sluice.config_path(), "worker_count = \"two\"\n").expect("rewrite");
    assert!(!sluice.ctl(&["reload"]).status.success());
    expect_reloading(&next_message(&socket, &sluice), &sluice);
    let status = expect_first(&next_message(&socket, &sluice), "READY=1", &sluice);
    assert!(status.contains("refused"), "{status}");

    // An applied reload by ctl, then by SIGHUP.
    std::fs::write(sluice.config_path(), &config).expect("rewrite");
    sluice.ctl_ok(&["reload"]);
    expect_reloading(&next_message(&socket, &sluice), &sluice);
    let status = expect_first(&next_message(&socket, &sluice), "READY=1", &sluice);
    assert_eq!(status, "serving with 2 workers");
    sluice.signal("HUP");
    expect_reloading(&next_message(&socket, &sluice), &sluice);
    expect_first(&next_message(&socket, &sluice), "READY=1", &sluice);

    sluice.ctl_ok(&["shutdown"]);
    expect_first(&next_message(&socket, &sluice), "STOPPING=1", &sluice);
    let exit = sluice.wait_exit(Duration::from_secs(20));
    assert_eq!(exit.code(), Some(0), "{}", sluice.log());
    assert_nothing_after_stopping(&socket);
}

#[test]
fn an_abstract_notify_socket_gets_ready_and_stopping() {
    let name = format!("sluice-e2e-notify-{}", std::process::id());
    let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
    let socket = UnixDatagram::bind_addr(&address).expect("bind the notify socket");
    let listener = free_addr();
    let config = http_config(1, listener, &[]);
    let value = format!("@{name}");
    let mut sluice = Sluice::start_with_env(&config, &[("NOTIFY_SOCKET", OsStr::new(&value))]);
    expect_first(&next_message(&socket, &sluice), "READY=1", &sluice);
    sluice.signal("TERM");
    expect_first(&next_message(&socket, &sluice), "STOPPING=1", &sluice);
    assert_eq!(
        sluice.wait_exit(Duration::from_secs(20)).code(),
        Some(0),
        "{}",
        sluice.log()
    );
}

/// The next datagram, as its lines, and the pid of the process that sent it (the socket
/// must pass credentials); panics after [`NOTIFY_TIMEOUT`].
fn next_message_from(socket: &UnixDatagram, sluice: &Sluice) -> (Vec<String>, u32) {
    socket
        .set_read_timeout(Some(NOTIFY_TIMEOUT))
        .expect("read timeout");
    let mut buffer = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut buffer)],
        &mut control,
        RecvFlags::empty(),
    );
    let length = match received {
        Ok(received) => received.bytes,
        Err(error) => panic!(
            "no notification within {NOTIFY_TIMEOUT:?}: {error}\n{}",
            sluice.log()
        ),
    };
    let sender = control
        .drain()
        .find_map(|message| match message {
            RecvAncillaryMessage::ScmCredentials(credentials) => {
                Some(credentials.pid.as_raw_nonzero().get().unsigned_abs())
            }
            _ => None,
        })
        .expect("the sender's credentials");
    let text = std::str::from_utf8(&buffer[..length]).expect("utf-8 notification");
    assert!(text.ends_with('\n'), "{text:?} must end with a newline");
    (text.lines().map(str::to_owned).collect(), sender)
}

#[test]
fn an_upgrade_names_the_new_main_before_the_new_main_says_ready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    rustix::net::sockopt::set_socket_passcred(&socket, true).expect("SO_PASSCRED");
    let backend = mock("notified");
    let listener = free_addr();
    let route = Route::new("web", "web.test", &[backend.addr()]);
    let config = http_config(2, listener, std::slice::from_ref(&route));
    let mut sluice = Sluice::start_with_env(&config, &[("NOTIFY_SOCKET", socket_path.as_os_str())]);
    let old_main = sluice.pid();
    let (ready, sender) = next_message_from(&socket, &sluice);
    expect_first(&ready, "READY=1", &sluice);
    assert_eq!(sender, old_main);

    let upgraded = upgrade_in_place(&mut sluice);
    let new_main = upgraded.successor.0;
    // systemd takes MAINPID= only from the main process it knows, the old one; then it
    // takes messages from the new one only.
    let (named, sender) = next_message_from(&socket, &sluice);
    assert_eq!(
        named,
        vec![format!("MAINPID={new_main}")],
        "{}",
        sluice.log()
    );
    assert_eq!(sender, old_main, "MAINPID= must come from the old main");
    let (ready, sender) = next_message_from(&socket, &sluice);
    let status = expect_first(&ready, "READY=1", &sluice);
    assert_eq!(status, "serving with 2 workers");
    assert_eq!(sender, new_main, "READY=1 must come from the new main");
    let response = get(listener, "web.test");
    assert!(
        matches!(&response, Ok(r) if served_by(r, "notified")),
        "after the upgrade: {response:?}\n{}",
        sluice.log()
    );

    sluice.ctl_ok(&["shutdown"]);
    let (stopping, sender) = next_message_from(&socket, &sluice);
    expect_first(&stopping, "STOPPING=1", &sluice);
    assert_eq!(sender, new_main);
    wait_until("the new main to exit", NOTIFY_TIMEOUT, || {
        !process_alive(new_main)
    });
    assert_nothing_after_stopping(&socket);
}
