//! Backends given by host name, end to end: a test DNS server answers a name, Sluice
//! resolves it in its main process and gives the workers one backend per address.
//! Mock backends listen on 127.0.0.2, .3 and .4 (loopback addresses on Linux) with
//! one port, so that the name's addresses are all the test needs to change.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::http::{get, served_by, Load, Mode};
use common::loopback::{loopback, loopback_mocks};
use common::{free_port, sluice_bin, wait_until, EventStream, Sluice};
use sluice_e2e::{http_get, MockHttpServer, TestDnsServer};

const HOST: &str = "web.test";
const NAME: &str = "api.test";
/// The refresh the tests configure; the record's TTL (1 s) is longer.
const REFRESH: Duration = Duration::from_millis(200);
/// What a change may take to reach every worker on a loaded machine.
const FOLLOW: Duration = Duration::from_secs(5);

/// One worker-pair config whose cluster `web` has the backend `address`.
fn config(
    dns: &TestDnsServer,
    listener: SocketAddr,
    backend: &str,
    metrics: Option<SocketAddr>,
) -> String {
    let metrics = metrics
        .map(|address| format!("metrics_address = \"{address}\"\n"))
        .unwrap_or_default();
    format!(
        "command_socket = \"sluice.sock\"\nworker_count = 2\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"5s\"\n{metrics}\
         dns_servers = [\"{}\"]\ndns_refresh = \"{}ms\"\n\n\
         [[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\n\n\
         [clusters.web]\nprotocol = \"http\"\n\
         frontends = [ {{ address = \"{listener}\", hostname = \"{HOST}\" }} ]\n\
         backends = [ {backend} ]\n",
        dns.address(),
        REFRESH.as_millis()
    )
}

fn listener() -> SocketAddr {
    SocketAddr::new(loopback(1), free_port())
}

/// The backends `cluster show` lists: (id, address).
fn backends(sluice: &Sluice) -> Vec<(String, String)> {
    let shown = sluice.ctl_json(&["cluster", "show", "web"]);
    shown["cluster"]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap_or_default().to_owned(),
                b["address"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn addresses(sluice: &Sluice) -> Vec<String> {
    let mut addresses: Vec<String> = backends(sluice).into_iter().map(|(_, a)| a).collect();
    addresses.sort();
    addresses
}

fn expected(lasts: &[u8], port: u16) -> Vec<String> {
    lasts
        .iter()
        .map(|last| format!("127.0.0.{last}:{port}"))
        .collect()
}

/// Waits until every mock of `serving` answered a new request and none of `idle` did
/// for a while; returns how long the first part took.
fn wait_served_by(load: &Load, all: &[MockHttpServer], serving: &[u8]) -> Duration {
    let start = Instant::now();
    for server in all {
        server.clear_requests();
    }
    let name = |last: &u8| format!("dns-{last}");
    wait_until(&format!("requests to {serving:?}"), FOLLOW, || {
        all.iter()
            .filter(|s| serving.iter().any(|last| name(last) == s.name()))
            .all(|s| s.request_count() > 0)
    });
    let took = start.elapsed();
    // Sessions that were busy on a removed backend finish their exchange there: then
    // nothing more reaches it.
    thread::sleep(Duration::from_millis(300));
    for server in all {
        server.clear_requests();
    }
    load.wait_for_more(100);
    for server in all
        .iter()
        .filter(|s| !serving.iter().any(|last| name(last) == s.name()))
    {
        assert_eq!(
            server.request_count(),
            0,
            "{} still gets requests",
            server.name()
        );
    }
    took
}

#[test]
fn backends_follow_the_name_from_two_to_three_to_one_addresses_under_keep_alive_load() {
    let (port, servers) = loopback_mocks(&[2, 3, 4]);
    let dns = TestDnsServer::start(1).expect("dns server");
    dns.set(NAME, &[loopback(2), loopback(3)]);
    let listener = listener();
    let backend = format!("{{ address = \"{NAME}:{port}\", id = \"web\", weight = 50 }}");
    let sluice = Sluice::start(&config(&dns, listener, &backend, None));
    assert_eq!(addresses(&sluice), expected(&[2, 3], port));
    let shown = backends(&sluice);
    assert!(
        shown
            .iter()
            .any(|(id, _)| id == &format!("web@127.0.0.2:{port}")),
        "{shown:?}"
    );

    let mut modes = vec![Mode::KeepAlive; 6];
    modes.extend([Mode::NewConnections; 2]);
    let load = Load::start(listener, HOST, "dns-", &modes);
    load.wait_for_more(100);
    wait_served_by(&load, &servers, &[2, 3]);

    dns.set(NAME, &[loopback(2), loopback(3), loopback(4)]);
    let took = wait_served_by(&load, &servers, &[2, 3, 4]);
    println!("three addresses served after {took:?}");
    assert_eq!(addresses(&sluice), expected(&[2, 3, 4], port));

    dns.set(NAME, &[loopback(3)]);
    wait_until("one backend left", FOLLOW, || {
        addresses(&sluice) == expected(&[3], port)
    });
    let took = wait_served_by(&load, &servers, &[3]);
    println!("one address served after {took:?}");

    let (succeeded, failures) = load.stop();
    assert!(succeeded > 0);
    assert!(
        failures.is_empty(),
        "{} failed requests: {failures:?}",
        failures.len()
    );
    let shown = sluice.ctl_json(&["cluster", "show", "web"]);
    let backend = &shown["cluster"]["backends"][0];
    assert_eq!(backend["weight"], 50, "{shown}");
    assert_eq!(
        backend["resolved_from"],
        format!("{NAME}:{port}"),
        "{shown}"
    );
}

#[test]
fn a_name_that_never_resolved_is_refused_at_start_unless_resolve_later() {
    let (port, _servers) = loopback_mocks(&[2]);
    let dns = TestDnsServer::start(1).expect("dns server");
    let listener = listener();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sluice.toml");
    let backend = format!("{{ address = \"{NAME}:{port}\" }}");
    std::fs::write(&path, config(&dns, listener, &backend, None)).expect("config");
    let output = Command::new(sluice_bin())
        .args(["start", "-c"])
        .arg(&path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run sluice start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("sluice.toml:16:")
            && stderr.contains("clusters.web.backends[0].address")
            && stderr.contains(&format!("cannot resolve {NAME}")),
        "{stderr}"
    );

    let later = format!("{{ address = \"{NAME}:{port}\", resolve_later = true }}");
    let sluice = Sluice::start(&config(&dns, listener, &later, None));
    assert!(addresses(&sluice).is_empty());
    let refused = get(listener, HOST).expect("an answer");
    assert_eq!(refused.status, 503);
    dns.set(NAME, &[loopback(2)]);
    wait_until("the name to be served", FOLLOW, || {
        get(listener, HOST).is_ok_and(|response| served_by(&response, "dns-2"))
    });

    // A reload that brings a name that does not resolve is refused, naming it.
    let other = format!("{{ address = \"{NAME}:{port}\", resolve_later = true }}, {{ address = \"nowhere.test:{port}\" }}");
    std::fs::write(sluice.config_path(), config(&dns, listener, &other, None)).expect("config");
    let reload = sluice.ctl(&["reload"]);
    let answer = String::from_utf8_lossy(&reload.stdout).to_string()
        + &String::from_utf8_lossy(&reload.stderr);
    assert!(!reload.status.success(), "{answer}");
    assert!(
        answer.contains("cannot resolve nowhere.test") && answer.contains("backends[1].address"),
        "{answer}"
    );
    assert_eq!(addresses(&sluice), expected(&[2], port));
}

#[test]
fn a_name_that_stops_resolving_keeps_its_backends_and_is_reported() {
    let (port, _servers) = loopback_mocks(&[2, 3]);
    let dns = TestDnsServer::start(1).expect("dns server");
    dns.set(NAME, &[loopback(2), loopback(3)]);
    let listener = listener();
    let metrics = SocketAddr::new(loopback(1), free_port());
    let backend = format!("{{ address = \"{NAME}:{port}\", id = \"web\" }}");
    let sluice = Sluice::start(&config(&dns, listener, &backend, Some(metrics)));
    let events = EventStream::subscribe(&sluice);
    events.wait_subscribed(&sluice);

    dns.fail(NAME);
    let line = events.wait_for("BACKEND_NAME_UNRESOLVED", FOLLOW, || {});
    assert!(line.contains(NAME), "{line}");
    assert_eq!(addresses(&sluice), expected(&[2, 3], port));
    for _ in 0..10 {
        let response = get(listener, HOST).expect("an answer");
        assert!(served_by(&response, "dns-"), "{}", response.status);
    }
    let status = http_get(metrics, "status", "/status")
        .expect("status")
        .body_text();
    let status: serde_json::Value = serde_json::from_str(&status).expect("status json");
    assert_eq!(status["dns_names"][0]["name"], NAME, "{status}");
    assert_eq!(status["dns_names"][0]["resolving"], false, "{status}");
    let metrics_page = http_get(metrics, "m", "/metrics")
        .expect("metrics")
        .body_text();
    assert!(
        metrics_page.contains(&format!("sluice_dns_name_resolving{{name=\"{NAME}\"}} 0")),
        "{metrics_page}"
    );
    assert!(sluice
        .log()
        .contains(&format!("backend host name {NAME} stopped resolving")));

    // The saved state holds the name, not its addresses.
    let saved = sluice.dir.path().join("state.json");
    sluice.ctl_ok(&["state", "save", "-f", saved.to_str().expect("path")]);
    let text = std::fs::read_to_string(&saved).expect("saved state");
    assert!(text.contains(&format!("{NAME}:{port}")), "{text}");
    assert!(!text.contains(&format!("127.0.0.2:{port}")), "{text}");

    dns.set(NAME, &[loopback(3)]);
    events.wait_for("BACKEND_NAME_RESOLVED", FOLLOW, || {});
    wait_until("the name's new address", FOLLOW, || {
        addresses(&sluice) == expected(&[3], port)
    });

    // Loading the saved state resolves the name again, to what it says now.
    sluice.ctl_ok(&["state", "load", "-f", saved.to_str().expect("path")]);
    assert_eq!(addresses(&sluice), expected(&[3], port));
}

#[test]
fn ctl_adds_changes_and_removes_a_backend_given_by_host_name() {
    let (port, _servers) = loopback_mocks(&[2, 3]);
    let dns = TestDnsServer::start(1).expect("dns server");
    dns.set(NAME, &[loopback(2), loopback(3)]);
    let listener = listener();
    let fixed = format!("{{ address = \"127.0.0.2:{}\" }}", free_port());
    let sluice = Sluice::start(&config(&dns, listener, &fixed, None));
    let address = format!("{NAME}:{port}");
    let refused = sluice.ctl(&[
        "backend",
        "add",
        "--cluster",
        "web",
        "--address",
        &format!("nowhere.test:{port}"),
    ]);
    assert!(!refused.status.success());
    let added = sluice.ctl_ok(&[
        "backend",
        "add",
        "--cluster",
        "web",
        "--address",
        &address,
        "--id",
        "api",
    ]);
    assert!(
        added.contains(&format!("127.0.0.2:{port}, 127.0.0.3:{port}")),
        "{added}"
    );
    assert_eq!(addresses(&sluice).len(), 3);
    let single = sluice.ctl(&[
        "backend",
        "set",
        "--cluster",
        "web",
        "--id",
        &format!("api@127.0.0.2:{port}"),
        "--weight",
        "1",
    ]);
    assert!(
        !single.status.success(),
        "a resolved backend alone cannot be changed"
    );
    sluice.ctl_ok(&[
        "backend",
        "set",
        "--cluster",
        "web",
        "--id",
        "api",
        "--state",
        "drain",
    ]);
    let shown = sluice.ctl_json(&["cluster", "show", "web"]);
    let drained = shown["cluster"]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .filter(|b| b["state"] == "drain")
        .count();
    assert_eq!(drained, 2, "{shown}");
    sluice.ctl_ok(&[
        "backend",
        "remove",
        "--cluster",
        "web",
        "--address",
        &address,
    ]);
    assert_eq!(addresses(&sluice).len(), 1);
}
