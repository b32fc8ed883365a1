//! Health of a backend as judged by active health checks.

/// A change of a backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Enough checks in a row succeeded: the backend takes traffic again.
    BecameHealthy,
    /// Enough checks in a row failed: the backend is taken out of rotation.
    BecameUnhealthy,
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transition::BecameHealthy => "passes its health checks again",
            Transition::BecameUnhealthy => "fails its health checks",
        })
    }
}

/// Health of one backend: it flips only after a threshold of consecutive results, so one lost
/// probe does not take a backend out and one lucky probe does not bring it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    healthy: bool,
    consecutive_successes: u32,
    consecutive_failures: u32,
}

impl Default for HealthState {
    /// Healthy: backends are trusted until a check says otherwise.
    fn default() -> Self {
        HealthState {
            healthy: true,
            consecutive_successes: 0,
            consecutive_failures: 0,
        }
    }
}

impl HealthState {
    /// Whether the backend is healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Successful checks in a row.
    pub fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Failed checks in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Records a successful check; an unhealthy backend becomes healthy after `threshold`
    /// successes in a row (a threshold of 0 counts as 1).
    pub fn record_success(&mut self, threshold: u32) -> Option<Transition> {
        self.consecutive_failures = 0;
        self.consecutive_successes = self.consecutive_successes.saturating_add(1);
        if !self.healthy && self.consecutive_successes >= threshold.max(1) {
            self.healthy = true;
            return Some(Transition::BecameHealthy);
        }
        None
    }

    /// Records a failed check; a healthy backend becomes unhealthy after `threshold` failures
    /// in a row (a threshold of 0 counts as 1).
    pub fn record_failure(&mut self, threshold: u32) -> Option<Transition> {
        self.consecutive_successes = 0;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.healthy && self.consecutive_failures >= threshold.max(1) {
            self.healthy = false;
            return Some(Transition::BecameUnhealthy);
        }
        None
    }

    /// Forgets every result (the health check was removed): healthy again.
    pub fn reset(&mut self) -> Option<Transition> {
        let was_healthy = self.healthy;
        *self = HealthState::default();
        (!was_healthy).then_some(Transition::BecameHealthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_after_the_thresholds() {
        let mut health = HealthState::default();
        assert_eq!(health.record_failure(3), None);
        assert_eq!(health.record_failure(3), None);
        assert_eq!(health.record_success(2), None, "a success breaks the run");
        assert_eq!(health.record_failure(3), None);
        assert_eq!(health.record_failure(3), None);
        assert_eq!(health.record_failure(3), Some(Transition::BecameUnhealthy));
        assert!(!health.is_healthy());
        assert_eq!(health.record_failure(3), None, "only one transition");
        assert_eq!(health.record_success(2), None);
        assert_eq!(health.record_success(2), Some(Transition::BecameHealthy));
        assert_eq!(health.record_success(2), None);
        assert!(health.is_healthy());
        assert_eq!(health.consecutive_successes(), 3);
    }

    #[test]
    fn zero_threshold_counts_as_one() {
        let mut health = HealthState::default();
        assert_eq!(health.record_failure(0), Some(Transition::BecameUnhealthy));
        assert_eq!(health.record_success(0), Some(Transition::BecameHealthy));
    }

    #[test]
    fn reset_makes_healthy_and_reports_a_change_only_when_there_is_one() {
        let mut health = HealthState::default();
        assert_eq!(health.reset(), None);
        health.record_failure(1);
        assert_eq!(health.reset(), Some(Transition::BecameHealthy));
        assert_eq!(health, HealthState::default());
    }
}
