//! Certificates: reading PEM files, parsing the leaf, its SHA-256
//! fingerprint, its DNS names and not-after date, and checking that the key
//! matches it and that it has not expired.
//!
//! The main process runs every check before a certificate is sent anywhere
//! ([`check`]); the state runs the ones that do not depend on the clock
//! ([`inspect`]), so that a state file and a worker's mirror agree with the
//! main process whatever the time.
//!
//! The TLS library is reached only through [`crypto_provider`], so that the
//! provider can be switched in one line.

mod error;

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

pub use error::CertificateError;

use crate::proto;

/// What the state keeps of a checked certificate besides its PEM text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// SHA-256 of the leaf's DER, lowercase hex without colons.
    pub fingerprint: String,
    /// The DNS names of its subject alternative names (the subject's common
    /// name when it has none), lower case.
    pub dns_names: Vec<String>,
    /// Its not-after date, in seconds since the Unix epoch.
    pub not_after_unix: i64,
}

/// The crypto provider of every TLS operation of the control plane.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The cipher suite names a listener may list (rustls's names, TLS 1.3
/// suites first), the provider's safe defaults.
pub fn cipher_suite_names() -> Vec<&'static str> {
    crypto_provider()
        .cipher_suites
        .iter()
        .filter_map(|suite| suite.suite().as_str())
        .collect()
}

/// Reads the PEM files of a certificate, its key and its chain into a
/// [`proto::CertificateAndKey`] that remembers the paths, with the given
/// names, listeners and default flag. Nothing is checked but readability.
pub fn read_files(
    certificate: &Path,
    key: &Path,
    chain: Option<&Path>,
) -> Result<proto::CertificateAndKey, CertificateError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CertificateError::Unreadable {
            file: path.display().to_string(),
            source,
        })
    };
    Ok(proto::CertificateAndKey {
        certificate: read(certificate)?,
        key: read(key)?,
        chain: chain.map(read).transpose()?.into_iter().collect(),
        names: Vec::new(),
        listeners: Vec::new(),
        default: None,
        certificate_path: Some(certificate.display().to_string()),
        key_path: Some(key.display().to_string()),
        chain_path: chain.map(|path| path.display().to_string()),
    })
}

/// Every check that does not depend on the clock: the leaf and the chain
/// parse, the key parses and matches the leaf. Gives the fingerprint, names
/// and not-after date.
pub fn inspect(pem: &proto::CertificateAndKey) -> Result<CertificateInfo, CertificateError> {
    let certificate_file = display_name(pem.certificate_path.as_deref(), "certificate");
    let key_file = display_name(pem.key_path.as_deref(), "key");
    let chain_file = display_name(pem.chain_path.as_deref(), "chain");
    let leaf = first_certificate(&pem.certificate, &certificate_file)?;
    let mut chain = vec![leaf.clone()];
    for text in &pem.chain {
        chain.extend(all_certificates(text, &chain_file)?);
    }
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => CertificateError::NoKey {
            file: key_file.clone(),
        },
        other => CertificateError::Unparsable {
            file: key_file.clone(),
            reason: other.to_string(),
        },
    })?;
    let info = leaf_info(&leaf, &certificate_file)?;
    keys_match(chain, key, &certificate_file, &key_file)?;
    Ok(info)
}

/// [`inspect`], and the certificate must not have expired at `now_unix`
/// (seconds since the Unix epoch).
pub fn check(
    pem: &proto::CertificateAndKey,
    now_unix: i64,
) -> Result<CertificateInfo, CertificateError> {
    let info = inspect(pem)?;
    if info.not_after_unix <= now_unix {
        return Err(CertificateError::Expired {
            file: display_name(pem.certificate_path.as_deref(), "certificate"),
            not_after: format_unix_date(info.not_after_unix),
        });
    }
    Ok(info)
}

/// The fingerprint of the first certificate of a PEM text.
pub fn fingerprint_of_pem(pem: &str) -> Result<String, CertificateError> {
    Ok(fingerprint(&first_certificate(pem, "certificate")?))
}

/// SHA-256 of a DER certificate, lowercase hex without colons (what
/// `openssl x509 -noout -fingerprint -sha256` prints, colons removed).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A date as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn format_unix_date(unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(time) => time.to_string(),
        Err(_) => unix.to_string(),
    }
}

/// How a file is named in errors: its path, or what it is when the PEM text
/// came inline.
fn display_name(path: Option<&str>, what: &str) -> String {
    match path {
        Some(path) => path.to_owned(),
        None => format!("the {what} (inline PEM)"),
    }
}

fn all_certificates(
    pem: &str,
    file: &str,
) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CertificateError::Unparsable {
            file: file.to_owned(),
            reason: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(CertificateError::NoCertificate {
            file: file.to_owned(),
        });
    }
    Ok(certificates)
}

fn first_certificate(pem: &str, file: &str) -> Result<CertificateDer<'static>, CertificateError> {
    let mut certificates = all_certificates(pem, file)?;
    Ok(certificates.swap_remove(0))
}

fn leaf_info(leaf: &CertificateDer<'_>, file: &str) -> Result<CertificateInfo, CertificateError> {
    let unparsable = |reason: String| CertificateError::Unparsable {
        file: file.to_owned(),
        reason,
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|error| unparsable(error.to_string()))?;
    let mut dns_names: Vec<String> = Vec::new();
    let alternative_names = parsed
        .subject_alternative_name()
        .map_err(|error| unparsable(error.to_string()))?;
    for name in alternative_names
        .iter()
        .flat_map(|extension| extension.value.general_names.iter())
    {
        if let GeneralName::DNSName(name) = name {
            push_unique(&mut dns_names, name);
        }
    }
    if dns_names.is_empty() {
        for common_name in parsed.subject().iter_common_name() {
            if let Ok(name) = common_name.as_str() {
                push_unique(&mut dns_names, name);
            }
        }
    }
    Ok(CertificateInfo {
        fingerprint: fingerprint(leaf),
        dns_names,
        not_after_unix: parsed.validity().not_after.timestamp(),
    })
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    let name = name.to_ascii_lowercase();
    if !names.contains(&name) {
        names.push(name);
    }
}

/// Loads the key with the provider and checks that its public key is the
/// leaf's. A key whose public half the provider cannot tell is accepted (the
/// handshake would then fail, which the worker reports).
fn keys_match(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    certificate_file: &str,
    key_file: &str,
) -> Result<(), CertificateError> {
    let provider = crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| CertificateError::UnsupportedKey {
            file: key_file.to_owned(),
            reason: error.to_string(),
        })?;
    match CertifiedKey::new(chain, signing_key).keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(_) => Err(CertificateError::KeyMismatch {
            certificate: certificate_file.to_owned(),
            key: key_file.to_owned(),
        }),
    }
}
