//! When the session leaves its backend connection for reuse, and what it asks
//! of a kept connection.

use super::replay::reused_backend as answered_once;
use super::*;

#[test]
fn a_client_leaving_between_requests_releases_the_backend() {
    let mut h = answered_once();
    h.with(|s, ctx| s.front_received(0, ctx));
    assert_eq!(
        h.take_actions(),
        vec![SessionAction::ReleaseBackend, SessionAction::Close]
    );
    let mut h = answered_once();
    h.with(|s, ctx| s.timed_out(TimeoutKind::Front, ctx));
    assert_eq!(
        h.take_actions(),
        vec![SessionAction::ReleaseBackend, SessionAction::Close]
    );
}

#[test]
fn a_backend_that_closes_or_an_unfinished_exchange_is_not_released() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi");
    h.flush_to_client();
    let actions = h.take_actions();
    assert!(
        actions.contains(&SessionAction::CloseBackend),
        "{actions:?}"
    );
    assert!(!actions.contains(&SessionAction::ReleaseBackend));

    // The client leaves in the middle of a request body.
    let mut h = Harness::new();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nabc");
    h.connected(None);
    h.flush_to_backend();
    h.with(|s, ctx| s.front_received(0, ctx));
    let actions = h.take_actions();
    assert!(
        !actions.contains(&SessionAction::ReleaseBackend),
        "{actions:?}"
    );

    // A response framed by the backend's close.
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 200 OK\r\n\r\nbody");
    h.with(|s, ctx| s.back_received(0, ctx));
    h.flush_to_client();
    let actions = h.take_actions();
    assert!(
        !actions.contains(&SessionAction::ReleaseBackend),
        "{actions:?}"
    );

    // An upgrade.
    let mut h = Harness::new();
    h.client_sends(
        b"GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    h.flush_to_client();
    h.with(|s, ctx| s.front_received(0, ctx));
    h.with(|s, ctx| s.back_received(0, ctx));
    let actions = h.take_actions();
    assert!(actions.contains(&SessionAction::Upgraded), "{actions:?}");
    assert!(
        !actions.contains(&SessionAction::ReleaseBackend),
        "{actions:?}"
    );
}

#[test]
fn only_replayable_requests_may_take_a_kept_connection() {
    let mut h = Harness::new();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(h.take_actions(), vec![connect_app_fresh()]);
    let mut h = Harness::new();
    h.client_sends(b"DELETE / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(h.take_actions(), vec![connect_app_fresh()], "a body");
    let mut h = Harness::new();
    h.client_sends(b"PATCH / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(
        h.take_actions(),
        vec![connect_app_fresh()],
        "not idempotent"
    );
}

#[test]
fn a_kept_connection_closed_before_answering_is_replaced_by_a_fresh_one() {
    let mut h = Harness::new();
    h.client_sends(GET);
    assert_eq!(h.take_actions(), vec![connect_app()]);
    h.with(|s, ctx| s.backend_reused(None, ctx));
    let first = h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert_eq!(
        h.take_actions(),
        vec![SessionAction::CloseBackend, connect_app_fresh()]
    );
    assert_eq!(h.flush_to_client(), "", "no 502");
    h.connected(None);
    assert_eq!(h.flush_to_backend(), first, "the same request again");
    h.backend_sends(OK);
    assert!(h.flush_to_client().ends_with("hi"));
    assert_eq!(h.take_statuses(), vec![200]);

    // On a fresh connection the same close is the backend's failure.
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 502"));
}
