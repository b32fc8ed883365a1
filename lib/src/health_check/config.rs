//! A cluster's health check as the prober needs it, read from `proto::HealthCheckConfig`.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use sluice_command::config::defaults::{DEFAULT_EXPECTED_STATUS_MAX, DEFAULT_EXPECTED_STATUS_MIN};
use sluice_command::proto;
use thiserror::Error;

/// Why a health check configuration cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckConfigError {
    /// The uri would break the request line (empty, or holds whitespace or control bytes).
    #[error("invalid health check uri {0:?}")]
    InvalidUri(String),
    /// The host would break the `Host` header (empty, or holds whitespace or control bytes).
    #[error("invalid health check host {0:?}")]
    InvalidHost(String),
}

/// How a backend is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// An HTTP/1.1 `GET` whose status must fall in the expected range.
    Http,
    /// A TCP connect; it succeeds once the connection is established.
    Connect,
}

impl ProbeKind {
    /// The probe for a cluster's protocol. HTTPS clusters are probed in plain HTTP: TLS ends
    /// at the listener and their backends speak HTTP.
    pub fn of(protocol: proto::ListenerProtocol) -> ProbeKind {
        match protocol {
            proto::ListenerProtocol::Http | proto::ListenerProtocol::Https => ProbeKind::Http,
            proto::ListenerProtocol::Tcp => ProbeKind::Connect,
        }
    }
}

/// One cluster's health check, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// How backends are probed.
    pub kind: ProbeKind,
    /// Path and query of the HTTP probe.
    pub uri: String,
    /// `Host` header of the HTTP probe; the backend's address when `None`.
    pub host: Option<String>,
    /// Time between the starts of two probes of one backend (at least 1 ms).
    pub interval: Duration,
    /// Time a probe may take before it counts as failed (at least 1 ms).
    pub timeout: Duration,
    /// Statuses that count as success.
    pub expected_status: RangeInclusive<u16>,
}

impl CheckConfig {
    /// What a probe tries, as a failure names it: the URI of an HTTP check, `connect` for
    /// a connect check.
    pub fn target(&self) -> &str {
        match self.kind {
            ProbeKind::Http => &self.uri,
            ProbeKind::Connect => "connect",
        }
    }

    /// Reads and checks a proto configuration. Zero durations are raised to 1 ms so a bad
    /// configuration cannot make the prober spin.
    pub fn from_proto(
        kind: ProbeKind,
        config: &proto::HealthCheckConfig,
    ) -> Result<CheckConfig, CheckConfigError> {
        // A connect probe sends nothing: a TCP cluster's check has no uri.
        if kind == ProbeKind::Http && !is_header_safe(&config.uri) {
            return Err(CheckConfigError::InvalidUri(config.uri.clone()));
        }
        if let Some(host) = config.host.as_deref().filter(|h| !is_header_safe(h)) {
            return Err(CheckConfigError::InvalidHost(host.to_owned()));
        }
        let min = config
            .expected_status_min
            .unwrap_or(DEFAULT_EXPECTED_STATUS_MIN);
        let max = config
            .expected_status_max
            .unwrap_or(DEFAULT_EXPECTED_STATUS_MAX);
        Ok(CheckConfig {
            kind,
            uri: config.uri.clone(),
            host: config.host.clone(),
            interval: Duration::from_millis(u64::from(config.interval_ms.max(1))),
            timeout: Duration::from_millis(u64::from(config.timeout_ms.max(1))),
            expected_status: status(min)..=status(max),
        })
    }

    /// The bytes of the HTTP probe sent to `backend`.
    pub fn request(&self, backend: SocketAddr) -> Vec<u8> {
        let host = match &self.host {
            Some(host) => host.clone(),
            None => backend.to_string(),
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-health-check\r\n\
             Connection: close\r\n\r\n",
            self.uri
        )
        .into_bytes()
    }
}

/// A status bound as a `u16`; anything larger than any status saturates.
fn status(bound: u32) -> u16 {
    u16::try_from(bound).unwrap_or(u16::MAX)
}

fn is_header_safe(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto_config() -> proto::HealthCheckConfig {
        proto::HealthCheckConfig {
            uri: "/health?full=1".to_owned(),
            interval_ms: 1_000,
            timeout_ms: 200,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            expected_status_min: None,
            expected_status_max: None,
            host: None,
        }
    }

    #[test]
    fn defaults_accept_2xx_and_3xx() {
        let config = CheckConfig::from_proto(ProbeKind::Http, &proto_config()).unwrap();
        assert_eq!(config.expected_status, 200..=399);
        assert_eq!(config.interval, Duration::from_secs(1));
        assert_eq!(config.timeout, Duration::from_millis(200));
    }

    #[test]
    fn explicit_range_and_zero_durations() {
        let mut proto = proto_config();
        proto.expected_status_min = Some(204);
        proto.expected_status_max = Some(70_000);
        proto.interval_ms = 0;
        proto.timeout_ms = 0;
        let config = CheckConfig::from_proto(ProbeKind::Http, &proto).unwrap();
        assert_eq!(config.expected_status, 204..=u16::MAX);
        assert_eq!(config.interval, Duration::from_millis(1));
        assert_eq!(config.timeout, Duration::from_millis(1));
    }

    #[test]
    fn request_names_the_backend_unless_a_host_is_set() {
        let backend: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut config = CheckConfig::from_proto(ProbeKind::Http, &proto_config()).unwrap();
        assert_eq!(
            config.request(backend),
            b"GET /health?full=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
              User-Agent: sluice-health-check\r\nConnection: close\r\n\r\n"
        );
        config.host = Some("app.example".to_owned());
        let request = String::from_utf8(config.request(backend)).unwrap();
        assert!(request.contains("\r\nHost: app.example\r\n"), "{request}");
    }

    #[test]
    fn rejects_what_would_break_the_request() {
        let mut proto = proto_config();
        proto.uri = "/a b".to_owned();
        assert_eq!(
            CheckConfig::from_proto(ProbeKind::Http, &proto),
            Err(CheckConfigError::InvalidUri("/a b".to_owned()))
        );
        let mut proto = proto_config();
        proto.host = Some("x\r\nEvil: 1".to_owned());
        assert!(matches!(
            CheckConfig::from_proto(ProbeKind::Http, &proto),
            Err(CheckConfigError::InvalidHost(_))
        ));
    }

    #[test]
    fn probe_kind_follows_the_protocol() {
        assert_eq!(
            ProbeKind::of(proto::ListenerProtocol::Http),
            ProbeKind::Http
        );
        assert_eq!(
            ProbeKind::of(proto::ListenerProtocol::Https),
            ProbeKind::Http
        );
        assert_eq!(
            ProbeKind::of(proto::ListenerProtocol::Tcp),
            ProbeKind::Connect
        );
    }
}
