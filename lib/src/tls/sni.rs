//! Which certificate a handshake gets, by the name the client asked for (SNI): an exact
//! name first, then a `*.example.com` wildcard (one label), then the listener's default.
//! A listener with strict SNI refuses a name no certificate has (the handshake ends with
//! an alert); a client that sends no name gets the default either way.

use std::cell::RefCell;
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
        let name = client_hello.server_name();
        let _ = ASKED_NAME.try_with(|asked| *asked.borrow_mut() = Some(name.map(Box::from)));
        self.find(name)
    }
}

thread_local! {
    /// The name the last client hello resolved on this thread asked for (`Some(None)`:
    /// no SNI). rustls resolves the certificate of every client hello, resumed or not,
    /// inside the call that processes it, on the connection's thread: the TLS layer
    /// clears this before the call and takes it after, since rustls's unbuffered
    /// connection does not tell the name.
    static ASKED_NAME: RefCell<Option<Option<Box<str>>>> = const { RefCell::new(None) };
}

/// Forgets the name of an earlier client hello (before a connection's processing).
pub(crate) fn forget_asked_name() {
    let _ = ASKED_NAME.try_with(|asked| asked.borrow_mut().take());
}

/// The name the client hello processed since [`forget_asked_name`] asked for, if one
/// was: `Some(None)` when it sent no SNI.
pub(crate) fn take_asked_name() -> Option<Option<Box<str>>> {
    ASKED_NAME
        .try_with(|asked| asked.borrow_mut().take())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::sign::{Signer, SigningKey};
    use rustls::{SignatureAlgorithm, SignatureScheme};

    use super::*;

    /// A key that never signs: resolution only compares which certificate is chosen.
    #[derive(Debug)]
    struct NoKey;

    impl SigningKey for NoKey {
        fn choose_scheme(&self, _offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
            None
        }

        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::ECDSA
        }
    }

    fn certificate(
        tag: u8,
        names: &[&str],
        default: bool,
        listeners: &[&str],
    ) -> Arc<LoadedCertificate> {
        Arc::new(LoadedCertificate {
            fingerprint: format!("{tag:02x}"),
            key: Arc::new(CertifiedKey::new(
                vec![CertificateDer::from(vec![tag])],
                Arc::new(NoKey),
            )),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            listeners: listeners.iter().map(|l| l.parse().unwrap()).collect(),
            default,
            order: u64::from(tag),
        })
    }

    fn chosen(index: &SniIndex, name: Option<&str>) -> Option<u8> {
        index.find(name).map(|key| key.cert[0][0])
    }

    const LISTENER: &str = "127.0.0.1:443";

    #[test]
    fn exact_names_then_one_label_wildcards_then_the_default() {
        let all = [
            certificate(1, &["a.test"], false, &[]),
            certificate(2, &["*.b.test", "exact.b.test"], false, &[]),
            certificate(3, &["x.b.test"], false, &[]),
            certificate(4, &["fallback.test"], true, &[]),
        ];
        let index = SniIndex::new(LISTENER.parse().unwrap(), all.iter(), false);
        assert_eq!(chosen(&index, Some("a.test")), Some(1));
        assert_eq!(chosen(&index, Some("A.Test.")), Some(1));
        assert_eq!(
            chosen(&index, Some("x.b.test")),
            Some(3),
            "exact before wildcard"
        );
        assert_eq!(chosen(&index, Some("y.b.test")), Some(2));
        assert_eq!(
            chosen(&index, Some("z.y.b.test")),
            Some(4),
            "one label only"
        );
        assert_eq!(chosen(&index, Some("b.test")), Some(4));
        assert_eq!(chosen(&index, None), Some(4));
        let strict = SniIndex::new(LISTENER.parse().unwrap(), all.iter(), true);
        assert_eq!(chosen(&strict, Some("unknown.test")), None);
        assert_eq!(chosen(&strict, None), Some(4), "no SNI: the default");
        assert_eq!(chosen(&strict, Some("y.b.test")), Some(2));
    }

    #[test]
    fn listeners_restrict_and_the_latest_certificate_wins_a_name() {
        let all = [
            certificate(1, &["a.test"], false, &[]),
            certificate(2, &["a.test"], false, &[]),
            certificate(3, &["only.test"], true, &["127.0.0.1:8443"]),
        ];
        let here = SniIndex::new(LISTENER.parse().unwrap(), all.iter(), false);
        assert_eq!(chosen(&here, Some("a.test")), Some(2));
        assert_eq!(
            chosen(&here, Some("only.test")),
            Some(1),
            "first loaded answers"
        );
        let there = SniIndex::new("127.0.0.1:8443".parse().unwrap(), all.iter(), false);
        assert_eq!(chosen(&there, Some("only.test")), Some(3));
        assert_eq!(chosen(&there, None), Some(3));
        let empty = SniIndex::new(LISTENER.parse().unwrap(), [].iter(), false);
        assert_eq!(chosen(&empty, Some("a.test")), None);
    }
}
