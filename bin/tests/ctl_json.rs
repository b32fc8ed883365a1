//! `sluice ctl --json`: plain documents for `jq`, the same shape for every
//! command, and `{"error": "…"}` on stdout with exit status 1.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::{get, http_config, mock, Route};
use common::{ctl_at, sluice_bin, wait_until, Sluice};
use serde_json::Value;
use sluice_e2e::free_addr;

/// Runs `ctl --json ARGS`, expecting failure: the parsed `{"error"}` document.
fn json_error(sluice: &Sluice, args: &[&str]) -> String {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = sluice.ctl(&with_json);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    let fields = document.as_object().expect("an object");
    assert_eq!(fields.len(), 1, "{document:#}");
    document["error"]
        .as_str()
        .expect("an error message")
        .to_owned()
}

#[test]
fn every_answer_is_a_plain_document_without_envelope() {
    let backend = mock("web1");
    let listener = free_addr();
    let route = Route::new("api", "api.test", &[backend.addr()]);
    let sluice = Sluice::start(&http_config(2, listener, &[route]));

    let status = sluice.ctl_json(&["status"]);
    let workers = status["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "{status:#}");
    for worker in workers {
        assert!(
            worker["pid"].as_u64().is_some_and(|pid| pid > 0),
            "{status:#}"
        );
        assert_eq!(worker["state"], "running");
    }

    let clusters = sluice.ctl_json(&["cluster", "list"]);
    let api = &clusters["clusters"][0];
    assert_eq!(api["id"], "api");
    assert_eq!(api["protocol"], "http");
    assert_eq!(api["load_balancing"], "round_robin");
    assert_eq!(api["backends"][0]["address"], backend.addr().to_string());
    assert_eq!(api["frontends"][0]["hostname"], "api.test");

    let shown = sluice.ctl_json(&["cluster", "show", "api"]);
    assert_eq!(shown["cluster"]["id"], "api", "{shown:#}");

    let listeners = sluice.ctl_json(&["listener", "list"]);
    let first = &listeners["listeners"][0];
    assert_eq!(first["protocol"], "http");
    assert_eq!(first["address"], listener.to_string());
    assert_eq!(first["active"], true);
    assert!(first.get("tcp").is_none() && first.get("http").is_none());
    assert!(first["timeouts"]["connect_ms"].as_u64().is_some());

    let frontends = sluice.ctl_json(&["frontend", "list"]);
    assert_eq!(frontends["frontends"][0]["cluster"], "api");
    assert_eq!(frontends["frontends"][0]["protocol"], "http");

    let added = sluice.ctl_json(&[
        "backend",
        "add",
        "--cluster",
        "api",
        "--address",
        &free_addr().to_string(),
        "--id",
        "spare",
    ]);
    assert!(added["message"].as_str().is_some(), "{added:#}");

    for _ in 0..4 {
        get(listener, "api.test").expect("a request through api");
    }
    // Requests are counted by whichever worker served them; the merged figure
    // shows every one.
    let mut metrics = Value::Null;
    wait_until(
        "the merged metrics to count 4 requests",
        Duration::from_secs(10),
        || {
            metrics = sluice.ctl_json(&["metrics"]);
            metrics["clusters"]["api"]["requests"].as_u64() == Some(4)
        },
    );
    let web1 = &metrics["clusters"]["api"]["backends"][backend.addr().to_string()];
    assert!(web1["requests"].as_u64().is_some(), "{metrics:#}");
    let latency = metrics["clusters"]["api"]
        .as_object()
        .expect("cluster metrics")
        .values()
        .find(|value| value.get("p99_ms").is_some())
        .unwrap_or_else(|| panic!("no latency histogram in {metrics:#}"));
    assert!(latency["count"].as_u64().is_some_and(|count| count > 0));
    assert_eq!(metrics["workers"].as_array().map(Vec::len), Some(2));
}

#[test]
fn failures_are_an_error_document_on_stdout_and_exit_1() {
    let backend = mock("web1");
    let listener = free_addr();
    let route = Route::new("api", "api.test", &[backend.addr()]);
    let sluice = Sluice::start(&http_config(1, listener, &[route]));

    let unknown = json_error(&sluice, &["metrics", "--cluster", "nosuch"]);
    assert!(unknown.contains("nosuch"), "{unknown}");
    let unknown_backend = json_error(&sluice, &["metrics", "--cluster", "api", "--backend", "x"]);
    assert!(unknown_backend.contains("`x`"), "{unknown_backend}");
    let refused = json_error(&sluice, &["cluster", "remove", "nosuch"]);
    assert!(!refused.is_empty());
    // The same in tables: exit 1 and the reason on stderr.
    let output = sluice.ctl(&["metrics", "--cluster", "nosuch"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nosuch"));

    // Nobody on the socket: still one error document.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = ctl_at(
        &dir.path().join("none.sock"),
        dir.path(),
        &["--json", "status"],
    );
    assert_eq!(output.status.code(), Some(1));
    let document: Value =
        serde_json::from_slice(&output.stdout).expect("an error document on stdout");
    assert!(document["error"].as_str().is_some(), "{document:#}");
}

#[test]
fn timeout_takes_a_duration_like_the_configuration() {
    let backend = mock("web1");
    let listener = free_addr();
    let route = Route::new("api", "api.test", &[backend.addr()]);
    let sluice = Sluice::start(&http_config(1, listener, &[route]));
    let ctl = |timeout: &str| {
        Command::new(sluice_bin())
            .args(["ctl", "-s"])
            .arg(&sluice.socket)
            .args(["--timeout", timeout, "status"])
            .current_dir(sluice.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run sluice ctl")
    };
    for accepted in ["5s", "1500ms", "1m", "20"] {
        let output = ctl(accepted);
        assert!(output.status.success(), "--timeout {accepted}: {output:?}");
    }
    for refused in ["soon", "0s", "5x"] {
        let output = ctl(refused);
        assert_eq!(
            output.status.code(),
            Some(2),
            "--timeout {refused}: {output:?}"
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("--timeout"),
            "{output:?}"
        );
    }
}

/// `sluice ctl cluster list | head -1`: a reader that goes away ends the output quietly,
/// in plain text and in JSON, with the answer's own exit status and no panic.
#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let backend = mock("web1");
    let routes: Vec<Route> = (0..20)
        .map(|i| Route::new(&format!("c{i}"), &format!("c{i}.test"), &[backend.addr()]))
        .collect();
    let sluice = Sluice::start(&http_config(1, free_addr(), &routes));
    for args in [
        &["cluster", "list"][..],
        &["--json", "cluster", "list"],
        &["cluster", "export", "c1"],
        &["--json", "cluster", "show", "missing"],
    ] {
        let mut child = Command::new(sluice_bin())
            .args(["ctl", "-s"])
            .arg(&sluice.socket)
            .args(args)
            .current_dir(sluice.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sluice ctl");
        // The reader is gone before anything is written.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("wait for sluice ctl");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let expected = if args.contains(&"missing") { 1 } else { 0 };
        assert_eq!(output.status.code(), Some(expected), "{args:?}: {stderr}");
    }
}
