//! `sluice ctl upgrade`: a new binary takes over the command socket, the listening sockets
//! and the state under load without a failed request; a binary that fails or never
//! confirms leaves the running instance serving.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::classified_load::{ClassifiedLoad, Record, Style};
use common::http::{get, http_config, mock, served_by, Route};
use common::upgrade::{status, Successor};
use common::{process_alive, sluice_bin, wait_until, EventStream, Sluice};
use sluice_e2e::{free_addr, MockHttpServer};

fn executable(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn saved_state(sluice: &Sluice, name: &str) -> String {
    let path = sluice.dir.path().join(name);
    sluice.ctl_ok(&["state", "save", "-f", &path.to_string_lossy()]);
    std::fs::read_to_string(path).expect("read the saved state")
}

struct Setup {
    sluice: Sluice,
    listener: std::net::SocketAddr,
    _backends: [MockHttpServer; 2],
}

fn start_two_routes() -> Setup {
    let one = mock("one");
    let two = mock("two");
    let listener = free_addr();
    let routes = [
        Route::new("one", "one.test", &[one.addr()]),
        Route::new("two", "two.test", &[two.addr()]),
    ];
    let sluice = Sluice::start(&http_config(2, listener, &routes));
    Setup {
        sluice,
        listener,
        _backends: [one, two],
    }
}

const LOAD: [Style; 4] = [
    Style::KeepAlive,
    Style::Close,
    Style::KeepAlive,
    Style::Close,
];

fn assert_no_failure(failures: &[Record], log: &str) {
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}\n{log}",
        failures.len()
    );
}

#[test]
fn an_upgrade_under_load_to_a_copy_of_the_binary_fails_no_request() {
    let mut setup = start_two_routes();
    let listener = setup.listener;
    let sluice = &setup.sluice;
    let events = EventStream::subscribe(sluice);
    events.wait_subscribed(sluice);
    // A ctl change the file does not hold: the new main must get the state, not the file.
    sluice.ctl_ok(&["cluster", "add", "--id", "extra", "--lb", "random"]);
    let before = saved_state(sluice, "before.state");
    assert!(before.contains("extra"));
    let (old_main, old_generation, old_workers) = status(sluice);
    assert_eq!(old_generation, 1);

    let copies = tempfile::tempdir().expect("temp dir");
    let copy = copies.path().join("sluice-copy");
    std::fs::copy(sluice_bin(), &copy).expect("copy the binary");
    let load = ClassifiedLoad::start(listener, "one.test", "one", &LOAD);
    load.wait_for_more(50);

    let answer = sluice.ctl_ok(&["upgrade", "--binary", &copy.to_string_lossy()]);
    assert!(answer.contains("generation 2"), "{answer}");
    events.wait_for("UPGRADE_STARTED", Duration::from_secs(10), || {});
    events.wait_for("UPGRADE_FINISHED", Duration::from_secs(10), || {});
    let exit = setup.sluice.wait_exit(Duration::from_secs(20));
    assert!(exit.success(), "the old main exited with {exit}");
    let sluice = &setup.sluice;
    let (new_main, generation, new_workers) = status(sluice);
    let _successor = Successor(new_main as u32);
    assert_ne!(new_main, old_main);
    assert_eq!(generation, 2);
    assert_eq!(new_workers.len(), 2);
    assert!(
        new_workers.iter().all(|pid| !old_workers.contains(pid)),
        "{old_workers:?} {new_workers:?}"
    );

    load.wait_for_more(100);
    let reconnects = load.reconnects();
    let (served, failures) = load.stop();
    println!(
        "served {served}, failed {}, keep-alive connections reopened at a request boundary {}",
        failures.len(),
        reconnects
    );
    assert_no_failure(&failures, &sluice.log());
    assert_eq!(saved_state(sluice, "after.state"), before);
    for (host, backend) in [("one.test", "one"), ("two.test", "two")] {
        let response = get(listener, host);
        assert!(
            matches!(&response, Ok(r) if served_by(r, backend)),
            "{host}: {response:?}"
        );
    }
    wait_until("the old workers to finish", Duration::from_secs(35), || {
        old_workers.iter().all(|&pid| !process_alive(pid as u32))
    });
    assert!(!process_alive(old_main as u32));

    // Subscribers reconnect on the same path; the new main upgrades again.
    let again = EventStream::subscribe(sluice);
    again.wait_subscribed(sluice);
    // (waiting for the subscription reloaded the file, which took the ctl change back)
    let before = saved_state(sluice, "reloaded.state");
    let answer = sluice.ctl_ok(&["upgrade"]);
    assert!(answer.contains("generation 3"), "{answer}");
    again.wait_for("UPGRADE_FINISHED", Duration::from_secs(10), || {});
    wait_until("the second main to exit", Duration::from_secs(20), || {
        !process_alive(new_main as u32)
    });
    let (third_main, generation, _) = status(sluice);
    let _third = Successor(third_main as u32);
    assert_eq!(generation, 3);
    assert_eq!(saved_state(sluice, "third.state"), before);
}

#[test]
fn an_upgrade_to_a_binary_that_exits_or_never_confirms_leaves_the_instance_serving() {
    let setup = start_two_routes();
    let sluice = &setup.sluice;
    let events = EventStream::subscribe(sluice);
    events.wait_subscribed(sluice);
    let before = status(sluice);
    let state = saved_state(sluice, "before.state");
    let scripts = tempfile::tempdir().expect("temp dir");
    let exits = executable(scripts.path(), "exits", b"#!/bin/sh\nexit 3\n");
    let hangs = executable(scripts.path(), "hangs", b"#!/bin/sh\nexec sleep 60\n");
    let missing = scripts.path().join("missing");
    let load = ClassifiedLoad::start(setup.listener, "two.test", "two", &LOAD);
    load.wait_for_more(50);

    for (binary, reason) in [
        (&exits, "exited (exit status: 3)"),
        (&hangs, "did not confirm within 10s"),
        (&missing, "cannot start"),
    ] {
        let output = sluice.ctl(&["upgrade", "--binary", &binary.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{binary:?}: {stderr}");
        assert!(
            stderr.contains(reason) && stderr.contains("the running instance goes on"),
            "{binary:?}: {stderr}"
        );
        events.wait_for("UPGRADE_FAILED", Duration::from_secs(10), || {});
        events.clear();
        load.wait_for_more(20);
    }
    let (served, failures) = load.stop();
    println!("served {served}, failed {}", failures.len());
    assert_no_failure(&failures, &sluice.log());
    assert_eq!(status(sluice), before);
    assert_eq!(saved_state(sluice, "after.state"), state);
}
