//! `[etcd]`: where the clusters kept in etcd come from. Listeners and global settings stay
//! in the local file (each machine knows its own addresses); only clusters live in etcd,
//! one key per cluster under `<prefix>clusters/`.

use std::{path::PathBuf, time::Duration};

use super::{error::ConfigError, reader::Field, root::optional};

/// Every key of the `[etcd]` table.
const KEYS: &[&str] = &[
    "endpoints",
    "prefix",
    "username",
    "password",
    "ca",
    "certificate",
    "key",
    "dial_timeout",
    "cache",
];

/// Prefix of every key Sluice reads, when the file names none.
pub const DEFAULT_ETCD_PREFIX: &str = "/sluice/";
/// How long connecting to an endpoint may take.
pub const DEFAULT_ETCD_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest `dial_timeout` accepted.
const MAX_DIAL_TIMEOUT: Duration = Duration::from_secs(300);

/// The etcd cluster that feeds this instance its clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `http://HOST:PORT` or `https://HOST:PORT` of each member.
    pub endpoints: Vec<String>,
    /// Every key read is under this prefix; clusters are at `<prefix>clusters/<id>`.
    pub prefix: String,
    /// User and password, when etcd has authentication enabled.
    pub credentials: Option<(String, String)>,
    /// TLS to etcd: the CA that signs the members' certificates.
    pub ca: Option<PathBuf>,
    /// TLS client certificate and its key, when etcd asks for one.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// How long connecting may take before the endpoint counts as unreachable.
    pub dial_timeout: Duration,
    /// Where the last applied etcd state is kept, to start from when etcd is unreachable.
    pub cache: Option<PathBuf>,
}

impl EtcdConfig {
    /// The prefix under which each key holds one cluster.
    pub fn clusters_prefix(&self) -> String {
        format!("{}clusters/", self.prefix)
    }

    /// The key that holds cluster `cluster_id`.
    pub fn cluster_key(&self, cluster_id: &str) -> String {
        format!("{}{cluster_id}", self.clusters_prefix())
    }
}

/// Reads the `[etcd]` table.
pub(crate) fn parse_etcd(field: &Field<'_>) -> Result<EtcdConfig, ConfigError> {
    let table = field.table(KEYS)?;
    let endpoints = endpoints(&table.require("endpoints")?)?;
    let prefix = optional(&table, "prefix", prefix)?.unwrap_or(DEFAULT_ETCD_PREFIX.to_owned());
    let username = optional(&table, "username", non_empty)?;
    let password = optional(&table, "password", |f| f.str().map(str::to_owned))?;
    let credentials = match (username, password) {
        (Some(user), Some(password)) => Some((user.to_owned(), password)),
        (None, None) => None,
        (Some(_), None) => return Err(table.field().error("username without password")),
        (None, Some(_)) => {
            return Err(table
                .require("password")?
                .error("password without username"))
        }
    };
    let path = |key: &str| optional(&table, key, |f| Ok(f.source().resolve(non_empty(f)?)));
    let ca = path("ca")?;
    let client_certificate = match (path("certificate")?, path("key")?) {
        (Some(certificate), Some(key)) => Some((certificate, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(table
                .require("certificate")?
                .error("certificate without key, expected both or neither"))
        }
        (None, Some(_)) => {
            return Err(table
                .require("key")?
                .error("key without certificate, expected both or neither"))
        }
    };
    let tls = endpoints.iter().any(|e| e.starts_with("https://"));
    if !tls && (ca.is_some() || client_certificate.is_some()) {
        let at = table.get("ca").or_else(|| table.get("certificate"));
        let at = at.as_ref().unwrap_or(table.field());
        return Err(at.error("TLS settings given but no endpoint is https://"));
    }
    Ok(EtcdConfig {
        endpoints,
        prefix,
        credentials,
        ca,
        client_certificate,
        dial_timeout: optional(&table, "dial_timeout", |f| {
            f.duration_in(Duration::from_millis(1)..=MAX_DIAL_TIMEOUT)
        })?
        .unwrap_or(DEFAULT_ETCD_DIAL_TIMEOUT),
        cache: path("cache")?,
    })
}

fn endpoints(field: &Field<'_>) -> Result<Vec<String>, ConfigError> {
    let items = field.array()?;
    if items.is_empty() {
        return Err(field
            .error("empty list, expected at least one endpoint like \"http://127.0.0.1:2379\""));
    }
    items.iter().map(endpoint).collect()
}

fn endpoint(field: &Field<'_>) -> Result<String, ConfigError> {
    field.str_with(|text| {
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"));
        match rest {
            Some(host_port) if valid_host_port(host_port) => Ok(text.to_owned()),
            _ => Err(format!(
                "invalid endpoint {text:?}, expected http://HOST:PORT or https://HOST:PORT"
            )),
        }
    })
}

fn valid_host_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains('/')
                && port.parse::<u16>().is_ok_and(|port| port > 0)
        }
        None => false,
    }
}

fn prefix(field: &Field<'_>) -> Result<String, ConfigError> {
    field.str_with(|text| {
        if text.starts_with('/') && text.ends_with('/') {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid prefix {text:?}, expected a path that starts and ends with '/', like \"/sluice/\""
            ))
        }
    })
}

fn non_empty<'a>(field: &Field<'a>) -> Result<&'a str, ConfigError> {
    let text = field.str()?;
    if text.is_empty() {
        return Err(field.error("empty value"));
    }
    Ok(text)
}
