//! Merging the health events of several workers into one line per transition.
//!
//! Each worker checks its backends on its own and reports its own transitions:
//! with N workers, a backend going down is N `BACKEND_DOWN` events. The merged
//! stream, which `sluice ctl events` shows by default, says it once: a backend
//! (or a cluster) is bad from the first worker that reports it bad until the last
//! one that saw it bad reports it good again. The first report of a transition
//! is published as it came (with its worker, time and reason); the others are
//! folded into it.
//!
//! Operator states (`BACKEND_DRAINING`, `BACKEND_MAINTENANCE`, `BACKEND_READY`)
//! are reported by every worker as it applies the change. They are counted per
//! backend and per worker: the n-th state change of a backend is published once,
//! by the first worker that reports it, whichever order the workers' reports
//! interleave in.

use std::collections::{BTreeSet, HashMap};

use sluice_command::proto::{Event, EventKind};

/// What a merged transition is about: a backend (`Some` backend id) or a whole
/// cluster (`None`), and which pair of event kinds it moves between.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Subject {
    pair: Pair,
    cluster: String,
    backend: Option<String>,
}

/// The two kinds of a transition that can be merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pair {
    /// `BACKEND_DOWN` / `BACKEND_UP`.
    BackendHealth,
    /// `NO_AVAILABLE_BACKENDS` / `CLUSTER_RECOVERED`.
    ClusterAvailability,
}

/// A backend, by cluster id and backend id.
type BackendKey = (String, String);

/// How many operator state changes of one backend were published, and how many
/// each worker reported.
#[derive(Debug, Default)]
struct StateChanges {
    published: u64,
    reported: HashMap<u32, u64>,
}

/// Which workers currently see each subject as bad, and the operator state
/// changes of each backend.
#[derive(Debug, Default)]
pub(crate) struct EventMerger {
    bad: HashMap<Subject, BTreeSet<u32>>,
    states: HashMap<BackendKey, StateChanges>,
}

impl EventMerger {
    /// Whether `event` (from the worker it names) starts or ends a proxy-wide
    /// transition and so belongs in the merged stream. Events of other kinds
    /// always do.
    pub(crate) fn admit(&mut self, event: &Event) -> bool {
        if let Some((backend, worker)) = state_change_of(event) {
            let changes = self.states.entry(backend).or_default();
            let count = changes.reported.entry(worker).or_default();
            *count += 1;
            if *count <= changes.published {
                return false;
            }
            changes.published = *count;
            return true;
        }
        let Some((subject, turns_bad)) = subject_of(event) else {
            return true;
        };
        let Some(worker) = event.worker_id else {
            return true;
        };
        if turns_bad {
            let workers = self.bad.entry(subject).or_default();
            let first = workers.is_empty();
            workers.insert(worker);
            first
        } else {
            let Some(workers) = self.bad.get_mut(&subject) else {
                // No worker saw it bad (or it was forgotten since): nothing to end.
                return false;
            };
            workers.remove(&worker);
            let last = workers.is_empty();
            if last {
                self.bad.remove(&subject);
            }
            last
        }
    }

    /// Forgets what `worker` saw, when it died: its replacement starts afresh and
    /// reports again what it finds bad.
    pub(crate) fn forget_worker(&mut self, worker: u32) {
        self.bad.retain(|_, workers| {
            workers.remove(&worker);
            !workers.is_empty()
        });
        // Its replacement is given the current states with the whole state and
        // reports only the changes after that: it starts level with what was published.
        for changes in self.states.values_mut() {
            changes.reported.insert(worker, changes.published);
        }
    }

    /// Forgets a removed cluster (and its backends), or one removed backend.
    pub(crate) fn forget(&mut self, cluster: &str, backend: Option<&str>) {
        self.bad.retain(|subject, _| {
            subject.cluster != cluster
                || (backend.is_some() && subject.backend.as_deref() != backend)
        });
        self.states.retain(|(cluster_id, backend_id), _| {
            cluster_id != cluster || (backend.is_some() && Some(backend_id.as_str()) != backend)
        });
    }
}

/// The backend and worker of an operator state change event.
fn state_change_of(event: &Event) -> Option<(BackendKey, u32)> {
    match EventKind::try_from(event.kind).ok()? {
        EventKind::BackendDraining | EventKind::BackendMaintenance | EventKind::BackendReady => {
            let backend = (event.cluster_id.clone()?, event.backend_id.clone()?);
            Some((backend, event.worker_id?))
        }
        _ => None,
    }
}

/// The subject of a mergeable event, and whether the event says it turned bad.
fn subject_of(event: &Event) -> Option<(Subject, bool)> {
    let kind = EventKind::try_from(event.kind).ok()?;
    let (pair, turns_bad, backend) = match kind {
        EventKind::BackendDown => (Pair::BackendHealth, true, event.backend_id.clone()),
        EventKind::BackendUp => (Pair::BackendHealth, false, event.backend_id.clone()),
        EventKind::NoAvailableBackends => (Pair::ClusterAvailability, true, None),
        EventKind::ClusterRecovered => (Pair::ClusterAvailability, false, None),
        _ => return None,
    };
    if pair == Pair::BackendHealth && backend.is_none() {
        return None;
    }
    let subject = Subject {
        pair,
        cluster: event.cluster_id.clone()?,
        backend,
    };
    Some((subject, turns_bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend_event(kind: EventKind, worker: u32, backend: &str) -> Event {
        Event {
            kind: kind as i32,
            worker_id: Some(worker),
            cluster_id: Some("api".to_owned()),
            backend_id: Some(backend.to_owned()),
            ..Default::default()
        }
    }

    fn cluster_event(kind: EventKind, worker: u32) -> Event {
        Event {
            kind: kind as i32,
            worker_id: Some(worker),
            cluster_id: Some("api".to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn a_transition_seen_by_every_worker_is_said_once_each_way() {
        let mut merger = EventMerger::default();
        let admitted: Vec<bool> = [
            backend_event(EventKind::BackendDown, 0, "a"),
            backend_event(EventKind::BackendDown, 1, "a"),
            backend_event(EventKind::BackendUp, 1, "a"),
            backend_event(EventKind::BackendUp, 0, "a"),
        ]
        .iter()
        .map(|event| merger.admit(event))
        .collect();
        assert_eq!(admitted, [true, false, false, true]);
    }

    #[test]
    fn backends_and_clusters_are_merged_apart() {
        let mut merger = EventMerger::default();
        assert!(merger.admit(&backend_event(EventKind::BackendDown, 0, "a")));
        assert!(merger.admit(&backend_event(EventKind::BackendDown, 0, "b")));
        assert!(merger.admit(&cluster_event(EventKind::NoAvailableBackends, 1)));
        assert!(!merger.admit(&cluster_event(EventKind::NoAvailableBackends, 0)));
        assert!(!merger.admit(&cluster_event(EventKind::ClusterRecovered, 0)));
        assert!(merger.admit(&cluster_event(EventKind::ClusterRecovered, 1)));
        assert!(merger.admit(&backend_event(EventKind::BackendUp, 0, "b")));
    }

    #[test]
    fn an_up_without_a_down_is_not_news_and_other_kinds_pass() {
        let mut merger = EventMerger::default();
        assert!(!merger.admit(&backend_event(EventKind::BackendUp, 0, "a")));
        assert!(merger.admit(&Event {
            kind: EventKind::WorkerCrashed as i32,
            worker_id: Some(0),
            ..Default::default()
        }));
    }

    #[test]
    fn a_dead_worker_or_a_removed_backend_is_forgotten() {
        let mut merger = EventMerger::default();
        assert!(merger.admit(&backend_event(EventKind::BackendDown, 0, "a")));
        merger.forget_worker(0);
        // Its replacement finds the backend down again: news again.
        assert!(merger.admit(&backend_event(EventKind::BackendDown, 0, "a")));
        merger.forget("api", Some("a"));
        assert!(merger.admit(&backend_event(EventKind::BackendDown, 1, "a")));
        assert!(merger.admit(&cluster_event(EventKind::NoAvailableBackends, 1)));
        merger.forget("api", None);
        assert!(!merger.admit(&backend_event(EventKind::BackendUp, 1, "a")));
        assert!(merger.admit(&cluster_event(EventKind::NoAvailableBackends, 1)));
    }

    fn state_event(kind: EventKind, worker: u32) -> Event {
        backend_event(kind, worker, "a")
    }

    #[test]
    fn each_state_change_is_said_once_whatever_the_workers_order() {
        let mut merger = EventMerger::default();
        let admitted: Vec<bool> = [
            state_event(EventKind::BackendDraining, 0),
            state_event(EventKind::BackendReady, 0),
            // Worker 1 lags behind: its two reports are the same two changes.
            state_event(EventKind::BackendDraining, 1),
            state_event(EventKind::BackendReady, 1),
            state_event(EventKind::BackendMaintenance, 1),
            state_event(EventKind::BackendMaintenance, 0),
        ]
        .iter()
        .map(|event| merger.admit(event))
        .collect();
        assert_eq!(admitted, [true, true, false, false, true, false]);
        // Another backend has its own count.
        assert!(merger.admit(&backend_event(EventKind::BackendDraining, 1, "b")));
    }

    #[test]
    fn a_respawned_worker_does_not_repeat_or_block_state_changes() {
        let mut merger = EventMerger::default();
        assert!(merger.admit(&state_event(EventKind::BackendDraining, 0)));
        merger.forget_worker(0);
        // The replacement reports only later changes, which are news.
        assert!(merger.admit(&state_event(EventKind::BackendReady, 0)));
        merger.forget("api", Some("a"));
        // A backend added again under the same id starts afresh.
        assert!(merger.admit(&state_event(EventKind::BackendDraining, 1)));
    }
}
