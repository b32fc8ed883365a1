//! Certificates from the outside: `sluice config check` on TLS configurations and the
//! answers of `sluice ctl certificate …` that never need a worker to serve TLS.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tls::openssl_fingerprint;
use common::{sluice_bin, Sluice};

/// Writes `NAME.pem` and `NAME.key` for `names`, valid from `from` to `to` (years).
fn write_certificate(dir: &Path, name: &str, names: &[&str], from: i32, to: i32) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("valid names");
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let certificate = params.self_signed(&key).expect("a certificate");
    std::fs::write(dir.join(format!("{name}.pem")), certificate.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn config_check(file: &Path) -> Output {
    Command::new(sluice_bin())
        .args(["config", "check"])
        .arg(file)
        .output()
        .expect("the sluice binary runs")
}

const TLS_CONFIG: &str = r#"[[listeners]]
protocol = "https"
address = "127.0.0.1:18443"
min_tls_version = "1.2"
alpn = ["http/1.1"]

[[listeners]]
protocol = "tcp"
tls = true
address = "127.0.0.1:15433"

[[certificates]]
certificate = "a.pem"
key = "KEY"
default = true

[clusters.web]
frontends = [ { address = "127.0.0.1:18443", hsts = "max-age=31536000" } ]
"#;

#[test]
fn config_check_reports_tls_listeners_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path(), "a", &["a.test", "*.b.test"], 2020, 2200);
    write_certificate(dir.path(), "other", &["a.test"], 2020, 2200);
    let file = dir.path().join("sluice.toml");
    std::fs::write(&file, TLS_CONFIG.replace("KEY", "a.key")).unwrap();
    let output = config_check(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fingerprint = openssl_fingerprint(&dir.path().join("a.pem"));
    for expected in [
        "https 127.0.0.1:18443".to_owned(),
        "certificates: 1".to_owned(),
        format!("{fingerprint} names a.test,*.b.test, not after 2200-01-01T00:00:00Z, listeners all, default"),
    ] {
        assert!(stdout.contains(&expected), "{expected:?} missing from:\n{stdout}");
    }

    std::fs::write(&file, TLS_CONFIG.replace("KEY", "other.key")).unwrap();
    let output = config_check(&file);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:14:7: certificates[0].key: the key in {} does not match the certificate in {}",
        file.display(),
        dir.path().join("other.key").display(),
        dir.path().join("a.pem").display()
    );
    assert!(
        stderr.contains(&expected),
        "{expected:?} missing from:\n{stderr}"
    );
}

#[test]
fn config_check_refuses_expired_and_missing_certificates() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path(), "old", &["old.test"], 1999, 2001);
    let file = dir.path().join("sluice.toml");
    let text = TLS_CONFIG
        .replace("a.pem", "old.pem")
        .replace("KEY", "old.key");
    std::fs::write(&file, &text).unwrap();
    let stderr = String::from_utf8_lossy(&config_check(&file).stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "sluice.toml:13:15: certificates[0].certificate: {}: the certificate expired on \
             2001-01-01T00:00:00Z",
            dir.path().join("old.pem").display()
        )),
        "{stderr}"
    );
    std::fs::write(&file, text.replace("old.pem", "missing.pem")).unwrap();
    let stderr = String::from_utf8_lossy(&config_check(&file).stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "certificates[0].certificate: cannot read {}: No such file or directory",
            dir.path().join("missing.pem").display()
        )),
        "{stderr}"
    );
}

/// A running Sluice with one plain HTTP listener, and certificates in its folder.
fn plain_sluice() -> Sluice {
    let port = sluice_e2e::free_port();
    let sluice = Sluice::start(&format!(
        "command_socket = \"sluice.sock\"\nworker_count = 1\naccess_log = \"off\"\n\
         shutdown_grace_period = \"1s\"\n\n[[listeners]]\naddress = \"127.0.0.1:{port}\"\n"
    ));
    write_certificate(sluice.dir.path(), "a", &["a.test"], 2020, 2200);
    write_certificate(sluice.dir.path(), "other", &["a.test"], 2020, 2200);
    write_certificate(sluice.dir.path(), "old", &["old.test"], 1999, 2001);
    sluice
}

fn failure(sluice: &Sluice, args: &[&str]) -> String {
    let output = sluice.ctl(args);
    assert!(!output.status.success(), "ctl {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn ctl_certificate_errors_name_the_file_and_change_nothing() {
    let sluice = plain_sluice();
    let dir = sluice.dir.path();
    let path = |name: &str| dir.join(name).display().to_string();
    let listener = sluice.ctl_json(&["listener", "list"]);
    let http_address = listener["listeners"][0]["address"]
        .as_str()
        .expect("the http listener")
        .to_owned();

    let stderr = failure(
        &sluice,
        &[
            "certificate",
            "add",
            "--certificate",
            "missing.pem",
            "--key",
            "a.key",
        ],
    );
    assert!(
        stderr.contains(&format!("cannot read {}", path("missing.pem"))),
        "{stderr}"
    );
    let stderr = failure(
        &sluice,
        &[
            "certificate",
            "add",
            "--certificate",
            "a.pem",
            "--key",
            "other.key",
        ],
    );
    assert!(
        stderr.contains(&format!(
            "the key in {} does not match the certificate in {}",
            path("other.key"),
            path("a.pem")
        )),
        "{stderr}"
    );
    let stderr = failure(
        &sluice,
        &[
            "certificate",
            "add",
            "--certificate",
            "old.pem",
            "--key",
            "old.key",
        ],
    );
    assert!(
        stderr.contains(&format!(
            "{}: the certificate expired on 2001-01-01T00:00:00Z",
            path("old.pem")
        )),
        "{stderr}"
    );
    let stderr = failure(
        &sluice,
        &[
            "certificate",
            "add",
            "--certificate",
            "a.pem",
            "--key",
            "a.key",
            "--listener",
            &http_address,
        ],
    );
    assert!(
        stderr.contains(&format!(
            "the listener at {http_address} does not terminate TLS"
        )),
        "{stderr}"
    );
    let unknown = "ab".repeat(32);
    let stderr = failure(
        &sluice,
        &["certificate", "remove", "--fingerprint", &unknown],
    );
    assert!(
        stderr.contains(&format!("no certificate has the fingerprint {unknown}")),
        "{stderr}"
    );
    let stderr = failure(
        &sluice,
        &[
            "certificate",
            "replace",
            "--fingerprint",
            &unknown,
            "--certificate",
            "a.pem",
            "--key",
            "a.key",
        ],
    );
    assert!(
        stderr.contains(&format!("no certificate has the fingerprint {unknown}")),
        "{stderr}"
    );
    let stderr = failure(&sluice, &["certificate", "remove", "--fingerprint", "xyz"]);
    assert!(stderr.contains("invalid fingerprint `xyz`"), "{stderr}");

    // Nothing was applied anywhere.
    let list = sluice.ctl_json(&["certificate", "list"]);
    assert_eq!(list, serde_json::json!({ "certificates": [] }));
    let table = sluice.ctl_ok(&["certificate", "list"]);
    assert!(table.starts_with("FINGERPRINT"), "{table}");
    let json_error = sluice.ctl(&["--json", "certificate", "remove", "--fingerprint", &unknown]);
    let answer: serde_json::Value =
        serde_json::from_slice(&json_error.stdout).expect("one JSON document");
    assert_eq!(
        answer["error"],
        format!("no certificate has the fingerprint {unknown}")
    );
}

#[test]
fn ctl_https_listener_options_are_checked_before_any_worker() {
    let sluice = plain_sluice();
    let address = format!("127.0.0.1:{}", sluice_e2e::free_port());
    let stderr = failure(
        &sluice,
        &[
            "listener",
            "add",
            "--protocol",
            "http",
            "--address",
            &address,
            "--strict-sni",
        ],
    );
    assert!(
        stderr.contains("TLS options apply to TLS listeners only"),
        "{stderr}"
    );
    let stderr = failure(
        &sluice,
        &[
            "listener",
            "add",
            "--protocol",
            "https",
            "--address",
            &address,
            "--cipher-suite",
            "RC4",
        ],
    );
    assert!(
        stderr.contains("invalid tls.cipher_suites \"RC4\": unknown cipher suite"),
        "{stderr}"
    );
    let listeners = sluice.ctl_json(&["listener", "list"]);
    assert_eq!(listeners["listeners"].as_array().map(Vec::len), Some(1));
}

#[test]
fn state_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let sluice = plain_sluice();
    let path = sluice.dir.path().join("state.json");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path_text = path.display().to_string();
    sluice.ctl_ok(&["state", "save", "-f", &path_text]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}
