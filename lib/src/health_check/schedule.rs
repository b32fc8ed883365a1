//! When each backend of one cluster is probed: sans-IO, driven by the time it is given.
//!
//! Every backend has one slot: waiting for its next probe, or probing (at most one probe in
//! flight per backend). Backends first seen together are spread over the interval, so a
//! cluster's probes do not all leave at once; a backend added later is first probed within
//! its first interval.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where one backend's probing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// No probe in flight; the next one starts at `due`.
    Waiting {
        /// When the next probe starts.
        due: Instant,
    },
    /// A probe is in flight.
    Probing {
        /// The probe's key in the checker's slab.
        key: usize,
        /// When it started; the next one starts an interval later.
        started: Instant,
        /// When it times out.
        deadline: Instant,
    },
}

/// The probe slots of one cluster's backends.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    interval: Duration,
    timeout: Duration,
    slots: HashMap<SocketAddr, Slot>,
}

impl Schedule {
    /// A schedule without backends.
    pub(crate) fn new(interval: Duration, timeout: Duration) -> Self {
        Schedule {
            interval,
            timeout,
            slots: HashMap::new(),
        }
    }

    /// The slot of a backend, if it is known.
    pub(crate) fn slot(&self, address: &SocketAddr) -> Option<&Slot> {
        self.slots.get(address)
    }

    /// Follows the cluster's current backends: the one at index `i` of `n`, seen for the first
    /// time, is first due at `now + i × interval / n`; backends that left are forgotten and the
    /// keys of their probes in flight returned, for the caller to drop.
    pub(crate) fn sync(&mut self, backends: &[SocketAddr], now: Instant) -> Vec<usize> {
        let current: HashSet<&SocketAddr> = backends.iter().collect();
        let mut dropped = Vec::new();
        self.slots.retain(|address, slot| {
            let keep = current.contains(address);
            if let (false, Slot::Probing { key, .. }) = (keep, slot) {
                dropped.push(*key);
            }
            keep
        });
        let count = backends.len() as u128;
        for (index, address) in backends.iter().enumerate() {
            self.slots.entry(*address).or_insert_with(|| {
                let offset = self.interval.as_nanos() * index as u128 / count;
                let offset = Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
                Slot::Waiting { due: now + offset }
            });
        }
        dropped
    }

    /// [`Schedule::sync`], adding the keys of the dropped probes to `dropped`.
    pub(crate) fn sync_into(
        &mut self,
        backends: &[SocketAddr],
        now: Instant,
        dropped: &mut Vec<usize>,
    ) {
        dropped.extend(self.sync(backends, now));
    }

    /// Backends whose next probe is due at `now`, in address order.
    pub(crate) fn due(&self, now: Instant) -> Vec<SocketAddr> {
        let mut due: Vec<SocketAddr> = self
            .slots
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Waiting { due } if *due <= now))
            .map(|(address, _)| *address)
            .collect();
        due.sort();
        due
    }

    /// Probes in flight past their deadline at `now`, as `(backend, key)`.
    pub(crate) fn late(&self, now: Instant) -> Vec<(SocketAddr, usize)> {
        let mut late: Vec<(SocketAddr, usize)> = self
            .slots
            .iter()
            .filter_map(|(address, slot)| match slot {
                Slot::Probing { key, deadline, .. } if *deadline <= now => Some((*address, *key)),
                _ => None,
            })
            .collect();
        late.sort();
        late
    }

    /// Keys of every probe in flight.
    pub(crate) fn in_flight(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots.values().filter_map(|slot| match slot {
            Slot::Probing { key, .. } => Some(*key),
            Slot::Waiting { .. } => None,
        })
    }

    /// A probe of `address` started at `now` under `key`.
    pub(crate) fn start(&mut self, address: SocketAddr, key: usize, now: Instant) {
        if let Some(slot) = self.slots.get_mut(&address) {
            *slot = Slot::Probing {
                key,
                started: now,
                deadline: now + self.timeout,
            };
        }
    }

    /// The probe `key` of `address` ended (whatever its result): the next one is due an
    /// interval after it started, and not before `now`. Returns whether that probe was the
    /// one in flight (a stale key changes nothing).
    pub(crate) fn finish(&mut self, address: &SocketAddr, key: usize, now: Instant) -> bool {
        let Some(Slot::Probing {
            key: current,
            started,
            ..
        }) = self.slots.get(address).copied()
        else {
            return false;
        };
        if current != key {
            return false;
        }
        let due = (started + self.interval).max(now);
        self.slots.insert(*address, Slot::Waiting { due });
        true
    }

    /// A due probe of `address` could not start: it is tried again an interval later.
    pub(crate) fn postpone(&mut self, address: &SocketAddr, now: Instant) {
        if let Some(slot) = self.slots.get_mut(address) {
            *slot = Slot::Waiting {
                due: now + self.interval,
            };
        }
    }

    /// The earliest instant something is to be done: a probe due or a deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .values()
            .map(|slot| match slot {
                Slot::Waiting { due } => *due,
                Slot::Probing { deadline, .. } => *deadline,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn backends(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
            .collect()
    }

    fn due_at(schedule: &Schedule, address: SocketAddr) -> Instant {
        match schedule.slot(&address) {
            Some(Slot::Waiting { due }) => *due,
            other => panic!("{address} is not waiting: {other:?}"),
        }
    }

    #[test]
    fn first_probes_spread_over_the_interval() {
        let now = Instant::now();
        let mut schedule = Schedule::new(ms(100), ms(50));
        let all = backends(&[1, 2, 3, 4]);
        assert!(schedule.sync(&all, now).is_empty());
        for (index, address) in all.iter().enumerate() {
            assert_eq!(due_at(&schedule, *address), now + ms(25 * index as u64));
        }
        assert_eq!(schedule.due(now), vec![all[0]]);
        assert_eq!(schedule.due(now + ms(60)), vec![all[0], all[1], all[2]]);
        assert_eq!(schedule.next_deadline(), Some(now));
    }

    #[test]
    fn one_probe_in_flight_then_next_an_interval_after_its_start() {
        let now = Instant::now();
        let mut schedule = Schedule::new(ms(100), ms(30));
        let one = backends(&[1]);
        schedule.sync(&one, now);
        schedule.start(one[0], 7, now);
        assert!(
            schedule.due(now + ms(500)).is_empty(),
            "in flight: not due again"
        );
        assert_eq!(schedule.next_deadline(), Some(now + ms(30)));
        assert!(schedule.late(now + ms(29)).is_empty());
        assert_eq!(schedule.late(now + ms(30)), vec![(one[0], 7)]);
        assert!(!schedule.finish(&one[0], 8, now + ms(10)), "stale key");
        assert!(schedule.finish(&one[0], 7, now + ms(10)));
        assert_eq!(due_at(&schedule, one[0]), now + ms(100));
        assert!(
            !schedule.finish(&one[0], 7, now + ms(11)),
            "already finished"
        );
    }

    #[test]
    fn a_late_finish_is_due_at_once() {
        let now = Instant::now();
        let mut schedule = Schedule::new(ms(100), ms(100));
        let one = backends(&[1]);
        schedule.sync(&one, now);
        schedule.start(one[0], 0, now);
        schedule.finish(&one[0], 0, now + ms(150));
        assert_eq!(due_at(&schedule, one[0]), now + ms(150));
    }

    #[test]
    fn added_backend_is_probed_within_its_first_interval() {
        let now = Instant::now();
        let mut schedule = Schedule::new(ms(90), ms(10));
        let first = backends(&[1, 2]);
        schedule.sync(&first, now);
        let later = now + ms(500);
        let all = backends(&[1, 2, 3]);
        schedule.sync(&all, later);
        assert_eq!(
            due_at(&schedule, all[0]),
            now,
            "known backends keep their slot"
        );
        assert_eq!(due_at(&schedule, all[2]), later + ms(60));
    }

    #[test]
    fn removed_backends_drop_their_probes() {
        let now = Instant::now();
        let mut schedule = Schedule::new(ms(100), ms(10));
        let all = backends(&[1, 2, 3]);
        schedule.sync(&all, now);
        schedule.start(all[0], 4, now);
        schedule.start(all[1], 5, now);
        let dropped = schedule.sync(&all[1..2], now);
        assert_eq!(dropped, vec![4]);
        assert!(schedule.slot(&all[0]).is_none());
        assert!(schedule.slot(&all[2]).is_none());
        assert_eq!(schedule.in_flight().collect::<Vec<_>>(), vec![5]);
        assert!(schedule.sync(&[], now).contains(&5));
        assert_eq!(schedule.next_deadline(), None);
    }

    #[test]
    fn postponed_probe_waits_an_interval() {
        let now = Instant::now();
        let mut schedule = Schedule::new(ms(100), ms(10));
        let one = backends(&[1]);
        schedule.sync(&one, now);
        schedule.postpone(&one[0], now + ms(5));
        assert_eq!(due_at(&schedule, one[0]), now + ms(105));
    }
}
