use proptest::prelude::*;

use super::*;

fn client(i: usize) -> Event {
    Event::ClientSends(CLIENT_SENDS[i].to_vec())
}

fn backend(i: usize) -> Event {
    Event::BackendSends(BACKEND_SENDS[i].to_vec())
}

/// Everything readable and writable once, client side first.
fn pump() -> [Event; 4] {
    [
        Event::FrontReadable { max: usize::MAX },
        Event::BackWritable { max: usize::MAX },
        Event::BackReadable { max: usize::MAX },
        Event::FrontWritable { max: usize::MAX },
    ]
}

#[test]
fn keep_alive_exchanges_reach_the_backend_and_back() {
    let mut events = vec![client(0)];
    events.extend(pump());
    events.push(Event::Connect(ConnectOutcome::Connected(None)));
    events.extend(pump());
    events.push(backend(0));
    events.extend(pump());
    events.push(client(1));
    events.extend(pump());
    events.push(Event::Connect(ConnectOutcome::Reused(Some("b1"))));
    events.extend(pump());
    events.push(backend(1));
    events.extend(pump());
    events.push(Event::ClientCloses);
    events.extend(pump());
    let summary = run(events, None).expect("no violation");
    assert_eq!(summary.requests_finished, 2);
    assert_eq!(summary.backend_answers, 2);
    assert_eq!(
        summary.backend_connections, 2,
        "example.com, then other.com"
    );
    assert!(summary.closed_by_session);
    assert!(summary.bytes_to_backends > 0 && summary.bytes_to_client > 0);
}

/// The sequences of the defects the fuzz target found, through the harness.
#[test]
fn early_responses_and_ignored_answers_hold_every_oracle() {
    let head_unsent = [
        client(0),
        Event::FrontReadable { max: usize::MAX },
        Event::Connect(ConnectOutcome::Connected(None)),
        backend(1),
        Event::BackReadable { max: usize::MAX },
        Event::FrontWritable { max: usize::MAX },
        client(1),
        Event::FrontReadable { max: usize::MAX },
        Event::Connect(ConnectOutcome::Connected(None)),
        Event::BackWritable { max: usize::MAX },
    ];
    let summary = run(head_unsent, None).expect("no violation");
    assert!(summary.closed_by_session);
    assert_eq!(summary.bytes_to_backends, 0);

    let body_unsent = [
        client(7),
        Event::FrontReadable { max: usize::MAX },
        Event::Connect(ConnectOutcome::Connected(None)),
        Event::BackWritable { max: 1 },
        backend(1),
        Event::BackReadable { max: usize::MAX },
        Event::FrontWritable { max: usize::MAX },
        Event::BackWritable { max: usize::MAX },
        Event::Connect(ConnectOutcome::Connected(None)),
        Event::BackWritable { max: usize::MAX },
    ];
    let summary = run(body_unsent, None).expect("no violation");
    assert_eq!(
        (summary.backend_answers, summary.backend_connections),
        (1, 1)
    );

    let unread_answer = [
        client(13),
        Event::FrontReadable { max: usize::MAX },
        Event::TimerFires,
    ];
    let summary = run(unread_answer, None).expect("no violation");
    assert!(summary.closed_by_session, "the front timer closes");

    let switching_head_untaken = [
        client(11),
        Event::FrontReadable { max: usize::MAX },
        Event::Connect(ConnectOutcome::Connected(None)),
        backend(5),
        Event::BackReadable { max: usize::MAX },
        Event::TimerFires,
    ];
    let summary = run(switching_head_untaken, None).expect("no violation");
    assert!(summary.switching && !summary.upgraded, "{summary:?}");
    assert!(
        summary.pipe_finished,
        "the session logs the upgrade it closes"
    );
    assert!(summary.closed_by_session);
}

#[test]
fn fuzzer_bytes_decode_into_events() {
    let events: Vec<Event> =
        EventReader::new(&[0, 1, 29, 24, 0, 7, 30, 12, 0x81, b'a', b'b']).collect();
    assert_eq!(
        events,
        vec![
            client(1),
            Event::FrontReadable { max: usize::MAX },
            Event::Connect(ConnectOutcome::Connected(Some("b1"))),
            Event::BackWritable { max: usize::MAX },
            Event::BackendSends(b"ab".to_vec()),
        ]
    );
    assert_eq!(run_bytes(&[]), Ok(Summary::default()));
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..48, Just(usize::MAX)]
}

fn sticky() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), Just(Some("b1")), Just(Some("b2"))]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..CLIENT_SENDS.len()).prop_map(client),
        1 => proptest::collection::vec(any::<u8>(), 1..24).prop_map(Event::ClientSends),
        1 => Just(Event::ClientCloses),
        4 => size().prop_map(|max| Event::FrontReadable { max }),
        4 => size().prop_map(|max| Event::FrontWritable { max }),
        4 => (0..BACKEND_SENDS.len()).prop_map(backend),
        1 => proptest::collection::vec(any::<u8>(), 1..24).prop_map(Event::BackendSends),
        1 => Just(Event::BackendCloses),
        4 => size().prop_map(|max| Event::BackReadable { max }),
        4 => size().prop_map(|max| Event::BackWritable { max }),
        1 => Just(Event::BackendBroken),
        2 => sticky().prop_map(|s| Event::Connect(ConnectOutcome::Connected(s))),
        2 => sticky().prop_map(|s| Event::Connect(ConnectOutcome::Reused(s))),
        1 => Just(Event::Connect(ConnectOutcome::Failed)),
        1 => Just(Event::Connect(ConnectOutcome::Unavailable)),
        1 => Just(Event::TimerFires),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_hold_every_oracle(
        events in proptest::collection::vec(event(), 0..80),
        limit in prop_oneof![Just(None), Just(Some(64u64))],
    ) {
        if let Err(violation) = run(events, limit) {
            prop_assert!(false, "{}", violation);
        }
    }
}
