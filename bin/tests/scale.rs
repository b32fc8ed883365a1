//! Thousands of clusters: they start and serve, a reload changing hundreds of
//! them leaves the routes that stay answering, and a reload or state load
//! that would empty the proxy is refused.

mod common;

use std::time::Duration;

use common::http::{get, mock, served_by, Load, Mode};
use common::{wait_until, Sluice};
use sluice_e2e::free_addr;
use sluice_e2e::scale::{hostname, ScaleRoutes};

const CLUSTERS: usize = 2_000;

#[test]
fn two_thousand_clusters_serve_and_a_reload_of_500_changes_fails_no_request() {
    let servers = [mock("scale-a"), mock("scale-b")];
    let backends = [servers[0].addr(), servers[1].addr()];
    let routes = ScaleRoutes::new(free_addr(), CLUSTERS, &backends);
    let sluice = Sluice::start(&routes.sluice_config(2));
    for index in (0..CLUSTERS).step_by(97).chain([CLUSTERS - 1]) {
        let response = get(routes.listener, &hostname(index));
        assert!(
            matches!(&response, Ok(r) if served_by(r, "scale-")),
            "cluster {index}: {response:?}\n{}",
            sluice.log()
        );
    }
    // Clusters from 500 on stay (the changes remove, reweight and move the first ones).
    let stays = hostname(CLUSTERS - 1);
    let load = Load::start(
        routes.listener,
        &stays,
        "scale-",
        &[Mode::KeepAlive, Mode::NewConnections],
    );
    load.wait_for_more(10);
    let changed = routes.changed(500, &backends);
    std::fs::write(sluice.config_path(), changed.sluice_config(2)).expect("rewrite the config");
    let answer = sluice.ctl_ok(&["reload"]);
    assert!(answer.contains("added"), "{answer}");
    let added = changed.clusters.last().expect("clusters").hostname.clone();
    let response = get(routes.listener, &added);
    assert!(
        matches!(&response, Ok(r) if served_by(r, "scale-")),
        "{response:?}"
    );
    let removed = get(routes.listener, &hostname(0));
    assert!(matches!(&removed, Ok(r) if r.status == 404), "{removed:?}");
    load.wait_for_more(10);
    let (succeeded, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        succeeded + failures.len() as u64,
        &failures[..failures.len().min(10)]
    );
}

#[test]
fn an_empty_reload_or_state_file_is_refused_unless_allowed() {
    let server = mock("empty-a");
    let backends = [server.addr()];
    let routes = ScaleRoutes::new(free_addr(), 3, &backends);
    let sluice = Sluice::start(&routes.sluice_config(1));
    let clusters_now = || sluice.ctl_ok(&["cluster", "list"]).lines().count();
    let before = clusters_now();
    let empty_state = sluice.dir.path().join("empty.state");
    std::fs::write(&empty_state, b"").expect("write the empty state");
    let refused = sluice.ctl(&["state", "load", &empty_state.display().to_string()]);
    assert!(!refused.status.success(), "a 0-byte state file was loaded");
    let refused = sluice.ctl(&[
        "state",
        "load",
        &empty_state.display().to_string(),
        "--allow-empty",
    ]);
    assert!(
        !refused.status.success(),
        "a 0-byte state file is an error, even with --allow-empty"
    );
    let zero_bytes = sluice.dir.path().join("zero.toml");
    std::fs::write(&zero_bytes, b"").expect("write the empty config");
    let refused = sluice.ctl(&["reload", "-c", &zero_bytes.display().to_string()]);
    assert!(
        !refused.status.success(),
        "a 0-byte config file was applied"
    );
    assert_eq!(
        clusters_now(),
        before,
        "a refused reload changed the clusters"
    );
    let global_only = "command_socket = \"sluice.sock\"\nworker_count = 1\naccess_log = \"off\"\n";
    std::fs::write(sluice.config_path(), global_only).expect("rewrite the config");
    let refused = sluice.ctl(&["reload"]);
    let message = String::from_utf8_lossy(&refused.stderr).to_string()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "an empty reload was applied");
    assert!(message.contains("--allow-empty"), "{message}");
    assert_eq!(
        clusters_now(),
        before,
        "a refused reload changed the clusters"
    );
    let host = &routes.clusters[0].hostname;
    assert!(matches!(get(routes.listener, host), Ok(r) if served_by(&r, "empty-a")));
    sluice.ctl_ok(&["reload", "--allow-empty"]);
    wait_until(
        "the listener to close after an allowed empty reload",
        Duration::from_secs(10),
        || get(routes.listener, host).is_err(),
    );
}
