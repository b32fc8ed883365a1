use super::*;
use sluice_command::proto::PathRule;

fn frontend(
    host: &str,
    kind: PathRuleKind,
    path: &str,
    method: Option<&str>,
    cluster: Option<&str>,
) -> HttpFrontend {
    HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: "127.0.0.1:80".to_owned(),
        hostname: host.to_owned(),
        path: PathRule {
            kind: kind as i32,
            value: path.to_owned(),
        },
        method: method.map(str::to_owned),
        cluster_id: cluster.map(str::to_owned),
    }
}

fn router() -> Router {
    use PathRuleKind::*;
    let mut router = Router::new();
    let frontends = [
        frontend("example.com", Prefix, "/", None, Some("root")),
        frontend("example.com", Prefix, "/api", None, Some("api")),
        frontend(
            "example.com",
            Prefix,
            "/api",
            Some("POST"),
            Some("api-post"),
        ),
        frontend("example.com", Prefix, "/api/v2", None, Some("api-v2")),
        frontend("example.com", Exact, "/api/health", None, Some("health")),
        frontend("example.com", Exact, "/private", None, None),
        frontend("example.com", Regex, "/img/[0-9]+", None, Some("img")),
        frontend("example.com", Regex, "/img/.*", None, Some("img-any")),
        frontend("*.example.com", Prefix, "/", None, Some("wild")),
        frontend("*.eu.example.com", Prefix, "/", None, Some("wild-eu")),
        frontend(
            "*.example.com",
            Prefix,
            "/only-get",
            Some("GET"),
            Some("wild-get"),
        ),
        frontend("*", Prefix, "/", None, Some("fallback")),
        frontend("Other.ORG.", Exact, "/x", None, Some("other")),
    ];
    for f in &frontends {
        router.add(f).unwrap();
    }
    router
}

#[test]
fn most_specific_route_wins() {
    let router = router();
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("example.com", "/", "GET", Some("root")),
        ("example.com", "/index.html", "GET", Some("root")),
        ("example.com", "/api", "GET", Some("api")),
        ("example.com", "/api/users", "GET", Some("api")),
        ("example.com", "/api/users", "POST", Some("api-post")),
        ("example.com", "/api/v2/x", "POST", Some("api-v2")),
        ("example.com", "/api/health", "POST", Some("health")),
        ("example.com", "/api/health/x", "GET", Some("api")),
        ("example.com", "/private", "GET", None),
        ("example.com", "/img/42", "GET", Some("root")),
        ("EXAMPLE.com.", "/api", "GET", Some("api")),
        ("example.com:8080", "/api", "GET", Some("api")),
        ("www.example.com", "/api", "GET", Some("wild")),
        ("a.b.example.com", "/", "GET", Some("wild")),
        ("x.eu.example.com", "/", "GET", Some("wild-eu")),
        ("eu.example.com", "/", "GET", Some("wild")),
        ("www.example.com", "/only-get/x", "GET", Some("wild-get")),
        ("www.example.com", "/only-get/x", "PUT", Some("wild")),
        ("notexample.com", "/", "GET", Some("fallback")),
        ("", "/", "GET", Some("fallback")),
        ("other.org", "/x", "GET", Some("other")),
        ("other.org", "/y", "GET", Some("fallback")),
        ("[::1]:80", "/", "GET", Some("fallback")),
    ];
    for (host, path, method, expected) in cases {
        let route = router.lookup(host.as_bytes(), path.as_bytes(), method.as_bytes());
        let expected = match expected {
            Some(cluster) => Route::Cluster((*cluster).into()),
            None => Route::Deny,
        };
        assert_eq!(route, Some(&expected), "{host} {path} {method}");
    }
}

#[test]
fn regexes_match_whole_paths_in_insertion_order() {
    use PathRuleKind::*;
    let mut router = Router::new();
    router
        .add(&frontend("a", Regex, "/img/[0-9]+", None, Some("digits")))
        .unwrap();
    router
        .add(&frontend("a", Regex, "/img/.*", None, Some("any")))
        .unwrap();
    router
        .add(&frontend("a", Regex, "/img/.*", Some("PUT"), Some("put")))
        .unwrap();
    let lookup = |path: &str, method: &str| {
        router
            .lookup(b"a", path.as_bytes(), method.as_bytes())
            .cloned()
    };
    assert_eq!(
        lookup("/img/42", "GET"),
        Some(Route::Cluster("digits".into()))
    );
    assert_eq!(lookup("/img/4a", "GET"), Some(Route::Cluster("any".into())));
    assert_eq!(lookup("/img/4a", "PUT"), Some(Route::Cluster("put".into())));
    assert_eq!(lookup("/x/img/42", "GET"), None);
}

#[test]
fn no_route_without_match() {
    let mut router = Router::new();
    router
        .add(&frontend(
            "a.com",
            PathRuleKind::Prefix,
            "/app",
            None,
            Some("c"),
        ))
        .unwrap();
    assert_eq!(router.lookup(b"a.com", b"/other", b"GET"), None);
    assert_eq!(router.lookup(b"b.com", b"/app", b"GET"), None);
    assert_eq!(router.lookup(b"a.com", b"", b"OPTIONS"), None);
}

#[test]
fn add_and_remove() {
    use PathRuleKind::*;
    let mut router = router();
    let api_post = frontend(
        "example.com",
        Prefix,
        "/api",
        Some("POST"),
        Some("api-post"),
    );
    assert!(matches!(router.add(&api_post), Err(RouterError::Duplicate)));
    router.remove(&api_post).unwrap();
    assert!(matches!(
        router.remove(&api_post),
        Err(RouterError::NotFound)
    ));
    assert_eq!(
        router.lookup(b"example.com", b"/api", b"POST"),
        Some(&Route::Cluster("api".into()))
    );
    let wrong_route = frontend("example.com", Prefix, "/api", None, Some("elsewhere"));
    assert!(matches!(
        router.remove(&wrong_route),
        Err(RouterError::NotFound)
    ));
    router
        .remove(&frontend(
            "*.eu.example.com",
            Prefix,
            "/",
            None,
            Some("wild-eu"),
        ))
        .unwrap();
    assert_eq!(
        router.lookup(b"x.eu.example.com", b"/", b"GET"),
        Some(&Route::Cluster("wild".into()))
    );
    router
        .remove(&frontend(
            "example.com",
            Regex,
            "/img/.*",
            None,
            Some("img-any"),
        ))
        .unwrap();
    router
        .remove(&frontend("other.org", Exact, "/x", None, Some("other")))
        .unwrap();
    assert!(!router.exact.contains_key(&b"other.org"[..]));
    router.add(&api_post).unwrap();
    assert_eq!(
        router.lookup(b"example.com", b"/api", b"POST"),
        Some(&Route::Cluster("api-post".into()))
    );
}

#[test]
fn invalid_frontends_change_nothing() {
    use PathRuleKind::*;
    let mut router = Router::new();
    let bad = [
        frontend("", Prefix, "/", None, Some("c")),
        frontend("a.com:80", Prefix, "/", None, Some("c")),
        frontend("a b", Prefix, "/", None, Some("c")),
        frontend("*.", Prefix, "/", None, Some("c")),
        frontend("a..b", Prefix, "/", None, Some("c")),
        frontend("new.com", Regex, "(", None, Some("c")),
    ];
    for f in &bad {
        assert!(router.add(f).is_err(), "{f:?}");
    }
    let mut bad_kind = frontend("a.com", Prefix, "/", None, Some("c"));
    bad_kind.path.kind = 42;
    assert!(matches!(
        router.add(&bad_kind),
        Err(RouterError::InvalidPathKind(42))
    ));
    assert!(router.exact.is_empty() && router.wildcards.is_empty() && router.any.is_empty());
}

#[test]
fn removing_a_frontend_drops_only_its_emptied_host_level() {
    use PathRuleKind::*;
    let mut router = Router::new();
    let first = frontend("a.test", Prefix, "/", None, Some("a"));
    let second = frontend("b.test", Prefix, "/", None, Some("b"));
    let wildcard = frontend("*.w.test", Prefix, "/", None, Some("w"));
    for added in [&first, &second, &wildcard] {
        router.add(added).expect("added");
    }
    router.remove(&first).expect("removed");
    router.remove(&wildcard).expect("removed");
    assert!(!router.exact.contains_key(b"a.test".as_slice()));
    assert!(router.wildcards.is_empty());
    assert_eq!(
        router.lookup(b"b.test", b"/", b"GET"),
        Some(&Route::Cluster("b".into()))
    );
    assert_eq!(router.lookup(b"a.test", b"/", b"GET"), None);
    // A refused add leaves no empty level behind either.
    let bad = frontend("c.test", Regex, "(", None, Some("c"));
    assert!(router.add(&bad).is_err());
    assert!(!router.exact.contains_key(b"c.test".as_slice()));
}

#[test]
fn a_host_with_one_path_and_one_method_holds_no_spare_room() {
    let mut router = Router::new();
    for host in ["one.test", "two.test", "three.test"] {
        let front = frontend(host, PathRuleKind::Prefix, "/", None, Some("c"));
        router.add(&front).unwrap();
    }
    let rules = &router.exact[b"two.test".as_slice()];
    assert_eq!(rules.prefixes.capacity(), 1);
    assert_eq!(rules.prefixes[0].1 .0.capacity(), 1);
    // A second method grows the list by one, as a second path does.
    let post = frontend(
        "two.test",
        PathRuleKind::Prefix,
        "/",
        Some("POST"),
        Some("c"),
    );
    router.add(&post).unwrap();
    let rules = &router.exact[b"two.test".as_slice()];
    assert_eq!(rules.prefixes[0].1 .0.capacity(), 2);
    assert_eq!(
        router.lookup(b"two.test", b"/", b"POST"),
        Some(&Route::Cluster("c".into()))
    );
}
