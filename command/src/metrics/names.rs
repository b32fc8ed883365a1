//! The name of every metric a worker reports, and the help text the
//! Prometheus renderer prints for it.
//!
//! Names carry neither the `sluice_` prefix nor the `_total` suffix: the
//! renderer adds them (and a `cluster_`/`backend_` scope). Workers build their
//! [`crate::proto::MetricValue`]s from these constants so that the main
//! process, which merges and renders them, agrees with them on every name.

/// Requests received (HTTP) or sessions started (TCP).
pub const REQUESTS: &str = "requests";
/// Responses with a 1xx status.
pub const RESPONSES_1XX: &str = "responses_1xx";
/// Responses with a 2xx status.
pub const RESPONSES_2XX: &str = "responses_2xx";
/// Responses with a 3xx status.
pub const RESPONSES_3XX: &str = "responses_3xx";
/// Responses with a 4xx status.
pub const RESPONSES_4XX: &str = "responses_4xx";
/// Responses with a 5xx status.
pub const RESPONSES_5XX: &str = "responses_5xx";
/// Bytes read from clients.
pub const RECEIVED_BYTES: &str = "received_bytes";
/// Bytes written to clients.
pub const SENT_BYTES: &str = "sent_bytes";
/// Connections opened (to a backend, or accepted for a cluster).
pub const CONNECTIONS: &str = "connections";
/// Connections open now (gauge).
pub const ACTIVE_CONNECTIONS: &str = "active_connections";
/// Connections refused (limits reached, no backend to send them to).
pub const REFUSED_CONNECTIONS: &str = "refused_connections";
/// Failed attempts to connect to a backend.
pub const CONNECT_ERRORS: &str = "connect_errors";
/// Connect attempts repeated on another backend.
pub const RETRIES: &str = "retries";
/// Requests sent to a backend although none was known to be up.
pub const FAIL_OPEN: &str = "fail_open";
/// Backends of a cluster that can take traffic now (gauge, filled by the loop).
pub const AVAILABLE_BACKENDS: &str = "available_backends";
/// Backends configured in a cluster (gauge, filled by the loop).
pub const TOTAL_BACKENDS: &str = "total_backends";

/// Failed connection attempts in a row to a backend; it backs off while this is not zero
/// (gauge, filled by the loop).
pub const RETRY_FAILURES: &str = "retry_failures";

/// A backend's operator state: 0 ready, 1 drain, 2 maint (gauge, filled by the loop; the
/// configuration every worker shares, so the total keeps the largest).
pub const ADMIN_STATE: &str = "admin_state";

/// Whether a backend passes its health checks (1) or not (0); rendered from
/// [`crate::proto::BackendMetrics::healthy`].
pub const HEALTHY: &str = "healthy";

/// Connections accepted on every listener of the worker.
pub const ACCEPTED_CONNECTIONS: &str = "accepted_connections";
/// Sessions open now in the worker (gauge).
pub const ACTIVE_SESSIONS: &str = "active_sessions";
/// Accepted connections closed at once because the worker was full.
pub const REFUSED_ACCEPTS: &str = "refused_accepts";
/// Times the worker stopped accepting for a while (descriptor or session limit).
pub const ACCEPT_PAUSES: &str = "accept_pauses";
/// Requests or connections that matched no frontend.
pub const UNROUTED_REQUESTS: &str = "unrouted_requests";
/// Connections closed because their PROXY protocol header was missing, invalid or late.
pub const PROXY_PROTOCOL_ERRORS: &str = "proxy_protocol_errors";
/// Buffers taken from the pool now (gauge).
pub const BUFFERS_IN_USE: &str = "buffers_in_use";

/// Time to open a connection to a backend.
pub const CONNECT_TIME: &str = "connect_time";
/// Time from sending a request to a backend to its first response byte.
pub const BACKEND_RESPONSE_TIME: &str = "backend_response_time";
/// Time from a request's first byte to the last byte of its response.
pub const TOTAL_REQUEST_TIME: &str = "total_request_time";

/// The error answers the proxy produces itself, each counted under
/// [`answer`]`(status)`.
pub const ANSWER_STATUSES: [u16; 12] = [400, 403, 404, 408, 413, 414, 431, 501, 502, 503, 504, 505];

/// Name of the counter of proxy-produced answers with `status`, or `None`
/// when the proxy never produces that status.
pub fn answer(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "answers_400",
        403 => "answers_403",
        404 => "answers_404",
        408 => "answers_408",
        413 => "answers_413",
        414 => "answers_414",
        431 => "answers_431",
        501 => "answers_501",
        502 => "answers_502",
        503 => "answers_503",
        504 => "answers_504",
        505 => "answers_505",
        _ => return None,
    })
}

/// The counters and gauges of a cluster's or a backend's traffic, in the order workers
/// list them, each with whether it is a gauge. A cluster or backend that has seen no
/// traffic is sent without them: each then reads as zero.
pub fn traffic_values() -> Vec<(&'static str, bool)> {
    let mut names = vec![
        (REQUESTS, false),
        (RESPONSES_1XX, false),
        (RESPONSES_2XX, false),
        (RESPONSES_3XX, false),
        (RESPONSES_4XX, false),
        (RESPONSES_5XX, false),
    ];
    names.extend(
        ANSWER_STATUSES
            .iter()
            .filter_map(|status| answer(*status))
            .map(|name| (name, false)),
    );
    names.extend([
        (RECEIVED_BYTES, false),
        (SENT_BYTES, false),
        (CONNECTIONS, false),
        (ACTIVE_CONNECTIONS, true),
        (REFUSED_CONNECTIONS, false),
        (CONNECT_ERRORS, false),
        (RETRIES, false),
        (FAIL_OPEN, false),
    ]);
    names
}

/// How the totals of several workers combine a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Add them up: counters, and gauges that count things each worker owns.
    Sum,
    /// Keep the smallest: a thing is available overall only where every
    /// worker sees it available.
    Min,
    /// Keep the largest: every worker holds the same configuration, so
    /// adding would count it once per worker.
    Max,
}

/// How the totals of several workers combine the metric called `name`.
pub fn combine(name: &str) -> Combine {
    match name {
        AVAILABLE_BACKENDS => Combine::Min,
        TOTAL_BACKENDS => Combine::Max,
        // Each worker backs off on its own: the worst one tells.
        RETRY_FAILURES => Combine::Max,
        ADMIN_STATE => Combine::Max,
        _ => Combine::Sum,
    }
}

/// The help text of a metric, for Prometheus' `# HELP` line.
pub fn help(name: &str) -> &'static str {
    match name {
        REQUESTS => "Requests received (HTTP) or sessions started (TCP).",
        RESPONSES_1XX => "Responses with a 1xx status.",
        RESPONSES_2XX => "Responses with a 2xx status.",
        RESPONSES_3XX => "Responses with a 3xx status.",
        RESPONSES_4XX => "Responses with a 4xx status.",
        RESPONSES_5XX => "Responses with a 5xx status.",
        RECEIVED_BYTES => "Bytes read from clients.",
        SENT_BYTES => "Bytes written to clients.",
        CONNECTIONS => "Connections opened.",
        ACTIVE_CONNECTIONS => "Connections open now.",
        REFUSED_CONNECTIONS => "Connections refused.",
        CONNECT_ERRORS => "Failed attempts to connect to a backend.",
        RETRIES => "Connect attempts repeated on another backend.",
        FAIL_OPEN => "Requests sent to a backend although none was known to be up.",
        AVAILABLE_BACKENDS => "Backends that can take traffic now.",
        TOTAL_BACKENDS => "Backends configured.",
        RETRY_FAILURES => {
            "Failed connection attempts in a row; the backend backs off while not zero."
        }
        HEALTHY => "Whether the backend passes its health checks (1) or not (0).",
        ADMIN_STATE => "Operator state of the backend: 0 ready, 1 drain, 2 maint.",
        ACCEPTED_CONNECTIONS => "Connections accepted on every listener.",
        ACTIVE_SESSIONS => "Sessions open now.",
        REFUSED_ACCEPTS => "Accepted connections closed at once because the worker was full.",
        ACCEPT_PAUSES => "Times accepting stopped for a while because a limit was reached.",
        UNROUTED_REQUESTS => "Requests or connections that matched no frontend.",
        PROXY_PROTOCOL_ERRORS => {
            "Connections closed because their PROXY protocol header was missing, invalid or late."
        }
        BUFFERS_IN_USE => "Buffers taken from the pool now.",
        CONNECT_TIME => "Time to open a connection to a backend.",
        BACKEND_RESPONSE_TIME => "Time from sending a request to its first response byte.",
        TOTAL_REQUEST_TIME => "Time from a request's first byte to its response's last byte.",
        "answers_400" => "400 Bad Request answers produced by the proxy.",
        "answers_403" => "403 Forbidden answers produced by the proxy.",
        "answers_404" => "404 Not Found answers produced by the proxy.",
        "answers_408" => "408 Request Timeout answers produced by the proxy.",
        "answers_413" => "413 Content Too Large answers produced by the proxy.",
        "answers_414" => "414 URI Too Long answers produced by the proxy.",
        "answers_431" => "431 Request Header Fields Too Large answers produced by the proxy.",
        "answers_501" => "501 Not Implemented answers produced by the proxy.",
        "answers_505" => "505 HTTP Version Not Supported answers produced by the proxy.",
        "answers_502" => "502 Bad Gateway answers produced by the proxy.",
        "answers_503" => "503 Service Unavailable answers produced by the proxy.",
        "answers_504" => "504 Gateway Timeout answers produced by the proxy.",
        _ => "Sluice metric.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_status_has_a_name_and_a_help() {
        for status in ANSWER_STATUSES {
            let name = answer(status).expect("answer status without a name");
            assert!(name.ends_with(&status.to_string()));
            assert_ne!(help(name), help("unknown"), "{name} has no help");
        }
        assert_eq!(answer(200), None);
    }

    #[test]
    fn availability_gauges_do_not_add_up() {
        assert_eq!(combine(AVAILABLE_BACKENDS), Combine::Min);
        assert_eq!(combine(TOTAL_BACKENDS), Combine::Max);
        assert_eq!(combine(RETRY_FAILURES), Combine::Max);
        assert_eq!(combine(REQUESTS), Combine::Sum);
        assert_eq!(combine(ACTIVE_CONNECTIONS), Combine::Sum);
    }
}
