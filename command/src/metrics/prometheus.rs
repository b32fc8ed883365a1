//! Rendering metrics in the Prometheus text exposition format, version 0.0.4.
//!
//! Each worker's series are rendered with a `worker` label; the merged total
//! is not, so that every counter stays monotonic per series even when a
//! worker restarts (Prometheus sums across workers itself).
//!
//! Family names: `sluice_<name>` for worker-wide values,
//! `sluice_cluster_<name>` and `sluice_backend_<name>` for the values of a
//! cluster (labels `worker`, `cluster`) and of a backend (labels `worker`,
//! `cluster`, `backend`). Keeping the three levels in separate families
//! means that summing a family never counts a request twice. Counters end in
//! `_total`; histograms end in `_seconds` with the usual `_bucket`, `_sum` and
//! `_count` samples. Each family gets one `# HELP` and one `# TYPE` line, and
//! its samples are contiguous.
//!
//! Histogram buckets are fixed ([`EXPOSITION_BUCKETS`]) and derived from the
//! workers' log-spaced buckets: an exposition bucket counts the log buckets
//! whose upper bound is within it, so a latency within 3 % below a bound may
//! be counted in the next exposition bucket.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::names;
use crate::proto;

/// The `le` bounds of rendered histograms: microseconds, and the label text.
pub const EXPOSITION_BUCKETS: [(u64, &str); 18] = [
    (100, "0.0001"),
    (250, "0.00025"),
    (500, "0.0005"),
    (1_000, "0.001"),
    (2_500, "0.0025"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
    (30_000_000, "30"),
    (60_000_000, "60"),
];

/// The content type of the rendered text, for the HTTP answer's header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends every worker's metrics to `out`, in the text exposition format.
pub fn render(metrics: &proto::AggregatedMetrics, out: &mut String) {
    let mut families = Families::default();
    for worker in &metrics.workers {
        let worker_label = [("worker", worker.worker_id.to_string())];
        families.values("", &worker.proxy, &worker_label);
        for cluster in &worker.clusters {
            let labels = [
                worker_label[0].clone(),
                ("cluster", cluster.cluster_id.clone()),
            ];
            families.values("cluster_", &cluster.values, &labels);
            families.histograms("cluster_", &cluster.histograms, &labels);
            for backend in &cluster.backends {
                let labels = [
                    labels[0].clone(),
                    labels[1].clone(),
                    ("backend", backend.backend_id.clone()),
                ];
                families.values("backend_", &backend.values, &labels);
                families.histograms("backend_", &backend.histograms, &labels);
                if let Some(healthy) = backend.healthy {
                    let value = proto::MetricValue {
                        name: names::HEALTHY.to_owned(),
                        value: u64::from(healthy),
                        gauge: true,
                    };
                    families.values("backend_", &[value], &labels);
                }
            }
        }
    }
    families.write(out);
}

/// The kind of a family, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family: its header and its sample lines so far.
struct Family {
    kind: Kind,
    help: &'static str,
    samples: String,
}

/// Families by name, so that samples from every worker end up grouped.
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

impl Families {
    fn values(&mut self, scope: &str, values: &[proto::MetricValue], labels: &[(&str, String)]) {
        for value in values {
            let (kind, suffix) = if value.gauge {
                (Kind::Gauge, "")
            } else {
                (Kind::Counter, "_total")
            };
            let family = format!("sluice_{scope}{}{suffix}", sanitize(&value.name));
            if let Some(samples) = self.samples(&family, kind, &value.name) {
                write_sample(samples, &family, labels, None, &value.value.to_string());
            }
        }
    }

    fn histograms(
        &mut self,
        scope: &str,
        histograms: &[proto::HistogramValue],
        labels: &[(&str, String)],
    ) {
        for value in histograms {
            let family = format!("sluice_{scope}{}_seconds", sanitize(&value.name));
            if let Some(samples) = self.samples(&family, Kind::Histogram, &value.name) {
                write_histogram(samples, &family, labels, &value.histogram);
            }
        }
    }

    /// The sample buffer of `family`, created on first use; `None` when the
    /// family already exists with another kind (its samples are dropped, as
    /// one family cannot hold two types).
    fn samples(&mut self, family: &str, kind: Kind, name: &str) -> Option<&mut String> {
        let entry = self.0.entry(family.to_owned()).or_insert_with(|| Family {
            kind,
            help: names::help(name),
            samples: String::new(),
        });
        if entry.kind != kind {
            log::warn!(
                "metric {family} reported as both {} and {}",
                entry.kind.as_str(),
                kind.as_str()
            );
            return None;
        }
        Some(&mut entry.samples)
    }

    fn write(self, out: &mut String) {
        for (name, family) in self.0 {
            let help = family.help.replace('\\', "\\\\").replace('\n', "\\n");
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            out.push_str(&family.samples);
        }
    }
}

fn write_histogram(
    out: &mut String,
    family: &str,
    labels: &[(&str, String)],
    histogram: &proto::Histogram,
) {
    let bucket_name = format!("{family}_bucket");
    let pairs: Vec<(u64, u64)> = histogram
        .bucket_upper_bounds_us
        .iter()
        .copied()
        .zip(histogram.counts.iter().copied())
        .collect();
    for (le_us, le) in EXPOSITION_BUCKETS {
        let cumulative = pairs
            .iter()
            .filter(|&&(bound, _)| bound <= le_us)
            .fold(0u64, |sum, &(_, count)| sum.saturating_add(count));
        write_sample(out, &bucket_name, labels, Some(le), &cumulative.to_string());
    }
    // Bucket counts must never exceed the +Inf bucket, which must equal
    // `_count`: take the larger, should a worker's count and buckets differ.
    let in_buckets = pairs
        .iter()
        .fold(0u64, |sum, &(_, count)| sum.saturating_add(count));
    let count = histogram.count.max(in_buckets).to_string();
    write_sample(out, &bucket_name, labels, Some("+Inf"), &count);
    let seconds = histogram.sum_us as f64 / 1_000_000.0;
    write_sample(
        out,
        &format!("{family}_sum"),
        labels,
        None,
        &seconds.to_string(),
    );
    write_sample(out, &format!("{family}_count"), labels, None, &count);
}

fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, String)],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    let le = le.map(|le| ("le", le));
    let all = labels
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .chain(le);
    for (index, (key, value)) in all.enumerate() {
        out.push(if index == 0 { '{' } else { ',' });
        out.push_str(key);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    if !labels.is_empty() || le.is_some() {
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Escapes a label value as the text format requires.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A metric name as Prometheus accepts it: other characters become `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
