//! Human tables of the merged metrics, for `sluice ctl metrics`: one table
//! per cluster, a first row for the cluster as a whole, then one row per
//! backend.
//!
//! The `ERRORS` column adds up the error answers the proxy produced itself
//! (`answers_*`) and the failed connection attempts (`connect_errors`).
//! Percentiles are read from the log-spaced buckets: they are the upper bound
//! of the bucket that holds them (at most 3 % above the true value), and
//! never more than the exact maximum.

use std::fmt::Write as _;

use super::merge::merge;
use super::names;
use crate::proto;

/// Column titles, in order.
const HEADERS: [&str; 14] = [
    "BACKEND", "ADDRESS", "REQUESTS", "2XX", "3XX", "4XX", "5XX", "ERRORS", "IN", "OUT", "ACTIVE",
    "P50", "P99", "HEALTHY",
];

/// Appends one table per cluster of the total of `metrics` to `out` (the
/// total is computed from the workers when absent).
pub fn render_tables(metrics: &proto::AggregatedMetrics, out: &mut String) {
    let computed;
    let total = match &metrics.total {
        Some(total) => total,
        None => {
            computed = merge(metrics.workers.clone()).total.unwrap_or_default();
            &computed
        }
    };
    if total.clusters.is_empty() {
        out.push_str("no cluster metrics\n");
        return;
    }
    for (index, cluster) in total.clusters.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        write_cluster(cluster, out);
    }
}

fn write_cluster(cluster: &proto::ClusterMetrics, out: &mut String) {
    let available = value(&cluster.values, names::AVAILABLE_BACKENDS);
    let total = value(&cluster.values, names::TOTAL_BACKENDS);
    // Writing to a String cannot fail.
    let _ = match (available, total) {
        (Some(available), Some(total)) => {
            writeln!(
                out,
                "cluster {} ({available}/{total} backends available)",
                cluster.cluster_id
            )
        }
        _ => writeln!(out, "cluster {}", cluster.cluster_id),
    };
    let mut rows = vec![HEADERS.map(str::to_owned).to_vec()];
    rows.push(row(
        "(cluster)",
        "",
        &cluster.values,
        &cluster.histograms,
        None,
    ));
    for backend in &cluster.backends {
        rows.push(row(
            &backend.backend_id,
            &backend.address,
            &backend.values,
            &backend.histograms,
            backend.healthy,
        ));
    }
    write_rows(&rows, out);
}

fn row(
    name: &str,
    address: &str,
    values: &[proto::MetricValue],
    histograms: &[proto::HistogramValue],
    healthy: Option<bool>,
) -> Vec<String> {
    let count = |name: &str| value(values, name).unwrap_or(0);
    let errors = names::ANSWER_STATUSES
        .iter()
        .filter_map(|&status| names::answer(status))
        .map(count)
        .fold(count(names::CONNECT_ERRORS), u64::saturating_add);
    let total_time = histograms
        .iter()
        .find(|h| h.name == names::TOTAL_REQUEST_TIME);
    let percentile = |percent| {
        total_time
            .and_then(|h| percentile_us(&h.histogram, percent))
            .map_or_else(|| "-".to_owned(), micros)
    };
    vec![
        name.to_owned(),
        address.to_owned(),
        count(names::REQUESTS).to_string(),
        count(names::RESPONSES_2XX).to_string(),
        count(names::RESPONSES_3XX).to_string(),
        count(names::RESPONSES_4XX).to_string(),
        count(names::RESPONSES_5XX).to_string(),
        errors.to_string(),
        bytes(count(names::RECEIVED_BYTES)),
        bytes(count(names::SENT_BYTES)),
        count(names::ACTIVE_CONNECTIONS).to_string(),
        percentile(50.0),
        percentile(99.0),
        match healthy {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        }
        .to_owned(),
    ]
}

/// Writes rows with aligned columns: names left-aligned, numbers right.
fn write_rows(rows: &[Vec<String>], out: &mut String) {
    let mut widths = vec![0; HEADERS.len()];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let _ = match column {
                0 | 1 => write!(line, "{cell:<width$}  "),
                _ => write!(line, "{cell:>width$}  "),
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The latency under which `percent` % of a histogram's values fall, in
/// µs: the upper bound of the bucket holding that rank, capped by the
/// maximum. `None` when the histogram is empty.
pub fn percentile_us(histogram: &proto::Histogram, percent: f64) -> Option<u64> {
    let in_buckets = histogram
        .counts
        .iter()
        .fold(0u64, |sum, &count| sum.saturating_add(count));
    if in_buckets == 0 {
        return None;
    }
    // `as` saturates and turns NaN into 0: the clamp covers both.
    let rank = (((percent / 100.0) * in_buckets as f64).ceil() as u64).clamp(1, in_buckets);
    let mut seen = 0u64;
    for (&bound, &count) in histogram
        .bucket_upper_bounds_us
        .iter()
        .zip(&histogram.counts)
    {
        seen = seen.saturating_add(count);
        if seen >= rank {
            return Some(bound.min(histogram.max_us));
        }
    }
    Some(histogram.max_us)
}

/// A duration in µs, in the unit that keeps it short.
fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// A byte count in binary units.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count}B");
    }
    let mut scaled = count as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1}{}", UNITS[unit])
}

fn value(values: &[proto::MetricValue], name: &str) -> Option<u64> {
    values
        .iter()
        .find(|value| value.name == name)
        .map(|value| value.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: u64) -> proto::MetricValue {
        proto::MetricValue {
            name: name.to_owned(),
            value,
            gauge: false,
        }
    }

    fn latency(buckets: &[(u64, u64)], max_us: u64) -> proto::Histogram {
        proto::Histogram {
            bucket_upper_bounds_us: buckets.iter().map(|&(bound, _)| bound).collect(),
            counts: buckets.iter().map(|&(_, count)| count).collect(),
            count: buckets.iter().map(|&(_, count)| count).sum(),
            sum_us: 0,
            max_us,
        }
    }

    fn sample() -> proto::AggregatedMetrics {
        let values = vec![
            metric(names::REQUESTS, 12),
            metric(names::RESPONSES_2XX, 10),
            metric(names::RESPONSES_5XX, 2),
            metric("answers_502", 1),
            metric("answers_504", 1),
            metric(names::CONNECT_ERRORS, 3),
            metric(names::SENT_BYTES, 3 * 1024 * 1024),
            metric(names::AVAILABLE_BACKENDS, 1),
            metric(names::TOTAL_BACKENDS, 2),
        ];
        let histograms = vec![proto::HistogramValue {
            name: names::TOTAL_REQUEST_TIME.to_owned(),
            histogram: latency(&[(800, 9), (2_047, 1), (1_500_000, 2)], 1_400_000),
        }];
        let backend = proto::BackendMetrics {
            backend_id: "b1".to_owned(),
            address: "127.0.0.1:8001".to_owned(),
            values: vec![metric(names::REQUESTS, 12)],
            histograms: Vec::new(),
            healthy: Some(false),
        };
        let cluster = proto::ClusterMetrics {
            cluster_id: "api".to_owned(),
            values,
            histograms,
            backends: vec![backend],
        };
        merge(vec![proto::WorkerMetrics {
            worker_id: 0,
            proxy: Vec::new(),
            clusters: vec![cluster],
        }])
    }

    #[test]
    fn one_table_per_cluster_with_its_backends() {
        let mut out = String::new();
        render_tables(&sample(), &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "cluster api (1/2 backends available)", "{out}");
        assert!(lines[1].starts_with("BACKEND  "), "{out}");
        let cluster: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            cluster,
            [
                "(cluster)",
                "12",
                "10",
                "0",
                "0",
                "2",
                "5",
                "0B",
                "3.0MiB",
                "0",
                "800µs",
                "1.40s",
                "-"
            ]
        );
        let backend: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(backend[..3], ["b1", "127.0.0.1:8001", "12"]);
        assert_eq!(backend.last(), Some(&"NO"));
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn numbers_are_right_aligned_under_their_header() {
        let mut out = String::new();
        render_tables(&sample(), &mut out);
        let lines: Vec<&str> = out.lines().skip(1).collect();
        // The first columns are ASCII, so byte offsets are column offsets.
        let end = lines[0].find("REQUESTS").expect("REQUESTS header") + "REQUESTS".len();
        for line in &lines[1..] {
            assert!(
                line[..end].ends_with("12"),
                "REQUESTS not aligned in {line:?}:\n{out}"
            );
            assert!(line[end..].starts_with(' '), "{line:?}");
        }
    }

    #[test]
    fn without_a_total_the_workers_are_merged() {
        let mut metrics = sample();
        metrics.total = None;
        let mut out = String::new();
        render_tables(&metrics, &mut out);
        assert!(out.starts_with("cluster api"), "{out}");
        let mut empty = String::new();
        render_tables(&merge(Vec::new()), &mut empty);
        assert_eq!(empty, "no cluster metrics\n");
    }

    #[test]
    fn percentiles_and_units() {
        let histogram = latency(&[(10, 50), (100, 49), (1_000, 1)], 900);
        assert_eq!(percentile_us(&histogram, 50.0), Some(10));
        assert_eq!(percentile_us(&histogram, 99.0), Some(100));
        assert_eq!(percentile_us(&histogram, 99.9), Some(900));
        assert_eq!(percentile_us(&latency(&[], 0), 50.0), None);
        assert_eq!(micros(999), "999µs");
        assert_eq!(micros(1_500), "1.5ms");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(1536), "1.5KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0GiB");
    }
}
