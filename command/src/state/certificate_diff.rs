//! The certificate part of a reload diff, keyed by fingerprint.
//!
//! - Same fingerprint, same settings: nothing.
//! - Same fingerprint, other names, listeners, default flag or file paths:
//!   `ReplaceCertificate` onto itself.
//! - A certificate gone and another come from the same certificate file (a
//!   renewal in place): `ReplaceCertificate` from the old fingerprint to the
//!   new one, so that no handshake sees neither.
//! - Anything else: `RemoveCertificate` and `AddCertificate`.
//!
//! A certificate that names a listener which the reload removes, or which
//! loses its TLS, is removed before that listener goes, and added again
//! afterwards, instead of being replaced.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::generate as make;
use super::{ConfigState, StoredCertificate};
use crate::proto;

/// The certificate requests of a diff: removals go before the listeners'
/// removals, additions after the listeners' additions.
pub(super) struct CertificateDiff {
    pub(super) removals: Vec<proto::Request>,
    pub(super) additions: Vec<proto::Request>,
}

/// See the module docs. `kept_listeners` are the listeners with the same
/// address and protocol in both states.
pub(super) fn certificate_diff(
    origin: &ConfigState,
    target: &ConfigState,
    kept_listeners: &BTreeSet<SocketAddr>,
) -> CertificateDiff {
    let stays_tls = |address: &String| {
        address.parse::<SocketAddr>().is_ok_and(|parsed| {
            kept_listeners.contains(&parsed)
                && target
                    .listeners
                    .get(&parsed)
                    .is_some_and(super::Listener::is_tls)
        })
    };
    let replaceable = |old: &StoredCertificate| old.pem.listeners.iter().all(stays_tls);
    let mut removals = Vec::new();
    // (old fingerprint, new certificate)
    let mut replacements: Vec<(&str, &StoredCertificate)> = Vec::new();
    let mut additions: Vec<&StoredCertificate> = Vec::new();
    let mut paired: BTreeSet<&str> = BTreeSet::new();
    for (fingerprint, new) in &target.certificates {
        if let Some(old) = origin.certificates.get(fingerprint) {
            if old == new {
                continue;
            }
            if replaceable(old) {
                replacements.push((fingerprint, new));
            } else {
                removals.push(make::remove_certificate(fingerprint));
                additions.push(new);
            }
            continue;
        }
        let renewed = origin.certificates.values().find(|old| {
            !target.certificates.contains_key(&old.info.fingerprint)
                && !paired.contains(old.info.fingerprint.as_str())
                && old.pem.certificate_path.is_some()
                && old.pem.certificate_path == new.pem.certificate_path
                && replaceable(old)
        });
        match renewed {
            Some(old) => {
                paired.insert(&old.info.fingerprint);
                replacements.push((&old.info.fingerprint, new));
            }
            None => additions.push(new),
        }
    }
    for fingerprint in origin.certificates.keys() {
        if !target.certificates.contains_key(fingerprint) && !paired.contains(fingerprint.as_str())
        {
            removals.push(make::remove_certificate(fingerprint));
        }
    }
    // A certificate that stops being a default goes first, so that the one
    // taking its place finds no other default.
    replacements.sort_by_key(|(_, new)| new.is_default());
    additions.sort_by_key(|new| new.is_default());
    let additions = replacements
        .into_iter()
        .map(|(old, new)| make::replace_certificate(old, new))
        .chain(additions.into_iter().map(make::add_certificate))
        .collect();
    CertificateDiff {
        removals,
        additions,
    }
}
