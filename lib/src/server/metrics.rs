//! What a worker counts about its own activity.

/// Plain counters of one worker; gauges are marked as such.
#[derive(Debug, Default, Clone)]
pub struct WorkerCounters {
    /// Client connections accepted.
    pub accepted: u64,
    /// Gauge: sessions open now.
    pub active_sessions: u64,
    /// Accepts that failed for lack of resources (file descriptors, memory).
    pub refused: u64,
    /// Times accepting was paused because `max_connections` was reached.
    pub accept_pauses: u64,
    /// Connections closed because their listener has no frontend.
    pub no_frontend: u64,
    /// Sessions for which no backend could be chosen.
    pub no_backend: u64,
    /// Backend connects that failed (refused, reset, timed out).
    pub connect_errors: u64,
    /// Backend connects that timed out.
    pub connect_timeouts: u64,
    /// Connects retried on another backend.
    pub retries: u64,
    /// Sessions closed by an idle timeout.
    pub idle_timeouts: u64,
    /// HTTP requests finished.
    pub requests: u64,
    /// HTTP sessions upgraded to a byte pipe (WebSocket …).
    pub upgrades: u64,
}
