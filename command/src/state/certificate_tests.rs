//! Certificates in the state: apply and undo, the checks, the reload diff by
//! fingerprint and state files.

use super::tests::{base, refused, timeouts};
use super::*;
use crate::certificate::tests::{pem_of, valid};

const HTTPS: &str = "127.0.0.1:8443";
const TLS_TCP: &str = "127.0.0.1:5433";

fn https_listener(address: &str) -> proto::HttpListener {
    proto::HttpListener {
        tls: Some(proto::TlsSettings::default()),
        address: address.to_owned(),
        timeouts: timeouts(),
        answers: Vec::new(),
        expect_proxy: false,
        sticky_cookie_name: None,
        max_request_body: None,
    }
}

fn tls_tcp_listener(address: &str) -> proto::TcpListener {
    proto::TcpListener {
        tls: Some(proto::TlsSettings::default()),
        address: address.to_owned(),
        timeouts: timeouts(),
        expect_proxy: false,
    }
}

/// The base state with an https and a TLS tcp listener.
fn tls_base() -> ConfigState {
    let mut state = base();
    state
        .apply(&request(RequestType::AddHttpListener(https_listener(
            HTTPS,
        ))))
        .unwrap();
    state
        .apply(&request(RequestType::AddTcpListener(tls_tcp_listener(
            TLS_TCP,
        ))))
        .unwrap();
    state
}

fn add(pem: &proto::CertificateAndKey) -> proto::Request {
    request(RequestType::AddCertificate(proto::AddCertificate {
        certificate: pem.clone(),
    }))
}

fn remove(fingerprint: &str) -> proto::Request {
    request(RequestType::RemoveCertificate(proto::RemoveCertificate {
        fingerprint: fingerprint.to_owned(),
    }))
}

fn certificate(names: &[&str]) -> (proto::CertificateAndKey, String) {
    let (certificate, key) = valid(names);
    let fingerprint = crate::certificate::fingerprint_of_pem(&certificate).unwrap();
    (pem_of(certificate, key), fingerprint)
}

#[test]
fn a_certificate_is_kept_by_fingerprint_with_its_names_filled_in() {
    let mut state = tls_base();
    let (mut pem, fingerprint) = certificate(&["a.test", "*.b.test"]);
    pem.listeners = vec![format!("127.0.0.1:{}", 8443)];
    state.apply(&add(&pem)).expect("added");
    let stored = &state.certificates()[&fingerprint];
    assert_eq!(stored.pem.names, ["a.test", "*.b.test"]);
    assert!(stored.serves(HTTPS));
    assert!(!stored.serves(TLS_TCP));
    let list = state.certificate_list();
    assert_eq!(list.certificates.len(), 1);
    assert_eq!(list.certificates[0].fingerprint, fingerprint);
    assert_eq!(list.certificates[0].not_after_unix, 7_258_118_400);
    assert!(matches!(
        refused(&mut state, add(&pem)),
        StateError::DuplicateCertificate(_)
    ));
    state
        .apply(&remove(&fingerprint.to_uppercase()))
        .expect("removed, whatever the case of the hex digits");
    assert!(state.certificates().is_empty());
    assert!(matches!(
        refused(&mut state, remove(&fingerprint)),
        StateError::UnknownCertificate(_)
    ));
}

#[test]
fn a_certificate_must_name_tls_listeners_and_valid_names() {
    let mut state = tls_base();
    let (mut pem, _) = certificate(&["a.test"]);
    pem.listeners = vec!["127.0.0.1:8080".to_owned()];
    assert_eq!(
        refused(&mut state, add(&pem)).to_string(),
        "the listener at 127.0.0.1:8080 does not terminate TLS (expected an https listener \
         or a tcp listener with tls)"
    );
    pem.listeners = vec!["127.0.0.1:1".to_owned()];
    assert!(matches!(
        refused(&mut state, add(&pem)),
        StateError::UnknownListener(_)
    ));
    pem.listeners = Vec::new();
    pem.names = vec!["*".to_owned()];
    assert!(matches!(
        refused(&mut state, add(&pem)),
        StateError::InvalidField { .. }
    ));
    let (_, other_key) = valid(&["a.test"]);
    pem.names = Vec::new();
    pem.key = other_key;
    assert_eq!(
        refused(&mut state, add(&pem)).to_string(),
        "the key in the key (inline PEM) does not match the certificate in the certificate \
         (inline PEM)"
    );
}

#[test]
fn one_default_per_listener() {
    let mut state = tls_base();
    let (mut first, first_fingerprint) = certificate(&["a.test"]);
    first.default = Some(true);
    first.listeners = vec![HTTPS.to_owned()];
    state.apply(&add(&first)).unwrap();
    let (mut second, _) = certificate(&["c.test"]);
    second.default = Some(true);
    let error = refused(&mut state, add(&second));
    assert!(
        matches!(&error, StateError::DuplicateDefaultCertificate { existing, .. } if *existing == first_fingerprint),
        "{error}"
    );
    second.listeners = vec![TLS_TCP.to_owned()];
    state.apply(&add(&second)).expect("another listener");
}

#[test]
fn a_listener_named_by_a_certificate_keeps_its_tls() {
    let mut state = tls_base();
    let (mut pem, fingerprint) = certificate(&["a.test"]);
    pem.listeners = vec![TLS_TCP.to_owned()];
    state.apply(&add(&pem)).unwrap();
    let remove_listener = request(RequestType::RemoveListener(proto::RemoveListener {
        address: TLS_TCP.to_owned(),
        protocol: ListenerProtocol::Tcp as i32,
    }));
    assert_eq!(
        refused(&mut state, remove_listener.clone()).to_string(),
        format!("the listener at {TLS_TCP} is still named by certificate {fingerprint}")
    );
    let mut plain = tls_tcp_listener(TLS_TCP);
    plain.tls = None;
    assert!(matches!(
        refused(&mut state, request(RequestType::UpdateTcpListener(plain))),
        StateError::ListenerHasCertificates { .. }
    ));
    state.apply(&remove(&fingerprint)).unwrap();
    state
        .apply(&remove_listener)
        .expect("no certificate names it");
}

#[test]
fn https_listeners_take_http_frontends_and_their_own_protocol() {
    let mut state = tls_base();
    assert_eq!(
        state.listeners()[&HTTPS.parse().unwrap()].protocol(),
        ListenerProtocol::Https
    );
    let frontend = proto::HttpFrontend {
        hsts: Some("max-age=60".to_owned()),
        redirect_https: None,
        address: HTTPS.to_owned(),
        hostname: "a.test".to_owned(),
        path: proto::PathRule {
            kind: proto::PathRuleKind::Prefix as i32,
            value: "/".to_owned(),
        },
        method: None,
        cluster_id: Some("web".to_owned()),
    };
    state
        .apply(&request(RequestType::AddHttpFrontend(frontend)))
        .expect("an http cluster serves an https listener");
    let activate = |protocol: ListenerProtocol| {
        request(RequestType::ActivateListener(proto::ActivateListener {
            address: HTTPS.to_owned(),
            protocol: protocol as i32,
        }))
    };
    assert!(matches!(
        refused(&mut state, activate(ListenerProtocol::Http)),
        StateError::ListenerProtocolMismatch { .. }
    ));
    state.apply(&activate(ListenerProtocol::Https)).unwrap();
}

#[test]
fn replacing_keeps_one_certificate_and_undo_brings_the_old_one_back() {
    let mut state = tls_base();
    let (mut old, old_fingerprint) = certificate(&["a.test"]);
    old.default = Some(true);
    state.apply(&add(&old)).unwrap();
    let before = state.clone();
    let (mut new, new_fingerprint) = certificate(&["a.test"]);
    new.default = Some(true);
    let replace = request(RequestType::ReplaceCertificate(proto::ReplaceCertificate {
        old_fingerprint: old_fingerprint.clone(),
        new_certificate: new,
    }));
    let undo = state.apply_batch(&[replace]).expect("replaced");
    assert_eq!(
        state.certificates().keys().collect::<Vec<_>>(),
        [&new_fingerprint]
    );
    // The undo requests, applied, give the state back (what a worker does).
    let mut replayed = state.clone();
    for request in undo.requests() {
        replayed.apply(&request).expect("undo request applies");
    }
    assert_eq!(replayed, before);
    state.revert(undo);
    assert_eq!(state, before);
}

#[test]
fn the_diff_is_keyed_by_fingerprint() {
    let mut origin = tls_base();
    let (kept, _) = certificate(&["kept.test"]);
    let (gone, gone_fingerprint) = certificate(&["gone.test"]);
    let (mut renewed_old, renewed_old_fingerprint) = certificate(&["renewed.test"]);
    renewed_old.certificate_path = Some("/etc/sluice/renewed.pem".to_owned());
    let (moved, moved_fingerprint) = certificate(&["moved.test"]);
    for pem in [&kept, &gone, &renewed_old, &moved] {
        origin.apply(&add(pem)).unwrap();
    }
    let mut target = tls_base();
    let (mut renewed_new, renewed_new_fingerprint) = certificate(&["renewed.test"]);
    renewed_new.certificate_path = renewed_old.certificate_path.clone();
    let mut moved_again = moved.clone();
    moved_again.listeners = vec![HTTPS.to_owned()];
    let (fresh, fresh_fingerprint) = certificate(&["fresh.test"]);
    for pem in [&kept, &renewed_new, &moved_again, &fresh] {
        target.apply(&add(pem)).unwrap();
    }
    let requests = origin.diff(&target);
    let summary: Vec<String> = requests
        .iter()
        .map(|request| match &request.request_type {
            Some(RequestType::RemoveCertificate(remove)) => {
                format!("remove {}", remove.fingerprint)
            }
            Some(RequestType::AddCertificate(add)) => format!(
                "add {}",
                crate::certificate::fingerprint_of_pem(&add.certificate.certificate).unwrap()
            ),
            Some(RequestType::ReplaceCertificate(replace)) => format!(
                "replace {} by {}",
                replace.old_fingerprint,
                crate::certificate::fingerprint_of_pem(&replace.new_certificate.certificate)
                    .unwrap()
            ),
            other => format!("{other:?}"),
        })
        .collect();
    let mut replacements = vec![
        format!("replace {renewed_old_fingerprint} by {renewed_new_fingerprint}"),
        format!("replace {moved_fingerprint} by {moved_fingerprint}"),
    ];
    replacements.sort();
    let mut actual_replacements: Vec<String> = summary[1..3].to_vec();
    actual_replacements.sort();
    assert_eq!(summary[0], format!("remove {gone_fingerprint}"));
    assert_eq!(actual_replacements, replacements);
    assert_eq!(summary[3], format!("add {fresh_fingerprint}"));
    assert_eq!(summary.len(), 4, "{summary:?}");
    let mut applied = origin.clone();
    applied.apply_batch(&requests).expect("the diff applies");
    assert_eq!(applied, target);
}

#[test]
fn a_certificate_on_a_removed_listener_goes_before_the_listener() {
    let mut origin = tls_base();
    let (mut pem, fingerprint) = certificate(&["a.test"]);
    pem.listeners = vec![TLS_TCP.to_owned()];
    origin.apply(&add(&pem)).unwrap();
    let target = base();
    let requests = origin.diff(&target);
    let position = |wanted: &dyn Fn(&RequestType) -> bool| {
        requests
            .iter()
            .position(|r| r.request_type.as_ref().is_some_and(wanted))
            .expect("present")
    };
    let certificate = position(
        &|r| matches!(r, RequestType::RemoveCertificate(c) if c.fingerprint == fingerprint),
    );
    let listener =
        position(&|r| matches!(r, RequestType::RemoveListener(l) if l.address == TLS_TCP));
    assert!(certificate < listener, "{requests:?}");
    let mut applied = origin.clone();
    applied.apply_batch(&requests).expect("the diff applies");
    assert_eq!(applied, target);
    // And back: the listener comes before the certificate.
    let mut back = target.clone();
    back.apply_batch(&target.diff(&origin))
        .expect("the diff applies");
    assert_eq!(back, origin);
}

#[test]
fn state_files_carry_the_certificates() {
    let mut state = tls_base();
    let (mut pem, fingerprint) = certificate(&["a.test"]);
    pem.default = Some(true);
    pem.listeners = vec![HTTPS.to_owned()];
    pem.certificate_path = Some("/etc/a.pem".to_owned());
    state.apply(&add(&pem)).unwrap();
    let mut saved = Vec::new();
    state.save(&mut saved).unwrap();
    let text = String::from_utf8(saved.clone()).unwrap();
    assert!(text.contains("BEGIN CERTIFICATE"));
    let loaded = ConfigState::load(saved.as_slice()).expect("loads");
    assert_eq!(loaded, state);
    assert!(loaded.certificates()[&fingerprint].is_default());
    // The certificate comes after the listeners it names.
    let requests = state.generate_requests();
    let certificate = requests
        .iter()
        .position(|r| matches!(r.request_type, Some(RequestType::AddCertificate(_))))
        .unwrap();
    let https = requests
        .iter()
        .position(|r| {
            matches!(&r.request_type, Some(RequestType::AddHttpListener(l)) if l.address == HTTPS)
        })
        .unwrap();
    assert!(https < certificate);
}
