//! Replaying a request once when a kept backend connection turns out closed.

use super::*;

/// One request answered on a fresh connection, so the next one reuses it.
pub(super) fn reused_backend() -> Harness {
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(OK);
    h.flush_to_client();
    h.take_statuses();
    h
}

#[test]
fn idle_closed_backend_connection_is_replayed_once() {
    for error in [false, true] {
        let mut h = reused_backend();
        h.client_sends(GET);
        let first = h.flush_to_backend();
        assert!(first.starts_with("GET /x HTTP/1.1\r\n"));
        if error {
            h.with(|s, ctx| s.backend_closed_with_error(ctx));
        } else {
            h.with(|s, ctx| s.back_received(0, ctx));
        }
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
        assert_eq!(h.pool.out, 0);
    }
    // Only once: the fresh connection closing too is a 502.
    let mut h = reused_backend();
    h.client_sends(GET);
    h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    h.connected(None);
    h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 502 "));
}

#[test]
fn no_replay_with_a_body_or_after_a_response_byte() {
    let mut h = reused_backend();
    h.client_sends(b"POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi");
    h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 502 "));
    let mut h = reused_backend();
    h.client_sends(b"PUT /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi");
    h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 502 "));
    let mut h = reused_backend();
    h.client_sends(GET);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 200");
    h.with(|s, ctx| s.back_received(0, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 502 "));
    assert_eq!(h.take_actions().last(), Some(&SessionAction::Close));
    h.with(|s, ctx| s.release_buffers(ctx.buffers));
    assert_eq!(h.pool.out, 0);
}
