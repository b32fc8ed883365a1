//! The availability latch of a cluster.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::backend::Backend;

/// Whether a cluster has any backend left to send traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// At least one backend is available, or the cluster has no backends at all (an empty
    /// cluster is a configuration state, not an outage).
    Available,
    /// Every backend is unhealthy, closing or has exhausted its retries.
    AllDown,
}

impl Availability {
    /// What the latch should say of these backends.
    pub fn of(backends: &[Rc<RefCell<Backend>>]) -> Availability {
        if backends.is_empty() || backends.iter().any(|b| b.borrow().is_available()) {
            Availability::Available
        } else {
            Availability::AllDown
        }
    }
}

/// The last published [`Availability`] of a cluster and when it was reached, so that each
/// transition is reported exactly once however many changes confirm it.
#[derive(Debug, Clone)]
pub struct AvailabilityLatch {
    state: Availability,
    since: Option<Instant>,
}

impl Default for AvailabilityLatch {
    /// `Available`, as an empty cluster is.
    fn default() -> Self {
        AvailabilityLatch {
            state: Availability::Available,
            since: None,
        }
    }
}

impl AvailabilityLatch {
    /// The published state.
    pub fn state(&self) -> Availability {
        self.state
    }

    /// When the published state was reached; `None` if it never changed.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Moves the latch to what `backends` say at `now`; returns the new state and how long the
    /// previous one lasted (if known) when it changed.
    pub fn update(
        &mut self,
        backends: &[Rc<RefCell<Backend>>],
        now: Instant,
    ) -> Option<(Availability, Option<std::time::Duration>)> {
        let state = Availability::of(backends);
        if state == self.state {
            return None;
        }
        let lasted = self.since.map(|since| now.saturating_duration_since(since));
        self.state = state;
        self.since = Some(now);
        Some((state, lasted))
    }
}
