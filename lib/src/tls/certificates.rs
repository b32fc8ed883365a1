//! Certificates and keys by fingerprint, loaded from the PEM text of a request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sluice_command::proto;

use super::{crypto, TlsError};

/// A loaded certificate, its key, and where and for which names it is served.
#[derive(Debug)]
pub(crate) struct LoadedCertificate {
    pub(crate) fingerprint: String,
    pub(crate) key: Arc<CertifiedKey>,
    /// Names it answers, lowercase: exact, or `*.example.com`.
    pub(crate) names: Vec<String>,
    /// The listeners it serves; empty: every TLS listener.
    pub(crate) listeners: Vec<SocketAddr>,
    pub(crate) default: bool,
    /// Loaded after every certificate with a lower number: the later one wins a name
    /// two certificates claim.
    pub(crate) order: u64,
}

impl LoadedCertificate {
    /// Whether it is served on `listener`.
    pub(crate) fn serves(&self, listener: SocketAddr) -> bool {
        self.listeners.is_empty() || self.listeners.contains(&listener)
    }
}

/// Every certificate of the worker, by fingerprint.
#[derive(Debug, Default)]
pub(crate) struct CertificateStore {
    by_fingerprint: BTreeMap<String, Arc<LoadedCertificate>>,
    next_order: u64,
}

/// The SHA-256 of a certificate's DER, lowercase hex.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = crypto::digest::digest(&crypto::digest::SHA256, der);
    let mut text = String::with_capacity(64);
    for byte in digest.as_ref() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

impl CertificateStore {
    /// Loads a certificate (not yet stored).
    pub(crate) fn load(
        &mut self,
        request: &proto::CertificateAndKey,
        provider: &CryptoProvider,
    ) -> Result<LoadedCertificate, TlsError> {
        let leaf = CertificateDer::from_pem_slice(request.certificate.as_bytes())
            .map_err(|error| TlsError::Certificate(error.to_string()))?;
        let fingerprint = fingerprint(&leaf);
        let mut chain = vec![leaf];
        for pem in &request.chain {
            for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                chain.push(certificate.map_err(|error| TlsError::Chain(error.to_string()))?);
            }
        }
        let key = PrivateKeyDer::from_pem_slice(request.key.as_bytes())
            .map_err(|error| TlsError::Key(error.to_string()))?;
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(TlsError::UnsupportedKey)?;
        let key = CertifiedKey::new(chain, signing_key);
        key.keys_match().map_err(TlsError::KeyMismatch)?;
        let listeners = request
            .listeners
            .iter()
            .map(|address| {
                address
                    .parse()
                    .map_err(|_| TlsError::InvalidAddress(address.clone()))
            })
            .collect::<Result<_, _>>()?;
        self.next_order += 1;
        Ok(LoadedCertificate {
            fingerprint,
            key: Arc::new(key),
            names: request
                .names
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            listeners,
            default: request.default.unwrap_or(false),
            order: self.next_order,
        })
    }

    /// Stores a loaded certificate; refused if its fingerprint is already there.
    pub(crate) fn insert(&mut self, certificate: LoadedCertificate) -> Result<(), TlsError> {
        if self.by_fingerprint.contains_key(&certificate.fingerprint) {
            return Err(TlsError::Duplicate(certificate.fingerprint));
        }
        self.by_fingerprint
            .insert(certificate.fingerprint.clone(), Arc::new(certificate));
        Ok(())
    }

    /// Removes the certificate with `fingerprint`, returned for an undo.
    pub(crate) fn remove(&mut self, fingerprint: &str) -> Result<Arc<LoadedCertificate>, TlsError> {
        self.by_fingerprint
            .remove(fingerprint)
            .ok_or_else(|| TlsError::UnknownFingerprint(fingerprint.to_owned()))
    }

    /// Puts back a certificate taken out by [`CertificateStore::remove`].
    pub(crate) fn restore(&mut self, certificate: Arc<LoadedCertificate>) {
        self.by_fingerprint
            .insert(certificate.fingerprint.clone(), certificate);
    }

    /// Every certificate, by fingerprint.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<LoadedCertificate>> + '_ {
        self.by_fingerprint.values()
    }

    /// Whether the store holds `fingerprint`.
    pub(crate) fn contains(&self, fingerprint: &str) -> bool {
        self.by_fingerprint.contains_key(fingerprint)
    }
}
