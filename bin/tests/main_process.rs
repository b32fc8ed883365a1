//! The main process and `sluice ctl` as real processes: startup, ctl changes,
//! refused input, supervision with state replay, state save/load, signals and events.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{
    config_with_tcp_listeners, free_port, round_trip, wait_until, EchoBackend, EventStream, Sluice,
};

fn listener_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A TCP cluster `echo` routing `listener` to `backend`, added through ctl.
fn add_echo_route(sluice: &Sluice, listener: &str, backend: &str) {
    sluice.ctl_ok(&["cluster", "add", "--id", "echo", "--protocol", "tcp"]);
    sluice.ctl_ok(&["backend", "add", "--cluster", "echo", "--address", backend]);
    sluice.ctl_ok(&[
        "frontend",
        "tcp",
        "add",
        "--listener",
        listener,
        "--cluster",
        "echo",
    ]);
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn status_lists_both_workers_with_their_pids() {
    let sluice = Sluice::start(&config_with_tcp_listeners(2, &[listener_address()]));
    let workers = sluice.workers();
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert_eq!(workers.iter().map(|w| w.0).collect::<Vec<_>>(), vec![0, 1]);
    assert!(workers.iter().all(|w| w.1 != 0 && w.2 == 0), "{workers:?}");
    let table = sluice.ctl_ok(&["status"]);
    let first_line = format!("main pid {}, generation 1\n", sluice.pid());
    assert!(table.starts_with(&first_line), "{table}");
    assert!(table[first_line.len()..].starts_with("WORKER"), "{table}");
    for (_, pid, _) in &workers {
        assert!(table.contains(&pid.to_string()), "{table}");
    }
    assert!(sluice.log().contains("worker 1 ready"), "{}", sluice.log());
}

#[test]
fn ctl_changes_appear_in_cluster_list() {
    let listener = listener_address();
    let sluice = Sluice::start(&config_with_tcp_listeners(
        2,
        std::slice::from_ref(&listener),
    ));
    add_echo_route(&sluice, &listener, "127.0.0.1:9");
    let table = sluice.ctl_ok(&["cluster", "list"]);
    assert!(table.contains("echo"), "{table}");
    assert!(table.contains("127.0.0.1:9"), "{table}");
    assert!(table.contains(&listener), "{table}");
    let frontends = sluice.ctl_ok(&["frontend", "list"]);
    assert!(
        frontends.contains(&listener) && frontends.contains("echo"),
        "{frontends}"
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let listener = listener_address();
    let sluice = Sluice::start(&config_with_tcp_listeners(
        2,
        std::slice::from_ref(&listener),
    ));
    sluice.ctl_ok(&["cluster", "add", "--id", "echo", "--protocol", "tcp"]);
    let before = sluice.ctl_json(&["cluster", "list"]);
    let bad_reload = sluice.dir.path().join("broken.toml");
    std::fs::write(&bad_reload, "worker_count = = 2\n").expect("write broken config");
    let bad_reload = bad_reload.to_string_lossy().into_owned();
    let attempts: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "backend",
                "add",
                "--cluster",
                "nope",
                "--address",
                "127.0.0.1:9",
            ],
            "nope",
        ),
        (
            vec![
                "backend",
                "add",
                "--cluster",
                "echo",
                "--address",
                "not-an-address",
            ],
            "invalid address",
        ),
        (
            vec![
                "listener",
                "add",
                "--protocol",
                "tcp",
                "--address",
                &listener,
            ],
            &listener,
        ),
        (
            vec![
                "frontend",
                "tcp",
                "add",
                "--listener",
                &listener,
                "--cluster",
                "missing",
            ],
            "missing",
        ),
        (vec!["reload", "-c", &bad_reload], "broken.toml"),
        (vec!["cluster", "show", "ghost"], "ghost"),
    ];
    for (args, expected) in attempts {
        let output = sluice.ctl(&args);
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one-line reason expected, got {stderr}"
        );
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(sluice.ctl_json(&["cluster", "list"]), before);
}

#[test]
fn a_missing_socket_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(common::sluice_bin())
        .args(["ctl", "status"])
        .current_dir(dir.path())
        .output()
        .expect("run ctl");
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("sluice.sock") && stderr.contains("sluice start"),
        "{stderr}"
    );
}

#[test]
fn a_killed_worker_comes_back_with_the_state() {
    let listener = listener_address();
    let sluice = Sluice::start(&config_with_tcp_listeners(
        2,
        std::slice::from_ref(&listener),
    ));
    let echo = EchoBackend::start();
    add_echo_route(&sluice, &listener, &echo.address);
    let before = sluice.workers();
    let victim = before[1].1;
    common::send_signal("KILL", victim as u32);
    wait_until("worker 1 respawned", Duration::from_secs(10), || {
        sluice
            .workers()
            .get(1)
            .is_some_and(|w| w.1 != victim && w.1 != 0 && w.2 == 1)
    });
    assert_eq!(sluice.workers()[0], before[0], "worker 0 must be untouched");
    // Connections spread over both workers: every one must find the replayed route.
    for round in 0..20u8 {
        let payload = [b'a' + round % 26; 64];
        let echoed = round_trip(&listener, &payload)
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", sluice.log()));
        assert_eq!(echoed, payload);
    }
}

#[test]
fn a_saved_state_loads_into_a_fresh_instance() {
    let listener = listener_address();
    let first = Sluice::start(&config_with_tcp_listeners(
        1,
        std::slice::from_ref(&listener),
    ));
    add_echo_route(&first, &listener, "127.0.0.1:9");
    first.ctl_ok(&[
        "cluster", "add", "--id", "web", "--lb", "random", "--sticky",
    ]);
    // Outlives the first instance, whose folder goes with it.
    let kept = tempfile::tempdir().expect("temp dir");
    let saved = kept.path().join("saved.state");
    first.ctl_ok(&["state", "save", "-f", &saved.to_string_lossy()]);
    let expected = first.ctl_json(&["cluster", "list"]);
    drop(first);

    let second = Sluice::start(&config_with_tcp_listeners(
        1,
        std::slice::from_ref(&listener),
    ));
    let loaded = second.ctl_ok(&["state", "load", "-f", &saved.to_string_lossy()]);
    assert!(loaded.contains("added"), "{loaded}");
    assert_eq!(second.ctl_json(&["cluster", "list"]), expected);
}

#[test]
fn sigterm_exits_zero() {
    let mut sluice = Sluice::start(&config_with_tcp_listeners(2, &[listener_address()]));
    sluice.signal("TERM");
    let status = sluice.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", sluice.log());
    assert!(
        !sluice.socket.exists(),
        "the command socket must be removed"
    );
}

#[test]
fn ctl_shutdown_hard_exits_at_once() {
    let mut sluice = Sluice::start(&config_with_tcp_listeners(1, &[listener_address()]));
    sluice.ctl_ok(&["shutdown", "--hard"]);
    let status = sluice.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", sluice.log());
}

#[test]
fn events_report_a_stopped_backend() {
    let listener = listener_address();
    let sluice = Sluice::start(&config_with_tcp_listeners(
        1,
        std::slice::from_ref(&listener),
    ));
    let mut echo = EchoBackend::start();
    add_echo_route(&sluice, &listener, &echo.address);
    assert_eq!(
        round_trip(&listener, b"ping").expect("route works"),
        b"ping"
    );
    let events = EventStream::subscribe(&sluice);
    // A second subscriber that leaves at once must not disturb the first.
    drop(EventStream::subscribe(&sluice));
    echo.stop();
    let keep_connecting = || {
        let _ = round_trip(&listener, b"ping");
    };
    let down = events.wait_for("BACKEND_DOWN", Duration::from_secs(30), keep_connecting);
    assert!(down.contains("cluster=echo"), "{down}");
    events.wait_for(
        "NO_AVAILABLE_BACKENDS",
        Duration::from_secs(30),
        keep_connecting,
    );
}

#[test]
fn an_invalid_config_starts_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "worker_count = \"many\"\n").expect("write config");
    let output = Command::new(common::sluice_bin())
        .args(["start", "-c"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .expect("run start");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("worker_count"),
        "{}",
        stderr_of(&output)
    );
    assert!(!dir.path().join("sluice.sock").exists());
}

#[test]
fn a_second_instance_on_the_same_socket_is_refused() {
    let sluice = Sluice::start(&config_with_tcp_listeners(1, &[listener_address()]));
    let config = sluice.dir.path().join("second.toml");
    std::fs::write(&config, config_with_tcp_listeners(1, &[listener_address()]))
        .expect("write config");
    let output = Command::new(common::sluice_bin())
        .args(["start", "-c"])
        .arg(&config)
        .current_dir(sluice.dir.path())
        .output()
        .expect("run start");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("another Sluice"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        sluice.ctl(&["status"]).status.success(),
        "the first instance must go on"
    );
}

#[test]
fn an_unbindable_listener_fails_the_start_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        config_with_tcp_listeners(1, std::slice::from_ref(&address)),
    )
    .expect("write config");
    let output = Command::new(common::sluice_bin())
        .args(["start", "-c"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .expect("run start");
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains(&address),
        "{}",
        stderr_of(&output)
    );
}
