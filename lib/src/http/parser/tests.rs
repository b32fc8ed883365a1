use super::*;

fn parse(raw: &[u8]) -> Result<Parsed<RequestHead>, HeadError> {
    let mut headers = Vec::new();
    parse_request(raw, &RequestOptions::default(), &mut headers)
}

fn complete(raw: &[u8]) -> RequestHead {
    match parse(raw) {
        Ok(Parsed::Complete(head)) => head,
        other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn status_of(raw: &[u8]) -> u16 {
    match parse(raw) {
        Err(e) => e.status(),
        other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(raw)),
    }
}

#[test]
fn simple_get() {
    let raw = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\nextra";
    let head = complete(raw);
    assert_eq!(head.len, raw.len() - 5);
    assert_eq!(head.method.of(raw), b"GET");
    assert_eq!(head.target.of(raw), b"/a/b?x=1");
    assert_eq!(head.path.of(raw), b"/a/b");
    assert_eq!(head.host.map(|h| h.of(raw)), Some(&b"example.com"[..]));
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.framing, BodyFraming::None);
    assert!(head.keep_alive);
    assert!(!head.expect_continue && !head.upgrade && !head.is_head);
}

#[test]
fn partial_heads() {
    let raw = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
    for cut in 0..raw.len() {
        assert_eq!(parse(&raw[..cut]), Ok(Parsed::Partial), "cut at {cut}");
    }
    assert_eq!(complete(raw).framing, BodyFraming::ContentLength(3));
}

#[test]
fn accepted_framings() {
    let cases: &[(&[u8], BodyFraming)] = &[
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n",
            BodyFraming::ContentLength(10),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            BodyFraming::None,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            BodyFraming::ContentLength(5),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            BodyFraming::ContentLength(5),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
            BodyFraming::ContentLength(7),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            BodyFraming::Chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
            BodyFraming::Chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t chunked \t\r\n\r\n",
            BodyFraming::Chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n",
            BodyFraming::Chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
            BodyFraming::ContentLength(u64::MAX),
        ),
        (b"GET / HTTP/1.0\r\n\r\n", BodyFraming::None),
    ];
    for (raw, framing) in cases {
        assert_eq!(
            complete(raw).framing,
            *framing,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn refused_requests_and_their_status() {
    let cases: &[(&[u8], u16)] = &[
        // smuggling vectors
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501),
        // Sluice does not decode gzip: a backend that only knows a bare
        // `chunked` would read these chunks as the next request.
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        // RFC 9112 §3.2: no request-target form carries a fragment.
        (b"GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET http://a/#f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
        (b"GET / HTTP/1.1\n\n", 400),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        // Host
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        // request line
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
        (b"GET / FOO\r\nHost: a\r\n\r\n", 400),
        // a space inside the target is not a version problem
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a b HTTP/2.0\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/2.1\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
    ];
    for (raw, status) in cases {
        assert_eq!(
            status_of(raw),
            *status,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn later_minor_version_is_read_as_http11() {
    for raw in [
        &b"GET /x HTTP/1.2\r\nHost: a\r\n\r\n"[..],
        b"POST /x HTTP/1.9\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    ] {
        let head = complete(raw);
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.target.of(raw), b"/x");
        assert_eq!(head.host.map(|h| h.of(raw)), Some(&b"a"[..]));
        for cut in 0..head.len {
            assert_eq!(parse(&raw[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
    }
    let raw = b"HTTP/1.3 201 Made\r\nContent-Length: 0\r\n\r\n";
    let Ok(Parsed::Complete(head)) = response(raw, false) else {
        panic!("HTTP/1.3 response refused")
    };
    assert_eq!((head.version, head.status), (Version::Http11, 201));
    assert_eq!(head.reason.of(raw), b"Made");
}

#[test]
fn oversized_head_is_414_when_the_request_line_does_not_fit() {
    let long_line = format!("GET /{}", "a".repeat(100));
    assert_eq!(oversized_request(long_line.as_bytes()).status(), 414);
    assert_eq!(
        oversized_request(format!("\r\n{long_line}").as_bytes()).status(),
        414
    );
    let long_field = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(100));
    assert_eq!(oversized_request(long_field.as_bytes()).status(), 431);
}

#[test]
fn too_many_headers_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    assert_eq!(status_of(&raw), 431);
    assert_eq!(HeadError::TooLarge.status(), 431);
}

#[test]
fn connection_semantics() {
    let cases: &[(&[u8], bool, bool)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n",
            false,
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false, false),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            true,
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            true,
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
            true,
            false,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            false,
            false,
        ),
    ];
    for (raw, keep_alive, upgrade) in cases {
        let head = complete(raw);
        assert_eq!(
            (head.keep_alive, head.upgrade),
            (*keep_alive, *upgrade),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn expect_continue_and_head() {
    let raw = b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
    assert!(complete(raw).expect_continue);
    assert!(!complete(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    assert!(complete(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").is_head);
}

#[test]
fn absolute_form_routes_on_its_authority() {
    let raw = b"GET http://Example.com:81/p/q?x HTTP/1.1\r\nHost: other\r\n\r\n";
    let head = complete(raw);
    assert_eq!(head.host.map(|h| h.of(raw)), Some(&b"Example.com:81"[..]));
    assert_eq!(head.path.of(raw), b"/p/q");
    let raw = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert!(complete(raw).path.is_empty());
}

#[test]
fn sticky_cookie_and_request_id() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; SLUICEID=back-2 ;c=3\r\nSluice-Request-Id: abc\r\n\r\n";
    let mut headers = Vec::new();
    let options = RequestOptions {
        sticky_cookie: Some(b"SLUICEID"),
    };
    let Ok(Parsed::Complete(head)) = parse_request(raw, &options, &mut headers) else {
        panic!("not parsed");
    };
    assert_eq!(head.sticky.map(|s| s.of(raw)), Some(&b"back-2"[..]));
    assert_eq!(head.request_id.map(|s| s.of(raw)), Some(&b"abc"[..]));
    assert_eq!(headers.len(), 3);
    let options = RequestOptions {
        sticky_cookie: Some(b"SLUICE"),
    };
    let Ok(Parsed::Complete(head)) = parse_request(raw, &options, &mut headers) else {
        panic!("not parsed");
    };
    assert_eq!(head.sticky, None);
}

#[test]
fn connection_listing() {
    let raw =
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nConnection: Foo\r\n\r\n";
    let mut headers = Vec::new();
    parse_request(raw, &RequestOptions::default(), &mut headers).unwrap();
    assert!(listed_in_connection(raw, &headers, b"x-secret"));
    assert!(listed_in_connection(raw, &headers, b"foo"));
    assert!(!listed_in_connection(raw, &headers, b"host"));
}

fn response(raw: &[u8], head_request: bool) -> Result<Parsed<ResponseHead>, HeadError> {
    parse_response(raw, head_request, &mut Vec::new())
}

#[test]
fn response_framing() {
    let cases: &[(&[u8], bool, BodyFraming, bool)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, BodyFraming::ContentLength(5), true),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, BodyFraming::None, true),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyFraming::Chunked, true),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false, BodyFraming::Chunked, false),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, BodyFraming::UntilClose, false),
        (b"HTTP/1.1 200 OK\r\n\r\n", false, BodyFraming::UntilClose, false),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, BodyFraming::None, true),
        (b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyFraming::None, true),
        (b"HTTP/1.1 100 Continue\r\n\r\n", false, BodyFraming::None, true),
        (b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false, BodyFraming::None, true),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, BodyFraming::ContentLength(0), false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, BodyFraming::ContentLength(0), false),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, BodyFraming::ContentLength(0), true),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n", false, BodyFraming::ContentLength(2), true),
        // RFC 9112 §6.1: decoded, then the connection is closed.
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyFraming::Chunked, false),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyFraming::Chunked, false),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, BodyFraming::Chunked, true),
        // RFC 9110 §2.5: a later minor version is read as HTTP/1.1.
        (b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\n", false, BodyFraming::ContentLength(2), true),
    ];
    for (raw, head_request, framing, keep_alive) in cases {
        let Ok(Parsed::Complete(head)) = response(raw, *head_request) else {
            panic!("{:?} not parsed", String::from_utf8_lossy(raw));
        };
        assert_eq!(
            (head.framing, head.keep_alive),
            (*framing, *keep_alive),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn response_details_and_errors() {
    let raw = b"HTTP/1.1 404 Not Here\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n";
    let Ok(Parsed::Complete(head)) = response(raw, false) else {
        panic!()
    };
    assert_eq!((head.status, head.reason.of(raw)), (404, &b"Not Here"[..]));
    assert!(head.drop_content_length);
    assert!(!head.is_interim());
    assert_eq!(
        response(b"HTTP/1.1 200 OK\r\nContent-Le", false),
        Ok(Parsed::Partial)
    );
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"FOO\r\n\r\n",
    ] {
        assert!(
            response(raw, false).is_err(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9-]{0,12}"
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut headers = Vec::new();
            let options = RequestOptions { sticky_cookie: Some(b"SLUICEID") };
            for cut in [0, bytes.len() / 3, bytes.len() / 2, bytes.len()] {
                let _ = parse_request(&bytes[..cut], &options, &mut headers);
                let _ = parse_response(&bytes[..cut], false, &mut headers);
            }
        }

        #[test]
        fn valid_request_parses_the_same_whatever_arrived_first(
            method in "(GET|POST|PUT|DELETE|PATCH)",
            path in "/[a-z0-9/._-]{0,30}",
            host in "[a-z]{1,10}(\\.[a-z]{1,10}){0,2}",
            fields in proptest::collection::vec((token(), "[ -~]{0,20}"), 0..8),
            length in proptest::option::of(0u64..100_000),
            cut in 0usize..400,
        ) {
            let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
            for (name, value) in &fields {
                let lower = name.to_ascii_lowercase();
                if ["host", "content-length", "transfer-encoding", "connection"].contains(&lower.as_str()) {
                    continue;
                }
                raw.push_str(&format!("{name}: {}\r\n", value.trim()));
            }
            if let Some(length) = length {
                raw.push_str(&format!("Content-Length: {length}\r\n"));
            }
            raw.push_str("\r\n");
            let raw = raw.as_bytes();
            let whole = complete(raw);
            prop_assert_eq!(whole.len, raw.len());
            let expected = match length {
                Some(0) | None => BodyFraming::None,
                Some(n) => BodyFraming::ContentLength(n),
            };
            prop_assert_eq!(whole.framing, expected);
            prop_assert_eq!(whole.path.of(raw), path.as_bytes());
            let cut = cut.min(raw.len());
            if cut < raw.len() {
                prop_assert_eq!(parse(&raw[..cut]), Ok(Parsed::Partial));
            }
        }
    }
}

#[test]
fn the_first_user_agent_is_kept_for_the_log() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nuser-agent: curl/8.5.0\r\nUser-Agent: other\r\n\r\n";
    let head = complete(raw);
    assert_eq!(head.user_agent.map(|s| s.of(raw)), Some(&b"curl/8.5.0"[..]));
    assert_eq!(
        complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").user_agent,
        None
    );
}
