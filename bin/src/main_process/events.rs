//! Fan-out of events to every `sluice ctl events` subscriber.

use std::sync::{mpsc, Mutex};

use log::info;
use sluice_command::proto::{self, Event};

use super::lock;

/// The subscribers of the event stream. A subscriber that went away is
/// dropped at the next event without affecting the others.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
}

impl EventHub {
    /// A new subscription: every event published from now on.
    pub(crate) fn subscribe(&self) -> mpsc::Receiver<Event> {
        let (sender, receiver) = mpsc::channel();
        lock(&self.subscribers).push(sender);
        receiver
    }

    /// Logs `event` and sends it to every live subscriber, stamped with the time now if its
    /// worker did not stamp it.
    pub(crate) fn publish(&self, mut event: Event) {
        if event.timestamp_ms.is_none() {
            event.timestamp_ms = Some(unix_millis());
        }
        info!("event: {}", describe(&event));
        lock(&self.subscribers).retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }

    /// How many subscribers are connected (as of the last event).
    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        lock(&self.subscribers).len()
    }
}

fn describe(event: &Event) -> String {
    let kind = proto::EventKind::try_from(event.kind)
        .map(|k| k.as_str_name())
        .unwrap_or("UNKNOWN");
    let mut text = kind.to_owned();
    if let Some(id) = event.worker_id {
        text.push_str(&format!(" worker={id}"));
    }
    for (key, value) in [
        ("cluster", &event.cluster_id),
        ("backend", &event.backend_id),
        ("address", &event.address),
    ] {
        if let Some(value) = value {
            text.push_str(&format!(" {key}={value}"));
        }
    }
    if let Some(reason) = &event.reason {
        text.push_str(&format!(" reason=\"{reason}\""));
    }
    text
}

/// Now, in milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: proto::EventKind) -> Event {
        Event {
            kind: kind as i32,
            ..Default::default()
        }
    }

    #[test]
    fn every_subscriber_gets_every_event_and_gone_ones_are_dropped() {
        let hub = EventHub::default();
        let first = hub.subscribe();
        let second = hub.subscribe();
        hub.publish(event(proto::EventKind::BackendDown));
        let received = first.try_recv().expect("an event");
        assert_eq!(received.kind, proto::EventKind::BackendDown as i32);
        assert!(received.timestamp_ms.is_some_and(|ms| ms > 0), "stamped");
        assert_eq!(
            second.try_recv().map(|e| e.kind),
            Ok(proto::EventKind::BackendDown as i32)
        );
        drop(first);
        hub.publish(event(proto::EventKind::BackendUp));
        assert_eq!(hub.subscriber_count(), 1);
        assert_eq!(
            second.try_recv().map(|e| e.kind),
            Ok(proto::EventKind::BackendUp as i32)
        );
    }
}
