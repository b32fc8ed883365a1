//! The TLS side of each TLS listener: its settings, the certificates it serves, and the
//! rustls configuration its new handshakes take (rebuilt after a change, see the module
//! docs of [`crate::tls`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;
use rustls::SupportedProtocolVersion;
use sluice_command::proto;

use super::certificates::{CertificateStore, LoadedCertificate};
use super::sni::SniIndex;
use super::tickets::TicketKeys;
use super::{provider, ServerConfig, TlsError};

/// The ALPN protocol an HTTPS listener offers when its settings name none.
const HTTP_1_1: &[u8] = b"http/1.1";

/// One TLS listener.
#[derive(Debug)]
struct ListenerTls {
    settings: proto::TlsSettings,
    /// An HTTPS listener (its ALPN default is `http/1.1`), or a TCP one.
    http: bool,
    config: ServerConfig,
}

/// What a certificate change did, to undo it when its batch is refused.
#[derive(Debug)]
pub(crate) enum CertificateUndo {
    /// Remove this fingerprint.
    Added(String),
    /// Put this certificate back.
    Removed(Arc<LoadedCertificate>),
    /// Remove the first, put the second back.
    Replaced(String, Arc<LoadedCertificate>),
    /// Put these ticket keys back.
    TicketKeys(Arc<dyn ProducesTickets>),
}

/// The TLS settings of every TLS listener, the certificates and the ticket keys.
#[derive(Debug)]
pub(crate) struct TlsListeners {
    provider: Arc<CryptoProvider>,
    certificates: CertificateStore,
    tickets: Arc<dyn ProducesTickets>,
    listeners: HashMap<SocketAddr, ListenerTls>,
    /// Certificates or keys changed since the configurations were built.
    stale: bool,
}

impl Default for TlsListeners {
    fn default() -> Self {
        TlsListeners {
            provider: Arc::new(provider()),
            certificates: CertificateStore::default(),
            tickets: Arc::new(TicketKeys::random()),
            listeners: HashMap::new(),
            stale: false,
        }
    }
}

impl TlsListeners {
    /// The configuration new handshakes on `address` take; `None`: not a TLS listener.
    pub(crate) fn config(&self, address: &SocketAddr) -> Option<&ServerConfig> {
        self.listeners.get(address).map(|listener| &listener.config)
    }

    /// Whether `address` is a TLS listener.
    pub(crate) fn is_tls(&self, address: &SocketAddr) -> bool {
        self.listeners.contains_key(address)
    }

    /// Makes `address` a TLS listener with `settings` (or changes its settings), or a
    /// plain one when `settings` is `None`. Refused settings change nothing.
    pub(crate) fn set_listener(
        &mut self,
        address: SocketAddr,
        settings: Option<&proto::TlsSettings>,
        http: bool,
    ) -> Result<(), TlsError> {
        let Some(settings) = settings else {
            self.listeners.remove(&address);
            return Ok(());
        };
        let config = self.build(address, settings, http)?;
        self.listeners.insert(
            address,
            ListenerTls {
                settings: settings.clone(),
                http,
                config,
            },
        );
        Ok(())
    }

    /// Forgets the TLS side of `address`.
    pub(crate) fn remove_listener(&mut self, address: &SocketAddr) {
        self.listeners.remove(address);
    }

    /// Loads and adds a certificate.
    pub(crate) fn add_certificate(
        &mut self,
        certificate: &proto::CertificateAndKey,
    ) -> Result<CertificateUndo, TlsError> {
        let loaded = self.certificates.load(certificate, &self.provider)?;
        let fingerprint = loaded.fingerprint.clone();
        self.certificates.insert(loaded)?;
        self.stale = true;
        Ok(CertificateUndo::Added(fingerprint))
    }

    /// Removes a certificate.
    pub(crate) fn remove_certificate(
        &mut self,
        fingerprint: &str,
    ) -> Result<CertificateUndo, TlsError> {
        let removed = self.certificates.remove(fingerprint)?;
        self.stale = true;
        Ok(CertificateUndo::Removed(removed))
    }

    /// Replaces a certificate: new handshakes get the new one.
    pub(crate) fn replace_certificate(
        &mut self,
        old_fingerprint: &str,
        certificate: &proto::CertificateAndKey,
    ) -> Result<CertificateUndo, TlsError> {
        if !self.certificates.contains(old_fingerprint) {
            return Err(TlsError::UnknownFingerprint(old_fingerprint.to_owned()));
        }
        let loaded = self.certificates.load(certificate, &self.provider)?;
        let fingerprint = loaded.fingerprint.clone();
        if fingerprint != old_fingerprint && self.certificates.contains(&fingerprint) {
            return Err(TlsError::Duplicate(fingerprint));
        }
        let old = self.certificates.remove(old_fingerprint)?;
        self.certificates.insert(loaded)?;
        self.stale = true;
        Ok(CertificateUndo::Replaced(fingerprint, old))
    }

    /// Undoes a certificate change.
    pub(crate) fn undo(&mut self, undo: CertificateUndo) {
        match undo {
            CertificateUndo::Added(fingerprint) => {
                let _ = self.certificates.remove(&fingerprint);
            }
            CertificateUndo::Removed(old) => self.certificates.restore(old),
            CertificateUndo::Replaced(fingerprint, old) => {
                let _ = self.certificates.remove(&fingerprint);
                self.certificates.restore(old);
            }
            CertificateUndo::TicketKeys(old) => self.tickets = old,
        }
        self.stale = true;
    }

    /// Takes the ticket keys of the main process.
    pub(crate) fn set_ticket_keys(
        &mut self,
        keys: &[Vec<u8>],
    ) -> Result<CertificateUndo, TlsError> {
        // No keys: the worker's own random one, as before any were sent.
        let keys = if keys.is_empty() {
            TicketKeys::random()
        } else {
            TicketKeys::new(keys)?
        };
        let old = std::mem::replace(&mut self.tickets, Arc::new(keys));
        self.stale = true;
        Ok(CertificateUndo::TicketKeys(old))
    }

    /// Rebuilds the configurations after certificates or keys changed (once per request
    /// or batch). Settings were checked when set, so a build does not fail; if one did,
    /// the listener would keep its previous configuration.
    pub(crate) fn rebuild(&mut self) {
        if !std::mem::take(&mut self.stale) {
            return;
        }
        let addresses: Vec<SocketAddr> = self.listeners.keys().copied().collect();
        for address in addresses {
            let Some(listener) = self.listeners.get(&address) else {
                continue;
            };
            match self.build(address, &listener.settings, listener.http) {
                Ok(config) => {
                    if let Some(listener) = self.listeners.get_mut(&address) {
                        listener.config = config;
                    }
                }
                Err(error) => log::error!("listener {address}: TLS settings refused: {error}"),
            }
        }
    }

    fn build(
        &self,
        address: SocketAddr,
        settings: &proto::TlsSettings,
        http: bool,
    ) -> Result<ServerConfig, TlsError> {
        let sni = SniIndex::new(
            address,
            self.certificates.iter(),
            settings.strict_sni.unwrap_or(false),
        );
        let provider = narrowed(&self.provider, &settings.cipher_suites)?;
        let versions: &[&'static SupportedProtocolVersion] = match settings.min_version() {
            proto::TlsVersion::Tls13 => &[&rustls::version::TLS13],
            proto::TlsVersion::Tls12 => rustls::ALL_VERSIONS,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .map_err(TlsError::Settings)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(sni));
        config.alpn_protocols = if settings.alpn_protocols.is_empty() && http {
            vec![HTTP_1_1.to_vec()]
        } else {
            settings
                .alpn_protocols
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect()
        };
        config.ticketer = Arc::clone(&self.tickets);
        // One ticket per full handshake: a client resumes once per ticket, and each costs
        // a sealing and bytes on the wire.
        config.send_tls13_tickets = 1;
        // The record layer of established connections runs on the keys rustls negotiated
        // (`stream` and `records`): rustls hands them over once the handshake is done.
        config.enable_secret_extraction = true;
        Ok(Arc::new(config))
    }
}

/// The provider with only the suites named (all of its defaults when none are).
fn narrowed(provider: &CryptoProvider, names: &[String]) -> Result<CryptoProvider, TlsError> {
    let mut provider = provider.clone();
    if names.is_empty() {
        return Ok(provider);
    }
    let name_of = |suite: &rustls::SupportedCipherSuite| format!("{:?}", suite.suite());
    for name in names {
        if !provider.cipher_suites.iter().any(|s| &name_of(s) == name) {
            let known: Vec<String> = provider.cipher_suites.iter().map(name_of).collect();
            return Err(TlsError::UnknownCipherSuite {
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    provider
        .cipher_suites
        .retain(|suite| names.contains(&name_of(suite)));
    Ok(provider)
}
