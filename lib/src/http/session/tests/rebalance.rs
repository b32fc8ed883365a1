//! A session whose backend's weight or state changed: what it does with its
//! connection now and at its next request.

use super::*;

/// A session that finished one exchange and keeps its backend connection.
fn after_one_exchange() -> Harness {
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(OK);
    h.flush_to_client();
    assert_eq!(h.take_statuses(), vec![200]);
    h
}

#[test]
fn a_rebalanced_session_offers_its_connection_to_the_next_requests_balancing() {
    let mut h = after_one_exchange();
    h.with(|s, ctx| s.rebalance(false, ctx));
    assert!(
        h.take_actions().is_empty(),
        "nothing happens until a request"
    );
    h.balance_to_another = true;
    h.client_sends(GET);
    assert_eq!(
        h.take_actions(),
        vec![connect_app_current()],
        "the request is balanced; the loop keeps the connection only if its backend is picked"
    );
}

#[test]
fn an_idle_session_lets_a_drained_backend_go_at_once() {
    let mut h = after_one_exchange();
    h.with(|s, ctx| s.rebalance(true, ctx));
    assert_eq!(h.take_actions(), vec![SessionAction::ReleaseBackend]);
    h.client_sends(GET);
    assert_eq!(h.take_actions(), vec![connect_app()]);
}

#[test]
fn a_busy_session_finishes_its_exchange_on_a_drained_backend() {
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.take_actions();
    h.with(|s, ctx| s.rebalance(true, ctx));
    assert!(h.take_actions().is_empty(), "what is open finishes");
    h.backend_sends(OK);
    assert!(h.flush_to_client().ends_with("hi"));
    assert_eq!(
        h.take_actions(),
        vec![
            SessionAction::RequestFinished,
            SessionAction::ReleaseBackend
        ],
        "then the connection goes at once"
    );
    h.client_sends(GET);
    assert_eq!(h.take_actions(), vec![connect_app()]);
}
