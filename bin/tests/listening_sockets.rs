//! Listening sockets owned by the main process: bound once, shared by every worker, so that
//! a worker killed under load leaves no accept queue behind, a second instance cannot bind
//! the same address, and a listener keeps its socket through changes.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::classified_load::{ClassifiedLoad, Outcome, Style};
use common::http::{http_config, mock, Route};
use common::{config_with_tcp_listeners, process_alive, sluice_bin, wait_until, Sluice};
use sluice_e2e::{free_addr, MockResponse};

/// The inode of each listening TCP socket on `port` (from `/proc/net/tcp`).
fn listening_inodes(port: u16) -> Vec<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9)?.parse().ok())?
        })
        .collect()
}

#[test]
fn one_socket_per_address_and_a_second_instance_fails_naming_it() {
    let listener = free_addr();
    let config = config_with_tcp_listeners(3, &[listener.to_string()]);
    let _first = Sluice::start(&config);
    assert_eq!(
        listening_inodes(listener.port()).len(),
        1,
        "three workers share one listening socket"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sluice.toml"), &config).expect("write config");
    let mut second = Command::new(sluice_bin())
        .args(["start", "-c", "sluice.toml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a second instance");
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the second instance did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = second.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the second instance started");
    assert!(
        stderr.contains(&format!("cannot bind {listener}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn a_removed_listener_is_closed_in_main_and_a_changed_one_keeps_its_socket() {
    let kept = free_addr();
    let removed = free_addr();
    let sluice = Sluice::start(&config_with_tcp_listeners(
        2,
        &[kept.to_string(), removed.to_string()],
    ));
    let kept_inode = listening_inodes(kept.port());
    assert_eq!(kept_inode.len(), 1, "{kept_inode:?}");

    let mut config = config_with_tcp_listeners(2, &[kept.to_string()]);
    config = config.replace(
        &format!("address = \"{kept}\"\n"),
        &format!("address = \"{kept}\"\nfront_timeout = \"7s\"\n"),
    );
    std::fs::write(sluice.config_path(), config).expect("rewrite the config");
    sluice.ctl_ok(&["reload"]);

    assert_eq!(listening_inodes(kept.port()), kept_inode, "same socket");
    assert!(listening_inodes(removed.port()).is_empty());
    std::net::TcpListener::bind(removed).expect("the removed address is free again");
}

#[test]
fn a_worker_killed_under_new_connections_loses_only_its_requests_in_flight() {
    const CLIENTS: usize = 6;
    let backend = mock("slow");
    backend.set_default_handler(|_| {
        MockResponse::new(200, "backend: slow").delay(Duration::from_millis(30))
    });
    let listener: SocketAddr = free_addr();
    let sluice = Sluice::start(&http_config(
        2,
        listener,
        &[Route::new("slow", "slow.test", &[backend.addr()])],
    ));
    let load = ClassifiedLoad::start(listener, "slow.test", "slow", &[Style::Close; CLIENTS]);
    load.wait_for_more(60);

    let victim = sluice.workers()[1].1 as u32;
    common::send_signal("KILL", victim);
    wait_until(
        "the killed worker to be gone",
        Duration::from_secs(10),
        || !process_alive(victim),
    );
    let dead_at = Instant::now();
    wait_until("worker 1 to be respawned", Duration::from_secs(10), || {
        sluice.workers()[1].1 as u32 != victim
    });
    load.wait_for_more(100);
    let (served, failures) = load.stop();

    let refused = failures
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Refused(_)))
        .count();
    let no_answer = failures
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::NoAnswer(_)))
        .count();
    let cut = failures
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Cut(_)))
        .count();
    println!(
        "served {served}, failed {}: refused {refused}, reset before any answer byte \
         {no_answer}, answer cut {cut}",
        failures.len()
    );
    assert_eq!(refused, 0, "{failures:?}");
    assert!(
        failures.iter().all(|r| r.started < dead_at),
        "a request started after the worker died failed: {failures:?}"
    );
    assert!(
        failures
            .iter()
            .all(|r| !matches!(r.outcome, Outcome::Wrong(_))),
        "{failures:?}"
    );
    let mut per_client: HashMap<usize, usize> = HashMap::new();
    for record in &failures {
        *per_client.entry(record.client).or_default() += 1;
    }
    assert!(
        per_client.values().all(|&count| count <= 1),
        "a client has one request in flight at most, so it loses one at most: {failures:?}"
    );
}
