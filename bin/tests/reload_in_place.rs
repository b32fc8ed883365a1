//! Reloads apply as one transaction per worker and change things in place: a frontend
//! moved between clusters never answers 404, a cluster whose backends are all replaced
//! never answers 503, and a listener whose settings change keeps its socket.

mod common;

use std::net::SocketAddr;

use common::http::{http_config, mock, Load, Mode, Route};
use common::Sluice;
use sluice_e2e::free_addr;

/// Reloads of the alternation tests.
const RELOADS: usize = 20;

/// Step `step` of the alternation: `moving.test` routed to cluster a or b, cluster
/// `swap` sent to one backend or the other, and the listener's request timeout changed.
fn alternating_config(
    listener: SocketAddr,
    movers: [SocketAddr; 2],
    swaps: [SocketAddr; 2],
    step: usize,
) -> String {
    let even = step % 2 == 0;
    let (a_host, b_host) = if even {
        ("moving.test", "b-only.test")
    } else {
        ("a-only.test", "moving.test")
    };
    let routes = [
        Route::new("a", a_host, &movers[..1]),
        Route::new("b", b_host, &movers[1..]),
        Route::new("swap", "swap.test", &swaps[step % 2..step % 2 + 1]),
    ];
    let listener_line = format!("address = \"{listener}\"\n");
    http_config(2, listener, &routes).replacen(
        &listener_line,
        &format!("{listener_line}request_timeout = \"{}s\"\n", 10 + step),
        1,
    )
}

#[test]
fn reloads_move_frontends_and_replace_backends_without_a_404_a_503_or_a_refused_connection() {
    let movers = [mock("mover-a"), mock("mover-b")];
    let swaps = [mock("swap-1"), mock("swap-2")];
    let movers_at = [movers[0].addr(), movers[1].addr()];
    let swaps_at = [swaps[0].addr(), swaps[1].addr()];
    let listener = free_addr();
    let sluice = Sluice::start(&alternating_config(listener, movers_at, swaps_at, 0));
    let moving = Load::start(listener, "moving.test", "mover-", &[Mode::KeepAlive]);
    let swapped = Load::start(
        listener,
        "swap.test",
        "swap-",
        &[Mode::KeepAlive, Mode::NewConnections],
    );
    moving.wait_for_more(5);
    swapped.wait_for_more(5);
    for step in 1..=RELOADS {
        let config = alternating_config(listener, movers_at, swaps_at, step);
        std::fs::write(sluice.config_path(), config).expect("rewrite the config");
        sluice.ctl_ok(&["reload"]);
        moving.wait_for_more(3);
        swapped.wait_for_more(3);
    }
    let listed = sluice.ctl_ok(&["listener", "list"]);
    assert!(
        listed.to_string().contains("30s"),
        "the last reload's request timeout is applied: {listed}"
    );
    for (what, load) in [("moving frontend", moving), ("swapped backends", swapped)] {
        let (succeeded, failures) = load.stop();
        assert!(
            failures.is_empty(),
            "{what}: {} of {} requests failed across {RELOADS} reloads: {:?}",
            failures.len(),
            succeeded + failures.len() as u64,
            &failures[..failures.len().min(10)]
        );
    }
}
