use std::io::Write;

use super::*;

/// A self-signed certificate for `names` (PEM text of the certificate and
/// of its key), valid from `not_before` to `not_after` (years).
pub(crate) fn self_signed(names: &[&str], not_before: i32, not_after: i32) -> (String, String) {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("valid names");
    params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let certificate = params.self_signed(&key).expect("a certificate");
    (certificate.pem(), key.serialize_pem())
}

/// A certificate valid from 2020 to 2200 and its key, as PEM text.
pub(crate) fn valid(names: &[&str]) -> (String, String) {
    self_signed(names, 2020, 2200)
}

pub(crate) fn pem_of(certificate: String, key: String) -> proto::CertificateAndKey {
    proto::CertificateAndKey {
        certificate,
        key,
        chain: Vec::new(),
        names: Vec::new(),
        listeners: Vec::new(),
        default: None,
        certificate_path: None,
        key_path: None,
        chain_path: None,
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .expect("a temporary file");
    path
}

const NOW: i64 = 1_800_000_000;

#[test]
fn a_valid_certificate_gives_its_fingerprint_names_and_not_after_date() {
    let (certificate, key) = valid(&["a.test", "*.B.test"]);
    let info = check(&pem_of(certificate.clone(), key), NOW).expect("valid");
    assert_eq!(info.dns_names, vec!["a.test", "*.b.test"]);
    // 2200-01-01T00:00:00Z
    assert_eq!(info.not_after_unix, 7_258_118_400);
    assert_eq!(info.fingerprint.len(), 64);
    assert!(info
        .fingerprint
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(fingerprint_of_pem(&certificate).unwrap(), info.fingerprint);
    assert_eq!(
        format_unix_date(info.not_after_unix),
        "2200-01-01T00:00:00Z"
    );
}

#[test]
fn the_fingerprint_is_the_sha256_of_the_der() {
    // SHA-256 of the empty string, a known value.
    assert_eq!(
        fingerprint(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn the_fingerprint_matches_openssl() {
    let (certificate, _) = valid(&["a.test"]);
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "cert.pem", &certificate);
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&path)
        .output()
        .expect("openssl is installed (see .ci/run)");
    let printed = String::from_utf8_lossy(&output.stdout);
    let expected = printed
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(fingerprint_of_pem(&certificate).unwrap(), expected);
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let (certificate, _) = valid(&["a.test"]);
    let (_, other_key) = valid(&["a.test"]);
    let mut pem = pem_of(certificate, other_key);
    pem.certificate_path = Some("/etc/a.pem".to_owned());
    pem.key_path = Some("/etc/a.key".to_owned());
    let error = inspect(&pem).unwrap_err();
    assert!(matches!(error, CertificateError::KeyMismatch { .. }));
    assert_eq!(
        error.to_string(),
        "the key in /etc/a.key does not match the certificate in /etc/a.pem"
    );
}

#[test]
fn an_expired_certificate_is_refused_by_check_but_not_by_inspect() {
    let (certificate, key) = self_signed(&["old.test"], 1999, 2001);
    let mut pem = pem_of(certificate, key);
    pem.certificate_path = Some("old.pem".to_owned());
    assert!(inspect(&pem).is_ok());
    let error = check(&pem, NOW).unwrap_err();
    assert_eq!(
        error.to_string(),
        "old.pem: the certificate expired on 2001-01-01T00:00:00Z"
    );
}

#[test]
fn a_pem_without_certificate_or_key_is_refused() {
    let (certificate, key) = valid(&["a.test"]);
    let error = inspect(&pem_of(key.clone(), key.clone())).unwrap_err();
    assert!(
        matches!(error, CertificateError::NoCertificate { .. }),
        "{error}"
    );
    let error = inspect(&pem_of(certificate.clone(), certificate)).unwrap_err();
    assert!(matches!(error, CertificateError::NoKey { .. }), "{error}");
}

#[test]
fn a_garbled_certificate_is_unparsable() {
    let (certificate, key) = valid(&["a.test"]);
    let lines: Vec<&str> = certificate.lines().collect();
    // Keep the PEM armour and the base64 valid, cut the DER short.
    let garbled = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]);
    let mut pem = pem_of(garbled, key);
    pem.certificate_path = Some("bad.pem".to_owned());
    let error = inspect(&pem).unwrap_err();
    assert!(
        matches!(error, CertificateError::Unparsable { .. }),
        "{error}"
    );
    assert!(error.to_string().starts_with("bad.pem: "), "{error}");
}

#[test]
fn files_are_read_with_their_paths_and_a_missing_one_is_named() {
    let (certificate, key) = valid(&["a.test"]);
    let dir = tempfile::tempdir().unwrap();
    let certificate_path = write(&dir, "a.pem", &certificate);
    let key_path = write(&dir, "a.key", &key);
    let read = read_files(&certificate_path, &key_path, None).expect("readable");
    assert_eq!(read.certificate, certificate);
    assert_eq!(read.key_path.as_deref(), key_path.to_str());
    assert!(inspect(&read).is_ok());
    let missing = dir.path().join("missing.pem");
    let error = read_files(&certificate_path, &key_path, Some(&missing)).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())),
        "{error}"
    );
}

#[test]
fn a_chain_is_parsed_with_the_leaf() {
    let (certificate, key) = valid(&["a.test"]);
    let (issuer, _) = valid(&["ca.test"]);
    let mut pem = pem_of(certificate, key);
    pem.chain = vec![issuer];
    assert!(inspect(&pem).is_ok());
    pem.chain = vec!["not pem".to_owned()];
    pem.chain_path = Some("chain.pem".to_owned());
    let error = inspect(&pem).unwrap_err();
    assert_eq!(
        error.to_string(),
        "chain.pem: no certificate found (expected a PEM \"CERTIFICATE\" block)"
    );
}
