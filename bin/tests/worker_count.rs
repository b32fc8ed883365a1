//! `worker_count` changed by a reload takes effect live: workers are added (with the
//! listening sockets and the whole state) or retired with a soft stop, under load, without
//! a failed request.

mod common;

use std::time::Duration;

use common::classified_load::{ClassifiedLoad, Style};
use common::http::{get, http_config, mock, served_by, Route};
use common::{wait_until, Sluice};
use sluice_e2e::free_addr;

/// `(pid, state)` of each worker `ctl status` shows.
fn workers(sluice: &Sluice) -> Vec<(u64, String)> {
    sluice.ctl_json(&["status"])["workers"]
        .as_array()
        .expect("a worker list")
        .iter()
        .map(|w| {
            (
                w["pid"].as_u64().unwrap_or(0),
                w["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn worker_count_two_four_one_by_reload_under_load_fails_no_request() {
    let backend = mock("live");
    let listener = free_addr();
    let routes = [Route::new("live", "live.test", &[backend.addr()])];
    let sluice = Sluice::start(&http_config(2, listener, &routes));
    let styles = [
        Style::KeepAlive,
        Style::Close,
        Style::KeepAlive,
        Style::Close,
    ];
    let load = ClassifiedLoad::start(listener, "live.test", "live", &styles);
    load.wait_for_more(50);

    std::fs::write(sluice.config_path(), http_config(4, listener, &routes)).expect("rewrite");
    let answer = sluice.ctl_ok(&["reload"]);
    assert!(answer.contains("2 workers started"), "{answer}");
    let four = workers(&sluice);
    assert_eq!(four.len(), 4, "{four:?}");
    assert!(
        four.iter()
            .all(|(pid, state)| *pid != 0 && state == "running"),
        "{four:?}"
    );
    load.wait_for_more(100);

    std::fs::write(sluice.config_path(), http_config(1, listener, &routes)).expect("rewrite");
    let answer = sluice.ctl_ok(&["reload"]);
    assert!(answer.contains("3 workers retired"), "{answer}");
    wait_until(
        "the retired workers to exit",
        Duration::from_secs(20),
        || workers(&sluice).len() == 1,
    );
    load.wait_for_more(100);
    let reconnects = load.reconnects();
    let (served, failures) = load.stop();
    println!(
        "served {served}, failed {}, keep-alive connections reopened at a request boundary {}",
        failures.len(),
        reconnects
    );
    assert!(failures.is_empty(), "{failures:?}\n{}", sluice.log());
    assert_eq!(workers(&sluice).len(), 1);
    assert!(served_by(&get(listener, "live.test").expect("GET"), "live"));
}
