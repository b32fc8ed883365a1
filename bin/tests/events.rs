//! `sluice ctl events` while backends stop and start: every worker reports
//! each health transition once, with its worker id, its time and why
//! (`--per-worker`), and the merged stream says each transition once.

mod common;

use std::time::Duration;

use common::http::{http_config, mock, Route};
use common::{wait_until, EventStream, Sluice};
use sluice_e2e::free_addr;

const WORKERS: u32 = 2;
/// Health checks of a backend (by all workers) after which no repeated event may come.
const CHECKS_AFTER: usize = 5 * WORKERS as usize;

/// Waits until every worker reported `kind` (for `address`, if given).
fn wait_from_every_worker(events: &EventStream, kind: &str, address: Option<&str>) {
    for worker in 0..WORKERS {
        let needle = match address {
            Some(address) => {
                format!("{kind} cluster=hc backend={address} address={address} worker={worker}")
            }
            None => format!("{kind} cluster=hc worker={worker}"),
        };
        events.wait_for(&needle, Duration::from_secs(20), || {});
    }
}

#[test]
fn health_transitions_are_reported_once_by_every_worker() {
    let mut a = mock("a");
    let mut b = mock("b");
    let (a_addr, b_addr) = (a.addr().to_string(), b.addr().to_string());
    let mut route = Route::new("hc", "hc.test", &[a.addr(), b.addr()]);
    route.health_check = Some(
        "{ uri = \"/health\", interval = \"100ms\", healthy_threshold = 1, unhealthy_threshold = 1 }"
            .to_owned(),
    );
    let sluice = Sluice::start(&http_config(WORKERS, free_addr(), &[route]));
    let events = EventStream::subscribe_with(&sluice, &["--per-worker"]);
    events.wait_subscribed(&sluice);
    let merged = EventStream::subscribe(&sluice);
    merged.wait_subscribed(&sluice);
    events.clear();

    a.stop();
    wait_from_every_worker(&events, "BACKEND_DOWN", Some(&a_addr));
    let down = events.wait_for(
        &format!("BACKEND_DOWN cluster=hc backend={a_addr}"),
        Duration::from_secs(1),
        || {},
    );
    // A probe under way when the mock stopped is reset rather than refused.
    assert!(
        down.ends_with(" reason=\"connection refused on /health\"")
            || down.ends_with(" reason=\"connection reset on /health\""),
        "a down event says why: {down}"
    );
    b.stop();
    wait_from_every_worker(&events, "BACKEND_DOWN", Some(&b_addr));
    wait_from_every_worker(&events, "NO_AVAILABLE_BACKENDS", None);
    a.restart().expect("restart a");
    wait_from_every_worker(&events, "BACKEND_UP", Some(&a_addr));
    wait_from_every_worker(&events, "CLUSTER_RECOVERED", None);

    // A repeated event would come with a later health check: let every
    // worker check `a` a few more times.
    let checked = a.request_count();
    wait_until("more health checks", Duration::from_secs(20), || {
        a.request_count() >= checked + CHECKS_AFTER
    });
    // Each line starts with when it happened: `2026-12-02T18:40:00.123Z KIND …`.
    let lines: Vec<String> = events
        .lines()
        .iter()
        .map(|line| {
            let (when, rest) = line.split_once(' ').expect("a time, then the event");
            assert!(
                when.len() == 24 && when.ends_with('Z') && when.as_bytes()[10] == b'T',
                "not an RFC 3339 time with milliseconds: {line}"
            );
            rest.to_owned()
        })
        .collect();
    for kind in [
        "BACKEND_DOWN cluster=hc backend=".to_owned() + &a_addr,
        "BACKEND_DOWN cluster=hc backend=".to_owned() + &b_addr,
        "BACKEND_UP cluster=hc backend=".to_owned() + &a_addr,
        "NO_AVAILABLE_BACKENDS cluster=hc".to_owned(),
        "CLUSTER_RECOVERED cluster=hc".to_owned(),
    ] {
        for worker in 0..WORKERS {
            let count = lines
                .iter()
                .filter(|l| l.starts_with(&kind) && l.contains(&format!(" worker={worker}")))
                .count();
            assert_eq!(count, 1, "`{kind}` from worker {worker}: {lines:#?}");
        }
    }
    let b_up = format!("BACKEND_UP cluster=hc backend={b_addr}");
    assert!(!lines.iter().any(|l| l.starts_with(&b_up)), "{lines:#?}");

    // The merged stream: one line per transition, whichever worker saw it first.
    let merged_lines = merged.lines();
    for kind in [
        format!(" BACKEND_DOWN cluster=hc backend={a_addr}"),
        format!(" BACKEND_DOWN cluster=hc backend={b_addr}"),
        format!(" BACKEND_UP cluster=hc backend={a_addr}"),
        " NO_AVAILABLE_BACKENDS cluster=hc".to_owned(),
        " CLUSTER_RECOVERED cluster=hc".to_owned(),
    ] {
        let count = merged_lines.iter().filter(|l| l.contains(&kind)).count();
        assert_eq!(count, 1, "`{kind}` in the merged stream: {merged_lines:#?}");
    }
    assert!(
        !merged_lines.iter().any(|l| l.contains(&b_up)),
        "{merged_lines:#?}"
    );
}

/// Operator states: every worker reports each change (`--per-worker`), the merged
/// stream says it once.
#[test]
fn state_changes_are_said_once_in_the_merged_stream() {
    let backend = mock("s");
    let address = backend.addr().to_string();
    let route = Route::new("st", "st.test", &[backend.addr()]);
    let sluice = Sluice::start(&http_config(WORKERS, free_addr(), &[route]));
    let per_worker = EventStream::subscribe_with(&sluice, &["--per-worker"]);
    per_worker.wait_subscribed(&sluice);
    let merged = EventStream::subscribe(&sluice);
    merged.wait_subscribed(&sluice);
    per_worker.clear();
    merged.clear();

    let kinds = [
        ("drain", "BACKEND_DRAINING"),
        ("maint", "BACKEND_MAINTENANCE"),
        ("ready", "BACKEND_READY"),
        ("drain", "BACKEND_DRAINING"),
    ];
    for (state, _) in kinds {
        sluice.ctl_ok(&[
            "backend",
            "set",
            "--cluster",
            "st",
            "--address",
            &address,
            "--state",
            state,
        ]);
    }
    let reports = |lines: &[String], kind: &str| {
        let needle = format!(" {kind} cluster=st ");
        lines.iter().filter(|l| l.contains(&needle)).count()
    };
    wait_until("every worker's reports", Duration::from_secs(10), || {
        reports(&per_worker.lines(), "BACKEND_DRAINING") == 2 * WORKERS as usize
            && reports(&per_worker.lines(), "BACKEND_READY") == WORKERS as usize
            && reports(&per_worker.lines(), "BACKEND_MAINTENANCE") == WORKERS as usize
    });
    wait_until("the merged stream", Duration::from_secs(10), || {
        ["BACKEND_DRAINING", "BACKEND_MAINTENANCE", "BACKEND_READY"]
            .iter()
            .map(|kind| reports(&merged.lines(), kind))
            .sum::<usize>()
            >= kinds.len()
    });
    let merged_lines = merged.lines();
    let said: Vec<&str> = merged_lines
        .iter()
        .filter_map(|line| {
            kinds
                .iter()
                .map(|(_, kind)| *kind)
                .find(|kind| line.contains(&format!(" {kind} cluster=st ")))
        })
        .collect();
    assert_eq!(
        said,
        kinds.iter().map(|(_, kind)| *kind).collect::<Vec<_>>(),
        "{merged_lines:#?}"
    );
}
