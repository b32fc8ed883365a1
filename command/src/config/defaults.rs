//! Every default value of the configuration, in one place.
//!
//! The other crates use these constants too (the worker's buffer pool, the
//! main process's grace period, `sluice ctl`'s defaults), so that a value left
//! out of the file means the same thing everywhere. They are the choices of a
//! careful operator: bounded resources, timeouts that free stuck sessions
//! without cutting slow but healthy ones, and loopback-only addresses.

use std::time::Duration;

/// Path of the command socket, relative to the configuration file's folder.
pub const DEFAULT_COMMAND_SOCKET: &str = "sluice.sock";
/// Number of worker processes.
pub const DEFAULT_WORKER_COUNT: u32 = 2;
/// Most worker processes accepted: more than that is a typo, not a machine.
pub const MAX_WORKER_COUNT: u32 = 256;
/// Log level name.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Where access-log lines go.
pub const DEFAULT_ACCESS_LOG: &str = "stdout";
/// Most sessions one worker serves at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Highest `max_connections` accepted (per worker).
pub const MAX_MAX_CONNECTIONS: usize = 1_000_000;
/// Size of one pooled buffer, in bytes (16 KiB: one TLS record, most heads).
pub const DEFAULT_BUFFER_SIZE: usize = 16_384;
/// Smallest `buffer_size` accepted: a request head must fit in one buffer.
pub const MIN_BUFFER_SIZE: usize = 1_024;
/// Largest `buffer_size` accepted (1 MiB).
pub const MAX_BUFFER_SIZE: usize = 1_048_576;
/// How long a soft stop waits for sessions to finish.
pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// Idle time allowed on the client side of a session.
pub const DEFAULT_FRONT_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle time allowed on the backend side of a session.
pub const DEFAULT_BACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to open a connection to a backend.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a client to send a whole request head.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest duration accepted anywhere in the file: one day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Name of the sticky-session cookie.
pub const DEFAULT_STICKY_COOKIE: &str = "SLUICEID";
/// Connection attempts on other backends before answering 503.
pub const DEFAULT_MAX_CONNECT_RETRIES: u32 = 3;
/// Highest `max_connect_retries` accepted.
pub const MAX_MAX_CONNECT_RETRIES: u32 = 100;
/// Weight of a backend.
pub const DEFAULT_WEIGHT: u32 = 100;
/// Highest weight accepted (0 means "send nothing new").
pub const MAX_WEIGHT: u32 = 1_000;

/// Time between two health probes of one backend.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Time a health probe may take.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Successful probes in a row that make a down backend healthy again.
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Failed probes in a row that mark a backend down.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// Highest healthy or unhealthy threshold accepted.
pub const MAX_HEALTH_THRESHOLD: u32 = 100;
/// Lowest HTTP status a health probe accepts.
pub const DEFAULT_EXPECTED_STATUS_MIN: u32 = 200;
/// Highest HTTP status a health probe accepts.
pub const DEFAULT_EXPECTED_STATUS_MAX: u32 = 399;

/// Frontend hostname that matches every host.
pub const DEFAULT_HOSTNAME: &str = "*";
/// Frontend path.
pub const DEFAULT_PATH: &str = "/";

/// Statuses whose default answer a listener or cluster may replace.
pub const ANSWER_STATUSES: [u32; 9] = [400, 403, 404, 408, 413, 431, 502, 503, 504];

/// How often backend host names are resolved again.
pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);
/// Valid `dns_refresh` values.
pub const DNS_REFRESH_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=MAX_DURATION;
