//! The TLS keys of a listener: `protocol = "https"` or `tls = true` on a tcp
//! listener turn TLS on; `min_tls_version`, `cipher_suites`, `alpn` and
//! `strict_sni` tune it and are refused on a listener without TLS.

use super::{
    error::ConfigError, listeners::Protocol, reader::Field, reader::Table, root::optional,
};
use crate::{certificate, proto};

/// The keys that only a TLS listener takes.
const TLS_SETTING_KEYS: &[&str] = &["min_tls_version", "cipher_suites", "alpn", "strict_sni"];

const VERSIONS: &[(&str, proto::TlsVersion)] = &[
    ("1.2", proto::TlsVersion::Tls12),
    ("1.3", proto::TlsVersion::Tls13),
];

/// ALPN protocol ids are 1 to 255 bytes long (RFC 7301).
const MAX_ALPN_LEN: usize = 255;

/// The TLS settings of a listener, `None` for a listener without TLS.
/// `https` says whether its protocol was written `https`.
pub(crate) fn parse_tls(
    table: &Table<'_>,
    protocol: Protocol,
    https: bool,
) -> Result<Option<proto::TlsSettings>, ConfigError> {
    let tls_key = optional(table, "tls", Field::bool)?;
    if let (Protocol::Http, Some(_)) = (protocol, &tls_key) {
        let field = table.require("tls")?;
        return Err(field.error(
            "tls applies to tcp listeners, expected protocol = \"https\" for an http listener",
        ));
    }
    let tls = https || tls_key == Some(true);
    if !tls {
        if let Some(key) = TLS_SETTING_KEYS.iter().find(|key| table.get(key).is_some()) {
            let field = table.require(key)?;
            return Err(field.error(format!(
                "{key} applies to TLS listeners only, expected protocol = \"https\" \
                 (or tls = true on a tcp listener)"
            )));
        }
        return Ok(None);
    }
    let min_version = optional(table, "min_tls_version", |f| f.choice(VERSIONS))?;
    let cipher_suites =
        optional(table, "cipher_suites", |f| cipher_suites(f, min_version))?.unwrap_or_default();
    Ok(Some(proto::TlsSettings {
        min_version: min_version.map(|version| version as i32),
        cipher_suites,
        alpn_protocols: optional(table, "alpn", alpn)?.unwrap_or_default(),
        strict_sni: optional(table, "strict_sni", Field::bool)?,
    }))
}

fn cipher_suites(
    field: &Field<'_>,
    min_version: Option<proto::TlsVersion>,
) -> Result<Vec<String>, ConfigError> {
    let known = certificate::cipher_suite_names();
    let mut names: Vec<String> = Vec::new();
    for item in field.array()? {
        let name = item.str()?;
        if !known.contains(&name) {
            return Err(item.error(format!(
                "unknown cipher suite {name:?}, expected one of {}",
                known.join(", ")
            )));
        }
        if names.iter().any(|seen| seen == name) {
            return Err(item.error(format!("duplicate cipher suite {name:?}")));
        }
        names.push(name.to_owned());
    }
    if names.is_empty() {
        return Err(field.error(
            "empty list, expected cipher suite names (leave the key out for the safe defaults)",
        ));
    }
    let tls13 = names.iter().any(|name| name.starts_with("TLS13_"));
    if min_version == Some(proto::TlsVersion::Tls13) && !tls13 {
        return Err(field
            .error("min_tls_version = \"1.3\" but no TLS 1.3 cipher suite (TLS13_…) is listed"));
    }
    Ok(names)
}

fn alpn(field: &Field<'_>) -> Result<Vec<String>, ConfigError> {
    let mut protocols: Vec<String> = Vec::new();
    for item in field.array()? {
        let protocol = item.str()?;
        if protocol.is_empty() || protocol.len() > MAX_ALPN_LEN {
            return Err(item.error(format!(
                "ALPN protocol {protocol:?} must be 1 to {MAX_ALPN_LEN} bytes, like \"http/1.1\""
            )));
        }
        if protocols.iter().any(|seen| seen == protocol) {
            return Err(item.error(format!("duplicate ALPN protocol {protocol:?}")));
        }
        protocols.push(protocol.to_owned());
    }
    Ok(protocols)
}
