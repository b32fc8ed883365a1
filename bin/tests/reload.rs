//! Reloading the config file while clients keep sending requests: through
//! `sluice ctl reload` and through SIGHUP.

mod common;

use std::time::Duration;

use common::http::{get, http_config, mock, served_by, Load, Mode, Route};
use common::{wait_until, Sluice};
use sluice_e2e::free_addr;

const RELOADS: usize = 20;

#[test]
fn reloads_under_load_fail_no_request_of_the_routes_that_stay() {
    let stay_a = mock("stay-a");
    let stay_b = mock("stay-b");
    let extra = mock("extra");
    let listener = free_addr();
    let stay = |with_b: bool| {
        let mut backends = vec![stay_a.addr()];
        if with_b {
            backends.push(stay_b.addr());
        }
        Route::new("stay", "stay.test", &backends)
    };
    let sluice = Sluice::start(&http_config(2, listener, &[stay(false)]));
    let load = Load::start(
        listener,
        "stay.test",
        "stay-",
        &[Mode::KeepAlive, Mode::NewConnections, Mode::KeepAlive],
    );
    load.wait_for_more(10);
    for round in 0..RELOADS {
        // Each round adds a cluster and removes the previous one, and adds or
        // removes a backend of the cluster that stays.
        let routes = [
            stay(round % 2 == 0),
            Route::new(
                &format!("extra{round}"),
                &format!("extra{round}.test"),
                &[extra.addr()],
            ),
        ];
        std::fs::write(sluice.config_path(), http_config(2, listener, &routes))
            .expect("rewrite the config");
        let answer = sluice.ctl_ok(&["reload"]);
        assert!(answer.contains("added"), "round {round}: {answer}");
        // The new route works as soon as `reload` returned, on either worker.
        for attempt in 0..4 {
            let host = format!("extra{round}.test");
            let response = get(listener, &host);
            assert!(
                matches!(&response, Ok(r) if served_by(r, "extra")),
                "round {round}, attempt {attempt}: {host} gave {response:?}\n{}",
                sluice.log()
            );
        }
        if round > 0 {
            let gone = get(listener, &format!("extra{}.test", round - 1));
            assert!(
                matches!(&gone, Ok(r) if r.status != 200),
                "round {round}: the removed route still answers: {gone:?}"
            );
        }
        load.wait_for_more(5);
    }
    let (succeeded, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the reloads: {:?}\n{}",
        failures.len(),
        succeeded + failures.len() as u64,
        &failures[..failures.len().min(10)],
        sluice.log()
    );
    assert!(stay_b.request_count() > 0, "stay-b was never used");
}

#[test]
fn sighup_reloads_the_config_file() {
    let old = mock("old");
    let late = mock("late");
    let listener = free_addr();
    let sluice = Sluice::start(&http_config(
        2,
        listener,
        &[Route::new("old", "old.test", &[old.addr()])],
    ));
    assert!(served_by(
        &get(listener, "old.test").expect("old route"),
        "old"
    ));
    let events = common::EventStream::subscribe(&sluice);
    events.wait_subscribed(&sluice);
    let routes = [
        Route::new("old", "old.test", &[old.addr()]),
        Route::new("late", "late.test", &[late.addr()]),
    ];
    std::fs::write(sluice.config_path(), http_config(2, listener, &routes))
        .expect("rewrite the config");
    sluice.signal("HUP");
    // Waited for by its effect: an event of the reloads that confirmed the subscription
    // may still be on its way.
    wait_until(
        "the new route to be served",
        Duration::from_secs(20),
        || get(listener, "late.test").is_ok_and(|r| served_by(&r, "late")),
    );
    events.wait_for("CONFIGURATION_RELOADED", Duration::from_secs(20), || {});
    for _ in 0..4 {
        let response = get(listener, "late.test");
        assert!(
            matches!(&response, Ok(r) if served_by(r, "late")),
            "{response:?}\n{}",
            sluice.log()
        );
    }
    let clusters = sluice.ctl_ok(&["cluster", "list"]);
    assert!(clusters.contains("late"), "{clusters}");
    wait_until(
        "the old route to go on working",
        Duration::from_secs(5),
        || get(listener, "old.test").is_ok_and(|r| served_by(&r, "old")),
    );
}
