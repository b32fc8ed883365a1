//! TLS listeners, `[[certificates]]` and the frontends' `redirect` and `hsts`.

use std::path::Path;

use super::super::*;
use crate::certificate::tests::{self_signed, valid};

/// A folder holding `a.pem`/`a.key` (a.test, *.b.test), `c.pem`/`c.key`
/// (c.test), `old.pem`/`old.key` (expired) and `other.key` (no certificate's).
fn certificates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let (a, a_key) = valid(&["a.test", "*.b.test"]);
    let (c, c_key) = valid(&["c.test"]);
    let (old, old_key) = self_signed(&["old.test"], 1999, 2001);
    let (_, other_key) = valid(&["other.test"]);
    write("a.pem", &a);
    write("a.key", &a_key);
    write("c.pem", &c);
    write("c.key", &c_key);
    write("old.pem", &old);
    write("old.key", &old_key);
    write("other.key", &other_key);
    dir
}

const LISTENERS: &str = r#"[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"
min_tls_version = "1.3"
alpn = ["http/1.1"]
strict_sni = true

[[listeners]]
protocol = "tcp"
tls = true
address = "127.0.0.1:5433"

[[listeners]]
protocol = "http"
address = "127.0.0.1:8080"
"#;

fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "sluice.toml", dir)
}

fn error_in(dir: &Path, text: &str) -> String {
    parse_in(dir, text).expect_err("invalid").to_string()
}

#[test]
fn https_and_tls_tcp_listeners_with_certificates() {
    let dir = certificates();
    let text = format!(
        r#"{LISTENERS}
[[certificates]]
certificate = "a.pem"
key = "a.key"
default = true

[[certificates]]
certificate = "c.pem"
key = "c.key"
names = ["C.test", "www.c.test"]
listeners = ["127.0.0.1:8443"]

[clusters.web]
frontends = [
  {{ address = "127.0.0.1:8443", hostname = "a.test", hsts = "max-age=31536000; includeSubDomains" }},
  {{ address = "127.0.0.1:8080", hostname = "a.test", redirect = "https" }},
]
"#
    );
    let config = parse_in(dir.path(), &text).expect("valid");
    let ListenerConfig::Http(https) = &config.listeners[0] else {
        panic!("an http listener");
    };
    assert_eq!(
        config.listeners[0].protocol(),
        proto::ListenerProtocol::Https
    );
    assert_eq!(
        https.tls,
        Some(proto::TlsSettings {
            min_version: Some(proto::TlsVersion::Tls13 as i32),
            cipher_suites: Vec::new(),
            alpn_protocols: vec!["http/1.1".to_owned()],
            strict_sni: Some(true),
        })
    );
    let ListenerConfig::Tcp(tcp) = &config.listeners[1] else {
        panic!("a tcp listener");
    };
    assert!(tcp.tls.is_some());
    assert_eq!(config.listeners[1].protocol(), proto::ListenerProtocol::Tcp);
    assert!(config.listeners[2].protocol() == proto::ListenerProtocol::Http);

    let [a, c] = config.certificates.as_slice() else {
        panic!("two certificates: {:?}", config.certificates);
    };
    assert_eq!(a.names, ["a.test", "*.b.test"]);
    assert!(a.listeners.is_empty());
    assert_eq!(a.default, Some(true));
    assert_eq!(
        a.certificate_path.as_deref(),
        dir.path().join("a.pem").to_str()
    );
    assert_eq!(c.names, ["c.test", "www.c.test"]);
    assert_eq!(c.listeners, ["127.0.0.1:8443"]);
    assert_eq!(c.default, None);

    let frontends = &config.clusters[0].http_frontends;
    assert_eq!(
        frontends[0].hsts.as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(frontends[1].redirect_https, Some(true));

    // Certificates come right after the listeners they name.
    let requests = config.to_requests();
    assert!(matches!(
        requests[3].request_type,
        Some(proto::request::RequestType::AddCertificate(_))
    ));
    let mut state = crate::state::ConfigState::new();
    state
        .apply_batch(&requests)
        .expect("the requests build the state");
    assert_eq!(state.certificates().len(), 2);
}

/// A config with the listeners and one `[[certificates]]` entry, whose
/// lines start at line 18.
fn with_certificate(entry: &str) -> String {
    format!("{LISTENERS}\n[[certificates]]\n{entry}\n")
}

#[test]
fn certificate_errors_name_the_file_line_and_key() {
    let dir = certificates();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let cases = [
        (
            "certificate = \"a.pem\"\nkey = \"other.key\"",
            format!(
                "sluice.toml:19:7: certificates[0].key: the key in {} does not match the \
                 certificate in {}",
                path("other.key"),
                path("a.pem")
            ),
        ),
        (
            "certificate = \"old.pem\"\nkey = \"old.key\"",
            format!(
                "sluice.toml:18:15: certificates[0].certificate: {}: the certificate expired \
                 on 2001-01-01T00:00:00Z",
                path("old.pem")
            ),
        ),
        (
            "certificate = \"missing.pem\"\nkey = \"a.key\"",
            format!(
                "sluice.toml:18:15: certificates[0].certificate: cannot read {}: No such file \
                 or directory (os error 2)",
                path("missing.pem")
            ),
        ),
        (
            "certificate = \"a.pem\"\nkey = \"a.key\"\nchain = \"a.key\"",
            format!(
                "sluice.toml:20:9: certificates[0].chain: {}: no certificate found (expected a \
                 PEM \"CERTIFICATE\" block)",
                path("a.key")
            ),
        ),
        (
            "certificate = \"a.key\"\nkey = \"a.key\"",
            format!(
                "sluice.toml:18:15: certificates[0].certificate: {}: no certificate found \
                 (expected a PEM \"CERTIFICATE\" block)",
                path("a.key")
            ),
        ),
        (
            "key = \"a.key\"",
            "sluice.toml:17:1: certificates[0]: missing key \"certificate\"".to_owned(),
        ),
        (
            "certificate = \"a.pem\"\nkey = \"a.key\"\nlisteners = [\"127.0.0.1:8080\"]",
            "sluice.toml:20:14: certificates[0].listeners[0]: listener 127.0.0.1:8080 \
             (listeners[2]) does not terminate TLS, expected the address of a listener with \
             protocol = \"https\" or tls = true"
                .to_owned(),
        ),
        (
            "certificate = \"a.pem\"\nkey = \"a.key\"\nlisteners = [\"127.0.0.1:9999\"]",
            "sluice.toml:20:14: certificates[0].listeners[0]: no listener on 127.0.0.1:9999, \
             expected the address of a TLS listener: 127.0.0.1:8443, 127.0.0.1:5433"
                .to_owned(),
        ),
        (
            "certificate = \"a.pem\"\nkey = \"a.key\"\nnames = [\"*\"]",
            "sluice.toml:20:10: certificates[0].names[0]: \"*\" is not a certificate name, \
             expected default = true for the certificate of unknown names"
                .to_owned(),
        ),
    ];
    let mut failures = Vec::new();
    for (entry, expected) in cases {
        let actual = error_in(dir.path(), &with_certificate(entry));
        if actual != expected {
            failures.push(format!(
                "{entry}\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn two_defaults_for_one_listener_and_unserved_listeners_are_refused() {
    let dir = certificates();
    let text = format!(
        "{LISTENERS}
[[certificates]]
certificate = \"a.pem\"
key = \"a.key\"
default = true

[[certificates]]
certificate = \"c.pem\"
key = \"c.key\"
listeners = [\"127.0.0.1:5433\"]
default = true
"
    );
    assert_eq!(
        error_in(dir.path(), &text),
        "sluice.toml:26:11: certificates[1].default: certificates[0] is already the default \
         certificate of a listener this one serves, expected one default per listener"
    );
    let text = format!(
        "{LISTENERS}
[[certificates]]
certificate = \"c.pem\"
key = \"c.key\"
listeners = [\"127.0.0.1:5433\"]
"
    );
    assert_eq!(
        error_in(dir.path(), &text),
        "sluice.toml:2:12: listeners[0].protocol: no certificate serves TLS listener \
         127.0.0.1:8443, expected a [[certificates]] entry without listeners or with \
         listeners = [\"127.0.0.1:8443\"]"
    );
    let text = format!(
        "{LISTENERS}
[[certificates]]
certificate = \"a.pem\"
key = \"a.key\"

[[certificates]]
certificate = \"a.pem\"
key = \"a.key\"
"
    );
    assert!(
        error_in(dir.path(), &text).starts_with("sluice.toml:21:1: certificates[1]: certificate "),
        "{}",
        error_in(dir.path(), &text)
    );
}

#[test]
fn tls_keys_need_a_tls_listener() {
    let dir = certificates();
    let cases = [
        (
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\nstrict_sni = true\n",
            "sluice.toml:3:14: listeners[0].strict_sni: strict_sni applies to TLS listeners \
             only, expected protocol = \"https\" (or tls = true on a tcp listener)",
        ),
        (
            "[[listeners]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:5433\"\ntls = false\n\
             alpn = [\"x\"]\n",
            "sluice.toml:5:8: listeners[0].alpn: alpn applies to TLS listeners only, expected \
             protocol = \"https\" (or tls = true on a tcp listener)",
        ),
        (
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\ntls = true\n",
            "sluice.toml:3:7: listeners[0].tls: tls applies to tcp listeners, expected \
             protocol = \"https\" for an http listener",
        ),
        (
            "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\n\
             min_tls_version = \"1.1\"\n",
            "sluice.toml:4:19: listeners[0].min_tls_version: unknown value \"1.1\", expected \
             one of 1.2, 1.3",
        ),
        (
            "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\n\
             min_tls_version = \"1.3\"\n\
             cipher_suites = [\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]\n",
            "sluice.toml:5:17: listeners[0].cipher_suites: min_tls_version = \"1.3\" but no \
             TLS 1.3 cipher suite (TLS13_…) is listed",
        ),
        (
            "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\nalpn = [\"\"]\n",
            "sluice.toml:4:9: listeners[0].alpn[0]: ALPN protocol \"\" must be 1 to 255 bytes, \
             like \"http/1.1\"",
        ),
        (
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[clusters.web]\n\
             frontends = [ { address = \"127.0.0.1:8080\", hsts = \"1 year\" } ]\n",
            "sluice.toml:4:52: clusters.web.frontends[0].hsts: invalid hsts \"1 year\", \
             expected a Strict-Transport-Security value like \"max-age=31536000; \
             includeSubDomains\"",
        ),
        (
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[clusters.web]\n\
             frontends = [ { address = \"127.0.0.1:8080\", redirect = \"http\" } ]\n",
            "sluice.toml:4:56: clusters.web.frontends[0].redirect: unknown value \"http\", \
             expected one of https",
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let actual = error_in(dir.path(), text);
        if actual != expected {
            failures.push(format!(
                "{text}\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cipher_suites_are_checked_by_name() {
    let dir = certificates();
    let text = "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\n\
                cipher_suites = [\"TLS13_AES_128_GCM_SHA256\", \"RC4\"]\n\
                [[certificates]]\ncertificate = \"a.pem\"\nkey = \"a.key\"\n";
    let error = error_in(dir.path(), text);
    assert!(
        error.starts_with(
            "sluice.toml:4:46: listeners[0].cipher_suites[1]: unknown cipher suite \"RC4\", \
             expected one of TLS13_"
        ),
        "{error}"
    );
    let text = text.replace(", \"RC4\"", "");
    let config = parse_in(dir.path(), &text).expect("valid");
    let ListenerConfig::Http(https) = &config.listeners[0] else {
        panic!("an http listener");
    };
    assert_eq!(
        https.tls.as_ref().unwrap().cipher_suites,
        ["TLS13_AES_128_GCM_SHA256"]
    );
}
