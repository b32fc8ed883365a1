//! `[[certificates]]`: the certificates of the TLS listeners, read from PEM
//! files and checked here (parsable, not expired, key matching), so that
//! `sluice config check` reports a bad certificate like any other key.
//!
//! Cross-checks with the listeners: a `listeners` entry must name a TLS
//! listener, one listener has at most one default certificate, and every
//! TLS listener has at least one certificate that serves it.

use std::{net::SocketAddr, path::PathBuf};

use super::{
    error::ConfigError, listeners::ParsedListener, reader::Field, root::optional, validate,
};
use crate::{certificate, certificate::CertificateError, proto};

/// Keys of a `[[certificates]]` table.
const KEYS: &[&str] = &[
    "certificate",
    "key",
    "chain",
    "names",
    "listeners",
    "default",
];

/// A certificate and what later checks need to point back at it.
struct ParsedCertificate<'a> {
    pem: proto::CertificateAndKey,
    fingerprint: String,
    /// The listeners it serves; empty: every TLS listener.
    listeners: Vec<SocketAddr>,
    field: Field<'a>,
}

/// Parses every certificate, checked against the listeners and the clock
/// (`now_unix`, seconds since the Unix epoch).
pub(crate) fn parse_certificates(
    field: Option<Field<'_>>,
    listeners: &[ParsedListener<'_>],
    now_unix: i64,
) -> Result<Vec<proto::CertificateAndKey>, ConfigError> {
    let mut certificates: Vec<ParsedCertificate<'_>> = Vec::new();
    if let Some(field) = field {
        for item in field.array()? {
            let parsed = parse_certificate(item, listeners, now_unix)?;
            if let Some(first) = certificates
                .iter()
                .find(|c| c.fingerprint == parsed.fingerprint)
            {
                return Err(parsed.field.error(format!(
                    "certificate {} is already given by {}, expected each certificate once",
                    parsed.fingerprint,
                    first.field.path()
                )));
            }
            check_default(&parsed, &certificates)?;
            certificates.push(parsed);
        }
    }
    check_every_tls_listener_served(listeners, &certificates)?;
    Ok(certificates.into_iter().map(|c| c.pem).collect())
}

fn parse_certificate<'a>(
    field: Field<'a>,
    listeners: &[ParsedListener<'_>],
    now_unix: i64,
) -> Result<ParsedCertificate<'a>, ConfigError> {
    let table = field.table(KEYS)?;
    let certificate_field = table.require("certificate")?;
    let key_field = table.require("key")?;
    let chain_field = table.get("chain");
    let certificate_path = path(&certificate_field)?;
    let key_path = path(&key_field)?;
    let chain_path = chain_field.as_ref().map(path).transpose()?;
    let mut pem = certificate::read_files(&certificate_path, &key_path, chain_path.as_deref())
        .map_err(|error| error_at(&error, &certificate_field, &key_field, chain_field.as_ref()))?;
    let info = certificate::check(&pem, now_unix)
        .map_err(|error| error_at(&error, &certificate_field, &key_field, chain_field.as_ref()))?;
    pem.names = match optional(&table, "names", names)? {
        Some(names) => names,
        None if info.dns_names.is_empty() => {
            return Err(certificate_field.error(format!(
                "{} has no DNS name, expected names = [...] in this entry",
                certificate_path.display()
            )))
        }
        None => info.dns_names.clone(),
    };
    let addresses =
        optional(&table, "listeners", |f| tls_listeners(f, listeners))?.unwrap_or_default();
    pem.listeners = addresses.iter().map(SocketAddr::to_string).collect();
    pem.default = optional(&table, "default", Field::bool)?.filter(|default| *default);
    Ok(ParsedCertificate {
        pem,
        fingerprint: info.fingerprint,
        listeners: addresses,
        field,
    })
}

/// A path resolved against the configuration's folder.
fn path(field: &Field<'_>) -> Result<PathBuf, ConfigError> {
    let text = field.str()?;
    if text.is_empty() {
        return Err(field.error("empty path, expected a PEM file"));
    }
    Ok(field.source().resolve(text))
}

/// A certificate error, reported at the key that names the file at fault.
fn error_at(
    error: &CertificateError,
    certificate: &Field<'_>,
    key: &Field<'_>,
    chain: Option<&Field<'_>>,
) -> ConfigError {
    let field = match error {
        CertificateError::NoKey { .. }
        | CertificateError::UnsupportedKey { .. }
        | CertificateError::KeyMismatch { .. } => key,
        CertificateError::Unreadable { file, .. }
        | CertificateError::NoCertificate { file }
        | CertificateError::Unparsable { file, .. } => {
            let names = |field: &Field<'_>| {
                field
                    .str()
                    .ok()
                    .map(|text| field.source().resolve(text).display().to_string())
                    .as_deref()
                    == Some(file.as_str())
            };
            // In the order the files are read and parsed.
            let order = match error {
                CertificateError::Unreadable { .. } => [Some(certificate), Some(key), chain],
                _ => [Some(certificate), chain, Some(key)],
            };
            order
                .into_iter()
                .flatten()
                .find(|field| names(field))
                .unwrap_or(certificate)
        }
        CertificateError::Expired { .. } => certificate,
    };
    field.error(error.to_string())
}

fn names(field: &Field<'_>) -> Result<Vec<String>, ConfigError> {
    let mut names: Vec<String> = Vec::new();
    for item in field.array()? {
        let name = item.str_with(validate::hostname)?;
        if name == "*" {
            return Err(item.error(
                "\"*\" is not a certificate name, expected default = true for the \
                 certificate of unknown names",
            ));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(field.error("empty list, expected names like \"example.com\""));
    }
    Ok(names)
}

/// The addresses of `listeners = [...]`, each that of a TLS listener.
fn tls_listeners(
    field: &Field<'_>,
    listeners: &[ParsedListener<'_>],
) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut addresses = Vec::new();
    for item in field.array()? {
        let address = item.socket_addr()?;
        match listeners.iter().find(|l| l.address == address) {
            Some(listener) if listener.tls => {}
            Some(listener) => {
                return Err(item.error(format!(
                    "listener {address} ({}) does not terminate TLS, expected the address of \
                     a listener with protocol = \"https\" or tls = true",
                    listener.path
                )))
            }
            None => {
                let tls: Vec<String> = listeners
                    .iter()
                    .filter(|l| l.tls)
                    .map(|l| l.address.to_string())
                    .collect();
                return Err(item.error(format!(
                    "no listener on {address}, expected the address of a TLS listener: {}",
                    if tls.is_empty() {
                        "none is defined".to_owned()
                    } else {
                        tls.join(", ")
                    }
                )));
            }
        }
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    Ok(addresses)
}

/// Whether a certificate serving `served` (empty: all) serves `address`.
fn serves(served: &[SocketAddr], address: &SocketAddr) -> bool {
    served.is_empty() || served.contains(address)
}

/// One default certificate per listener.
fn check_default(
    certificate: &ParsedCertificate<'_>,
    earlier: &[ParsedCertificate<'_>],
) -> Result<(), ConfigError> {
    if certificate.pem.default != Some(true) {
        return Ok(());
    }
    let overlap = |other: &ParsedCertificate<'_>| {
        other.pem.default == Some(true)
            && (certificate.listeners.is_empty()
                || other.listeners.is_empty()
                || certificate
                    .listeners
                    .iter()
                    .any(|address| other.listeners.contains(address)))
    };
    let Some(other) = earlier.iter().find(|other| overlap(other)) else {
        return Ok(());
    };
    let field = certificate
        .field
        .map()?
        .get("default")
        .unwrap_or_else(|| certificate.field.clone());
    Err(field.error(format!(
        "{} is already the default certificate of a listener this one serves, \
         expected one default per listener",
        other.field.path()
    )))
}

fn check_every_tls_listener_served(
    listeners: &[ParsedListener<'_>],
    certificates: &[ParsedCertificate<'_>],
) -> Result<(), ConfigError> {
    for listener in listeners.iter().filter(|l| l.tls) {
        if !certificates
            .iter()
            .any(|c| serves(&c.listeners, &listener.address))
        {
            let field = listener.field.map()?;
            let at = field
                .get("protocol")
                .or_else(|| field.get("tls"))
                .unwrap_or_else(|| listener.field.clone());
            return Err(at.error(format!(
                "no certificate serves TLS listener {}, expected a [[certificates]] entry \
                 without listeners or with listeners = [\"{}\"]",
                listener.address, listener.address
            )));
        }
    }
    Ok(())
}
