//! The worker's one timer structure: a min-heap of deadlines with lazy cancellation.
//!
//! Scheduling costs one push; there is no cancel. The owner of an entry checks, when it
//! fires, whether it is still current (a session compares the generation and its own idle
//! deadline), and reschedules instead of acting when activity moved the deadline. Idle
//! timeouts thus cost nothing per read or write: a session only records when it was last
//! active.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Deadlines and the values they carry, earliest first.
#[derive(Debug)]
pub struct Timer<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    sequence: u64,
}

#[derive(Debug)]
struct Entry<T> {
    deadline: Instant,
    /// Keeps entries with the same deadline in scheduling order.
    sequence: u64,
    value: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.sequence) == (other.deadline, other.sequence)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.sequence).cmp(&(other.deadline, other.sequence))
    }
}

impl<T> Default for Timer<T> {
    fn default() -> Self {
        Timer {
            heap: BinaryHeap::new(),
            sequence: 0,
        }
    }
}

impl<T> Timer<T> {
    /// An empty timer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `value` to fire at `deadline`.
    pub fn schedule(&mut self, deadline: Instant, value: T) {
        self.sequence += 1;
        self.heap.push(Reverse(Entry {
            deadline,
            sequence: self.sequence,
            value,
        }));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.0.deadline)
    }

    /// How long the poll loop may sleep: until the next deadline, at most `max`.
    pub fn poll_timeout(&self, now: Instant, max: Duration) -> Duration {
        match self.next_deadline() {
            Some(deadline) => deadline.saturating_duration_since(now).min(max),
            None => max,
        }
    }

    /// Removes and returns one entry whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<T> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|entry| entry.0.value)
    }

    /// Number of scheduled entries (current or stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_then_scheduling_order() {
        let base = Instant::now();
        let mut timer = Timer::new();
        timer.schedule(base + Duration::from_secs(2), "late");
        timer.schedule(base + Duration::from_secs(1), "first");
        timer.schedule(base + Duration::from_secs(1), "second");
        assert_eq!(timer.pop_expired(base), None);
        let now = base + Duration::from_secs(1);
        assert_eq!(timer.pop_expired(now), Some("first"));
        assert_eq!(timer.pop_expired(now), Some("second"));
        assert_eq!(timer.pop_expired(now), None);
        assert_eq!(
            timer.pop_expired(base + Duration::from_secs(3)),
            Some("late")
        );
        assert!(timer.is_empty());
    }

    #[test]
    fn poll_timeout_is_bounded_by_next_deadline() {
        let base = Instant::now();
        let mut timer = Timer::new();
        let max = Duration::from_secs(10);
        assert_eq!(timer.poll_timeout(base, max), max);
        timer.schedule(base + Duration::from_millis(250), ());
        assert_eq!(timer.poll_timeout(base, max), Duration::from_millis(250));
        let later = base + Duration::from_secs(1);
        assert_eq!(timer.poll_timeout(later, max), Duration::ZERO);
    }
}
