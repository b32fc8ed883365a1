//! A fixed-memory latency histogram, in microseconds.
//!
//! Values are counted in log-spaced buckets laid out like an HDR histogram:
//! values below 64 µs each have their own bucket, and every power of two
//! above is split into 32 equal buckets, so a bucket is never wider than
//! 1/32 (3.1 %) of its lower bound. The buckets cover 0 µs to 2^27 µs
//! (about 134 s); anything slower lands in one overflow bucket, whose values
//! are still counted in [`Histogram::sum`] and [`Histogram::max`].
//!
//! The bucket array (about 6 KiB) is allocated once, when the first value is
//! recorded, and never grows: a cluster or backend that sees no traffic costs
//! a few words, not 6 KiB per histogram (a worker holds three per cluster and
//! three per backend: 10 000 clusters would otherwise cost half a gigabyte).
//! After that first value, [`Histogram::record`] only increments counters.
//! Counters are [`Cell`]s so that a session can record through a shared `Rc`
//! handle of the single-threaded worker without a `RefCell` borrow.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::time::Duration;

use sluice_command::proto;

/// Buckets per power of two, as a number of bits.
const SUB_BITS: u32 = 5;
/// Buckets per power of two.
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// The largest power of two covered by regular buckets: values up to
/// `2^(MAX_EXPONENT + 1) - 1` µs.
const MAX_EXPONENT: u32 = 26;
/// Regular buckets, then the overflow bucket.
const BUCKETS: usize = ((MAX_EXPONENT - SUB_BITS + 2) as usize) * SUB_BUCKETS as usize + 1;
/// Index of the bucket of values too large for the regular buckets.
const OVERFLOW: usize = BUCKETS - 1;

/// The counts of every bucket.
type Buckets = [Cell<u64>; BUCKETS];

/// Error reading a histogram from its protobuf form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistogramError {
    /// The bucket bounds and the counts do not pair up.
    #[error("histogram has {bounds} bucket bounds but {counts} counts")]
    LengthMismatch {
        /// Number of bucket upper bounds.
        bounds: usize,
        /// Number of bucket counts.
        counts: usize,
    },
}

/// Counts of latencies in fixed log-spaced buckets, with their count, sum and
/// maximum. See the module documentation for the bucket layout.
#[derive(Clone)]
pub struct Histogram {
    /// Empty until the first value is recorded.
    buckets: OnceCell<Box<Buckets>>,
    count: Cell<u64>,
    sum_us: Cell<u64>,
    max_us: Cell<u64>,
}

impl Histogram {
    /// An empty histogram; its bucket array is allocated by the first value.
    pub fn new() -> Self {
        Self {
            buckets: OnceCell::new(),
            count: Cell::new(0),
            sum_us: Cell::new(0),
            max_us: Cell::new(0),
        }
    }

    /// Counts one latency. Only the first value allocates (the bucket
    /// array); none calls the system.
    pub fn record(&self, latency: Duration) {
        self.record_us(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Counts one latency given in microseconds.
    pub fn record_us(&self, us: u64) {
        add(&self.allocated_buckets()[bucket_index(us)], 1);
        add(&self.count, 1);
        add(&self.sum_us, us);
        self.max_us.set(self.max_us.get().max(us));
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// Sum of the latencies recorded (saturates instead of wrapping).
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us.get())
    }

    /// The largest latency recorded, exactly; zero when empty.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us.get())
    }

    /// The latency under which `percent` % of the recorded latencies fall
    /// (`50.0` for the median, `99.9`…), within the bucket precision (3.1 %,
    /// exact below 64 µs); never more than [`Histogram::max`]. Zero when
    /// empty. `percent` is clamped to 0..=100.
    pub fn percentile(&self, percent: f64) -> Duration {
        let count = self.count.get();
        if count == 0 {
            return Duration::ZERO;
        }
        // `as` saturates, and turns NaN into 0: the clamp covers both.
        let rank = ((percent / 100.0) * count as f64).ceil() as u64;
        let rank = rank.clamp(1, count);
        let mut seen = 0u64;
        for (index, bucket) in self.buckets().iter().enumerate() {
            seen = seen.saturating_add(bucket.get());
            if seen >= rank {
                if index == OVERFLOW {
                    return self.max();
                }
                let (lower, upper) = bucket_bounds(index);
                let middle = lower + (upper - lower) / 2;
                return Duration::from_micros(middle.min(self.max_us.get()));
            }
        }
        self.max()
    }

    /// Adds every latency of `other` to this histogram, as if both had been
    /// recorded here.
    pub fn merge(&self, other: &Histogram) {
        if let Some(theirs) = other.buckets.get() {
            for (mine, theirs) in self.allocated_buckets().iter().zip(theirs.iter()) {
                add(mine, theirs.get());
            }
        }
        add(&self.count, other.count.get());
        add(&self.sum_us, other.sum_us.get());
        self.max_us.set(self.max_us.get().max(other.max_us.get()));
    }

    /// The protobuf form: only the non-empty buckets, as pairs of inclusive
    /// upper bound (µs, `u64::MAX` for the overflow bucket) and count, in
    /// increasing bound order.
    pub fn to_proto(&self) -> proto::Histogram {
        let mut message = proto::Histogram {
            bucket_upper_bounds_us: Vec::new(),
            counts: Vec::new(),
            count: self.count.get(),
            sum_us: self.sum_us.get(),
            max_us: self.max_us.get(),
        };
        for (index, bucket) in self.buckets().iter().enumerate() {
            if bucket.get() > 0 {
                message.bucket_upper_bounds_us.push(bucket_bounds(index).1);
                message.counts.push(bucket.get());
            }
        }
        message
    }

    /// Reads the protobuf form. Each count goes to the bucket holding its
    /// upper bound, so the bounds of another layout are accepted and rounded.
    pub fn from_proto(message: &proto::Histogram) -> Result<Self, HistogramError> {
        let bounds = &message.bucket_upper_bounds_us;
        if bounds.len() != message.counts.len() {
            return Err(HistogramError::LengthMismatch {
                bounds: bounds.len(),
                counts: message.counts.len(),
            });
        }
        let histogram = Self::new();
        for (&bound, &count) in bounds.iter().zip(&message.counts) {
            add(&histogram.allocated_buckets()[bucket_index(bound)], count);
        }
        histogram.count.set(message.count);
        histogram.sum_us.set(message.sum_us);
        histogram.max_us.set(message.max_us);
        Ok(histogram)
    }
}

impl Histogram {
    /// The buckets, allocated on first use (through a shared reference: the
    /// counts are cells).
    fn allocated_buckets(&self) -> &Buckets {
        self.buckets
            .get_or_init(|| Box::new(std::array::from_fn(|_| Cell::new(0))))
    }

    /// The buckets' counts, empty when nothing was recorded.
    fn buckets(&self) -> &[Cell<u64>] {
        self.buckets.get().map_or(&[], |buckets| &buckets[..])
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count.get())
            .field("sum_us", &self.sum_us.get())
            .field("max_us", &self.max_us.get())
            .finish_non_exhaustive()
    }
}

/// Adds to a counter, saturating: a stuck counter is less misleading than one
/// that restarts from zero.
fn add(cell: &Cell<u64>, amount: u64) {
    cell.set(cell.get().saturating_add(amount));
}

/// The bucket counting a value of `us` microseconds.
fn bucket_index(us: u64) -> usize {
    if us < SUB_BUCKETS {
        return us as usize;
    }
    let exponent = u64::BITS - 1 - us.leading_zeros();
    if exponent > MAX_EXPONENT {
        return OVERFLOW;
    }
    let sub = (us >> (exponent - SUB_BITS)) - SUB_BUCKETS;
    ((exponent - SUB_BITS + 1) as usize) * SUB_BUCKETS as usize + sub as usize
}

/// The inclusive lower and upper bounds, in µs, of the bucket `index`.
fn bucket_bounds(index: usize) -> (u64, u64) {
    if index >= OVERFLOW {
        return (1 << (MAX_EXPONENT + 1), u64::MAX);
    }
    let index = index as u64;
    if index < SUB_BUCKETS {
        return (index, index);
    }
    let shift = (index / SUB_BUCKETS - 1) as u32;
    let lower = (SUB_BUCKETS + index % SUB_BUCKETS) << shift;
    (lower, lower + (1 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: Duration, expected_us: u64, tolerance: f64) -> bool {
        let actual = actual.as_micros() as f64;
        let expected = expected_us as f64;
        (actual - expected).abs() <= expected * tolerance
    }

    #[test]
    fn bucket_layout_is_contiguous_and_within_precision() {
        let mut next_lower = 0;
        for index in 0..OVERFLOW {
            let (lower, upper) = bucket_bounds(index);
            assert_eq!(lower, next_lower, "gap before bucket {index}");
            assert!(upper >= lower);
            assert_eq!(bucket_index(lower), index);
            assert_eq!(bucket_index(upper), index);
            assert!(
                (upper - lower) as f64 <= lower as f64 / 32.0,
                "bucket {index} too wide"
            );
            next_lower = upper + 1;
        }
        assert_eq!(next_lower, 1 << (MAX_EXPONENT + 1));
        assert_eq!(bucket_index(next_lower), OVERFLOW);
        assert_eq!(bucket_index(u64::MAX), OVERFLOW);
        assert!(next_lower > 100_000_000, "must cover 100 s");
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let histogram = Histogram::new();
        for us in 1..=10_000 {
            histogram.record(Duration::from_micros(us));
        }
        assert_eq!(histogram.count(), 10_000);
        assert_eq!(histogram.sum(), Duration::from_micros(50_005_000));
        assert_eq!(histogram.max(), Duration::from_micros(10_000));
        for (percent, expected) in [(50.0, 5_000), (90.0, 9_000), (99.0, 9_900), (99.9, 9_990)] {
            let actual = histogram.percentile(percent);
            assert!(
                within(actual, expected, 0.032),
                "p{percent} = {actual:?}, expected ~{expected} µs"
            );
        }
        assert_eq!(histogram.percentile(100.0), Duration::from_micros(10_000));
        assert_eq!(histogram.percentile(0.0), Duration::from_micros(1));
    }

    #[test]
    fn small_values_are_exact() {
        let histogram = Histogram::new();
        for us in [3, 3, 3, 40] {
            histogram.record_us(us);
        }
        assert_eq!(histogram.percentile(50.0), Duration::from_micros(3));
        assert_eq!(histogram.percentile(99.0), Duration::from_micros(40));
    }

    #[test]
    fn empty_histogram_and_odd_percentiles() {
        let histogram = Histogram::new();
        assert_eq!(histogram.percentile(50.0), Duration::ZERO);
        assert_eq!(histogram.max(), Duration::ZERO);
        histogram.record(Duration::from_millis(7));
        assert_eq!(histogram.percentile(f64::NAN), histogram.percentile(0.0));
        assert_eq!(histogram.percentile(1_000.0), histogram.percentile(100.0));
    }

    #[test]
    fn overflow_is_counted_and_reported_as_max() {
        let histogram = Histogram::new();
        histogram.record(Duration::from_secs(1_000));
        histogram.record(Duration::MAX);
        assert_eq!(histogram.count(), 2);
        assert_eq!(histogram.max(), Duration::from_micros(u64::MAX));
        assert_eq!(histogram.percentile(50.0), histogram.max());
        let message = histogram.to_proto();
        assert_eq!(message.bucket_upper_bounds_us, vec![u64::MAX]);
        assert_eq!(message.counts, vec![2]);
    }

    #[test]
    fn merge_equals_recording_both() {
        let (left, right, both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for us in (1..5_000).step_by(7) {
            left.record_us(us);
            both.record_us(us);
        }
        for us in (100..900_000).step_by(997) {
            right.record_us(us);
            both.record_us(us);
        }
        left.merge(&right);
        assert_eq!(left.to_proto(), both.to_proto());
        for percent in [50.0, 90.0, 99.0, 99.9] {
            assert_eq!(left.percentile(percent), both.percentile(percent));
        }
    }

    #[test]
    fn proto_round_trip_is_sparse_and_lossless() {
        let histogram = Histogram::new();
        for us in [0, 5, 5, 1_000, 1_020, 250_000] {
            histogram.record_us(us);
        }
        let message = histogram.to_proto();
        assert_eq!(message.counts.iter().sum::<u64>(), 6);
        assert!(message.counts.len() <= 5, "{message:?}");
        assert!(message
            .bucket_upper_bounds_us
            .windows(2)
            .all(|w| w[0] < w[1]));
        let back = Histogram::from_proto(&message).expect("valid histogram");
        assert_eq!(back.to_proto(), message);
    }

    #[test]
    fn a_histogram_without_values_holds_no_bucket_array() {
        let empty = Histogram::new();
        assert!(std::mem::size_of::<Histogram>() <= 64);
        assert!(empty.buckets.get().is_none());
        empty.merge(&Histogram::new());
        assert_eq!(empty.percentile(99.0), Duration::ZERO);
        let back = Histogram::from_proto(&empty.to_proto()).expect("valid histogram");
        assert!(empty.buckets.get().is_none() && back.buckets.get().is_none());
        empty.record_us(10);
        assert!(empty.buckets.get().is_some());
        assert_eq!(empty.percentile(50.0), Duration::from_micros(10));
    }

    #[test]
    fn proto_with_unpaired_counts_is_refused() {
        let message = proto::Histogram {
            bucket_upper_bounds_us: vec![1, 2],
            counts: vec![1],
            count: 1,
            sum_us: 1,
            max_us: 1,
        };
        assert_eq!(
            Histogram::from_proto(&message).err(),
            Some(HistogramError::LengthMismatch {
                bounds: 2,
                counts: 1
            })
        );
    }
}
