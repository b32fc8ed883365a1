//! Builders of the control requests tests send most, with plain defaults
//! (round robin, no sticky session, generous timeouts), so a test states
//! only what it is about. Fields can be changed on the returned value.

use std::net::SocketAddr;

use sluice_command::proto::{self, request::RequestType};

/// Timeouts of listeners built here: long enough never to fire in a test
/// that is not about them.
pub fn default_timeouts() -> proto::Timeouts {
    proto::Timeouts {
        front_timeout_ms: 60_000,
        back_timeout_ms: 60_000,
        connect_timeout_ms: 3_000,
        request_timeout_ms: 10_000,
    }
}

fn request(request_type: RequestType) -> proto::Request {
    proto::Request {
        request_type: Some(request_type),
    }
}

/// A cluster description with the defaults above.
pub fn cluster(cluster_id: &str, protocol: proto::ListenerProtocol) -> proto::Cluster {
    proto::Cluster {
        cluster_id: cluster_id.to_owned(),
        protocol: protocol as i32,
        load_balancing: proto::LoadBalancingAlgorithm::RoundRobin as i32,
        load_metric: proto::LoadMetric::Connections as i32,
        sticky_session: false,
        sticky_cookie_name: None,
        health_check: None,
        answers: Vec::new(),
        max_connect_retries: None,
        prefer_last_backend: None,
    }
}

/// Adds a cluster with the defaults above.
pub fn add_cluster(cluster_id: &str, protocol: proto::ListenerProtocol) -> proto::Request {
    add_cluster_from(cluster(cluster_id, protocol))
}

/// Adds (or updates) a cluster described in full, e.g. a [`cluster`] with a
/// field changed.
pub fn add_cluster_from(cluster: proto::Cluster) -> proto::Request {
    request(RequestType::AddCluster(cluster))
}

/// Adds a backend of weight 100 whose id is `<cluster>-<port>`.
pub fn add_backend(cluster_id: &str, addr: SocketAddr) -> proto::Request {
    add_named_backend(cluster_id, &format!("{cluster_id}-{}", addr.port()), addr)
}

/// Adds a backend of weight 100 with the given id.
pub fn add_named_backend(cluster_id: &str, backend_id: &str, addr: SocketAddr) -> proto::Request {
    request(RequestType::AddBackend(proto::AddBackend {
        backend: proto::Backend {
            cluster_id: cluster_id.to_owned(),
            backend_id: backend_id.to_owned(),
            address: addr.to_string(),
            sticky_id: None,
            weight: 100,
            backup: false,
            state: None,
            resolve_later: None,
            resolved_from: None,
        },
    }))
}

/// Removes the backend at `addr` from a cluster.
pub fn remove_backend(cluster_id: &str, addr: SocketAddr) -> proto::Request {
    request(RequestType::RemoveBackend(proto::RemoveBackend {
        cluster_id: cluster_id.to_owned(),
        address: addr.to_string(),
        backend_id: None,
        when_drained: None,
    }))
}

/// Adds a TCP listener (not yet accepting: see [`activate`]).
pub fn add_tcp_listener(addr: SocketAddr) -> proto::Request {
    add_tcp_listener_with_timeouts(addr, default_timeouts())
}

/// Adds a TCP listener with the given timeouts (not yet accepting).
pub fn add_tcp_listener_with_timeouts(
    addr: SocketAddr,
    timeouts: proto::Timeouts,
) -> proto::Request {
    request(RequestType::AddTcpListener(proto::TcpListener {
        tls: None,
        address: addr.to_string(),
        timeouts,
        expect_proxy: false,
    }))
}

/// Adds an HTTP listener (not yet accepting: see [`activate`]).
pub fn add_http_listener(addr: SocketAddr) -> proto::Request {
    add_http_listener_expecting_proxy(addr, false)
}

/// Adds an HTTP listener whose clients start with a PROXY protocol header
/// when `expect_proxy` is true (not yet accepting).
pub fn add_http_listener_expecting_proxy(addr: SocketAddr, expect_proxy: bool) -> proto::Request {
    request(RequestType::AddHttpListener(proto::HttpListener {
        tls: None,
        address: addr.to_string(),
        timeouts: default_timeouts(),
        answers: Vec::new(),
        expect_proxy,
        sticky_cookie_name: None,
        max_request_body: None,
    }))
}

/// Adds an HTTP listener that answers 413 to request bodies over
/// `max_request_body` bytes (not yet accepting).
pub fn add_http_listener_with_body_limit(
    addr: SocketAddr,
    max_request_body: u64,
) -> proto::Request {
    request(RequestType::AddHttpListener(proto::HttpListener {
        tls: None,
        address: addr.to_string(),
        timeouts: default_timeouts(),
        answers: Vec::new(),
        expect_proxy: false,
        sticky_cookie_name: None,
        max_request_body: Some(max_request_body),
    }))
}

/// Adds a TCP listener whose clients start with a PROXY protocol header
/// when `expect_proxy` is true (not yet accepting).
pub fn add_tcp_listener_expecting_proxy(addr: SocketAddr, expect_proxy: bool) -> proto::Request {
    request(RequestType::AddTcpListener(proto::TcpListener {
        tls: None,
        address: addr.to_string(),
        timeouts: default_timeouts(),
        expect_proxy,
    }))
}

/// Sends every connection of the TCP listener at `addr` to a cluster.
pub fn add_tcp_frontend(addr: SocketAddr, cluster_id: &str) -> proto::Request {
    request(RequestType::AddTcpFrontend(proto::TcpFrontend {
        address: addr.to_string(),
        cluster_id: cluster_id.to_owned(),
    }))
}

/// Routes requests for `hostname` whose path starts with `path_prefix` on
/// the HTTP listener at `addr` to a cluster.
pub fn add_http_frontend(
    addr: SocketAddr,
    hostname: &str,
    path_prefix: &str,
    cluster_id: &str,
) -> proto::Request {
    request(RequestType::AddHttpFrontend(proto::HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: addr.to_string(),
        hostname: hostname.to_owned(),
        path: proto::PathRule {
            kind: proto::PathRuleKind::Prefix as i32,
            value: path_prefix.to_owned(),
        },
        method: None,
        cluster_id: Some(cluster_id.to_owned()),
    }))
}

/// Starts accepting on the listener at `addr`.
pub fn activate(addr: SocketAddr, protocol: proto::ListenerProtocol) -> proto::Request {
    request(RequestType::ActivateListener(proto::ActivateListener {
        address: addr.to_string(),
        protocol: protocol as i32,
    }))
}

/// Stops accepting on the listener at `addr`.
pub fn deactivate(addr: SocketAddr, protocol: proto::ListenerProtocol) -> proto::Request {
    request(RequestType::DeactivateListener(proto::DeactivateListener {
        address: addr.to_string(),
        protocol: protocol as i32,
    }))
}

/// Sets a cluster's health check (`None` removes it).
pub fn set_health_check(
    cluster_id: &str,
    config: Option<proto::HealthCheckConfig>,
) -> proto::Request {
    request(RequestType::SetHealthCheck(proto::SetHealthCheck {
        cluster_id: cluster_id.to_owned(),
        config,
    }))
}

/// Asks for all metrics.
pub fn query_metrics() -> proto::Request {
    request(RequestType::QueryMetrics(proto::QueryMetrics {
        cluster_id: None,
        backend_id: None,
    }))
}

/// Asks for the status of the worker(s): state, pid, open sessions.
pub fn query_status() -> proto::Request {
    request(RequestType::QueryStatus(proto::QueryStatus {}))
}

/// Asks a worker to stop at once.
pub fn hard_stop() -> proto::Request {
    request(RequestType::HardStop(proto::HardStop {}))
}

/// Asks a worker to drain its sessions, then stop.
pub fn soft_stop() -> proto::Request {
    request(RequestType::SoftStop(proto::SoftStop::default()))
}

/// TLS settings with the defaults: TLS 1.2 and 1.3, the provider's suites, ALPN
/// `http/1.1` on HTTPS listeners, no strict SNI.
pub fn tls_settings() -> proto::TlsSettings {
    proto::TlsSettings {
        min_version: None,
        cipher_suites: Vec::new(),
        alpn_protocols: Vec::new(),
        strict_sni: None,
    }
}

/// Adds an HTTPS listener (an HTTP listener with `tls`), not yet accepting; activate it
/// with protocol HTTPS.
pub fn add_https_listener(addr: SocketAddr, tls: proto::TlsSettings) -> proto::Request {
    request(RequestType::AddHttpListener(proto::HttpListener {
        tls: Some(tls),
        address: addr.to_string(),
        timeouts: default_timeouts(),
        answers: Vec::new(),
        expect_proxy: false,
        sticky_cookie_name: None,
        max_request_body: None,
    }))
}

/// Adds a TCP listener that terminates TLS, with the given timeouts (not yet accepting).
pub fn add_tls_tcp_listener(
    addr: SocketAddr,
    tls: proto::TlsSettings,
    timeouts: proto::Timeouts,
) -> proto::Request {
    request(RequestType::AddTcpListener(proto::TcpListener {
        tls: Some(tls),
        address: addr.to_string(),
        timeouts,
        expect_proxy: false,
    }))
}

/// A certificate and key (PEM text) for `names`, served on every TLS listener.
pub fn certificate_and_key(
    certificate: &str,
    key: &str,
    names: &[&str],
    default: bool,
) -> proto::CertificateAndKey {
    proto::CertificateAndKey {
        certificate: certificate.to_owned(),
        key: key.to_owned(),
        chain: Vec::new(),
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        listeners: Vec::new(),
        default: Some(default),
        certificate_path: None,
        key_path: None,
        chain_path: None,
    }
}

/// Adds a certificate.
pub fn add_certificate(certificate: proto::CertificateAndKey) -> proto::Request {
    request(RequestType::AddCertificate(proto::AddCertificate {
        certificate,
    }))
}

/// Replaces the certificate whose fingerprint is `old_fingerprint`.
pub fn replace_certificate(
    old_fingerprint: &str,
    new_certificate: proto::CertificateAndKey,
) -> proto::Request {
    request(RequestType::ReplaceCertificate(proto::ReplaceCertificate {
        old_fingerprint: old_fingerprint.to_owned(),
        new_certificate,
    }))
}

/// Removes the certificate whose fingerprint is `fingerprint`.
pub fn remove_certificate(fingerprint: &str) -> proto::Request {
    request(RequestType::RemoveCertificate(proto::RemoveCertificate {
        fingerprint: fingerprint.to_owned(),
    }))
}

/// Sets the session ticket keys (each 32 bytes; the first seals).
pub fn set_ticket_keys(keys: &[[u8; 32]]) -> proto::Request {
    request(RequestType::SetTicketKeys(proto::SetTicketKeys {
        keys: keys.iter().map(|k| k.to_vec()).collect(),
    }))
}
