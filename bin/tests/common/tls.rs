//! HTTPS helpers shared by the tests that run the real binary with TLS listeners:
//! certificate files, an https config, `openssl s_client` runs (SNI, saved sessions) and
//! what `ctl certificate list` and `ctl metrics` say about them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_e2e::tls::{s_client, SClient};
use sluice_e2e::{free_addr, MockHttpServer};

use super::Sluice;

/// Bound of one `openssl s_client` or `curl` run.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One certificate on disk.
pub(crate) struct CertificateFiles {
    pub(crate) certificate: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) fingerprint: String,
}

impl CertificateFiles {
    /// A self-signed certificate whose subject CN is `name` and whose SAN is `name`,
    /// written as `FILE.pem` and `FILE.key` in `dir`.
    pub(crate) fn generate(dir: &Path, file: &str, name: &str) -> CertificateFiles {
        let mut params =
            rcgen::CertificateParams::new(vec![name.to_owned()]).expect("a valid name");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("a key pair");
        let generated = params.self_signed(&key).expect("a certificate");
        let certificate = dir.join(format!("{file}.pem"));
        let key_path = dir.join(format!("{file}.key"));
        std::fs::write(&certificate, generated.pem()).expect("write the certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
        CertificateFiles {
            fingerprint: openssl_fingerprint(&certificate),
            certificate,
            key: key_path,
        }
    }

    pub(crate) fn certificate_arg(&self) -> &str {
        self.certificate.to_str().expect("a utf-8 path")
    }

    pub(crate) fn key_arg(&self) -> &str {
        self.key.to_str().expect("a utf-8 path")
    }
}

/// What `openssl x509 -noout -fingerprint -sha256` prints for a PEM file, colons
/// removed, lower case.
pub(crate) fn openssl_fingerprint(path: &Path) -> String {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(path)
        .output()
        .expect("openssl is installed (see .ci/run)");
    assert!(output.status.success(), "openssl x509 failed");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
        .to_lowercase()
}

/// A config: `workers` workers, one https listener with frontends for `a.test` and
/// `b.test` to `backend`, `certificates` on it, and `/metrics` on `metrics` if any.
pub(crate) fn https_config(
    workers: u32,
    listener: SocketAddr,
    backend: SocketAddr,
    certificates: &[&CertificateFiles],
    metrics: Option<SocketAddr>,
) -> String {
    let mut config = format!(
        "command_socket = \"sluice.sock\"\nworker_count = {workers}\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"1s\"\n"
    );
    if let Some(metrics) = metrics {
        config.push_str(&format!("metrics_address = \"{metrics}\"\n"));
    }
    config.push_str(&format!(
        "\n[[listeners]]\nprotocol = \"https\"\naddress = \"{listener}\"\n"
    ));
    for files in certificates {
        config.push_str(&format!(
            "\n[[certificates]]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            files.certificate.display(),
            files.key.display()
        ));
    }
    config.push_str(&format!(
        "\n[clusters.web]\nprotocol = \"http\"\nfrontends = [ \
         {{ address = \"{listener}\", hostname = \"a.test\", path = \"/\" }}, \
         {{ address = \"{listener}\", hostname = \"b.test\", path = \"/\" }} ]\n\
         backends = [ {{ address = \"{backend}\" }} ]\n"
    ));
    config
}

/// `openssl s_client -servername NAME` against `listener`; `args` added.
pub(crate) fn handshake(listener: SocketAddr, name: &str, args: &[&str]) -> SClient {
    let mut all = vec!["-servername", name];
    all.extend_from_slice(args);
    s_client(listener, &all, b"", CLIENT_TIMEOUT)
}

/// The fingerprint of the certificate served for `name`, asserting the handshake worked.
pub(crate) fn served_for(listener: SocketAddr, name: &str) -> String {
    let seen = handshake(listener, name, &[]);
    assert!(seen.connected(), "no handshake for {name}:\n{}", seen.text);
    seen.served
        .unwrap_or_else(|| panic!("no certificate for {name}:\n{}", seen.text))
}

/// `(fingerprint, names, listeners)` of each certificate `ctl certificate list
/// --json` shows, sorted by fingerprint.
pub(crate) fn certificate_list(sluice: &Sluice) -> Vec<(String, Vec<String>, Vec<String>)> {
    let list = sluice.ctl_json(&["certificate", "list"]);
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| item.as_str().expect("a string").to_owned())
            .collect()
    };
    let mut certificates: Vec<_> = list["certificates"]
        .as_array()
        .expect("a certificate list")
        .iter()
        .map(|c| {
            (
                c["fingerprint"].as_str().expect("a fingerprint").to_owned(),
                strings(&c["names"]),
                strings(&c["listeners"]),
            )
        })
        .collect();
    certificates.sort();
    certificates
}

/// A `sluice start` with `workers` workers on an https listener at a free address.
pub(crate) fn started(
    workers: u32,
    backend: &MockHttpServer,
    certificates: &[&CertificateFiles],
    metrics: Option<SocketAddr>,
) -> (Sluice, SocketAddr) {
    let listener = free_addr();
    let sluice = Sluice::start(&https_config(
        workers,
        listener,
        backend.addr(),
        certificates,
        metrics,
    ));
    (sluice, listener)
}

/// A request that makes the proxy answer and close: `s_client -ign_eof` then reads
/// until the end, TLS 1.3 tickets (sent after the handshake) included.
pub(crate) const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";

/// `s_client` with `version` (`-tls1_3`, `-tls1_2`) and `args`, sending [`REQUEST`].
pub(crate) fn session_run(listener: SocketAddr, version: &str, args: &[&str]) -> SClient {
    let mut all = vec![version, "-servername", "a.test", "-ign_eof"];
    all.extend_from_slice(args);
    s_client(listener, &all, REQUEST, CLIENT_TIMEOUT)
}

/// A new session of `version` through `listener`, saved in a file of `dir` whose path is
/// returned; the handshake was a full one and the request reached the backend `web`.
pub(crate) fn new_session(listener: SocketAddr, dir: &Path, version: &str) -> String {
    let session = dir.join(format!("session{version}.pem"));
    let session = session.to_str().expect("a utf-8 path").to_owned();
    let first = session_run(listener, version, &["-sess_out", &session]);
    assert!(first.text.contains("New, TLSv1."), "{}", first.text);
    assert!(first.text.contains("backend: web"), "{}", first.text);
    session
}

/// What `s_client` prints for a resumed session of `version`.
pub(crate) fn reused_line(version: &str) -> &'static str {
    match version {
        "-tls1_3" => "Reused, TLSv1.3",
        _ => "Reused, TLSv1.2",
    }
}

/// Resumes the session saved in `session` `count` times, each on a new connection;
/// every attempt must be resumed and answered by the backend.
pub(crate) fn resume_every_time(
    sluice: &Sluice,
    listener: SocketAddr,
    version: &str,
    session: &str,
    count: usize,
) {
    for attempt in 0..count {
        let seen = session_run(listener, version, &["-sess_in", session]);
        assert!(
            seen.text.contains(reused_line(version)),
            "{version} attempt {attempt} not resumed:\n{}\n{}",
            seen.text,
            sluice.log()
        );
        assert!(
            seen.text.contains("backend: web"),
            "{version} attempt {attempt} not answered:\n{}",
            seen.text
        );
    }
}

/// `tls_handshakes_resumed` of each worker, from `ctl metrics --json`.
pub(crate) fn resumed_per_worker(sluice: &Sluice) -> Vec<u64> {
    let metrics = sluice.ctl_json(&["metrics"]);
    metrics["workers"]
        .as_array()
        .expect("a worker list")
        .iter()
        .map(|worker| {
            worker["proxy"]["tls_handshakes_resumed"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect()
}
