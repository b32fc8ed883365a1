//! Certificates in the state, keyed by the SHA-256 fingerprint of their
//! leaf: adding, removing and replacing them, with the checks shared by the
//! configuration file, `sluice ctl` and state files.
//!
//! What is checked here does not depend on the clock (parsable, key matching,
//! names, listeners, one default per listener): the main process refuses an
//! expired certificate before it reaches the state (see
//! [`crate::certificate::check`]), and a worker's mirror agrees with it
//! whatever the time.
//!
//! A certificate names TLS listeners (`listeners`, empty: all of them), so a
//! listener named by a certificate cannot be removed or lose its TLS.

use std::net::SocketAddr;

use super::journal::Undo;
use super::{validate, ConfigState, Listener, StateError};
use crate::certificate::{self, CertificateInfo};
use crate::proto;

/// A certificate as the state keeps it: its PEM text with names filled in
/// and listener addresses in canonical form, and what was read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCertificate {
    /// What a worker is sent (and a state file holds).
    pub pem: proto::CertificateAndKey,
    /// Fingerprint, DNS names and not-after date.
    pub info: CertificateInfo,
}

impl StoredCertificate {
    /// Whether it serves the listener at `address`.
    pub fn serves(&self, address: &str) -> bool {
        self.pem.listeners.is_empty() || self.pem.listeners.iter().any(|a| a == address)
    }

    /// Whether it is the default certificate of the listeners it serves.
    pub fn is_default(&self) -> bool {
        self.pem.default == Some(true)
    }

    /// The line `sluice ctl certificate list` shows.
    pub fn summary(&self) -> proto::CertificateSummary {
        proto::CertificateSummary {
            fingerprint: self.info.fingerprint.clone(),
            names: self.pem.names.clone(),
            not_after_unix: self.info.not_after_unix,
            listeners: self.pem.listeners.clone(),
            default: self.is_default(),
            certificate_path: self.pem.certificate_path.clone(),
        }
    }
}

impl ConfigState {
    /// Every certificate, by fingerprint.
    pub fn certificates(&self) -> &std::collections::BTreeMap<String, StoredCertificate> {
        &self.certificates
    }

    /// The answer to `QueryCertificates`.
    pub fn certificate_list(&self) -> proto::CertificateList {
        proto::CertificateList {
            certificates: self
                .certificates
                .values()
                .map(StoredCertificate::summary)
                .collect(),
        }
    }

    pub(super) fn add_certificate(
        &mut self,
        undo: &mut Undo,
        pem: &proto::CertificateAndKey,
    ) -> Result<(), StateError> {
        let stored = self.checked_certificate(pem, None)?;
        if self.certificates.contains_key(&stored.info.fingerprint) {
            return Err(StateError::DuplicateCertificate(stored.info.fingerprint));
        }
        self.put_certificate(undo, stored.info.fingerprint.clone(), Some(stored));
        Ok(())
    }

    pub(super) fn remove_certificate(
        &mut self,
        undo: &mut Undo,
        fingerprint: &str,
    ) -> Result<(), StateError> {
        let fingerprint = fingerprint.to_ascii_lowercase();
        if !self.certificates.contains_key(&fingerprint) {
            return Err(StateError::UnknownCertificate(fingerprint));
        }
        self.put_certificate(undo, fingerprint, None);
        Ok(())
    }

    /// Takes the old certificate out and the new one in, as one change; the
    /// new one may have the old fingerprint (new names or listeners).
    pub(super) fn replace_certificate(
        &mut self,
        undo: &mut Undo,
        replace: &proto::ReplaceCertificate,
    ) -> Result<(), StateError> {
        let old = replace.old_fingerprint.to_ascii_lowercase();
        if !self.certificates.contains_key(&old) {
            return Err(StateError::UnknownCertificate(old));
        }
        let stored = self.checked_certificate(&replace.new_certificate, Some(&old))?;
        let new = stored.info.fingerprint.clone();
        if new != old && self.certificates.contains_key(&new) {
            return Err(StateError::DuplicateCertificate(new));
        }
        self.put_certificate(undo, old, None);
        self.put_certificate(undo, new, Some(stored));
        Ok(())
    }

    /// The certificates that name the listener at `address` explicitly.
    pub(super) fn certificates_naming(&self, address: &SocketAddr) -> Vec<String> {
        let address = address.to_string();
        self.certificates
            .values()
            .filter(|c| c.pem.listeners.contains(&address))
            .map(|c| c.info.fingerprint.clone())
            .collect()
    }

    /// Refuses a listener change that leaves certificates naming a listener
    /// without TLS (or no listener).
    pub(super) fn check_certificates_keep_tls(
        &self,
        address: &SocketAddr,
        listener: Option<&Listener>,
    ) -> Result<(), StateError> {
        if listener.is_some_and(Listener::is_tls) {
            return Ok(());
        }
        let naming = self.certificates_naming(address);
        if naming.is_empty() {
            return Ok(());
        }
        Err(StateError::ListenerHasCertificates {
            address: address.to_string(),
            fingerprints: naming.join(", "),
        })
    }

    /// Parses and checks a certificate against the state; `replacing` is
    /// the fingerprint of the certificate it takes the place of.
    fn checked_certificate(
        &self,
        pem: &proto::CertificateAndKey,
        replacing: Option<&str>,
    ) -> Result<StoredCertificate, StateError> {
        let info = certificate::inspect(pem)?;
        let mut pem = pem.clone();
        pem.names = if pem.names.is_empty() {
            info.dns_names.clone()
        } else {
            pem.names
                .iter()
                .map(|name| validate::certificate_name(name))
                .collect::<Result<_, _>>()?
        };
        if pem.names.is_empty() {
            return Err(StateError::NoCertificateNames(info.fingerprint));
        }
        let mut listeners = Vec::with_capacity(pem.listeners.len());
        for address in &pem.listeners {
            let parsed = validate::address("listener", address)?;
            match self.listeners.get(&parsed) {
                None => return Err(StateError::UnknownListener(parsed.to_string())),
                Some(listener) if !listener.is_tls() => {
                    return Err(StateError::NotATlsListener(parsed.to_string()))
                }
                Some(_) => {}
            }
            if !listeners.contains(&parsed.to_string()) {
                listeners.push(parsed.to_string());
            }
        }
        pem.listeners = listeners;
        pem.default = pem.default.filter(|default| *default);
        let stored = StoredCertificate { pem, info };
        if stored.is_default() {
            let conflict = self.certificates.values().find(|other| {
                Some(other.info.fingerprint.as_str()) != replacing
                    && other.is_default()
                    && overlap(&stored.pem.listeners, &other.pem.listeners)
            });
            if let Some(other) = conflict {
                return Err(StateError::DuplicateDefaultCertificate {
                    fingerprint: stored.info.fingerprint.clone(),
                    existing: other.info.fingerprint.clone(),
                });
            }
        }
        Ok(stored)
    }
}

/// Whether two listener sets (empty: all) share a listener.
fn overlap(first: &[String], second: &[String]) -> bool {
    first.is_empty() || second.is_empty() || first.iter().any(|a| second.contains(a))
}
