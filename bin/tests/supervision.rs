//! Worker supervision as an operator sees it: a worker killed under load, and
//! a change that main accepts but the workers cannot apply.

mod common;

use std::time::{Duration, Instant};

use common::http::{get, http_config, mock, served_by, Load, Mode, Route};
use common::{EventStream, Sluice};
use sluice_e2e::{free_addr, HttpConn};

/// Held connections after the respawn: all of them landing on one worker has
/// a probability of 2^-(HELD-1).
const HELD: usize = 16;

fn sessions_per_worker(sluice: &Sluice) -> Vec<u64> {
    let status = sluice.ctl_json(&["status"]);
    status["workers"]
        .as_array()
        .expect("a worker list")
        .iter()
        .map(|w| w["sessions"].as_u64().unwrap_or(0))
        .collect()
}

#[test]
fn a_worker_killed_under_load_is_back_within_a_second_with_every_route() {
    let one = mock("one");
    let two = mock("two");
    let listener = free_addr();
    let routes = [
        Route::new("one", "one.test", &[one.addr()]),
        Route::new("two", "two.test", &[two.addr()]),
    ];
    let sluice = Sluice::start(&http_config(2, listener, &routes));
    let events = EventStream::subscribe(&sluice);
    events.wait_subscribed(&sluice);
    let modes = [Mode::NewConnections, Mode::KeepAlive, Mode::NewConnections];
    let load = Load::start(listener, "one.test", "one", &modes);
    load.wait_for_more(20);

    let victim = sluice.workers()[1].1;
    let killed_at = Instant::now();
    common::send_signal("KILL", victim as u32);
    events.wait_for("WORKER_RESPAWNED worker=1", Duration::from_secs(10), || {});
    let back_after = killed_at.elapsed();
    load.wait_for_more(50);
    let (succeeded, failures) = load.stop();
    // Each client has at most one request in flight, on at most one connection, so the
    // kill costs each at most that request: the workers share main's listening socket,
    // and the killed one leaves no accept queue of its own to be reset.
    assert!(
        failures.len() <= modes.len(),
        "{} of {} requests failed: {failures:?}",
        failures.len(),
        succeeded + failures.len() as u64
    );
    assert!(
        back_after < Duration::from_secs(1),
        "worker 1 came back after {back_after:?}"
    );
    let workers = sluice.workers();
    assert!(workers[1].1 != victim && workers[1].2 == 1, "{workers:?}");

    // Connections spread over both workers; each must know every route.
    let mut held = Vec::new();
    for index in 0..HELD {
        let mut conn = HttpConn::connect(listener).expect("connect");
        for (host, backend) in [("one.test", "one"), ("two.test", "two")] {
            let response = conn.get(host, "/");
            assert!(
                matches!(&response, Ok(r) if served_by(r, backend)),
                "connection {index}, {host}: {response:?}\n{}",
                sluice.log()
            );
        }
        held.push(conn);
    }
    let sessions = sessions_per_worker(&sluice);
    assert!(
        sessions.len() == 2 && sessions.iter().all(|&s| s > 0),
        "both workers must have served some of the {HELD} connections: {sessions:?}"
    );
}

#[test]
fn a_listener_the_workers_cannot_bind_is_refused_and_rolled_back() {
    let one = mock("one");
    let listener = free_addr();
    let sluice = Sluice::start(&http_config(
        2,
        listener,
        &[
            Route::new("one", "one.test", &[one.addr()]),
            Route::new("old", "old.test", &[one.addr()]),
        ],
    ));
    // Held by another socket: main's state accepts the address, main cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let listeners_before = sluice.ctl_json(&["listener", "list"]);
    let clusters_before = sluice.ctl_json(&["cluster", "list"]);
    let workers_before = sluice.workers();

    let add = [
        "listener",
        "add",
        "--protocol",
        "http",
        "--address",
        &address,
    ];
    let output = sluice.ctl(&add);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "adding {address} succeeded");
    assert!(stderr.contains(&address), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(sluice.ctl_json(&["listener", "list"]), listeners_before);
    assert_eq!(sluice.ctl_json(&["cluster", "list"]), clusters_before);
    for _ in 0..4 {
        assert!(served_by(&get(listener, "one.test").expect("GET"), "one"));
    }
    assert_eq!(
        sluice.workers(),
        workers_before,
        "no worker may be restarted: each refused the listener and kept its state"
    );

    // A reload removing a cluster (applied first), adding one and adding that
    // listener is refused as a whole: the removal is undone.
    let mut config = http_config(
        2,
        listener,
        &[
            Route::new("one", "one.test", &[one.addr()]),
            Route::new("late", "late.test", &[one.addr()]),
        ],
    );
    config.push_str(&format!(
        "\n[[listeners]]\nprotocol = \"http\"\naddress = \"{address}\"\n"
    ));
    std::fs::write(sluice.config_path(), config).expect("rewrite the config");
    let output = sluice.ctl(&["reload"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "the reload succeeded");
    assert!(
        stderr.contains(&address) && stderr.contains("nothing changed"),
        "{stderr}"
    );
    assert_eq!(sluice.ctl_json(&["listener", "list"]), listeners_before);
    assert_eq!(sluice.ctl_json(&["cluster", "list"]), clusters_before);
    assert_ne!(get(listener, "late.test").map(|r| r.status), Ok(200));
    for _ in 0..4 {
        let response = get(listener, "old.test");
        assert!(
            matches!(&response, Ok(r) if served_by(r, "one")),
            "the removed cluster must be back: {response:?}"
        );
    }

    // Once the address is free, the same listener works: no worker kept half of it.
    drop(taken);
    sluice.ctl_ok(&add);
    sluice.ctl_ok(&[
        "listener",
        "activate",
        "--protocol",
        "http",
        "--address",
        &address,
    ]);
    sluice.ctl_ok(&[
        "frontend",
        "http",
        "add",
        "--listener",
        &address,
        "--cluster",
        "one",
        "--hostname",
        "one.test",
    ]);
    let address = address.parse().expect("socket address");
    for _ in 0..4 {
        let response = get(address, "one.test");
        assert!(
            matches!(&response, Ok(r) if served_by(r, "one")),
            "{response:?}\n{}",
            sluice.log()
        );
    }
    assert_eq!(sluice.workers(), workers_before);
}
