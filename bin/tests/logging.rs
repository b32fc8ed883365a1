//! Logs in production: the access log reopened on SIGUSR1 (logrotate) and by reloads,
//! global keys applied live by a reload or named as needing a restart, a refused SIGHUP
//! reload reported as an event, and `reload` without `-c` always reading the start file.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::http::{get, http_config, mock, Route};
use common::{free_port, wait_until, EventStream, Sluice};
use sluice_e2e::free_addr;

/// One HTTP cluster `site` for `site.test` with access logging to `access_log`.
fn config(listener: SocketAddr, backend: SocketAddr, access_log: &Path) -> String {
    http_config(1, listener, &[Route::new("site", "site.test", &[backend])]).replace(
        "access_log = \"off\"",
        &format!("access_log = {:?}", access_log.display().to_string()),
    )
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

fn request(listener: SocketAddr) {
    let response = get(listener, "site.test").expect("an answer");
    assert_eq!(response.status, 200, "{response:?}");
}

#[test]
fn sigusr1_reopens_the_access_log_moved_away_by_logrotate() {
    let backend = mock("b");
    let listener = free_addr();
    let logs = tempfile::tempdir().expect("log folder");
    let access = logs.path().join("access.log");
    let sluice = Sluice::start(&config(listener, backend.addr(), &access));
    request(listener);
    wait_until("the first line", Duration::from_secs(5), || {
        lines_of(&access) == 1
    });
    let rotated = logs.path().join("access.log.1");
    std::fs::rename(&access, &rotated).expect("rotate");
    sluice.signal("USR1");
    wait_until("a new access log file", Duration::from_secs(5), || {
        access.exists()
    });
    request(listener);
    request(listener);
    wait_until("lines in the new file", Duration::from_secs(5), || {
        lines_of(&access) == 2
    });
    assert_eq!(lines_of(&rotated), 1, "the rotated file got nothing more");
}

#[test]
fn a_reload_applies_log_keys_live_and_names_those_that_need_a_restart() {
    let backend = mock("b");
    let listener = free_addr();
    let logs = tempfile::tempdir().expect("log folder");
    let first = logs.path().join("first.log");
    let second = logs.path().join("second.log");
    let metrics = format!("127.0.0.1:{}", free_port());
    let with_metrics = |text: String, address: &str| {
        text.replacen(
            "[[listeners]]",
            &format!("metrics_address = \"{address}\"\n\n[[listeners]]"),
            1,
        )
    };
    let sluice = Sluice::start(&with_metrics(
        config(listener, backend.addr(), &first),
        &metrics,
    ));
    request(listener);
    wait_until("a line in the first log", Duration::from_secs(5), || {
        lines_of(&first) == 1
    });

    let moved = format!("127.0.0.1:{}", free_port());
    let changed = with_metrics(config(listener, backend.addr(), &second), &moved)
        .replace("worker_count = 1", "worker_count = 1\nbuffer_size = 32768");
    std::fs::write(sluice.config_path(), changed).expect("rewrite config");
    let answer = sluice.ctl_ok(&["reload"]);
    assert!(
        answer.contains("takes effect at the next start: buffer_size"),
        "{answer}"
    );
    request(listener);
    wait_until("a line in the second log", Duration::from_secs(5), || {
        lines_of(&second) == 1
    });
    assert_eq!(lines_of(&first), 1);
    assert_eq!(
        sluice.workers().len(),
        1,
        "buffer_size waits for a restart, the workers too"
    );
    let health = |address: &str| {
        std::net::TcpStream::connect(address).is_ok_and(|mut stream| {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.1 200")
        })
    };
    wait_until(
        "the metrics endpoint on its new address",
        Duration::from_secs(5),
        || health(&moved),
    );
    wait_until(
        "the old metrics address closed",
        Duration::from_secs(5),
        || std::net::TcpStream::connect(&metrics).is_err(),
    );
}

#[test]
fn a_refused_sighup_reload_is_an_event_and_reload_reads_the_start_file() {
    let backend = mock("b");
    let listener = free_addr();
    let logs = tempfile::tempdir().expect("log folder");
    let access = logs.path().join("access.log");
    let good = config(listener, backend.addr(), &access);
    let sluice = Sluice::start(&good);
    let events = EventStream::subscribe(&sluice);
    events.wait_subscribed(&sluice);

    // Another file, reloaded once by name, must not become the default of later reloads.
    let other = sluice.dir.path().join("other.toml");
    std::fs::write(&other, good.replace("site.test", "other.test")).expect("other config");
    sluice.ctl_ok(&["reload", "-c", other.to_str().expect("utf-8 path")]);
    assert_eq!(get(listener, "other.test").expect("answer").status, 200);
    sluice.ctl_ok(&["reload"]);
    assert_eq!(get(listener, "site.test").expect("answer").status, 200);
    assert_eq!(get(listener, "other.test").expect("answer").status, 404);

    std::fs::write(sluice.config_path(), "worker_count = \"many\"\n").expect("broken config");
    sluice.signal("HUP");
    let refused = events.wait_for("CONFIGURATION_REFUSED", Duration::from_secs(10), || {});
    assert!(refused.contains("reason=\"reload refused"), "{refused}");
    assert!(refused.contains("worker_count"), "{refused}");
    assert!(
        sluice.log().contains("ERROR [main] reload refused"),
        "{}",
        sluice.log()
    );
    assert_eq!(get(listener, "site.test").expect("answer").status, 200);
}
