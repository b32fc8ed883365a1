//! A session the loop drops in the middle of an exchange (a socket broke, a
//! timer of the loop's own fired) gives every pooled buffer back, and a broken client
//! connection logs the exchange under way.

use super::*;

#[test]
fn a_session_dropped_mid_exchange_gives_every_buffer_back() {
    let mut h = Harness::new();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nabc");
    h.connected(None);
    h.backend_sends(b"HTTP/1.1 200 OK\r\n");
    assert!(!h.session.back_pending().is_empty(), "the head is unsent");
    h.with(|s, ctx| s.release_buffers(ctx.buffers));
    assert!(
        h.pool.out > 0,
        "bytes in flight keep their buffers while the session lives"
    );
    h.with(|s, ctx| s.release_all_buffers(ctx.buffers));
    assert_eq!(h.pool.out, 0);
    assert_eq!(h.session.wants(), Interest::default());
    assert_eq!(h.session.expected_timeout(), None);
    assert!(h.session.back_pending().is_empty() && h.session.front_pending().is_empty());
}

#[test]
fn a_broken_client_connection_logs_the_exchange_under_way() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    h.connected(None);
    h.flush_to_backend();
    h.take_actions();
    h.with(|s, ctx| s.front_broken(ctx));
    let actions = h.take_actions();
    assert!(
        actions.contains(&SessionAction::RequestFinished),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&SessionAction::Close));
    let logs = h.take_logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].termination, Termination::ClientAbort);
}
