//! HTTPS through the real binary: `sluice start` with an https listener and
//! certificate files, driven from the outside with `curl`, `openssl s_client` and
//! `sluice ctl certificate …`: SNI, live certificate changes, `/metrics`, state
//! files, and TLS sessions resumed on whichever worker answers.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::mock;
use common::tls::{
    certificate_list, handshake, https_config, new_session, resume_every_time, resumed_per_worker,
    served_for, started, CertificateFiles, CLIENT_TIMEOUT,
};
use common::{send_signal, Sluice};
use sluice_e2e::tls::fingerprint_of;
use sluice_e2e::{free_addr, http_get};

/// The fingerprints in `ctl certificate list` (the table), in its order.
fn listed_fingerprints(sluice: &Sluice) -> Vec<String> {
    let table = sluice.ctl_ok(&["certificate", "list"]);
    let mut fingerprints: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    fingerprints.sort();
    fingerprints
}

fn sorted(fingerprints: &[&str]) -> Vec<String> {
    let mut owned: Vec<String> = fingerprints.iter().map(|f| (*f).to_owned()).collect();
    owned.sort();
    owned
}

/// Main's `/metrics` body.
fn metrics_text(metrics: SocketAddr) -> String {
    let response = http_get(metrics, "localhost", "/metrics").expect("/metrics answers");
    assert_eq!(response.status, 200);
    String::from_utf8(response.body).expect("utf-8 metrics")
}

/// The `sluice_certificate_expiry_timestamp_seconds` sample lines of `text`.
fn expiry_samples(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| line.starts_with("sluice_certificate_expiry_timestamp_seconds{"))
        .collect()
}

/// The not-after date (Unix seconds) `ctl certificate list` shows for `fingerprint`.
fn not_after(sluice: &Sluice, fingerprint: &str) -> i64 {
    let list = sluice.ctl_json(&["certificate", "list"]);
    list["certificates"]
        .as_array()
        .expect("a certificate list")
        .iter()
        .find(|c| c["fingerprint"] == fingerprint)
        .and_then(|c| c["not_after"].as_i64())
        .unwrap_or_else(|| panic!("{fingerprint} not listed: {list}"))
}

#[test]
fn curl_and_s_client_reach_the_backend_through_the_certificate_for_the_name() {
    let certs = tempfile::tempdir().expect("temp dir");
    let a = CertificateFiles::generate(certs.path(), "a", "a.test");
    let backend = mock("web");
    let (sluice, listener) = started(1, &backend, &[&a], None);

    let port = listener.port();
    let output = Command::new("curl")
        .args(["-sk", "--max-time"])
        .arg(CLIENT_TIMEOUT.as_secs().to_string())
        .arg("--resolve")
        .arg(format!("a.test:{port}:127.0.0.1"))
        .arg(format!("https://a.test:{port}/"))
        .output()
        .expect("curl is installed (see .ci/run)");
    assert!(
        output.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        sluice.log()
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "backend: web\n");
    let requests = backend.requests_seen();
    let request = requests.last().expect("the backend saw the request");
    assert_eq!(request.header("X-Forwarded-Proto"), Some("https"));
    assert_eq!(request.header("Host"), Some(&*format!("a.test:{port}")));

    let seen = handshake(listener, "a.test", &[]);
    assert!(seen.connected(), "{}", seen.text);
    assert_eq!(seen.served.as_deref(), Some(a.fingerprint.as_str()));
    assert!(
        seen.text.contains("subject=CN = a.test") || seen.text.contains("subject=CN=a.test"),
        "{}",
        seen.text
    );
    // The SAN of the certificate served, as openssl reads it.
    let pem_start = seen
        .text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let end_marker = "-----END CERTIFICATE-----";
    let pem_end = seen.text[pem_start..].find(end_marker).expect("its end") + pem_start;
    let pem = format!("{}{end_marker}\n", &seen.text[pem_start..pem_end]);
    let served_file = certs.path().join("served.pem");
    std::fs::write(&served_file, &pem).expect("write the served certificate");
    let san = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&served_file)
        .output()
        .expect("openssl x509");
    let san = String::from_utf8_lossy(&san.stdout);
    assert!(san.contains("DNS:a.test"), "{san}");
    assert_eq!(fingerprint_of(&pem), a.fingerprint);
}

#[test]
fn certificates_added_replaced_and_removed_with_ctl_change_new_handshakes_and_metrics() {
    let certs = tempfile::tempdir().expect("temp dir");
    let a = CertificateFiles::generate(certs.path(), "a", "a.test");
    let b = CertificateFiles::generate(certs.path(), "b", "b.test");
    let renewed = CertificateFiles::generate(certs.path(), "b-renewed", "b.test");
    let backend = mock("web");
    let metrics = free_addr();
    let (sluice, listener) = started(2, &backend, &[&a], Some(metrics));
    let listener_text = listener.to_string();

    let added = sluice.ctl_ok(&[
        "certificate",
        "add",
        "--certificate",
        b.certificate_arg(),
        "--key",
        b.key_arg(),
        "--listener",
        &listener_text,
    ]);
    assert!(added.contains(&b.fingerprint), "{added}");
    assert_eq!(
        listed_fingerprints(&sluice),
        sorted(&[&a.fingerprint, &b.fingerprint])
    );
    let mut expected = vec![
        (a.fingerprint.clone(), vec!["a.test".to_owned()], Vec::new()),
        (
            b.fingerprint.clone(),
            vec!["b.test".to_owned()],
            vec![listener_text.clone()],
        ),
    ];
    expected.sort();
    assert_eq!(certificate_list(&sluice), expected);
    // Both workers answer: several handshakes each see the certificate for their name.
    for _ in 0..4 {
        assert_eq!(served_for(listener, "b.test"), b.fingerprint);
        assert_eq!(served_for(listener, "a.test"), a.fingerprint);
    }
    let text = metrics_text(metrics);
    for (fingerprint, name) in [(&a.fingerprint, "a.test"), (&b.fingerprint, "b.test")] {
        let sample = format!(
            "sluice_certificate_expiry_timestamp_seconds{{fingerprint=\"{fingerprint}\",\
             name=\"{name}\"}} {}",
            not_after(&sluice, fingerprint)
        );
        assert!(text.contains(&sample), "{sample:?} missing from:\n{text}");
    }
    assert_eq!(expiry_samples(&text).len(), 2, "{text}");

    sluice.ctl_ok(&[
        "certificate",
        "replace",
        "--fingerprint",
        &b.fingerprint,
        "--certificate",
        renewed.certificate_arg(),
        "--key",
        renewed.key_arg(),
    ]);
    // The replacement keeps the names and listeners of the one it replaces.
    let mut expected = vec![
        (a.fingerprint.clone(), vec!["a.test".to_owned()], Vec::new()),
        (
            renewed.fingerprint.clone(),
            vec!["b.test".to_owned()],
            vec![listener_text.clone()],
        ),
    ];
    expected.sort();
    assert_eq!(certificate_list(&sluice), expected);
    for _ in 0..4 {
        assert_eq!(served_for(listener, "b.test"), renewed.fingerprint);
    }
    let text = metrics_text(metrics);
    assert!(!text.contains(&b.fingerprint), "{text}");
    assert!(text.contains(&renewed.fingerprint), "{text}");
    assert_eq!(expiry_samples(&text).len(), 2, "{text}");

    sluice.ctl_ok(&[
        "certificate",
        "remove",
        "--fingerprint",
        &renewed.fingerprint,
    ]);
    assert_eq!(listed_fingerprints(&sluice), sorted(&[&a.fingerprint]));
    for _ in 0..4 {
        let seen = handshake(listener, "b.test", &[]);
        assert_ne!(
            seen.served.as_deref(),
            Some(renewed.fingerprint.as_str()),
            "{}",
            seen.text
        );
        assert_eq!(served_for(listener, "a.test"), a.fingerprint);
    }
    let text = metrics_text(metrics);
    assert!(!text.contains(&renewed.fingerprint), "{text}");
    assert_eq!(expiry_samples(&text).len(), 1, "{text}");
}

#[test]
fn saved_state_brings_certificates_back_in_place_and_in_a_fresh_instance() {
    let certs = tempfile::tempdir().expect("temp dir");
    let a = CertificateFiles::generate(certs.path(), "a", "a.test");
    let b = CertificateFiles::generate(certs.path(), "b", "b.test");
    let backend = mock("web");
    let listener = free_addr();
    let config = https_config(1, listener, backend.addr(), &[&a], None);
    let first = Sluice::start(&config);
    let listener_text = listener.to_string();
    first.ctl_ok(&[
        "certificate",
        "add",
        "--certificate",
        b.certificate_arg(),
        "--key",
        b.key_arg(),
        "--listener",
        &listener_text,
    ]);
    let both = certificate_list(&first);
    assert_eq!(both.len(), 2, "{both:?}");
    let saved = certs.path().join("saved.state");
    let saved_text = saved.to_str().expect("a utf-8 path");
    first.ctl_ok(&["state", "save", "-f", saved_text]);

    // In place: removed, then loaded back.
    first.ctl_ok(&["certificate", "remove", "--fingerprint", &b.fingerprint]);
    assert_eq!(listed_fingerprints(&first), sorted(&[&a.fingerprint]));
    first.ctl_ok(&["state", "load", "-f", saved_text]);
    assert_eq!(certificate_list(&first), both);
    assert_eq!(served_for(listener, "b.test"), b.fingerprint);
    drop(first);

    // A fresh instance started on the file (certificate a only) gets b from the state.
    let second = Sluice::start(&config);
    assert_eq!(listed_fingerprints(&second), sorted(&[&a.fingerprint]));
    second.ctl_ok(&["state", "load", "-f", saved_text]);
    assert_eq!(certificate_list(&second), both);
    assert_eq!(served_for(listener, "b.test"), b.fingerprint);
    assert_eq!(served_for(listener, "a.test"), a.fingerprint);
}

/// Resumptions tried with one saved session, each on a new connection.
const RESUMPTIONS: usize = 20;

#[test]
fn sessions_resume_on_any_worker_and_on_respawned_ones() {
    let certs = tempfile::tempdir().expect("temp dir");
    let a = CertificateFiles::generate(certs.path(), "a", "a.test");
    let backend = mock("web");
    let (sluice, listener) = started(2, &backend, &[&a], None);

    let mut sessions = Vec::new();
    for version in ["-tls1_3", "-tls1_2"] {
        let session = new_session(listener, certs.path(), version);
        resume_every_time(&sluice, listener, version, &session, RESUMPTIONS);
        sessions.push((version, session));
    }
    let resumed = resumed_per_worker(&sluice);
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert_eq!(
        resumed.iter().sum::<u64>(),
        2 * RESUMPTIONS as u64,
        "resumed handshakes per worker: {resumed:?}"
    );

    // Workers that never saw the sessions: both killed and respawned by main, which
    // hands them its ticket keys.
    let before = sluice.workers();
    for (_, pid, _) in &before {
        send_signal("KILL", u32::try_from(*pid).expect("a pid"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = sluice.ctl_json(&["status"]);
        let workers = status["workers"].as_array().expect("a worker list");
        let respawned = workers.len() == 2
            && workers.iter().all(|w| {
                w["state"] == "running"
                    && before
                        .iter()
                        .all(|(_, pid, _)| w["pid"].as_u64() != Some(*pid))
            });
        if respawned {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers not respawned: {status}\n{}",
            sluice.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (version, session) in &sessions {
        resume_every_time(&sluice, listener, version, session, RESUMPTIONS / 2);
    }
    let resumed = resumed_per_worker(&sluice);
    assert_eq!(
        resumed.iter().sum::<u64>(),
        RESUMPTIONS as u64,
        "resumed handshakes per respawned worker: {resumed:?}"
    );
}
