//! Peak exponentially weighted moving average of connect times.

use std::time::{Duration, Instant};

/// Connect time that jumps up to a slower sample at once and comes down smoothly: a faster
/// sample is averaged in with a weight that grows with the time since the previous sample
/// (`1 - e^(-elapsed / decay)`), so old observations fade over time rather than per sample.
#[derive(Debug, Clone)]
pub struct PeakEwma {
    decay: Duration,
    value_nanos: f64,
    last_sample: Option<Instant>,
}

impl Default for PeakEwma {
    /// Decays over 10 seconds.
    fn default() -> Self {
        PeakEwma::new(Duration::from_secs(10))
    }
}

impl PeakEwma {
    /// An empty average whose samples fade with time constant `decay`.
    pub fn new(decay: Duration) -> Self {
        PeakEwma {
            decay,
            value_nanos: 0.0,
            last_sample: None,
        }
    }

    /// Adds a sample observed at `now`.
    pub fn observe(&mut self, sample: Duration, now: Instant) {
        let sample_nanos = sample.as_nanos() as f64;
        match self.last_sample {
            Some(last) if sample_nanos <= self.value_nanos => {
                let elapsed = now.saturating_duration_since(last).as_secs_f64();
                let decay = self.decay.as_secs_f64().max(f64::MIN_POSITIVE);
                let kept = (-elapsed / decay).exp();
                self.value_nanos = self.value_nanos * kept + sample_nanos * (1.0 - kept);
            }
            _ => self.value_nanos = sample_nanos,
        }
        self.last_sample = Some(now);
    }

    /// The current average in nanoseconds, 0 before the first sample.
    pub fn nanos(&self) -> f64 {
        self.value_nanos
    }

    /// The current average, zero before the first sample.
    pub fn value(&self) -> Duration {
        Duration::from_nanos(self.value_nanos as u64)
    }

    /// Whether a sample was ever observed.
    pub fn has_samples(&self) -> bool {
        self.last_sample.is_some()
    }
}
