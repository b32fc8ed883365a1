//! The TOML configuration file: reading it, checking every value with a
//! precise `FILE:LINE:COLUMN: KEY.PATH: message` error, and turning it into
//! the ordered [`proto::Request`]s that build the same state through the
//! control plane.
//!
//! Every key, its default and its valid values are documented in the README's
//! "Configuration reference"; the defaults themselves live in [`defaults`].
//!
//! The file is parsed into a tree that keeps the position of every key and
//! value (see `node`), then read by hand-written readers. Serde's derive was
//! not used because its errors carry neither array indices in key paths nor a
//! way to say what would have been valid for a cross-field rule (a frontend
//! naming a missing listener).

mod answers;
mod backend_address;
mod cache;
mod certificates;
mod cluster_document;
mod clusters;
pub mod defaults;
mod duration;
mod error;
mod etcd;
mod frontends;
mod listeners;
mod node;
mod parts;
mod reader;
mod root;
mod sections;
mod size;
mod tls;
mod to_requests;
pub(crate) mod validate;

#[cfg(test)]
mod tests;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::proto;

pub use backend_address::{
    check_named_backend, named_id, parse_backend_address, BackendAddress, MAX_NAMED_ID_LEN,
};
pub use cache::{CacheUse, LastRead, ParseCache};
pub use cluster_document::{
    cluster_document, parse_cluster_document, parse_located_cluster_document,
};
pub use duration::{format_duration, parse_duration, DurationError};
pub use error::ConfigError;
pub use etcd::{EtcdConfig, DEFAULT_ETCD_DIAL_TIMEOUT, DEFAULT_ETCD_PREFIX};
pub use size::{parse_size, SizeError};

/// The repository's default `sluice.toml`, built into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../../sluice.toml");

/// A checked configuration: every value valid, every default filled in,
/// every relative path resolved against the file's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Unix socket where `sluice ctl` talks to the main process.
    pub command_socket: PathBuf,
    /// Number of worker processes.
    pub worker_count: u32,
    /// Most verbose level logged.
    pub log_level: LogLevel,
    /// Where access-log lines go.
    pub access_log: AccessLogTarget,
    /// How access-log lines are written: `text` (the default) or `json`.
    pub access_log_format: AccessLogFormat,
    /// Most sessions one worker serves at once.
    pub max_connections: usize,
    /// Size of one pooled buffer, in bytes.
    pub buffer_size: usize,
    /// Where `/metrics`, `/health` and `/status` are served, if anywhere.
    pub metrics_address: Option<SocketAddr>,
    /// How long a soft stop waits for sessions to finish.
    pub shutdown_grace_period: Duration,
    /// The DNS servers that resolve backends given by host name (empty: the
    /// system's, from `/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// How often backend host names are resolved again (sooner when a record's
    /// TTL is shorter).
    pub dns_refresh: Duration,
    /// Where each backend given by host name was written, for messages about
    /// its name given after the file was read.
    pub backend_names: Vec<BackendNameOrigin>,
    /// The file this configuration was read from (`None` when embedded).
    pub path: Option<PathBuf>,
    /// The etcd cluster that also feeds clusters, if any (`[etcd]`).
    pub etcd: Option<EtcdConfig>,
    /// Listening sockets, in file order.
    pub listeners: Vec<ListenerConfig>,
    /// Clusters with their backends and frontends, in file order.
    pub clusters: Vec<proto::ClusterInformation>,
    /// TLS certificates, PEM text read from their files, `names` filled in,
    /// in file order.
    pub certificates: Vec<proto::CertificateAndKey>,
}

/// Where a backend given by host name was written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendNameOrigin {
    /// Its cluster.
    pub cluster_id: String,
    /// Its id.
    pub backend_id: String,
    /// `FILE:LINE:COLUMN: KEY.PATH` of its address.
    pub location: String,
}

/// A listening socket of either protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerConfig {
    /// An HTTP/1.1 listener.
    Http(proto::HttpListener),
    /// A TCP (layer 4) listener.
    Tcp(proto::TcpListener),
}

impl ListenerConfig {
    /// The `IP:PORT` it listens on, in canonical form.
    pub fn address(&self) -> &str {
        match self {
            ListenerConfig::Http(listener) => &listener.address,
            ListenerConfig::Tcp(listener) => &listener.address,
        }
    }

    /// The protocol it speaks: an http listener with TLS is https.
    pub fn protocol(&self) -> proto::ListenerProtocol {
        match self {
            ListenerConfig::Http(listener) if listener.tls.is_some() => {
                proto::ListenerProtocol::Https
            }
            ListenerConfig::Http(_) => proto::ListenerProtocol::Http,
            ListenerConfig::Tcp(_) => proto::ListenerProtocol::Tcp,
        }
    }

    /// Its timeouts.
    pub fn timeouts(&self) -> &proto::Timeouts {
        match self {
            ListenerConfig::Http(listener) => &listener.timeouts,
            ListenerConfig::Tcp(listener) => &listener.timeouts,
        }
    }
}

/// Log verbosity, from least to most verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also what an operator wants to see happen (the default).
    Info,
    /// Also what a developer needs to follow a session.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name used in the file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<LogLevel> for log::LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// How access-log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// Space-separated fields, `-` where absent (see the README).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl AccessLogFormat {
    /// The name used in the file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLogFormat::Text => "text",
            AccessLogFormat::Json => "json",
        }
    }

    /// The format its [`as_str`](Self::as_str) names; `text` for anything else.
    pub fn from_arg(text: &str) -> AccessLogFormat {
        match text {
            "json" => AccessLogFormat::Json,
            _ => AccessLogFormat::Text,
        }
    }
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// The standard output of each worker.
    Stdout,
    /// Nowhere.
    Off,
    /// Appended to a file.
    File(PathBuf),
}

impl AccessLogTarget {
    /// The target its [`Display`](fmt::Display) form names: `stdout`, `off`, or a path (as
    /// main hands it to its workers).
    pub fn from_arg(text: &str) -> AccessLogTarget {
        match text {
            "off" => AccessLogTarget::Off,
            "stdout" => AccessLogTarget::Stdout,
            path => AccessLogTarget::File(path.into()),
        }
    }
}

impl fmt::Display for AccessLogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLogTarget::Stdout => f.write_str("stdout"),
            AccessLogTarget::Off => f.write_str("off"),
            AccessLogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Config {
    /// Reads and checks the file at `path`. Errors name the file as given;
    /// relative paths inside it are resolved against its folder, made
    /// absolute so that they survive a change of working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, file_name, base_dir) = read_file(path)?;
        let mut config = Config::parse(&text, &file_name, &base_dir)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Checks `text`, naming it `file_name` in errors and resolving relative
    /// paths against `base_dir`. Answer files are read here.
    pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        root::parse(text, file_name, base_dir)
    }

    /// The built-in [`DEFAULT_CONFIG`], with paths relative to the working
    /// directory.
    pub fn default_embedded() -> Config {
        match Config::parse(DEFAULT_CONFIG, "sluice.toml", Path::new("")) {
            Ok(config) => config,
            // The embedded text is fixed at build time and checked by a test.
            Err(error) => panic!("the embedded default configuration is invalid: {error}"),
        }
    }

    /// The requests that build this configuration from an empty state, in
    /// an order where everything a request names already exists: listeners,
    /// clusters (health checks inside), backends, frontends, and last the
    /// activation of every listener (certificates come right after the
    /// listeners they name), so that no traffic arrives before its
    /// routes do.
    pub fn to_requests(&self) -> Vec<proto::Request> {
        to_requests::to_requests(self)
    }

    /// [`Config::to_requests`], with the clusters moved into the requests
    /// instead of copied: `clusters` is left empty.
    pub fn take_requests(&mut self) -> Vec<proto::Request> {
        to_requests::take_requests(self)
    }
}

/// The text of the file at `path`, its name for messages and the folder its
/// relative paths start from (made absolute, so that they survive a change
/// of working directory).
fn read_file(path: &Path) -> Result<(String, String, PathBuf), ConfigError> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file_name.clone(),
        source,
    })?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let base_dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    Ok((text, file_name, base_dir))
}
