//! The `[etcd]` table: defaults, values kept, and refusals naming file, line and key.

use std::time::Duration;

use super::*;

fn etcd_of(table: &str) -> Result<Option<super::super::EtcdConfig>, ConfigError> {
    parse(&format!("[etcd]\n{table}")).map(|config| config.etcd)
}

#[test]
fn no_table_means_no_etcd_and_defaults_fill_the_rest() {
    assert_eq!(parse("").expect("valid").etcd, None);
    let etcd = etcd_of("endpoints = [\"http://127.0.0.1:2379\"]\n")
        .expect("valid")
        .expect("an etcd table");
    assert_eq!(etcd.endpoints, ["http://127.0.0.1:2379"]);
    assert_eq!(etcd.prefix, "/sluice/");
    assert_eq!(etcd.clusters_prefix(), "/sluice/clusters/");
    assert_eq!(etcd.cluster_key("api"), "/sluice/clusters/api");
    assert_eq!(etcd.dial_timeout, Duration::from_secs(2));
    assert_eq!((etcd.credentials, etcd.ca, etcd.cache), (None, None, None));
}

#[test]
fn every_key_is_read_and_paths_are_resolved_against_the_file() {
    let etcd = etcd_of(
        "endpoints = [\"https://etcd-1:2379\", \"https://10.0.0.2:2379\"]\n\
         prefix = \"/edge/\"\nusername = \"sluice\"\npassword = \"secret\"\n\
         ca = \"ca.pem\"\ncertificate = \"client.pem\"\nkey = \"client-key.pem\"\n\
         dial_timeout = \"500ms\"\ncache = \"etcd.cache\"\n",
    )
    .expect("valid")
    .expect("an etcd table");
    let base = Path::new(BASE_DIR);
    assert_eq!(etcd.prefix, "/edge/");
    assert_eq!(
        etcd.credentials,
        Some(("sluice".to_owned(), "secret".to_owned()))
    );
    assert_eq!(etcd.ca, Some(base.join("ca.pem")));
    assert_eq!(
        etcd.client_certificate,
        Some((base.join("client.pem"), base.join("client-key.pem")))
    );
    assert_eq!(etcd.dial_timeout, Duration::from_millis(500));
    assert_eq!(etcd.cache, Some(base.join("etcd.cache")));
}

#[test]
fn invalid_values_are_refused_where_they_are_written() {
    let cases = [
        ("prefix = \"/x/\"\n", "sluice.toml:1:1: etcd: missing key \"endpoints\""),
        ("endpoints = []\n", "sluice.toml:2:13: etcd.endpoints: empty list"),
        (
            "endpoints = [\"127.0.0.1:2379\"]\n",
            "sluice.toml:2:14: etcd.endpoints[0]: invalid endpoint \"127.0.0.1:2379\", expected http://HOST:PORT or https://HOST:PORT",
        ),
        (
            "endpoints = [\"http://e:1\"]\nprefix = \"sluice\"\n",
            "sluice.toml:3:10: etcd.prefix: invalid prefix \"sluice\"",
        ),
        (
            "endpoints = [\"http://e:1\"]\nusername = \"u\"\n",
            "sluice.toml:1:1: etcd: username without password",
        ),
        (
            "endpoints = [\"http://e:1\"]\nca = \"ca.pem\"\n",
            "sluice.toml:3:6: etcd.ca: TLS settings given but no endpoint is https://",
        ),
        (
            "endpoints = [\"https://e:1\"]\nkey = \"k.pem\"\n",
            "sluice.toml:3:7: etcd.key: key without certificate",
        ),
        (
            "endpoints = [\"http://e:1\"]\ndial_timeout = \"0s\"\n",
            "sluice.toml:3:16: etcd.dial_timeout:",
        ),
        (
            "endpoints = [\"http://e:1\"]\nwatch = true\n",
            "sluice.toml:3:1: etcd.watch: unknown key, expected one of endpoints, prefix",
        ),
    ];
    for (table, expected) in cases {
        let error = etcd_of(table).expect_err(table).to_string();
        assert!(
            error.starts_with(expected),
            "{table}\n  expected {expected}\n  actual   {error}"
        );
    }
}
