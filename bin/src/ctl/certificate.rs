//! `sluice ctl certificate list|add|replace|remove`.
//!
//! ctl reads the PEM files itself, as the operator who runs it, and sends their text:
//! the main process may run as another user that cannot read the operator's files, and
//! a file that cannot be read or parsed is refused here, naming it, before anything is
//! sent. The main process checks everything again (parsable, not expired, key matching)
//! before it changes anything.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_command::certificate;
use sluice_command::proto::{self, request::RequestType};

use super::parse_address;

/// `sluice ctl certificate …`.
#[derive(Debug, Subcommand)]
pub(crate) enum CertificateCommand {
    /// Every certificate: fingerprint, names, not-after date, listeners, default.
    List,
    /// Add a certificate from PEM files.
    Add(AddCertificateArgs),
    /// Replace a certificate: new handshakes use the new one, established connections go
    /// on. The names, listeners and default flag of the old one are kept.
    Replace(ReplaceCertificateArgs),
    /// Remove a certificate.
    Remove(RemoveCertificateArgs),
}

/// The PEM files of a certificate.
#[derive(Debug, Args)]
pub(crate) struct PemFiles {
    /// PEM file of the certificate (the leaf first; more certificates after it are taken
    /// as its chain).
    #[arg(long)]
    certificate: PathBuf,
    /// PEM file of its private key.
    #[arg(long)]
    key: PathBuf,
    /// PEM file of the intermediate certificates, the leaf's issuer first.
    #[arg(long)]
    chain: Option<PathBuf>,
}

/// Arguments of `certificate add`.
#[derive(Debug, Args)]
pub(crate) struct AddCertificateArgs {
    #[command(flatten)]
    files: PemFiles,
    /// Names it answers, comma-separated (exact or `*.example.com`); default: the DNS
    /// names of its subject alternative names.
    #[arg(long, value_delimiter = ',')]
    names: Vec<String>,
    /// Address of a TLS listener it serves (repeatable); default: every TLS listener.
    #[arg(long = "listener")]
    listeners: Vec<String>,
    /// Answer clients without SNI or with an unknown name.
    #[arg(long)]
    default: bool,
}

/// Arguments of `certificate replace`.
#[derive(Debug, Args)]
pub(crate) struct ReplaceCertificateArgs {
    /// Fingerprint of the certificate to replace (SHA-256, hex, as `certificate list`
    /// shows it).
    #[arg(long)]
    fingerprint: String,
    #[command(flatten)]
    files: PemFiles,
}

/// Arguments of `certificate remove`.
#[derive(Debug, Args)]
pub(crate) struct RemoveCertificateArgs {
    /// Fingerprint of the certificate (SHA-256, hex, as `certificate list` shows it).
    #[arg(long)]
    fingerprint: String,
}

impl CertificateCommand {
    /// The request; reads and checks the PEM files.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            CertificateCommand::List => RequestType::QueryCertificates(proto::QueryCertificates {}),
            CertificateCommand::Add(args) => {
                let mut pem = args.files.read()?;
                pem.names = args.names.clone();
                pem.listeners = args
                    .listeners
                    .iter()
                    .map(|address| parse_address(address))
                    .collect::<anyhow::Result<_>>()?;
                pem.default = args.default.then_some(true);
                RequestType::AddCertificate(proto::AddCertificate { certificate: pem })
            }
            CertificateCommand::Replace(args) => {
                RequestType::ReplaceCertificate(proto::ReplaceCertificate {
                    old_fingerprint: fingerprint(&args.fingerprint)?,
                    new_certificate: args.files.read()?,
                })
            }
            CertificateCommand::Remove(args) => {
                RequestType::RemoveCertificate(proto::RemoveCertificate {
                    fingerprint: fingerprint(&args.fingerprint)?,
                })
            }
        })
    }
}

impl PemFiles {
    /// The files' PEM text with their absolute paths, checked but for the clock (the main
    /// process checks expiry with the rest).
    fn read(&self) -> anyhow::Result<proto::CertificateAndKey> {
        let absolute = |path: &PathBuf| -> anyhow::Result<PathBuf> {
            Ok(PathBuf::from(super::absolute(path)?))
        };
        let chain = self.chain.as_ref().map(absolute).transpose()?;
        let pem = certificate::read_files(
            &absolute(&self.certificate)?,
            &absolute(&self.key)?,
            chain.as_deref(),
        )?;
        certificate::inspect(&pem).context("nothing was sent")?;
        Ok(pem)
    }
}

/// A fingerprint as `certificate list` or `openssl x509 -fingerprint -sha256` prints
/// it: 64 hex digits, colons allowed; lower case.
fn fingerprint(text: &str) -> anyhow::Result<String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!(
            "invalid fingerprint `{text}`: expected the 64 hex digits of a SHA-256, as \
             `sluice ctl certificate list` shows them"
        );
    }
    Ok(hex.to_ascii_lowercase())
}
