//! The counters, gauges and histograms a worker keeps: [`TrafficStats`] for
//! each cluster and each backend, [`ProxyStats`] for the whole worker.
//!
//! Every field is a [`Cell`]-based value, so a session holding an
//! `Rc<TrafficStats>` records through a shared reference: no lookup, no
//! borrow, no allocation, no system call on the hot path.

use std::cell::Cell;
use std::time::Duration;

use sluice_command::metrics::names;
use sluice_command::proto;

use super::histogram::Histogram;

/// A value that only goes up (saturating at `u64::MAX`).
#[derive(Debug, Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    /// Adds one.
    pub fn increment(&self) {
        self.add(1);
    }

    /// Adds `amount`.
    pub fn add(&self, amount: u64) {
        self.0.set(self.0.get().saturating_add(amount));
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down, never below zero.
#[derive(Debug, Default)]
pub struct Gauge(Cell<u64>);

impl Gauge {
    /// Adds one.
    pub fn increment(&self) {
        self.0.set(self.0.get().saturating_add(1));
    }

    /// Removes one; stays at zero rather than wrapping, so that an unpaired
    /// decrement cannot show billions of connections.
    pub fn decrement(&self) {
        self.0.set(self.0.get().saturating_sub(1));
    }

    /// Replaces the value.
    pub fn set(&self, value: u64) {
        self.0.set(value);
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.0.get()
    }
}

/// One counter per error answer the proxy produces itself
/// ([`names::ANSWER_STATUSES`]).
#[derive(Debug, Default)]
pub struct AnswerCounters([Counter; names::ANSWER_STATUSES.len()]);

impl AnswerCounters {
    /// Counts one answer with `status`; returns false, counting nothing, when
    /// the proxy never produces that status.
    pub fn record(&self, status: u16) -> bool {
        match names::ANSWER_STATUSES
            .iter()
            .position(|&known| known == status)
        {
            Some(index) => {
                self.0[index].increment();
                true
            }
            None => false,
        }
    }

    /// How many answers with `status` were counted.
    pub fn value(&self, status: u16) -> u64 {
        names::ANSWER_STATUSES
            .iter()
            .position(|&known| known == status)
            .map_or(0, |index| self.0[index].value())
    }

    fn push_values(&self, values: &mut Vec<proto::MetricValue>) {
        for (status, counter) in names::ANSWER_STATUSES.iter().zip(&self.0) {
            if let Some(name) = names::answer(*status) {
                values.push(counter_value(name, counter));
            }
        }
    }
}

/// What happened to the traffic of one cluster, or of one backend. A session
/// records into both the stats of its cluster and of its backend.
#[derive(Debug, Default)]
pub struct TrafficStats {
    /// Requests received (HTTP) or sessions started (TCP).
    pub requests: Counter,
    /// Responses by status class: index 0 is 1xx, 4 is 5xx.
    pub responses: [Counter; 5],
    /// Error answers the proxy produced itself.
    pub answers: AnswerCounters,
    /// Bytes read from clients.
    pub received_bytes: Counter,
    /// Bytes written to clients.
    pub sent_bytes: Counter,
    /// Connections opened (to the backend, or sessions routed to the cluster).
    pub connections: Counter,
    /// Connections open now.
    pub active_connections: Gauge,
    /// Connections refused (limits reached, no backend to send them to).
    pub refused_connections: Counter,
    /// Failed attempts to connect to a backend.
    pub connect_errors: Counter,
    /// Connect attempts repeated on another backend.
    pub retries: Counter,
    /// Requests sent to a backend although none was known to be up.
    pub fail_open: Counter,
    /// Time to open a connection to a backend.
    pub connect_time: Histogram,
    /// Time from sending a request to its first response byte.
    pub backend_response_time: Histogram,
    /// Time from a request's first byte to its response's last byte.
    pub total_request_time: Histogram,
}

impl TrafficStats {
    /// Counts a response by the class of `status`; returns false, counting
    /// nothing, for a status outside 100..=599.
    pub fn record_status(&self, status: u16) -> bool {
        match status {
            100..=599 => {
                self.responses[usize::from(status / 100 - 1)].increment();
                true
            }
            _ => false,
        }
    }

    /// Counts an error answer the proxy produced itself: both as that answer
    /// and as a response of its class.
    pub fn record_answer(&self, status: u16) -> bool {
        self.record_status(status);
        self.answers.record(status)
    }

    /// Records the timings of a finished request; a timing the request did
    /// not reach (no backend connection, no response) is `None`.
    pub fn record_timings(
        &self,
        connect: Option<Duration>,
        backend_response: Option<Duration>,
        total: Duration,
    ) {
        if let Some(connect) = connect {
            self.connect_time.record(connect);
        }
        if let Some(backend_response) = backend_response {
            self.backend_response_time.record(backend_response);
        }
        self.total_request_time.record(total);
    }

    /// The counters and gauges, under the names of [`names`].
    pub fn values(&self) -> Vec<proto::MetricValue> {
        let classes = [
            names::RESPONSES_1XX,
            names::RESPONSES_2XX,
            names::RESPONSES_3XX,
            names::RESPONSES_4XX,
            names::RESPONSES_5XX,
        ];
        let mut values = vec![counter_value(names::REQUESTS, &self.requests)];
        for (name, counter) in classes.into_iter().zip(&self.responses) {
            values.push(counter_value(name, counter));
        }
        self.answers.push_values(&mut values);
        values.extend([
            counter_value(names::RECEIVED_BYTES, &self.received_bytes),
            counter_value(names::SENT_BYTES, &self.sent_bytes),
            counter_value(names::CONNECTIONS, &self.connections),
            gauge_value(names::ACTIVE_CONNECTIONS, &self.active_connections),
            counter_value(names::REFUSED_CONNECTIONS, &self.refused_connections),
            counter_value(names::CONNECT_ERRORS, &self.connect_errors),
            counter_value(names::RETRIES, &self.retries),
            counter_value(names::FAIL_OPEN, &self.fail_open),
        ]);
        values
    }

    /// The latency histograms, under the names of [`names`].
    pub fn histograms(&self) -> Vec<proto::HistogramValue> {
        [
            (names::CONNECT_TIME, &self.connect_time),
            (names::BACKEND_RESPONSE_TIME, &self.backend_response_time),
            (names::TOTAL_REQUEST_TIME, &self.total_request_time),
        ]
        .into_iter()
        .map(|(name, histogram)| proto::HistogramValue {
            name: name.to_owned(),
            histogram: histogram.to_proto(),
        })
        .collect()
    }
}

/// Counters and gauges of the whole worker, before any cluster is known.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted on every listener.
    pub accepted_connections: Counter,
    /// Sessions open now.
    pub active_sessions: Gauge,
    /// Accepted connections closed at once because the worker was full.
    pub refused_accepts: Counter,
    /// Times accepting stopped for a while because a limit was reached.
    pub accept_pauses: Counter,
    /// Requests or connections that matched no frontend.
    pub unrouted_requests: Counter,
    /// Connections of `expect_proxy` listeners closed because their PROXY protocol
    /// header was missing, invalid or late.
    pub proxy_protocol_errors: Counter,
    /// Buffers taken from the pool now.
    pub buffers_in_use: Gauge,
    /// Error answers produced before a cluster was known (400, 404, 408,
    /// 413, 431 on a malformed or unrouted request).
    pub answers: AnswerCounters,
}

impl ProxyStats {
    /// The counters and gauges, under the names of [`names`].
    pub fn values(&self) -> Vec<proto::MetricValue> {
        let mut values = vec![
            counter_value(names::ACCEPTED_CONNECTIONS, &self.accepted_connections),
            gauge_value(names::ACTIVE_SESSIONS, &self.active_sessions),
            counter_value(names::REFUSED_ACCEPTS, &self.refused_accepts),
            counter_value(names::ACCEPT_PAUSES, &self.accept_pauses),
            counter_value(names::UNROUTED_REQUESTS, &self.unrouted_requests),
            counter_value(names::PROXY_PROTOCOL_ERRORS, &self.proxy_protocol_errors),
            gauge_value(names::BUFFERS_IN_USE, &self.buffers_in_use),
        ];
        self.answers.push_values(&mut values);
        values
    }
}

fn counter_value(name: &str, counter: &Counter) -> proto::MetricValue {
    proto::MetricValue {
        name: name.to_owned(),
        value: counter.value(),
        gauge: false,
    }
}

fn gauge_value(name: &str, gauge: &Gauge) -> proto::MetricValue {
    proto::MetricValue {
        name: name.to_owned(),
        value: gauge.value(),
        gauge: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(values: &[proto::MetricValue], name: &str) -> (u64, bool) {
        let found = values.iter().find(|value| value.name == name);
        let found = found.unwrap_or_else(|| panic!("no metric {name} in {values:?}"));
        (found.value, found.gauge)
    }

    #[test]
    fn statuses_are_counted_by_class() {
        let stats = TrafficStats::default();
        for status in [101, 200, 204, 301, 404, 500, 599] {
            assert!(stats.record_status(status));
        }
        assert!(!stats.record_status(99));
        assert!(!stats.record_status(600));
        let values = stats.values();
        assert_eq!(value_of(&values, names::RESPONSES_1XX), (1, false));
        assert_eq!(value_of(&values, names::RESPONSES_2XX), (2, false));
        assert_eq!(value_of(&values, names::RESPONSES_3XX), (1, false));
        assert_eq!(value_of(&values, names::RESPONSES_4XX), (1, false));
        assert_eq!(value_of(&values, names::RESPONSES_5XX), (2, false));
    }

    #[test]
    fn answers_count_as_answer_and_as_class() {
        let stats = TrafficStats::default();
        assert!(stats.record_answer(503));
        assert!(stats.record_answer(503));
        assert!(!stats.record_answer(500));
        assert_eq!(stats.answers.value(503), 2);
        assert_eq!(stats.answers.value(500), 0);
        let values = stats.values();
        assert_eq!(value_of(&values, "answers_503"), (2, false));
        assert_eq!(value_of(&values, names::RESPONSES_5XX), (3, false));
        for status in names::ANSWER_STATUSES {
            let name = names::answer(status).expect("named status");
            assert!(
                values.iter().any(|value| value.name == name),
                "{name} missing"
            );
        }
    }

    #[test]
    fn gauges_are_flagged_and_never_wrap() {
        let stats = TrafficStats::default();
        stats.active_connections.increment();
        stats.active_connections.decrement();
        stats.active_connections.decrement();
        stats.connections.add(3);
        let values = stats.values();
        assert_eq!(value_of(&values, names::ACTIVE_CONNECTIONS), (0, true));
        assert_eq!(value_of(&values, names::CONNECTIONS), (3, false));
        let names: Vec<&str> = values.iter().map(|value| value.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
    }

    #[test]
    fn timings_go_to_their_histograms() {
        let stats = TrafficStats::default();
        stats.record_timings(
            Some(Duration::from_micros(40)),
            None,
            Duration::from_millis(2),
        );
        stats.record_timings(
            None,
            Some(Duration::from_millis(1)),
            Duration::from_millis(3),
        );
        let histograms = stats.histograms();
        let counts: Vec<(&str, u64)> = histograms
            .iter()
            .map(|h| (h.name.as_str(), h.histogram.count))
            .collect();
        assert_eq!(
            counts,
            [
                (names::CONNECT_TIME, 1),
                (names::BACKEND_RESPONSE_TIME, 1),
                (names::TOTAL_REQUEST_TIME, 2)
            ]
        );
    }

    #[test]
    fn proxy_values_carry_gauges_and_answers() {
        let stats = ProxyStats::default();
        stats.accepted_connections.increment();
        stats.active_sessions.set(4);
        stats.buffers_in_use.increment();
        stats.answers.record(400);
        let values = stats.values();
        assert_eq!(value_of(&values, names::ACCEPTED_CONNECTIONS), (1, false));
        assert_eq!(value_of(&values, names::ACTIVE_SESSIONS), (4, true));
        assert_eq!(value_of(&values, names::BUFFERS_IN_USE), (1, true));
        assert_eq!(value_of(&values, "answers_400"), (1, false));
    }
}
