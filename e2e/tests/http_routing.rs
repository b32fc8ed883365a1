//! HTTP routing through the real worker: hosts (exact, wildcard, `*`, with a
//! port, upper case), paths (prefix, exact, regex), methods, 404 and 403,
//! sticky sessions, custom answers and the forwarding headers.

mod common;

use common::{mock, Proxy, HOST};
use sluice_command::proto::{self, PathRuleKind};
use sluice_e2e::{HttpConn, MockHttpServer};

fn get(proxy: &Proxy, host: &str, path: &str) -> sluice_e2e::HttpResponse {
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    conn.get(host, path).expect("response")
}

fn backend_of(response: &sluice_e2e::HttpResponse) -> String {
    response.header("X-Backend").unwrap_or("").to_owned()
}

/// Clusters a..f each with their own mock, and a route table using every
/// rule kind.
fn routed() -> (Proxy, Vec<MockHttpServer>) {
    let mocks: Vec<MockHttpServer> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|n| mock(n))
        .collect();
    let mut proxy = Proxy::with_listener(|_| {});
    for m in &mocks {
        proxy.cluster(m.name(), &[m.addr()], |_| {});
    }
    proxy.route("exact.test", PathRuleKind::Prefix, "/", None, Some("a"));
    proxy.route("*.wild.test", PathRuleKind::Prefix, "/", None, Some("b"));
    proxy.route("paths.test", PathRuleKind::Exact, "/exact", None, Some("c"));
    proxy.route(
        "paths.test",
        PathRuleKind::Regex,
        "^/re/[0-9]+$",
        None,
        Some("d"),
    );
    proxy.route(
        "paths.test",
        PathRuleKind::Prefix,
        "/api",
        Some("POST"),
        Some("e"),
    );
    proxy.route("paths.test", PathRuleKind::Prefix, "/api", None, Some("c"));
    proxy.route("paths.test", PathRuleKind::Prefix, "/private", None, None);
    proxy.route("*", PathRuleKind::Prefix, "/catchall", None, Some("f"));
    (proxy, mocks)
}

#[test]
fn hosts_exact_wildcard_and_any() {
    let (proxy, _mocks) = routed();
    assert_eq!(backend_of(&get(&proxy, "exact.test", "/x")), "a");
    assert_eq!(backend_of(&get(&proxy, "EXACT.Test", "/x")), "a");
    assert_eq!(backend_of(&get(&proxy, "exact.test:8080", "/x")), "a");
    assert_eq!(backend_of(&get(&proxy, "one.wild.test", "/")), "b");
    assert_eq!(backend_of(&get(&proxy, "One.Wild.Test:81", "/")), "b");
    assert_eq!(
        backend_of(&get(&proxy, "anything.else", "/catchall/1")),
        "f"
    );
    let missing = get(&proxy, "anything.else", "/nothing");
    assert_eq!(missing.status, 404);
    assert!(missing.closes_connection());
}

#[test]
fn paths_exact_regex_prefix_and_methods() {
    let (proxy, mocks) = routed();
    assert_eq!(backend_of(&get(&proxy, "paths.test", "/exact")), "c");
    assert_eq!(get(&proxy, "paths.test", "/exact/more").status, 404);
    assert_eq!(backend_of(&get(&proxy, "paths.test", "/exact?q=1")), "c");
    assert_eq!(backend_of(&get(&proxy, "paths.test", "/re/42")), "d");
    assert_eq!(get(&proxy, "paths.test", "/re/4x").status, 404);
    assert_eq!(backend_of(&get(&proxy, "paths.test", "/api/v1")), "c");
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let post = conn
        .request(b"POST /api/v1 HTTP/1.1\r\nHost: paths.test\r\nContent-Length: 2\r\n\r\nhi")
        .expect("post");
    assert_eq!(backend_of(&post), "e");
    assert_eq!(mocks[4].requests_seen()[0].body, b"hi");
    let denied = get(&proxy, "paths.test", "/private/x");
    assert_eq!(denied.status, 403);
    for m in &mocks {
        assert!(m
            .requests_seen()
            .iter()
            .all(|r| !r.path.starts_with("/private")));
    }
}

#[test]
fn forwarding_headers_are_added_and_host_kept() {
    let backend = mock("app");
    let proxy = Proxy::to(&[backend.addr()]);
    let mut conn = HttpConn::connect(proxy.listen).expect("connect");
    let response = conn
        .request(
            format!(
                "GET /h HTTP/1.1\r\nHost: {HOST}:9999\r\nX-Forwarded-For: 203.0.113.9\r\n\
                 Connection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
                 Proxy-Connection: keep-alive\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("response");
    assert_eq!(response.status, 200);
    let seen = &backend.requests_seen()[0];
    assert_eq!(seen.header("Host"), Some("example.com:9999"));
    let xff: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(xff.join(", "), "203.0.113.9, 127.0.0.1", "{seen:?}");
    assert_eq!(seen.header("X-Forwarded-Proto"), Some("http"));
    assert_eq!(
        seen.header("X-Forwarded-Port"),
        Some(proxy.listen.port().to_string().as_str())
    );
    let forwarded = seen.header("Forwarded").expect("Forwarded");
    assert!(
        forwarded.contains("for=127.0.0.1") || forwarded.contains("for=\"127.0.0.1"),
        "{forwarded}"
    );
    assert!(forwarded.contains("proto=http"), "{forwarded}");
    assert!(seen
        .header("Sluice-Request-Id")
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(seen.header("X-Kept"), Some("yes"));
    for hop in ["X-Secret", "Keep-Alive", "Proxy-Connection", "TE"] {
        assert_eq!(seen.header(hop), None, "{hop} was forwarded: {seen:?}");
    }
    // The response's hop-by-hop headers are not forwarded either.
    backend.set_default_handler(|_| {
        sluice_e2e::MockResponse::new(200, "r")
            .header("Connection", "X-Internal")
            .header("X-Internal", "secret")
            .header("Keep-Alive", "timeout=3")
    });
    let response = conn
        .request(
            format!("GET /r HTTP/1.1\r\nHost: {HOST}\r\nSluice-Request-Id: mine-42\r\n\r\n")
                .as_bytes(),
        )
        .expect("response");
    assert_eq!(response.body, b"r");
    assert_eq!(response.header("X-Internal"), None, "{response:?}");
    assert_eq!(response.header("Keep-Alive"), None, "{response:?}");
    let seen = &backend.requests_seen()[1];
    let ids: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sluice-request-id"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ids, ["mine-42"]);
}

#[test]
fn sticky_sessions_pin_a_client_to_its_backend() {
    let backends = [mock("s1"), mock("s2"), mock("s3")];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr()).collect();
    let mut proxy = Proxy::with_listener(|_| {});
    proxy.cluster("app", &addrs, |c| c.sticky_session = true);
    proxy.route(HOST, PathRuleKind::Prefix, "/", None, Some("app"));
    let first = get(&proxy, HOST, "/");
    let cookie = first
        .header("Set-Cookie")
        .expect("the response sets the sticky cookie");
    assert!(cookie.starts_with("SLUICEID="), "{cookie}");
    let value = cookie["SLUICEID=".len()..]
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let pinned = backend_of(&first);
    for _ in 0..6 {
        let mut conn = HttpConn::connect(proxy.listen).expect("connect");
        let response = conn
            .request(
                format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nCookie: a=b; SLUICEID={value}\r\n\r\n")
                    .as_bytes(),
            )
            .expect("response");
        assert_eq!(backend_of(&response), pinned);
        assert_eq!(response.header("Set-Cookie"), None, "cookie already right");
    }
    // Without the cookie, round robin spreads the clients.
    let spread: std::collections::HashSet<String> = (0..6)
        .map(|_| backend_of(&get(&proxy, HOST, "/")))
        .collect();
    assert!(spread.len() > 1, "{spread:?}");
}

#[test]
fn custom_answers_per_listener_and_per_cluster() {
    let mut proxy = Proxy::with_listener(|l| {
        l.answers.push(proto::CustomAnswer {
            status: 404,
            content: "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nConnection: close\r\n\r\nlistener's 404".into(),
        });
    });
    // A cluster without backends: 503 with its own answer.
    proxy.cluster("empty", &[], |c| {
        c.answers.push(proto::CustomAnswer {
            status: 503,
            content: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 13\r\nConnection: close\r\n\r\ncluster's 503".into(),
        });
    });
    proxy.route(HOST, PathRuleKind::Prefix, "/", None, Some("empty"));
    let missing = get(&proxy, "nowhere.test", "/");
    assert_eq!(
        (missing.status, missing.body_text().as_str()),
        (404, "listener's 404")
    );
    let unavailable = get(&proxy, HOST, "/");
    assert_eq!(
        (unavailable.status, unavailable.body_text().as_str()),
        (503, "cluster's 503")
    );
}
