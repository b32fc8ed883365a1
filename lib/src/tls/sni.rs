//! Which certificate a handshake gets, by the name the client asked for (SNI): an exact
//! name first, then a `*.example.com` wildcard (one label), then the listener's default.
//! A listener with strict SNI refuses a name no certificate has (the handshake ends with
//! an alert); a client that sends no name gets the default either way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certificates::LoadedCertificate;

/// The certificates one listener serves, indexed for SNI (an immutable snapshot).
#[derive(Debug, Default)]
pub(crate) struct SniIndex {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the suffix after `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    strict: bool,
}

impl SniIndex {
    /// The index of the certificates among `certificates` that serve `listener`. Without
    /// a certificate marked default, the first one loaded answers clients without SNI
    /// (like nginx's first server block).
    pub(crate) fn new<'a>(
        listener: SocketAddr,
        certificates: impl Iterator<Item = &'a Arc<LoadedCertificate>>,
        strict: bool,
    ) -> Self {
        let mut served: Vec<&LoadedCertificate> = certificates
            .map(|c| c.as_ref())
            .filter(|c| c.serves(listener))
            .collect();
        served.sort_by_key(|c| c.order);
        let mut index = SniIndex {
            strict,
            ..SniIndex::default()
        };
        for certificate in &served {
            for name in &certificate.names {
                match name.strip_prefix("*.") {
                    Some(suffix) => index
                        .wildcard
                        .insert(suffix.to_owned(), Arc::clone(&certificate.key)),
                    None => index
                        .exact
                        .insert(name.clone(), Arc::clone(&certificate.key)),
                };
            }
        }
        index.default = served
            .iter()
            .rev()
            .find(|c| c.default)
            .or(served.first())
            .map(|c| Arc::clone(&c.key));
        index
    }

    /// The certificate for `name` (`None`: no SNI); `None` refuses the handshake.
    pub(crate) fn find(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = name else {
            return self.default.clone();
        };
        let lowercase;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lowercase = name.to_ascii_lowercase();
            lowercase.as_str()
        } else {
            name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(key) = self.exact.get(name) {
            return Some(Arc::clone(key));
        }
        let wildcard = name
            .split_once('.')
            .and_then(|(_, suffix)| self.wildcard.get(suffix));
        if let Some(key) = wildcard {
            return Some(Arc::clone(key));
        }
        if self.strict {
            None
        } else {
            self.default.clone()
        }
    }
}

impl ResolvesServerCert for SniIndex {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.find(client_hello.server_name())
    }
}
