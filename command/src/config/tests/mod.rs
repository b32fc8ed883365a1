//! Tests of the configuration through its public API: `Config::parse` on
//! small documents, asserting the whole result or the exact error message.

mod errors;
mod etcd;
mod tls;
mod valid;

use std::path::Path;

use super::*;

/// A config exercising both protocols; tests change one line of it.
/// Line numbers matter: the expected errors name them.
const BASE: &str = r#"command_socket = "sluice.sock"
worker_count = 2

[[listeners]]
protocol = "http"
address = "127.0.0.1:8080"

[[listeners]]
protocol = "tcp"
address = "127.0.0.1:5432"

[clusters.demo]
protocol = "http"
load_balancing = "round_robin"
frontends = [ { address = "127.0.0.1:8080", hostname = "*", path = "/" } ]
backends = [
  { address = "127.0.0.1:8081", weight = 100 },
  { address = "127.0.0.1:8082" },
]

[clusters.db]
protocol = "tcp"
frontends = [ { address = "127.0.0.1:5432" } ]
backends = [ { address = "127.0.0.1:15432" } ]
"#;

/// Where relative paths point in tests: a folder that does not exist, so
/// that reading an answer file fails the same way everywhere.
const BASE_DIR: &str = "/nonexistent-sluice-test";

/// `BASE` with line `line` (from 1) replaced by `text` (which may hold
/// several lines).
fn base_with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    assert!(
        line >= 1 && line <= lines.len(),
        "line {line} is not in BASE"
    );
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "sluice.toml", Path::new(BASE_DIR))
}

fn error_of(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error, parsed {config:#?}\nfrom:\n{text}"),
        Err(error) => error.to_string(),
    }
}
