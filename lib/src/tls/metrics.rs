//! What TLS handshakes are counted as, and the worker's TLS counters.
//!
//! The names are those of the worker's metrics (`QueryMetrics`), worker-wide: a
//! handshake ends before any cluster is known.

use std::time::Duration;

use crate::metrics::Counter;
use sluice_command::proto;

/// Why a handshake did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// No protocol version, cipher suite, group or ALPN protocol in common.
    NoSharedCipherOrVersion,
    /// Strict SNI, and no certificate has the name asked for.
    UnknownSni,
    /// Bytes that are not TLS, or a malformed record or message.
    BadRecord,
    /// Plaintext HTTP sent to the TLS port (answered `400`).
    PlainHttp,
    /// The handshake did not finish within the listener's timeout.
    Timeout,
    /// The client closed or reset the connection in the middle of the handshake.
    ClosedByClient,
}

impl HandshakeFailure {
    /// What a rustls error says about the handshake.
    pub(crate) fn of(error: &rustls::Error) -> Self {
        match error {
            rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
                HandshakeFailure::NoSharedCipherOrVersion
            }
            // The only general error a server handshake raises: its certificate resolver
            // found no certificate, which happens only with strict SNI.
            rustls::Error::General(_) => HandshakeFailure::UnknownSni,
            _ => HandshakeFailure::BadRecord,
        }
    }
}

/// The worker's TLS counters.
#[derive(Debug, Default)]
pub(crate) struct TlsStats {
    pub(crate) handshakes: Counter,
    pub(crate) resumed: Counter,
    pub(crate) tls12: Counter,
    pub(crate) tls13: Counter,
    pub(crate) failed_no_shared_cipher: Counter,
    pub(crate) failed_unknown_sni: Counter,
    pub(crate) failed_bad_record: Counter,
    pub(crate) failed_plain_http: Counter,
    pub(crate) failed_timeout: Counter,
    pub(crate) failed_closed: Counter,
    /// Handshakes that took at most each bound of [`HANDSHAKE_TIME_BUCKETS`].
    pub(crate) handshake_time: [Counter; HANDSHAKE_TIME_BUCKETS.len()],
}

/// Bounds of the handshake time histogram: metric name, bound.
const HANDSHAKE_TIME_BUCKETS: [(&str, Duration); 6] = [
    ("tls_handshake_time_bucket_le_1ms", Duration::from_millis(1)),
    ("tls_handshake_time_bucket_le_5ms", Duration::from_millis(5)),
    (
        "tls_handshake_time_bucket_le_20ms",
        Duration::from_millis(20),
    ),
    (
        "tls_handshake_time_bucket_le_100ms",
        Duration::from_millis(100),
    ),
    (
        "tls_handshake_time_bucket_le_500ms",
        Duration::from_millis(500),
    ),
    (
        "tls_handshake_time_bucket_le_2500ms",
        Duration::from_millis(2500),
    ),
];

impl TlsStats {
    /// A handshake finished after `took`.
    pub(crate) fn completed(
        &self,
        version: Option<rustls::ProtocolVersion>,
        resumed: bool,
        took: Duration,
    ) {
        self.handshakes.increment();
        if resumed {
            self.resumed.increment();
        }
        match version {
            Some(rustls::ProtocolVersion::TLSv1_3) => self.tls13.increment(),
            Some(rustls::ProtocolVersion::TLSv1_2) => self.tls12.increment(),
            _ => {}
        }
        for ((_, bound), counter) in HANDSHAKE_TIME_BUCKETS.iter().zip(&self.handshake_time) {
            if took <= *bound {
                counter.increment();
            }
        }
    }

    /// A handshake failed.
    pub(crate) fn failed(&self, failure: HandshakeFailure) {
        match failure {
            HandshakeFailure::NoSharedCipherOrVersion => &self.failed_no_shared_cipher,
            HandshakeFailure::UnknownSni => &self.failed_unknown_sni,
            HandshakeFailure::BadRecord => &self.failed_bad_record,
            HandshakeFailure::PlainHttp => &self.failed_plain_http,
            HandshakeFailure::Timeout => &self.failed_timeout,
            HandshakeFailure::ClosedByClient => &self.failed_closed,
        }
        .increment();
    }

    /// The counters and the handshake time histogram, as metric values.
    pub(crate) fn push_values(&self, values: &mut Vec<proto::MetricValue>) {
        let counters = [
            ("tls_handshakes_completed", &self.handshakes),
            ("tls_handshakes_resumed", &self.resumed),
            ("tls_handshakes_tls12", &self.tls12),
            ("tls_handshakes_tls13", &self.tls13),
            (
                "tls_handshakes_failed_no_shared_cipher_or_version",
                &self.failed_no_shared_cipher,
            ),
            (
                "tls_handshakes_failed_unknown_sni",
                &self.failed_unknown_sni,
            ),
            ("tls_handshakes_failed_bad_record", &self.failed_bad_record),
            ("tls_handshakes_failed_plain_http", &self.failed_plain_http),
            ("tls_handshakes_failed_timeout", &self.failed_timeout),
            (
                "tls_handshakes_failed_closed_by_client",
                &self.failed_closed,
            ),
        ];
        for (name, counter) in counters {
            values.push(proto::MetricValue {
                name: name.to_owned(),
                value: counter.value(),
                gauge: false,
            });
        }
        // The handshake time as a cumulative histogram: handshakes that took at most
        // each bound (the count of all is `tls_handshakes_completed`).
        for ((name, _), counter) in HANDSHAKE_TIME_BUCKETS.iter().zip(&self.handshake_time) {
            values.push(proto::MetricValue {
                name: (*name).to_owned(),
                value: counter.value(),
                gauge: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(values: &[proto::MetricValue], name: &str) -> u64 {
        values
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn handshakes_are_counted_by_version_resumption_time_and_failure() {
        let stats = TlsStats::default();
        let tls13 = Some(rustls::ProtocolVersion::TLSv1_3);
        stats.completed(tls13, false, Duration::from_micros(800));
        stats.completed(tls13, true, Duration::from_millis(3));
        stats.completed(
            Some(rustls::ProtocolVersion::TLSv1_2),
            false,
            Duration::from_secs(1),
        );
        stats.failed(HandshakeFailure::of(&rustls::Error::General(
            "no certificate".into(),
        )));
        stats.failed(HandshakeFailure::Timeout);
        let mut values = Vec::new();
        stats.push_values(&mut values);
        assert_eq!(value(&values, "tls_handshakes_completed"), 3);
        assert_eq!(value(&values, "tls_handshakes_resumed"), 1);
        assert_eq!(value(&values, "tls_handshakes_tls13"), 2);
        assert_eq!(value(&values, "tls_handshakes_tls12"), 1);
        assert_eq!(value(&values, "tls_handshakes_failed_unknown_sni"), 1);
        assert_eq!(value(&values, "tls_handshakes_failed_timeout"), 1);
        assert_eq!(value(&values, "tls_handshake_time_bucket_le_1ms"), 1);
        assert_eq!(value(&values, "tls_handshake_time_bucket_le_5ms"), 2);
        assert_eq!(value(&values, "tls_handshake_time_bucket_le_500ms"), 2);
        assert_eq!(value(&values, "tls_handshake_time_bucket_le_2500ms"), 3);
    }
}
