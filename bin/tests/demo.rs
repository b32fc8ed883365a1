//! `sluice demo` as a user runs it: two GETs on 127.0.0.1:8080 show both
//! built-in backends. It binds the default config's fixed addresses, so it is
//! skipped (with a message) when one of them is taken.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ctl_at, sluice_bin, wait_until};
use sluice_e2e::http_get;

const DEMO_ADDRESSES: [&str; 3] = ["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"];

/// Kills the demo if the test fails before stopping it.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_answers_from_both_backends() {
    if let Some(taken) = DEMO_ADDRESSES
        .iter()
        .find(|address| TcpListener::bind(address).is_err())
    {
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_demo_answers_from_both_backends: {taken} is in use"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("demo.log")).expect("log file");
    let mut demo = Demo(
        Command::new(sluice_bin())
            .arg("demo")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn sluice demo"),
    );
    let socket = dir.path().join("sluice.sock");
    let read_log = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
    wait_until(
        "the demo to answer ctl status",
        Duration::from_secs(30),
        || ctl_at(&socket, dir.path(), &["status"]).status.success(),
    );
    let front: SocketAddr = DEMO_ADDRESSES[0].parse().expect("address");
    let bodies: Vec<String> = (0..2)
        .map(|_| {
            let response = http_get(front, "localhost", "/")
                .unwrap_or_else(|e| panic!("GET failed: {e}\n{}", read_log()));
            assert_eq!(response.status, 200, "{response:?}");
            response.body_text()
        })
        .collect();
    assert!(
        bodies.contains(&"backend 1\n".to_owned()) && bodies.contains(&"backend 2\n".to_owned()),
        "two GETs must show both backends: {bodies:?}"
    );
    let stopped = ctl_at(&socket, dir.path(), &["shutdown", "--hard"]);
    assert!(stopped.status.success(), "{stopped:?}");
    wait_until("the demo to exit", Duration::from_secs(10), || {
        demo.0.try_wait().expect("try_wait").is_some()
    });
}
