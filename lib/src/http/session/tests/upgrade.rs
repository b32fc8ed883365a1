//! A 101 turns the session into a byte pipe that the loop takes over; a switching head
//! the client never takes is logged when the session closes.

use super::*;

#[test]
fn upgrade_hands_the_connection_over_as_a_pipe() {
    let mut h = Harness::new();
    let request = "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    h.client_sends(request.as_bytes());
    h.connected(None);
    let forwarded = h.flush_to_backend();
    assert!(
        forwarded.contains("Upgrade: websocket\r\n")
            && forwarded.contains("Connection: upgrade\r\n")
    );
    h.backend_sends(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nserver-frame");
    // Only the switching head: what follows is the pipe's.
    let head = h.flush_to_client();
    assert_eq!(
        head,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    );
    assert!(h.take_actions().contains(&SessionAction::Upgraded));
    // The request is over when the 101 passed (metrics count it then).
    let at_switch = h.take_logs();
    assert_eq!(statuses(&at_switch), vec![101]);
    assert_eq!(at_switch[0].termination, Termination::Upgraded);

    let mut handover = None;
    h.with(|s, ctx| handover = s.take_pipe(ctx));
    let handover = handover.expect("the connection is handed over");
    let backend_bytes = handover.backend_bytes.expect("bytes after the head");
    assert_eq!(backend_bytes.bytes(), b"server-frame");
    assert!(handover.client_bytes.is_none());
    assert_eq!(handover.log.status, 101);
    assert_eq!(handover.log.termination, Termination::Upgraded);
    assert_eq!(handover.log.bytes_in, request.len() as u64);
    assert_eq!(handover.log.bytes_out, head.len() as u64);
    // The session is done: it wants nothing more and asks nothing of the loop.
    assert_eq!(h.session.wants(), Interest::default());
    assert_eq!(h.session.expected_timeout(), None);
    assert!(h.take_actions().is_empty());
}

#[test]
fn an_upgrade_whose_head_the_client_never_takes_is_logged_at_close() {
    let mut h = Harness::new();
    h.client_sends(b"GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    h.take_actions();
    h.take_logs();
    assert_eq!(h.session.expected_timeout(), Some(TimeoutKind::Front));
    h.with(|s, ctx| s.timed_out(TimeoutKind::Front, ctx));
    let actions = h.take_actions();
    assert!(
        actions.contains(&SessionAction::PipeFinished),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&SessionAction::Close));
    let logs = h.take_logs();
    assert_eq!(statuses(&logs), vec![101]);
    assert_eq!(logs[0].termination, Termination::Upgraded);
}
