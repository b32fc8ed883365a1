//! Fan-out of events to every `sluice ctl events` subscriber.
//!
//! Workers' health events are merged ([`EventMerger`]) into one event per
//! proxy-wide transition; a subscriber may ask for every worker's own events
//! instead (`sluice ctl events --per-worker`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use log::{debug, info};
use sluice_command::proto::{self, Event};

use super::event_merge::EventMerger;
use super::lock;

/// One subscriber of the event stream.
#[derive(Debug)]
struct Subscriber {
    sender: mpsc::Sender<Event>,
    /// Every worker's own events rather than the merged stream.
    per_worker: bool,
}

/// The subscribers of the event stream. A subscriber that went away is
/// dropped at the next event without affecting the others.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    subscribers: Mutex<Vec<Subscriber>>,
    merger: Mutex<EventMerger>,
    /// Events handed to subscribers and not yet written to them.
    undelivered: AtomicUsize,
}

impl EventHub {
    /// A new subscription: every event published from now on, merged across
    /// workers unless `per_worker`.
    pub(crate) fn subscribe(&self, per_worker: bool) -> mpsc::Receiver<Event> {
        let (sender, receiver) = mpsc::channel();
        lock(&self.subscribers).push(Subscriber { sender, per_worker });
        receiver
    }

    /// Logs an event of the main process's own (a reload, a worker's crash) and sends it
    /// to every live subscriber, stamped with the time now.
    pub(crate) fn publish(&self, event: Event) {
        if event.kind == proto::EventKind::WorkerCrashed as i32 {
            if let Some(worker) = event.worker_id {
                lock(&self.merger).forget_worker(worker);
            }
        }
        self.send(stamped(event), true);
    }

    /// A worker's event: sent to every per-worker subscriber, and to the others when it
    /// starts or ends a proxy-wide transition (then logged at info level; the folded
    /// ones at debug level).
    pub(crate) fn publish_from_worker(&self, event: Event) {
        let event = stamped(event);
        let news = lock(&self.merger).admit(&event);
        self.send(event, news);
    }

    /// Forgets the merged health of a removed cluster (`None`) or backend.
    pub(crate) fn forget(&self, cluster: &str, backend: Option<&str>) {
        lock(&self.merger).forget(cluster, backend);
    }

    fn send(&self, event: Event, news: bool) {
        if news {
            info!("event: {}", describe(&event));
        } else {
            debug!(
                "event (already reported by another worker): {}",
                describe(&event)
            );
        }
        lock(&self.subscribers).retain(|subscriber| {
            if !news && !subscriber.per_worker {
                return true;
            }
            let sent = subscriber.sender.send(event.clone()).is_ok();
            if sent {
                self.undelivered.fetch_add(1, Ordering::SeqCst);
            }
            sent
        });
    }

    /// A subscriber's connection took (or refused) one event.
    pub(crate) fn delivered(&self) {
        let _ = self
            .undelivered
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Waits (up to `timeout`) until every event sent so far was written to its subscriber:
    /// a main process that hands over tells its subscribers before it exits.
    pub(crate) fn wait_delivered(&self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.undelivered.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// How many subscribers are connected (as of the last event).
    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        lock(&self.subscribers).len()
    }
}

/// `event`, stamped with the time now if its worker did not stamp it.
fn stamped(mut event: Event) -> Event {
    if event.timestamp_ms.is_none() {
        event.timestamp_ms = Some(unix_millis());
    }
    event
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
        let first = hub.subscribe(false);
        let second = hub.subscribe(false);
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

    #[test]
    fn merged_subscribers_get_one_event_per_transition_per_worker_ones_get_all() {
        let hub = EventHub::default();
        let merged = hub.subscribe(false);
        let raw = hub.subscribe(true);
        for worker in [0, 1] {
            hub.publish_from_worker(Event {
                kind: proto::EventKind::BackendDown as i32,
                worker_id: Some(worker),
                cluster_id: Some("api".to_owned()),
                backend_id: Some("web1".to_owned()),
                ..Default::default()
            });
        }
        assert_eq!(merged.try_iter().count(), 1);
        assert_eq!(raw.try_iter().count(), 2);
    }
}
