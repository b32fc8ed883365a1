//! Event orders the loop may produce that the fuzz target found mishandled: a
//! response that ends before its request was entirely sent, and a timer while
//! Sluice writes an answer of its own.

use super::*;

/// The request head is still unsent (the backend answered before the loop
/// wrote anything): the response closes both connections, and the head is
/// dropped instead of going out in front of the next request.
#[test]
fn a_response_before_the_request_head_was_written_closes_both_sides() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    h.connected(None);
    assert_eq!(h.take_actions(), vec![connect_app()]);
    h.backend_sends(b"HTTP/1.1 204 \r\n\r\n");
    let response = h.flush_to_client();
    assert!(response.starts_with("HTTP/1.1 204 "), "{response}");
    assert!(response.contains("Connection: close\r\n"), "{response}");
    assert_eq!(h.flush_to_backend(), "", "the unsent head is dropped");
    assert_eq!(
        h.take_actions(),
        vec![
            SessionAction::RequestFinished,
            SessionAction::CloseBackend,
            SessionAction::Close
        ]
    );
    let next = b"GET / HTTP/1.1\r\nHost: other.com\r\n\r\n";
    assert_eq!(h.client_sends(next), 0, "no request after the close");
    assert_eq!(h.flush_to_backend(), "");
    h.with(|s, ctx| s.release_buffers(ctx.buffers));
    assert_eq!(h.pool.out, 0);
}

/// Only the head of a POST went out, its whole body waits in the client
/// buffer, and the backend answers at once: the body is dropped with the
/// connection, never parsed as a request of its own.
#[test]
fn a_body_left_unsent_by_an_early_response_is_never_parsed_as_a_request() {
    let mut h = Harness::new();
    let body = b"GET / HTTP/1.1\r\nHost:other.com\r\n\r\n";
    assert_eq!(body.len(), 34);
    let mut request =
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 34\r\n\r\n".to_vec();
    request.extend_from_slice(body);
    assert_eq!(h.client_sends(&request), request.len());
    h.connected(None);
    let pending = h.session.back_pending().to_vec();
    assert!(pending.starts_with(b"POST / HTTP/1.1\r\n") && pending.ends_with(b"\r\n\r\n"));
    h.with(|s, ctx| s.back_written(pending.len(), ctx));
    h.backend_sends(b"HTTP/1.1 204 \r\n\r\n");
    let response = h.flush_to_client();
    assert!(response.contains("Connection: close\r\n"), "{response}");
    assert_eq!(
        h.flush_to_backend(),
        "",
        "the body is not sent after the response"
    );
    let actions = h.take_actions();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, SessionAction::ConnectBackend { cluster_id, .. } if &**cluster_id == "other")),
        "the body was routed as a request: {actions:?}"
    );
    assert_eq!(
        actions,
        vec![
            connect_app_fresh(),
            SessionAction::RequestFinished,
            SessionAction::CloseBackend,
            SessionAction::Close
        ]
    );
    assert_eq!(statuses(&h.take_logs()), vec![204]);
    assert_eq!(h.pool.out, 0, "closed: every buffer went back");
}

/// A client that never reads Sluice's own answer is closed when the front
/// timer fires, as the session asked for that timer.
#[test]
fn the_front_timeout_closes_a_client_that_does_not_take_its_answer() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: nowhere.com\r\n\r\n");
    assert!(h.session.front_pending().starts_with(b"HTTP/1.1 404 "));
    assert_eq!(h.session.expected_timeout(), Some(TimeoutKind::Front));
    h.take_actions();
    h.with(|s, ctx| s.timed_out(TimeoutKind::Front, ctx));
    assert_eq!(h.take_actions(), vec![SessionAction::Close]);
    assert_eq!(h.session.wants(), Interest::default());
    assert_eq!(h.session.expected_timeout(), None);
    assert_eq!(h.pool.out, 0);
}
