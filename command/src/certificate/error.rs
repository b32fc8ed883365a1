//! Why a certificate cannot be used. Every variant names the file it is
//! about (or says the PEM text was given inline), so that an operator sees
//! which file to fix.

use std::io;

/// Why a certificate, its key or its chain was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A file cannot be read.
    #[error("cannot read {file}: {source}")]
    Unreadable {
        /// The file.
        file: String,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// The PEM text holds no `CERTIFICATE` block.
    #[error("{file}: no certificate found (expected a PEM \"CERTIFICATE\" block)")]
    NoCertificate {
        /// The file.
        file: String,
    },
    /// The PEM text holds no private key block.
    #[error("{file}: no private key found (expected a PEM \"PRIVATE KEY\" block)")]
    NoKey {
        /// The file.
        file: String,
    },
    /// A PEM block or the certificate inside it does not parse.
    #[error("{file}: cannot parse: {reason}")]
    Unparsable {
        /// The file.
        file: String,
        /// What the parser said.
        reason: String,
    },
    /// The key is of a kind the TLS library cannot sign with.
    #[error("{file}: unsupported private key: {reason}")]
    UnsupportedKey {
        /// The key file.
        file: String,
        /// What the TLS library said.
        reason: String,
    },
    /// The key is not the one of the certificate.
    #[error("the key in {key} does not match the certificate in {certificate}")]
    KeyMismatch {
        /// The certificate file.
        certificate: String,
        /// The key file.
        key: String,
    },
    /// The certificate's not-after date has passed.
    #[error("{file}: the certificate expired on {not_after}")]
    Expired {
        /// The certificate file.
        file: String,
        /// Its not-after date, as the certificate says it.
        not_after: String,
    },
}
