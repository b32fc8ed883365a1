//! TLS termination: certificates by fingerprint, SNI resolution per listener, session
//! ticket keys shared by every worker, and the rustls connection state a TLS
//! [`crate::transport::Transport`] drives sans-IO.
//!
//! rustls configurations are immutable snapshots: a change of certificates, ticket keys or
//! listener settings builds new ones ([`TlsListeners::rebuild`]) once per request or batch.
//! A handshake takes the listener's configuration when the connection is accepted and keeps
//! it, so a replaced certificate serves new handshakes while those under way and the
//! established connections go on untouched.
//!
//! The crypto provider is reached only through [`provider`] (and [`crypto`] for the
//! primitives of the ticket keys and fingerprints): switching from `aws-lc-rs` to `ring`
//! is a change of those two lines.

#[cfg(test)]
pub(crate) mod allocation_tests;
mod buffers;
mod certificates;
mod listeners;
pub(crate) mod metrics;
mod records;
mod sni;
pub(crate) mod stream;
#[cfg(test)]
mod tests;
mod tickets;

use std::sync::Arc;

use thiserror::Error;

pub(crate) use listeners::{CertificateUndo, TlsListeners};

/// The primitives (digest, AEAD, random) of the chosen crypto provider.
pub(crate) use aws_lc_rs as crypto;

/// The crypto provider every TLS configuration of the worker is built with.
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// Why a certificate, ticket key or listener's TLS settings were refused.
#[derive(Debug, Error)]
pub(crate) enum TlsError {
    /// The certificate's PEM text holds no certificate.
    #[error("the certificate is not a PEM certificate: {0}")]
    Certificate(String),
    /// A chain certificate's PEM text holds no certificate.
    #[error("a chain certificate is not a PEM certificate: {0}")]
    Chain(String),
    /// The key's PEM text holds no private key.
    #[error("the key is not a PEM private key: {0}")]
    Key(String),
    /// The key is of a kind the provider cannot sign with.
    #[error("unsupported private key: {0}")]
    UnsupportedKey(rustls::Error),
    /// The key does not belong to the certificate.
    #[error("the key does not match the certificate: {0}")]
    KeyMismatch(rustls::Error),
    /// A certificate with this fingerprint is already loaded.
    #[error("certificate {0} is already loaded")]
    Duplicate(String),
    /// No certificate has this fingerprint.
    #[error("no certificate with fingerprint {0}")]
    UnknownFingerprint(String),
    /// A listener address that does not parse.
    #[error("invalid listener address {0:?}")]
    InvalidAddress(String),
    /// A ticket key of the wrong size.
    #[error("a ticket key must be 32 bytes, not {0}")]
    TicketKeySize(usize),
    /// A cipher suite name the provider does not know.
    #[error("unknown cipher suite {name:?} (known: {known})")]
    UnknownCipherSuite {
        /// The name asked for.
        name: String,
        /// The names the provider knows.
        known: String,
    },
    /// rustls refused the listener's settings (no suite for the versions allowed, …).
    #[error("invalid TLS settings: {0}")]
    Settings(rustls::Error),
}

/// Shared, immutable handle on a rustls server configuration.
pub(crate) type ServerConfig = Arc<rustls::ServerConfig>;

/// The rustls side of a new TLS connection accepted on a listener with `config`, for
/// [`crate::transport::Transport::tls`].
pub(crate) fn new_connection(
    config: &ServerConfig,
) -> Result<rustls::server::UnbufferedServerConnection, rustls::Error> {
    rustls::server::UnbufferedServerConnection::new(Arc::clone(config))
}
