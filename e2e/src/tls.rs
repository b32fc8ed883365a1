//! TLS helpers of the end-to-end tests: certificates made with the `openssl` command at
//! test time (short-lived, nothing committed), and `openssl s_client` runs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The kind of key a test certificate has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256.
    EcdsaP256,
    /// RSA, 2048 bits.
    Rsa2048,
}

/// A self-signed certificate and its key, as PEM text.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The certificate.
    pub certificate: String,
    /// Its private key (PKCS#8).
    pub key: String,
    /// SHA-256 of its DER, lowercase hex.
    pub fingerprint: String,
}

fn openssl() -> Command {
    Command::new("openssl")
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run openssl ({what}): {e}; install the `openssl` package")
    });
    assert!(
        output.status.success(),
        "openssl {what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl TestCertificate {
    /// A certificate for `names` (its CN is the first), valid for a week, made in `dir`.
    pub fn generate(dir: &Path, names: &[&str], key_type: KeyType) -> Self {
        let stem = format!(
            "{}-{}",
            names
                .first()
                .copied()
                .unwrap_or("default")
                .replace('*', "star"),
            std::process::id()
        );
        let unique = format!("{stem}-{}", rand_suffix());
        let (cert_path, key_path) = (
            dir.join(format!("{unique}.crt")),
            dir.join(format!("{unique}.key")),
        );
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        let mut command = openssl();
        command
            .arg("req")
            .arg("-x509")
            .arg("-nodes")
            .arg("-days")
            .arg("7");
        match key_type {
            KeyType::EcdsaP256 => {
                command.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            }
            KeyType::Rsa2048 => command.args(["-newkey", "rsa:2048"]),
        };
        command
            .arg("-subj")
            .arg(format!(
                "/CN={}",
                names.first().copied().unwrap_or("default")
            ))
            .arg("-addext")
            .arg(format!("subjectAltName={}", san.join(",")))
            .arg("-keyout")
            .arg(&key_path)
            .arg("-out")
            .arg(&cert_path);
        run(&mut command, "req");
        let certificate = std::fs::read_to_string(&cert_path).expect("certificate written");
        let key = std::fs::read_to_string(&key_path).expect("key written");
        let fingerprint = fingerprint_of(&certificate);
        TestCertificate {
            certificate,
            key,
            fingerprint,
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The fingerprint (SHA-256 of the DER, lowercase hex) of a PEM certificate.
pub fn fingerprint_of(pem: &str) -> String {
    let mut child = openssl()
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl x509; install the `openssl` package");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem.as_bytes())
        .expect("write the certificate");
    let output = child.wait_with_output().expect("openssl x509");
    let text = String::from_utf8_lossy(&output.stdout);
    let value = text.trim().rsplit('=').next().unwrap_or("");
    value.replace(':', "").to_ascii_lowercase()
}

/// What one `openssl s_client` run saw.
#[derive(Debug)]
pub struct SClient {
    /// Everything it printed (stdout and stderr).
    pub text: String,
    /// The fingerprint of the certificate the server sent, if the handshake got there.
    pub served: Option<String>,
}

impl SClient {
    /// Whether the handshake finished.
    pub fn connected(&self) -> bool {
        self.text.contains("Cipher is") && !self.text.contains("Cipher is (NONE)")
    }
}

/// Runs `openssl s_client` against `addr` with `args` (e.g. `-servername a.test`),
/// sending `input` then closing its input; bounded by `timeout`.
pub fn s_client(addr: SocketAddr, args: &[&str], input: &[u8], timeout: Duration) -> SClient {
    let mut child = Command::new("timeout")
        .arg(format!("{}", timeout.as_secs().max(1)))
        .arg("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client; install the `openssl` package");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    drop(stdin);
    let output = child.wait_with_output().expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let served = first_pem(&text).map(|pem| fingerprint_of(&pem));
    SClient { text, served }
}

fn first_pem(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = text[start..].find(end_marker)? + start + end_marker.len();
    Some(format!("{}\n", &text[start..end]))
}
