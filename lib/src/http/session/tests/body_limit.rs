//! The listener's request body limit: 413 before anything reaches a backend
//! when the length is known, and as soon as a chunked body crosses it.

use super::*;

/// A session on a listener accepting bodies of at most 10 bytes.
fn limited() -> Harness {
    let mut h = Harness::new();
    h.max_request_body = Some(10);
    h
}

fn answered_413(h: &mut Harness) {
    let answer = h.flush_to_client();
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert_eq!(statuses(&h.take_logs()), vec![413]);
    assert_eq!(h.actions.last(), Some(&SessionAction::Close));
}

#[test]
fn a_content_length_over_the_limit_is_refused_before_any_backend() {
    let mut h = limited();
    h.client_sends(b"POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(h.session.back_pending(), b"", "nothing for a backend");
    assert!(
        !h.actions
            .iter()
            .any(|a| matches!(a, SessionAction::ConnectBackend { .. })),
        "no backend asked for: {:?}",
        h.actions
    );
    answered_413(&mut h);
    assert_eq!(h.started, 0, "no request started on a backend");
}

#[test]
fn expect_100_continue_over_the_limit_gets_413_and_no_100() {
    let mut h = limited();
    h.client_sends(
        b"PUT / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n",
    );
    assert_eq!(h.session.back_pending(), b"");
    let answer = h.flush_to_client();
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}

#[test]
fn bodies_exactly_at_the_limit_pass() {
    let mut h = limited();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_eq!(h.take_actions(), vec![connect_app_fresh()]);
    h.connected(None);
    assert!(h.flush_to_backend().ends_with("\r\n\r\n0123456789"));
    h.backend_sends(OK);
    assert!(h.flush_to_client().starts_with("HTTP/1.1 200 "));

    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.client_sends(b"4\r\n0123\r\n6\r\n456789\r\n0\r\n\r\n");
    assert!(h.flush_to_backend().ends_with("6\r\n456789\r\n0\r\n\r\n"));
    h.backend_sends(OK);
    assert!(h.flush_to_client().starts_with("HTTP/1.1 200 "));
    assert_eq!(h.take_statuses(), vec![200, 200]);
}

#[test]
fn a_chunked_body_crossing_the_limit_midway_drops_the_backend() {
    let mut h = limited();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.connected(None);
    h.client_sends(b"8\r\n01234567\r\n");
    let forwarded = h.flush_to_backend();
    assert!(forwarded.ends_with("8\r\n01234567\r\n"), "{forwarded}");
    // 8 + 3 announced: over 10 before the data arrives.
    h.client_sends(b"3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(h.flush_to_backend(), "", "nothing past the limit goes out");
    assert!(h.actions.contains(&SessionAction::CloseBackend));
    answered_413(&mut h);
}

#[test]
fn a_whole_chunked_body_over_the_limit_in_one_read_is_refused() {
    let mut h = limited();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.connected(None);
    h.client_sends(b"b\r\n0123456789a\r\n0\r\n\r\n");
    let forwarded = h.flush_to_backend();
    assert!(!forwarded.contains("0123456789a"), "{forwarded}");
    assert!(h.actions.contains(&SessionAction::CloseBackend));
    answered_413(&mut h);
}

#[test]
fn a_chunked_body_crossing_the_limit_after_the_response_started_closes() {
    let mut h = limited();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.connected(None);
    h.client_sends(b"5\r\n01234\r\n");
    h.flush_to_backend();
    // An early response head from the backend reaches the client first.
    h.backend_sends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(h.flush_to_client().starts_with("HTTP/1.1 200 "));
    h.client_sends(b"6\r\n56789a\r\n");
    assert_eq!(h.flush_to_backend(), "");
    assert_eq!(h.flush_to_client(), "", "no answer after a response byte");
    let actions = h.take_actions();
    assert!(
        actions.contains(&SessionAction::CloseBackend),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&SessionAction::Close));
}

#[test]
fn no_limit_lets_any_length_through() {
    let mut h = Harness::new();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1073741824\r\n\r\n");
    assert_eq!(h.take_actions(), vec![connect_app_fresh()]);
    assert!(h.logs.is_empty(), "no answer");
}
