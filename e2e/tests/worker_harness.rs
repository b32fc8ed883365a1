//! The worker harness against a fake worker thread on the other end of its
//! channel: request ids, event queueing, OK/failure expectations.

use std::process::Command;
use std::thread;
use std::time::Duration;

use sluice_command::channel::{channel_pair, Channel};
use sluice_command::proto::{self, request::RequestType, worker_message::MessageType};
use sluice_e2e::{free_addr, requests, ChildGuard, WorkerHarness};

const DEADLINE: Duration = Duration::from_secs(5);

fn event(kind: proto::EventKind, backend: &str) -> proto::WorkerMessage {
    proto::WorkerMessage {
        message_type: Some(MessageType::Event(proto::Event {
            kind: kind as i32,
            worker_id: Some(7),
            cluster_id: None,
            backend_id: Some(backend.to_owned()),
            ..Default::default()
        })),
    }
}

fn response(id: &str, status: proto::ResponseStatus, message: &str) -> proto::WorkerMessage {
    proto::WorkerMessage {
        message_type: Some(MessageType::Response(proto::WorkerResponse {
            id: id.to_owned(),
            status: status as i32,
            message: message.to_owned(),
            content: None,
        })),
    }
}

/// Before each answer: an event and a response to another id. Hard stops
/// are refused; everything else is accepted.
fn fake_worker(mut channel: Channel<proto::WorkerMessage, proto::WorkerRequest>) {
    let mut answered = 0;
    while let Ok(request) = channel.read_message() {
        answered += 1;
        let backend = format!("b{answered}");
        let down = proto::EventKind::BackendDown;
        let status = match request.content.request_type {
            Some(RequestType::HardStop(_)) => proto::ResponseStatus::Failure,
            _ => proto::ResponseStatus::Ok,
        };
        let frames = [
            event(down, &backend),
            response("not-this-one", proto::ResponseStatus::Ok, ""),
            response(&request.id, status, "refused by the fake"),
        ];
        for frame in &frames {
            if channel.write_message(frame).is_err() {
                return;
            }
        }
    }
}

fn harness() -> WorkerHarness {
    let (ours, theirs) = channel_pair().expect("socket pair");
    thread::spawn(move || fake_worker(theirs));
    let mut stand_in = Command::new("sleep");
    stand_in.arg("30");
    let child = ChildGuard::spawn(stand_in, "stand-in").expect("spawn sleep");
    WorkerHarness::from_parts(7, ours, child)
}

#[test]
fn responses_are_matched_by_id_and_events_are_queued() {
    let mut worker = harness();
    let addr = free_addr();
    worker.expect_ok(&requests::add_tcp_listener(addr));
    worker.expect_ok(&requests::activate(addr, proto::ListenerProtocol::Tcp));
    assert_eq!(
        worker.expect_failure(&requests::hard_stop()),
        "refused by the fake"
    );
    let backends: Vec<_> = worker
        .events_seen()
        .iter()
        .map(|e| e.backend_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(backends, ["b1", "b2", "b3"]);
    let first = worker.wait_event(proto::EventKind::BackendDown, DEADLINE);
    assert_eq!(first.backend_id.as_deref(), Some("b1"));
    let second = worker.wait_event(proto::EventKind::BackendDown, DEADLINE);
    assert_eq!(second.backend_id.as_deref(), Some("b2"));
}

#[test]
#[should_panic(expected = "waiting for event BackendUp")]
fn waiting_for_an_event_that_never_comes_fails_with_what_was_seen() {
    let mut worker = harness();
    worker.expect_ok(&requests::query_metrics());
    worker.wait_event(proto::EventKind::BackendUp, Duration::from_millis(200));
}

#[test]
#[should_panic(expected = "refused")]
fn expect_ok_fails_on_a_refusal() {
    let mut worker = harness();
    worker.expect_ok(&requests::hard_stop());
}
