//! Every refusal, with its exact message: position, key path, and what would
//! have been valid.

use super::*;

const LISTENER_KEYS: &str = "protocol, address, front_timeout, back_timeout, \
                             connect_timeout, request_timeout, expect_proxy, answers, \
                             max_request_body, tls, min_tls_version, cipher_suites, alpn, \
                             strict_sni";
const SIZE_FORMAT: &str = r#"expected a whole number of bytes optionally followed by k, m or g (powers of 1024), like "512k", "10m" or "1g""#;
const DURATION_FORMAT: &str =
    r#"expected a whole number followed by ms, s, m or h, like "250ms", "5s", "2m" or "1h""#;

/// (line of BASE to replace, replacement, expected error after "sluice.toml:").
fn cases() -> Vec<(usize, &'static str, String)> {
    let e = |s: &str| s.to_owned();
    vec![
        // Enumerations and unknown keys.
        (14, r#"load_balancing = "roundrobin""#, e(r#"14:18: clusters.demo.load_balancing: unknown value "roundrobin", expected one of round_robin, random, least_loaded, power_of_two"#)),
        (6, r#"adress = "127.0.0.1:8080""#, format!("6:1: listeners[0].adress: unknown key, expected one of {LISTENER_KEYS}")),
        (2, "frobnicate = 1", e("2:1: frobnicate: unknown key, expected one of command_socket, worker_count, log_level, access_log, access_log_format, max_connections, buffer_size, metrics_address, shutdown_grace_period, dns_servers, dns_refresh, listeners, clusters, certificates, etcd")),
        (2, r#"log_level = "verbose""#, e(r#"2:13: log_level: unknown value "verbose", expected one of error, warn, info, debug, trace"#)),
        (9, r#"protocol = "udp""#, e(r#"9:12: listeners[1].protocol: unknown value "udp", expected one of http, https, tcp"#)),
        (14, "load_balancing = 3", e("14:18: clusters.demo.load_balancing: found an integer, expected one of round_robin, random, least_loaded, power_of_two")),
        (14, r#"load_metric = "latency""#, e(r#"14:15: clusters.demo.load_metric: unknown value "latency", expected one of connections, requests, connect_time"#)),
        (10, "address = \"127.0.0.1:5432\"\nrequest_timeout = \"5s\"", e("11:1: listeners[1].request_timeout: unknown key, expected one of protocol, address, front_timeout, back_timeout, connect_timeout, expect_proxy, tls, min_tls_version, cipher_suites, alpn, strict_sni")),
        (22, "protocol = \"tcp\"\nsticky_session = true", e("23:1: clusters.db.sticky_session: unknown key, expected one of protocol, load_balancing, load_metric, max_connect_retries, health_check, frontends, backends")),
        (23, r#"frontends = [ { address = "127.0.0.1:5432", hostname = "db" } ]"#, e("23:45: clusters.db.frontends[0].hostname: unknown key, expected one of address")),
        (17, r#"  { address = "127.0.0.1:8081", weigth = 100 },"#, e("17:33: clusters.demo.backends[0].weigth: unknown key, expected one of address, weight, backup, sticky_id, id, state, resolve_later")),
        // Global numbers.
        (2, "worker_count = 0", e("2:16: worker_count: 0 is out of range, expected a whole number from 1 to 256")),
        (2, "worker_count = 257", e("2:16: worker_count: 257 is out of range, expected a whole number from 1 to 256")),
        (2, r#"worker_count = "2""#, e("2:16: worker_count: found a string, expected a whole number from 1 to 256")),
        (2, "buffer_size = 512", e("2:15: buffer_size: 512 is out of range, expected a whole number from 1024 to 1048576")),
        (2, "buffer_size = 1048577", e("2:15: buffer_size: 1048577 is out of range, expected a whole number from 1024 to 1048576")),
        (2, "max_connections = 0", e("2:19: max_connections: 0 is out of range, expected a whole number from 1 to 1000000")),
        (2, "max_connections = -5", e("2:19: max_connections: -5 is out of range, expected a whole number from 1 to 1000000")),
        (2, r#"access_log = """#, e("2:14: access_log: empty value, expected stdout, off or a file path")),
        (2, r#"access_log_format = "xml""#, e("2:21: access_log_format: unknown value \"xml\", expected one of text, json")),
        (2, r#"access_log = "logs/access.log""#, e("2:14: access_log: cannot open /nonexistent-sluice-test/logs/access.log for appending: No such file or directory (os error 2)")),
        (2, r#"shutdown_grace_period = "2d""#, format!(r#"2:25: shutdown_grace_period: invalid duration "2d", {DURATION_FORMAT}"#)),
        (2, r#"shutdown_grace_period = "25h""#, e(r#"2:25: shutdown_grace_period: duration "25h" is out of range, expected 0ms to 24h"#)),
        // Addresses.
        (2, r#"metrics_address = "127.0.0.1:8080""#, e("2:19: metrics_address: 127.0.0.1:8080 is already used by listeners[0], expected an address of its own")),
        (6, r#"address = "localhost:8080""#, e(r#"6:11: listeners[0].address: invalid socket address "localhost:8080", expected IP:PORT like 127.0.0.1:8080 or [::1]:8080"#)),
        (6, r#"address = "127.0.0.1""#, e(r#"6:11: listeners[0].address: invalid socket address "127.0.0.1", expected IP:PORT like 127.0.0.1:8080 or [::1]:8080"#)),
        (6, r#"address = "127.0.0.1:0""#, e(r#"6:11: listeners[0].address: port 0 in "127.0.0.1:0" is not allowed, expected a fixed port like 127.0.0.1:8080"#)),
        (6, "", e(r#"4:1: listeners[0]: missing key "address""#)),
        (10, r#"address = "127.0.0.1:8080""#, e("10:11: listeners[1].address: duplicate listener address 127.0.0.1:8080, already used by listeners[0]")),
        (15, r#"frontends = [ { address = "127.0.0.1:9999" } ]"#, e("15:27: clusters.demo.frontends[0].address: no listener on 127.0.0.1:9999, expected the address of a listener: 127.0.0.1:8080, 127.0.0.1:5432")),
        (15, r#"frontends = [ { address = "127.0.0.1:5432" } ]"#, e("15:27: clusters.demo.frontends[0].address: listener 127.0.0.1:5432 (listeners[1]) is tcp but cluster demo is http, expected the address of an http listener")),
        (23, r#"frontends = [ { address = "127.0.0.1:8080" } ]"#, e("23:27: clusters.db.frontends[0].address: listener 127.0.0.1:8080 (listeners[0]) is http but cluster db is tcp, expected the address of a tcp listener")),
        (18, r#"  { address = "127.0.0.1:8081" },"#, e("18:15: clusters.demo.backends[1].address: duplicate backend address 127.0.0.1:8081 in cluster demo, already used by clusters.demo.backends[0]")),
        (18, r#"  { address = "127.0.0.1:8082", id = "127.0.0.1:8081" },"#, e(r#"18:38: clusters.demo.backends[1].id: duplicate backend id "127.0.0.1:8081" in cluster demo, already used by clusters.demo.backends[0]"#)),
        (18, r#"  { address = "127.0.0.1:8082", sticky_id = "127.0.0.1:8081" },"#, e(r#"18:45: clusters.demo.backends[1].sticky_id: duplicate sticky_id "127.0.0.1:8081" in cluster demo, already used by clusters.demo.backends[0]"#)),
        // Timeouts and durations.
        (6, "address = \"127.0.0.1:8080\"\nfront_timeout = \"0s\"", e(r#"7:17: listeners[0].front_timeout: duration "0ms" is out of range, expected 1ms to 24h"#)),
        (6, "address = \"127.0.0.1:8080\"\nback_timeout = \"2h\"\nconnect_timeout = \"25h\"", e(r#"8:19: listeners[0].connect_timeout: duration "25h" is out of range, expected 1ms to 24h"#)),
        (6, "address = \"127.0.0.1:8080\"\nrequest_timeout = \"5 s\"", format!(r#"7:19: listeners[0].request_timeout: invalid duration "5 s", {DURATION_FORMAT}"#)),
        (6, "address = \"127.0.0.1:8080\"\nback_timeout = \"abc\"", format!(r#"7:16: listeners[0].back_timeout: invalid duration "abc", {DURATION_FORMAT}"#)),
        (6, "address = \"127.0.0.1:8080\"\nback_timeout = \"-1s\"", format!(r#"7:16: listeners[0].back_timeout: invalid duration "-1s", {DURATION_FORMAT}"#)),
        (6, "address = \"127.0.0.1:8080\"\nfront_timeout = 60", e(r#"7:17: listeners[0].front_timeout: found an integer, expected a duration string like "5s""#)),
        (10, "address = \"127.0.0.1:5432\"\nexpect_proxy = \"yes\"", e("11:16: listeners[1].expect_proxy: found a string, expected true or false")),
        // Request body limits.
        (6, "address = \"127.0.0.1:8080\"\nmax_request_body = \"10mb\"", format!(r#"7:20: listeners[0].max_request_body: invalid size "10mb", {SIZE_FORMAT}"#)),
        (6, "address = \"127.0.0.1:8080\"\nmax_request_body = \"1.5m\"", format!(r#"7:20: listeners[0].max_request_body: invalid size "1.5m", {SIZE_FORMAT}"#)),
        (6, "address = \"127.0.0.1:8080\"\nmax_request_body = \"\"", format!(r#"7:20: listeners[0].max_request_body: invalid size "", {SIZE_FORMAT}"#)),
        (6, "address = \"127.0.0.1:8080\"\nmax_request_body = \"99999999999g\"", e(r#"7:20: listeners[0].max_request_body: size "99999999999g" is too large"#)),
        (6, "address = \"127.0.0.1:8080\"\nmax_request_body = -1", e(r#"7:20: listeners[0].max_request_body: -1 is out of range, expected a size like "10m" or a whole number of bytes"#)),
        (6, "address = \"127.0.0.1:8080\"\nmax_request_body = true", e(r#"7:20: listeners[0].max_request_body: found a boolean, expected a size like "10m" or a whole number of bytes"#)),
        (10, "address = \"127.0.0.1:5432\"\nmax_request_body = \"1m\"", e("11:1: listeners[1].max_request_body: unknown key, expected one of protocol, address, front_timeout, back_timeout, connect_timeout, expect_proxy, tls, min_tls_version, cipher_suites, alpn, strict_sni")),
        // Backends.
        (17, r#"  { address = "127.0.0.1:8081", weight = 1001 },"#, e("17:42: clusters.demo.backends[0].weight: 1001 is out of range, expected a whole number from 0 to 1000")),
        (17, r#"  { address = "127.0.0.1:8081", weight = -1 },"#, e("17:42: clusters.demo.backends[0].weight: -1 is out of range, expected a whole number from 0 to 1000")),
        (17, r#"  { weight = 100 },"#, e(r#"17:3: clusters.demo.backends[0]: missing key "address""#)),
        (17, r#"  { address = "127.0.0.1:8081", id = "web 1" },"#, e(r#"17:38: clusters.demo.backends[0].id: invalid id "web 1", expected 1 to 128 visible ASCII characters other than " , ; \"#)),
        (17, r#"  { address = "127.0.0.1:8081", state = "down" },"#, e(r#"17:41: clusters.demo.backends[0].state: unknown value "down", expected one of ready, drain, maint"#)),
        (22, "protocol = \"tcp\"\nhealth_check = { uri = \"/health\" }", e(r#"23:24: clusters.db.health_check.uri: an HTTP health check (uri "/health") cannot run on a tcp cluster, expected no uri: a tcp cluster's check is a TCP connect"#)),
        (22, "protocol = \"tcp\"\nhealth_check = { interval = \"1s\", expected_status = \"200\" }", e("23:35: clusters.db.health_check.expected_status: unknown key, expected one of uri, interval, timeout, healthy_threshold, unhealthy_threshold")),
        (24, r#"backends = { address = "127.0.0.1:15432" }"#, e("24:12: clusters.db.backends: found a table, expected an array")),
        // Health checks.
        (14, r#"health_check = { uri = "/health", healthy_threshold = 0 }"#, e("14:55: clusters.demo.health_check.healthy_threshold: 0 is out of range, expected a whole number from 1 to 100")),
        (14, r#"health_check = { uri = "/health", unhealthy_threshold = 0 }"#, e("14:57: clusters.demo.health_check.unhealthy_threshold: 0 is out of range, expected a whole number from 1 to 100")),
        (14, r#"health_check = { uri = "/health", interval = "0s" }"#, e(r#"14:46: clusters.demo.health_check.interval: duration "0ms" is out of range, expected 1ms to 24h"#)),
        (14, r#"health_check = { uri = "/health", timeout = "10s" }"#, e("14:45: clusters.demo.health_check.timeout: timeout 10s is longer than interval 5s, expected at most the interval")),
        (14, r#"health_check = { interval = "5s" }"#, e(r#"14:16: clusters.demo.health_check: missing key "uri""#)),
        (14, r#"health_check = { uri = "health" }"#, e(r#"14:24: clusters.demo.health_check.uri: invalid uri "health", expected a path starting with / without spaces, like /health"#)),
        (14, r#"health_check = { uri = "/", expected_status = "399-200" }"#, e(r#"14:47: clusters.demo.health_check.expected_status: invalid status range "399-200", expected a status or an ordered range between 100 and 599, like "200-399" or "200""#)),
        (14, r#"health_check = { uri = "/", host = "*.example.com" }"#, e(r#"14:36: clusters.demo.health_check.host: invalid host "*.example.com", expected a host name like api.example.com"#)),
        // Frontends.
        (15, r#"frontends = [ { address = "127.0.0.1:8080", hostname = "exa mple.com" } ]"#, e(r#"15:56: clusters.demo.frontends[0].hostname: invalid hostname "exa mple.com", expected an exact name like api.example.com, a wildcard like *.example.com, or *"#)),
        (15, r#"frontends = [ { address = "127.0.0.1:8080", path = "(", path_type = "regex" } ]"#, e(r#"15:52: clusters.demo.frontends[0].path: invalid regex "(": unclosed group"#)),
        (15, r#"frontends = [ { address = "127.0.0.1:8080", path = "api" } ]"#, e(r#"15:52: clusters.demo.frontends[0].path: invalid path "api", expected a path starting with / without spaces, like /api/"#)),
        (15, r#"frontends = [ { address = "127.0.0.1:8080", path_type = "glob" } ]"#, e(r#"15:57: clusters.demo.frontends[0].path_type: unknown value "glob", expected one of prefix, exact, regex"#)),
        (15, r#"frontends = [ { address = "127.0.0.1:8080", method = "get" } ]"#, e(r#"15:54: clusters.demo.frontends[0].method: invalid method "get", expected an upper-case HTTP method like GET or POST"#)),
        (15, r#"frontends = [ { address = "127.0.0.1:8080" }, { address = "127.0.0.1:8080", path = "/" } ]"#, e("15:47: clusters.demo.frontends[1]: duplicate route, already defined by clusters.demo.frontends[0] (same address, hostname, path, path_type and method)")),
        (21, "[clusters.web]\nfrontends = [ { address = \"127.0.0.1:8080\", hostname = \"*\", path = \"/\" } ]\n\n[clusters.db]", e("22:15: clusters.web.frontends[0]: duplicate route, already defined by clusters.demo.frontends[0] (same address, hostname, path, path_type and method)")),
        // Clusters.
        (21, r#"[clusters."d b"]"#, e(r#"21:11: clusters."d b": invalid cluster name "d b", expected 1 to 128 letters, digits, '.', '_' or '-'"#)),
        (14, r#"sticky_cookie = "a=b""#, e(r#"14:17: clusters.demo.sticky_cookie: invalid cookie name "a=b", expected letters, digits and !#$%&'*+-.^_`|~ like SLUICEID"#)),
        (14, "max_connect_retries = 101", e("14:23: clusters.demo.max_connect_retries: 101 is out of range, expected a whole number from 0 to 100")),
        (14, "sticky_session = 1", e("14:18: clusters.demo.sticky_session: found an integer, expected true or false")),
        // Backends given by host name and the resolver's settings.
        (17, r#"  { address = "api.internal" },"#, e(r#"17:15: clusters.demo.backends[0].address: invalid address "api.internal", expected IP:PORT like 127.0.0.1:8080 or [::1]:8080, or HOST:PORT like api.internal:8080"#)),
        (17, r#"  { address = "127.0.0.1:8081", resolve_later = true },"#, e("17:49: clusters.demo.backends[0].resolve_later: resolve_later applies to backends given by host name, expected an address like api.internal:8080")),
        (17, r#"  { address = "api.internal:80", id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },"#, e(r#"17:39: clusters.demo.backends[0].id: id "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is 81 bytes long, expected at most 80 for a backend given by host name (each of its addresses appends @IP:PORT)"#)),
        (2, "dns_refresh = \"10ms\"", e(r#"2:15: dns_refresh: duration "10ms" is out of range, expected 100ms to 24h"#)),
        (2, "dns_servers = []", e(r#"2:15: dns_servers: empty list, expected DNS servers like ["127.0.0.1:53"], or no key for the system's resolvers"#)),
        // Answers.
        (14, r#"answers = { 500 = "answers/500.http" }"#, e(r#"14:13: clusters.demo.answers.500: unknown status "500", expected one of 400, 403, 404, 408, 413, 431, 502, 503, 504"#)),
        (14, r#"answers = { 503 = "answers/503.http" }"#, format!("14:19: clusters.demo.answers.503: cannot read {BASE_DIR}/answers/503.http: No such file or directory (os error 2)")),
        (6, "address = \"127.0.0.1:8080\"\nanswers = { 404 = \"\" }", e("7:19: listeners[0].answers.404: empty path, expected the path of a file holding an HTTP response")),
        // Syntax.
        (2, "worker_count = ", e("2:16: invalid TOML: string values must be quoted, expected literal string")),
        (2, "worker_count = 2\nworker_count = 3", e("3:1: invalid TOML: duplicate key `worker_count`")),
    ]
}

#[test]
fn each_invalid_value_is_reported_where_it_was_written() {
    let mut failures = Vec::new();
    for (line, replacement, expected) in cases() {
        let text = base_with(line, replacement);
        let actual = error_of(&text);
        let expected = format!("sluice.toml:{expected}");
        if actual != expected {
            failures.push(format!(
                "line {line} = {replacement:?}\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_documented_unknown_key_example() {
    let text = "[[listeners]]\nprotocol = \"http\"\nadress = \"127.0.0.1:8080\"\n";
    assert_eq!(
        error_of(text),
        format!(
            "sluice.toml:3:1: listeners[0].adress: unknown key, expected one of {LISTENER_KEYS}"
        )
    );
}

#[test]
fn an_answer_must_be_a_whole_http_response() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("503.html"), "<h1>busy</h1>").expect("answer file");
    let text = base_with(14, r#"answers = { 503 = "503.html" }"#);
    let error = Config::parse(&text, "sluice.toml", dir.path()).expect_err("not a response");
    assert_eq!(
        error.to_string(),
        format!(
            "sluice.toml:14:19: clusters.demo.answers.503: {} does not start with a status line, \
             expected a whole HTTP response starting like \"HTTP/1.1 503 Service Unavailable\"",
            dir.path().join("503.html").display()
        )
    );
}

#[test]
fn a_command_socket_path_must_fit_a_unix_address() {
    let long = format!("command_socket = \"/{}\"", "s".repeat(120));
    assert_eq!(
        error_of(&base_with(1, &long)),
        format!(
            "sluice.toml:1:18: command_socket: socket path /{} is 121 bytes long, \
             expected at most 107 (the limit of Unix socket addresses)",
            "s".repeat(120)
        )
    );
}

#[test]
fn errors_expose_position_and_key() {
    let error = parse(&base_with(2, "worker_count = 0")).expect_err("invalid");
    assert_eq!(error.position(), Some((2, 16)));
    assert_eq!(error.key(), Some("worker_count"));
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = base_with(14, r#"load_balancing = "round_robin" # é"#)
        .replace("[clusters.db]", "# ééé\n[clusters.db]");
    assert!(parse(&text).is_ok());
    let text = base_with(2, r#"log_level = "é" "#).replace("log_level = \"é\"", "\"é\" = 1");
    assert_eq!(
        error_of(&text),
        "sluice.toml:2:1: \"é\": unknown key, expected one of command_socket, worker_count, log_level, access_log, access_log_format, max_connections, buffer_size, metrics_address, shutdown_grace_period, dns_servers, dns_refresh, listeners, clusters, certificates, etcd"
    );
    let text = base_with(2, r#"worker_count = 0 "#).replace(
        "command_socket = \"sluice.sock\"",
        "command_socket = \"é.sock\"",
    );
    assert_eq!(
        error_of(&text),
        "sluice.toml:2:16: worker_count: 0 is out of range, expected a whole number from 1 to 256"
    );
}
