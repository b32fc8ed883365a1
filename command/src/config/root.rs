//! The top level of the file: global settings, then listeners and clusters,
//! then the checks that span both.

use std::{path::Path, time::Duration};

use super::{
    certificates::parse_certificates,
    clusters::parse_clusters,
    defaults::*,
    error::{line_column, ConfigError},
    listeners::parse_listeners,
    node::{parse_document, SyntaxError},
    reader::{Field, Source, Table},
    AccessLogFormat, AccessLogTarget, Config, LogLevel,
};

/// Every key allowed at the top level.
const ROOT_KEYS: &[&str] = &[
    "command_socket",
    "worker_count",
    "log_level",
    "access_log",
    "access_log_format",
    "max_connections",
    "buffer_size",
    "metrics_address",
    "shutdown_grace_period",
    "dns_servers",
    "dns_refresh",
    "listeners",
    "clusters",
    "certificates",
    "etcd",
];

/// `sun_path` holds 108 bytes including the final NUL.
const MAX_UNIX_SOCKET_PATH: usize = 107;

const ACCESS_LOG_FORMATS: &[(&str, AccessLogFormat)] = &[
    ("text", AccessLogFormat::Text),
    ("json", AccessLogFormat::Json),
];

const LOG_LEVELS: &[(&str, LogLevel)] = &[
    ("error", LogLevel::Error),
    ("warn", LogLevel::Warn),
    ("info", LogLevel::Info),
    ("debug", LogLevel::Debug),
    ("trace", LogLevel::Trace),
];

/// Parses and checks a whole file.
pub(crate) fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let document = parse_document(text).map_err(|error| syntax_error(text, file_name, &error))?;
    let src = Source {
        file: file_name,
        text,
        base_dir,
    };
    let root = Field::root(&src, &document).table(ROOT_KEYS)?;
    let listeners = parse_listeners(root.get("listeners"))?;
    let mut backend_names = Vec::new();
    let clusters = parse_clusters(root.get("clusters"), &listeners, &mut backend_names)?;
    let certificates = parse_certificates(root.get("certificates"), &listeners, unix_now())?;
    let metrics_address = match root.get("metrics_address") {
        Some(field) => Some(metrics_address(&field, &listeners)?),
        None => None,
    };
    Ok(Config {
        command_socket: command_socket(&root)?,
        worker_count: optional(&root, "worker_count", |f| f.u32_in(1..=MAX_WORKER_COUNT))?
            .unwrap_or(DEFAULT_WORKER_COUNT),
        log_level: optional(&root, "log_level", |f| f.choice(LOG_LEVELS))?
            .unwrap_or(LogLevel::Info),
        access_log: optional(&root, "access_log", access_log)?.unwrap_or(AccessLogTarget::Stdout),
        access_log_format: optional(&root, "access_log_format", |f| f.choice(ACCESS_LOG_FORMATS))?
            .unwrap_or_default(),
        max_connections: optional(&root, "max_connections", |f| {
            f.usize_in(1..=MAX_MAX_CONNECTIONS)
        })?
        .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        buffer_size: optional(&root, "buffer_size", |f| {
            f.usize_in(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE)
        })?
        .unwrap_or(DEFAULT_BUFFER_SIZE),
        metrics_address,
        shutdown_grace_period: optional(&root, "shutdown_grace_period", |f| {
            f.duration_in(Duration::ZERO..=MAX_DURATION)
        })?
        .unwrap_or(DEFAULT_SHUTDOWN_GRACE_PERIOD),
        dns_servers: optional(&root, "dns_servers", dns_servers)?.unwrap_or_default(),
        dns_refresh: optional(&root, "dns_refresh", |f| f.duration_in(DNS_REFRESH_RANGE))?
            .unwrap_or(DEFAULT_DNS_REFRESH),
        backend_names,
        path: None,
        etcd: optional(&root, "etcd", super::etcd::parse_etcd)?,
        listeners: listeners.into_iter().map(|l| l.config).collect(),
        clusters,
        certificates,
    })
}

/// Seconds since the Unix epoch, to tell expired certificates.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Reads `key` with `read` when present.
pub(crate) fn optional<'a, T>(
    table: &Table<'a>,
    key: &str,
    read: impl FnOnce(&Field<'a>) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    table.get(key).map(|field| read(&field)).transpose()
}

pub(crate) fn syntax_error(text: &str, file_name: &str, error: &SyntaxError) -> ConfigError {
    let offset = error.span.start;
    let (line, column) = line_column(text, offset);
    // The parser's message spans several lines ("expected …"); one line reads
    // better after a position.
    let message = error
        .message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError::Syntax {
        file: file_name.to_owned(),
        line,
        column,
        message,
    }
}

fn command_socket(root: &Table<'_>) -> Result<std::path::PathBuf, ConfigError> {
    let Some(field) = root.get("command_socket") else {
        return Ok(root.field().source().resolve(DEFAULT_COMMAND_SOCKET));
    };
    let text = field.str()?;
    if text.is_empty() {
        return Err(field.error("empty path, expected a socket path like \"sluice.sock\""));
    }
    let path = field.source().resolve(text);
    let length = path.as_os_str().len();
    if length > MAX_UNIX_SOCKET_PATH {
        return Err(field.error(format!(
            "socket path {} is {length} bytes long, expected at most {MAX_UNIX_SOCKET_PATH} \
             (the limit of Unix socket addresses)",
            path.display()
        )));
    }
    Ok(path)
}

fn access_log(field: &Field<'_>) -> Result<AccessLogTarget, ConfigError> {
    match field.str()? {
        "stdout" => Ok(AccessLogTarget::Stdout),
        "off" => Ok(AccessLogTarget::Off),
        "" => Err(field.error("empty value, expected stdout, off or a file path")),
        path => {
            let path = field.source().resolve(path);
            // Opened (and created if missing) as the workers will open it, like `nginx -t`
            // does, so that a missing folder or a read-only file is refused here, naming
            // the path, instead of failing every worker at start.
            if let Err(error) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                return Err(field.error(format!(
                    "cannot open {} for appending: {error}",
                    path.display()
                )));
            }
            Ok(AccessLogTarget::File(path))
        }
    }
}

fn metrics_address(
    field: &Field<'_>,
    listeners: &[super::listeners::ParsedListener<'_>],
) -> Result<std::net::SocketAddr, ConfigError> {
    let address = field.socket_addr()?;
    if let Some(listener) = listeners.iter().find(|l| l.address == address) {
        return Err(field.error(format!(
            "{address} is already used by {}, expected an address of its own",
            listener.path
        )));
    }
    Ok(address)
}

fn dns_servers(field: &Field<'_>) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    let servers = field
        .array()?
        .iter()
        .map(Field::socket_addr)
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(field.error(
            "empty list, expected DNS servers like [\"127.0.0.1:53\"], or no key for the \
             system's resolvers",
        ));
    }
    Ok(servers)
}
