//! `sluice ctl upgrade` with HTTPS listeners: TLS sessions from before the upgrade resume
//! on the new generation's workers (the ticket keys are handed over), and an upgrade
//! under HTTPS load fails no request and keeps the certificates.

mod common;

use std::time::Duration;

use common::http::mock;
use common::https_load::{HttpsLoad, TlsStyle};
use common::tls::{
    certificate_list, new_session, resume_every_time, resumed_per_worker, served_for, started,
    CertificateFiles,
};
use common::upgrade::upgrade_in_place;

/// Resumptions tried after the upgrade with each saved session.
const RESUMPTIONS: usize = 8;

/// Longest wait for the old workers to drain (their grace period is one second).
const OLD_WORKERS_GONE: Duration = Duration::from_secs(20);

#[test]
fn tls_sessions_from_before_an_upgrade_resume_on_the_new_generation() {
    let certs = tempfile::tempdir().expect("temp dir");
    let a = CertificateFiles::generate(certs.path(), "a", "a.test");
    let backend = mock("web");
    let (mut sluice, listener) = started(2, &backend, &[&a], None);

    // A TLS 1.3 session (resumption by ticket) and a TLS 1.2 session ticket.
    let mut sessions = Vec::new();
    for version in ["-tls1_3", "-tls1_2"] {
        let session = new_session(listener, certs.path(), version);
        sessions.push((version, session));
    }

    let upgraded = upgrade_in_place(&mut sluice);
    // Only the new generation accepts from now on.
    upgraded.wait_old_workers_gone(OLD_WORKERS_GONE);
    for (version, session) in &sessions {
        resume_every_time(&sluice, listener, version, session, RESUMPTIONS);
    }
    let resumed = resumed_per_worker(&sluice);
    assert_eq!(
        resumed.iter().sum::<u64>(),
        2 * RESUMPTIONS as u64,
        "resumed handshakes per worker of the new generation: {resumed:?}"
    );
}

#[test]
fn an_upgrade_under_https_load_fails_no_request_and_keeps_the_certificates() {
    let certs = tempfile::tempdir().expect("temp dir");
    let a = CertificateFiles::generate(certs.path(), "a", "a.test");
    let b = CertificateFiles::generate(certs.path(), "b", "b.test");
    let backend = mock("web");
    let (mut sluice, listener) = started(2, &backend, &[&a], None);
    // A certificate the file does not hold: the new main gets it from the state.
    sluice.ctl_ok(&[
        "certificate",
        "add",
        "--certificate",
        b.certificate_arg(),
        "--key",
        b.key_arg(),
    ]);
    let table = sluice.ctl_ok(&["certificate", "list"]);
    let listed = certificate_list(&sluice);
    assert_eq!(listed.len(), 2, "{listed:?}");

    let load = HttpsLoad::start(
        listener,
        "a.test",
        "backend: web",
        &[
            TlsStyle::KeepAlive,
            TlsStyle::FullHandshakes,
            TlsStyle::Resumed,
            TlsStyle::KeepAlive,
        ],
    );
    load.wait_for_more(50);
    let upgraded = upgrade_in_place(&mut sluice);
    load.wait_for_more(50);
    upgraded.wait_old_workers_gone(OLD_WORKERS_GONE);
    load.wait_for_more(50);
    let reconnects = load.reconnects();
    let (served, failures) = load.stop();
    println!(
        "served {served}, failed {}, kept connections reopened at a request boundary {}",
        failures.len(),
        reconnects
    );
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}\n{}",
        failures.len(),
        sluice.log()
    );

    assert_eq!(sluice.ctl_ok(&["certificate", "list"]), table);
    assert_eq!(certificate_list(&sluice), listed);
    assert_eq!(served_for(listener, "a.test"), a.fingerprint);
    assert_eq!(served_for(listener, "b.test"), b.fingerprint);
}
