//! Exponential backoff between connection attempts to a backend that failed.
//!
//! After the n-th failed connect in a row a backend waits `base · 2^(n-1)`, capped at `cap`,
//! multiplied by a random factor in `[1 - jitter, 1 + jitter]` (so that workers do not retry a
//! restarted backend in lockstep), and capped at `cap` again: every wait lies in
//! `[(1 - jitter) · d, min((1 + jitter) · d, cap)]` where `d = min(base · 2^(n-1), cap)`.
//!
//! After `max_failures` failures in a row the policy is **exhausted**: the backend no longer
//! counts as available (its cluster may turn `AllDown`), but it is not abandoned. Its wait is
//! then `cap` (jittered downwards only), and once that wait is over the backend is offered one
//! trial connection again; each further failure re-arms a capped wait. A backend that was
//! restarted is therefore found again within about `cap`, without an active health check.
//!
//! **Failures that happen together count once.** An attempt that was already under way when
//! the last failure was counted (concurrent sessions whose connects or requests were in flight
//! when the backend went away) fails with it: [`RetryPolicy::fail_attempt`] does not add a
//! step to the backoff for it. So one blip on a busy backend costs one step, not one per
//! session in flight, and a backend is taken out by failures spread over its backoff waits.
//!
//! **Trials.** While a backend is backing off, the first selection after the wait reserves the
//! attempt ([`RetryPolicy::start_trial`]): further tries are refused until the outcome arrives
//! ([`RetryPolicy::fail`] or [`RetryPolicy::succeed`]), so a burst of requests does not all go
//! to a backend that has just failed. If no outcome ever arrives (the session went away before
//! the connect ended), the reservation lapses after `cap`.

use std::time::{Duration, Instant};

use rand::Rng;

/// Tuning of a [`RetryPolicy`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Wait after the first failure.
    pub base: Duration,
    /// Longest wait, also the wait between trials once exhausted.
    pub cap: Duration,
    /// Failures in a row after which the backend stops counting as available.
    pub max_failures: u32,
    /// Relative jitter, clamped to `[0, 1)`: 0.2 randomises each wait by up to ±20%.
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            max_failures: 6,
            jitter: 0.2,
        }
    }
}

/// Backoff state of one backend: failures in a row and the earliest next attempt.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    config: RetryConfig,
    failures: u32,
    next_try: Option<Instant>,
    /// When the last failure was counted: attempts started before it fail with it.
    last_failure: Option<Instant>,
}

impl RetryPolicy {
    /// A fresh policy: no failure, tries allowed at once.
    pub fn new(config: RetryConfig) -> Self {
        RetryPolicy {
            config,
            failures: 0,
            next_try: None,
            last_failure: None,
        }
    }

    /// The tuning this policy follows.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Failed attempts in a row since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The earliest instant of the next attempt, if one is being held back.
    pub fn next_try(&self) -> Option<Instant> {
        self.next_try
    }

    /// Records a failed attempt at `now` and returns the wait before the next one.
    pub fn fail<R: Rng + ?Sized>(&mut self, now: Instant, rng: &mut R) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = self.backoff(rng);
        self.next_try = now.checked_add(wait);
        self.last_failure = Some(now);
        wait
    }

    /// Records the failure at `now` of an attempt started at `started`: counted like
    /// [`RetryPolicy::fail`], unless the attempt was under way when the last failure was
    /// counted, in which case it is part of that one (see the module docs). Returns the wait
    /// before the next attempt, and whether the failure was counted.
    pub fn fail_attempt<R: Rng + ?Sized>(
        &mut self,
        started: Instant,
        now: Instant,
        rng: &mut R,
    ) -> (Duration, bool) {
        let joined = self.failures > 0 && self.last_failure.is_some_and(|at| started < at);
        if joined {
            let wait = self
                .next_try
                .map_or(Duration::ZERO, |next| next.saturating_duration_since(now));
            return (wait, false);
        }
        (self.fail(now, rng), true)
    }

    /// Records a successful attempt: the backoff is forgotten.
    pub fn succeed(&mut self) {
        self.failures = 0;
        self.next_try = None;
        self.last_failure = None;
    }

    /// Whether an attempt is allowed at `now` (not inside a backoff wait or a reserved trial).
    pub fn can_try(&self, now: Instant) -> bool {
        self.next_try.is_none_or(|next| now >= next)
    }

    /// Whether `max_failures` attempts failed in a row.
    pub fn is_exhausted(&self) -> bool {
        self.failures >= self.config.max_failures
    }

    /// Reserves the one trial attempt of a backend that is backing off; does nothing to a
    /// backend without failures, which may take any number of attempts at once.
    pub fn start_trial(&mut self, now: Instant) {
        if self.failures > 0 {
            self.next_try = now.checked_add(self.config.cap);
        }
    }

    fn backoff<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let cap = self.config.cap;
        let nominal = if self.is_exhausted() {
            cap
        } else {
            let exponent = self.failures.saturating_sub(1).min(31);
            self.config.base.saturating_mul(1 << exponent).min(cap)
        };
        let jitter = self.config.jitter.clamp(0.0, 0.999);
        if jitter == 0.0 {
            return nominal;
        }
        let factor = rng.gen_range(1.0 - jitter..=1.0 + jitter);
        Duration::try_from_secs_f64(nominal.as_secs_f64() * factor)
            .unwrap_or(cap)
            .min(cap)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn fresh_policy_allows_tries_and_is_not_exhausted() {
        let now = Instant::now();
        let policy = RetryPolicy::new(RetryConfig::default());
        assert!(policy.can_try(now));
        assert!(!policy.is_exhausted());
        assert_eq!(policy.failures(), 0);
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds() {
        let base = Instant::now();
        let config = RetryConfig {
            max_failures: 100,
            ..RetryConfig::default()
        };
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut policy = RetryPolicy::new(config);
            for n in 1..=7u32 {
                let wait = policy.fail(base, &mut rng);
                let nominal = Duration::from_millis(100 * (1 << (n - 1)));
                assert!(wait >= nominal.mul_f64(0.8), "failure {n}: {wait:?}");
                assert!(wait <= nominal.mul_f64(1.2), "failure {n}: {wait:?}");
                assert!(!policy.can_try(base + wait - Duration::from_nanos(1)));
                assert!(policy.can_try(base + wait));
            }
        }
    }

    #[test]
    fn jitter_actually_varies_the_wait() {
        let mut rng = rng();
        let waits: Vec<Duration> = (0..20)
            .map(|_| RetryPolicy::new(RetryConfig::default()).fail(Instant::now(), &mut rng))
            .collect();
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }

    #[test]
    fn backoff_is_capped() {
        let mut rng = rng();
        let config = RetryConfig {
            max_failures: 1000,
            ..RetryConfig::default()
        };
        let mut policy = RetryPolicy::new(config);
        let waits: Vec<Duration> = (0..100)
            .map(|_| policy.fail(Instant::now(), &mut rng))
            .collect();
        assert!(waits.iter().all(|w| *w <= config.cap));
        assert!(waits[20..].iter().all(|w| *w >= config.cap.mul_f64(0.8)));
    }

    #[test]
    fn exhausted_after_max_failures_then_retried_after_the_cap() {
        let base = Instant::now();
        let mut rng = rng();
        let mut policy = RetryPolicy::new(RetryConfig::default());
        for n in 1..=5 {
            policy.fail(base, &mut rng);
            assert!(!policy.is_exhausted(), "exhausted after {n}");
        }
        let wait = policy.fail(base, &mut rng);
        assert!(policy.is_exhausted());
        assert!(wait >= Duration::from_secs(8) && wait <= Duration::from_secs(10));
        assert!(!policy.can_try(base + Duration::from_secs(7)));
        assert!(policy.can_try(base + Duration::from_secs(10)));
    }

    #[test]
    fn success_resets_everything() {
        let base = Instant::now();
        let mut rng = rng();
        let mut policy = RetryPolicy::new(RetryConfig::default());
        for _ in 0..6 {
            policy.fail(base, &mut rng);
        }
        policy.succeed();
        assert!(!policy.is_exhausted());
        assert!(policy.can_try(base));
        assert_eq!(policy.failures(), 0);
        let wait = policy.fail(base, &mut rng);
        assert!(wait <= Duration::from_millis(120), "{wait:?}");
    }

    #[test]
    fn a_trial_holds_further_tries_until_its_outcome_or_the_cap() {
        let base = Instant::now();
        let mut rng = rng();
        let mut policy = RetryPolicy::new(RetryConfig::default());
        policy.start_trial(base);
        assert!(policy.can_try(base), "no failure: no reservation");

        let wait = policy.fail(base, &mut rng);
        let after_wait = base + wait;
        policy.start_trial(after_wait);
        assert!(!policy.can_try(after_wait + Duration::from_secs(1)));
        assert!(policy.can_try(after_wait + Duration::from_secs(10)));
        policy.succeed();
        assert!(policy.can_try(after_wait));
    }

    #[test]
    fn attempts_in_flight_at_a_failure_fail_with_it() {
        let base = Instant::now();
        let mut rng = rng();
        let mut policy = RetryPolicy::new(RetryConfig::default());
        let started = base - Duration::from_millis(5);
        let (wait, counted) = policy.fail_attempt(started, base, &mut rng);
        assert!(counted);
        for n in 1..50 {
            let later = base + Duration::from_millis(n);
            let (left, counted) = policy.fail_attempt(started, later, &mut rng);
            assert!(!counted, "started before the counted failure");
            assert_eq!(later + left, base + wait, "the wait is not extended");
        }
        assert_eq!(policy.failures(), 1, "one incident, one step");
        let trial = base + wait;
        let (_, counted) = policy.fail_attempt(trial, trial + Duration::from_millis(1), &mut rng);
        assert!(counted, "an attempt made after the failure is a new step");
        assert_eq!(policy.failures(), 2);
    }

    #[test]
    fn zero_jitter_gives_exact_waits() {
        let config = RetryConfig {
            jitter: 0.0,
            ..RetryConfig::default()
        };
        let mut policy = RetryPolicy::new(config);
        let mut rng = rng();
        let waits: Vec<Duration> = (0..3)
            .map(|_| policy.fail(Instant::now(), &mut rng))
            .collect();
        assert_eq!(waits, [100, 200, 400].map(Duration::from_millis).to_vec());
    }
}
