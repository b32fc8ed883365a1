//! `sluice ctl certificate …` in the main process: every check runs here before anything
//! is sent (parsable, not expired, key matching, then the state's own checks), the names
//! are filled from the certificate's SANs when the operator gave none, and a replacement
//! keeps the names, listeners and default flag of the certificate it replaces. The PEM
//! text comes from ctl, which read the files as the operator (see the README).

use std::time::{SystemTime, UNIX_EPOCH};

use sluice_command::certificate;
use sluice_command::proto::{self, request::RequestType, response_content::ContentType, Request};
use sluice_command::state::ConfigState;

use super::dispatch::{failure, with_content};
use super::{ctl_changes, lock, MainProcess};

/// Answers `QueryCertificates`, `AddCertificate`, `ReplaceCertificate` and
/// `RemoveCertificate`; anything else is not a certificate request.
pub(crate) fn dispatch(main: &MainProcess, request: &Request) -> Option<proto::Response> {
    let completed = match &request.request_type {
        Some(RequestType::QueryCertificates(_)) => {
            let list = lock(&main.state).certificate_list();
            return Some(with_content(
                super::dispatch::ok(""),
                ContentType::Certificates(list),
            ));
        }
        Some(RequestType::AddCertificate(add)) => complete_addition(&add.certificate)
            .map(|certificate| RequestType::AddCertificate(proto::AddCertificate { certificate })),
        Some(RequestType::ReplaceCertificate(replace)) => {
            complete_replacement(&lock(&main.state), replace).map(RequestType::ReplaceCertificate)
        }
        Some(RequestType::RemoveCertificate(remove)) => {
            let fingerprint = remove.fingerprint.to_ascii_lowercase();
            if lock(&main.state).certificates().contains_key(&fingerprint) {
                Ok(RequestType::RemoveCertificate(proto::RemoveCertificate {
                    fingerprint,
                }))
            } else {
                Err(format!("no certificate has the fingerprint {fingerprint}"))
            }
        }
        _ => return None,
    };
    Some(match completed {
        Ok(request_type) => ctl_changes::apply(
            main,
            &Request {
                request_type: Some(request_type),
            },
        ),
        Err(reason) => failure(&reason),
    })
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The certificate checked against the clock, with its names filled in.
fn complete_addition(pem: &proto::CertificateAndKey) -> Result<proto::CertificateAndKey, String> {
    let info = certificate::check(pem, unix_now()).map_err(|error| error.to_string())?;
    let mut pem = pem.clone();
    if pem.names.is_empty() {
        pem.names = info.dns_names;
    }
    Ok(pem)
}

/// The replacement with the old certificate's names (unless given), listeners and
/// default flag.
pub(crate) fn complete_replacement(
    state: &ConfigState,
    replace: &proto::ReplaceCertificate,
) -> Result<proto::ReplaceCertificate, String> {
    let old_fingerprint = replace.old_fingerprint.to_ascii_lowercase();
    let Some(old) = state.certificates().get(&old_fingerprint) else {
        return Err(format!(
            "no certificate has the fingerprint {old_fingerprint}"
        ));
    };
    let mut new = replace.new_certificate.clone();
    if new.names.is_empty() {
        new.names = old.pem.names.clone();
    }
    if new.listeners.is_empty() {
        new.listeners = old.pem.listeners.clone();
    }
    if new.default.is_none() {
        new.default = old.pem.default;
    }
    let new = complete_addition(&new)?;
    Ok(proto::ReplaceCertificate {
        old_fingerprint,
        new_certificate: new,
    })
}

/// A self-signed certificate for `names`, with its key, for tests.
#[cfg(test)]
pub(crate) fn test_certificate(names: &[&str]) -> proto::CertificateAndKey {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    proto::CertificateAndKey {
        certificate: generated.cert.pem(),
        key: generated.key_pair.serialize_pem(),
        chain: Vec::new(),
        names: Vec::new(),
        listeners: Vec::new(),
        default: None,
        certificate_path: None,
        key_path: None,
        chain_path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(names: &[&str]) -> proto::CertificateAndKey {
        test_certificate(names)
    }

    #[test]
    fn a_replacement_keeps_the_names_listeners_and_default_of_the_old_certificate() {
        let mut state = ConfigState::new();
        let mut old = complete_addition(&pem(&["a.test"])).expect("valid");
        old.names = vec!["a.test".to_owned(), "www.a.test".to_owned()];
        old.default = Some(true);
        let old_fingerprint = certificate::fingerprint_of_pem(&old.certificate).unwrap();
        state
            .apply(&Request {
                request_type: Some(RequestType::AddCertificate(proto::AddCertificate {
                    certificate: old,
                })),
            })
            .expect("added");
        let replace = proto::ReplaceCertificate {
            old_fingerprint: old_fingerprint.to_uppercase(),
            new_certificate: pem(&["other.test"]),
        };
        let completed = complete_replacement(&state, &replace).expect("completed");
        assert_eq!(completed.old_fingerprint, old_fingerprint);
        assert_eq!(completed.new_certificate.names, ["a.test", "www.a.test"]);
        assert_eq!(completed.new_certificate.default, Some(true));
        let unknown = proto::ReplaceCertificate {
            old_fingerprint: "00".repeat(32),
            new_certificate: pem(&["other.test"]),
        };
        assert_eq!(
            complete_replacement(&state, &unknown).unwrap_err(),
            format!("no certificate has the fingerprint {}", "00".repeat(32))
        );
    }

    #[test]
    fn an_addition_gets_the_names_of_its_certificate() {
        let completed = complete_addition(&pem(&["a.test", "b.test"])).expect("valid");
        assert_eq!(completed.names, ["a.test", "b.test"]);
    }
}
