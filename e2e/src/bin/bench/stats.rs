//! Collecting repeated measurements and printing medians side by side.

use std::collections::BTreeMap;

/// Measurements of one target: metric name → values of each repetition.
#[derive(Default)]
pub(crate) struct Samples {
    values: BTreeMap<&'static str, Vec<f64>>,
    notes: Vec<String>,
}

impl Samples {
    /// Records one repetition of `metric`.
    pub(crate) fn push(&mut self, metric: &'static str, value: f64) {
        self.values.entry(metric).or_default().push(value);
    }

    /// Records something that went wrong, printed under the table.
    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// What went wrong, in order.
    pub(crate) fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Median of `metric`, if measured at least once.
    pub(crate) fn median(&self, metric: &str) -> Option<f64> {
        let mut values = self.values.get(metric)?.clone();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        Some(match values.len() % 2 {
            1 => values[mid],
            _ => (values[mid - 1] + values[mid]) / 2.0,
        })
    }
}

/// Prints one row per target and one column per metric (medians), then the
/// notes.
pub(crate) fn print_table(metrics: &[&'static str], rows: &[(&str, &Samples)]) {
    print!("{:<10}", "target");
    for metric in metrics {
        print!("{metric:>18}");
    }
    println!();
    for (target, samples) in rows {
        print!("{target:<10}");
        for metric in metrics {
            match samples.median(metric) {
                Some(value) => print!("{value:>18.1}"),
                None => print!("{:>18}", "-"),
            }
        }
        println!();
    }
    for (target, samples) in rows {
        for note in &samples.notes {
            println!("{target}: {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Samples;

    #[test]
    fn medians_of_odd_and_even_counts() {
        let mut samples = Samples::default();
        for value in [3.0, 1.0, 2.0] {
            samples.push("odd", value);
        }
        for value in [4.0, 1.0, 2.0, 3.0] {
            samples.push("even", value);
        }
        assert_eq!(samples.median("odd"), Some(2.0));
        assert_eq!(samples.median("even"), Some(2.5));
        assert_eq!(samples.median("absent"), None);
    }
}
