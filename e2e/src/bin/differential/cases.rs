//! The corner cases sent to every proxy: requests (RFC 9112 heads and
//! framing, smuggling classics) and scripted backend responses.

/// One case: the raw bytes a client sends and, for response cases, the raw
/// answer the backend gives to `/r/<name>`.
pub(crate) struct Case {
    /// Short unique name (also the script key of response cases).
    pub(crate) name: String,
    /// Raw client bytes (may hold pipelined requests).
    pub(crate) request: Vec<u8>,
    /// Raw backend answer, for response cases.
    pub(crate) script: Option<Vec<u8>>,
}

const H: &str = "Host: example.com\r\n";

fn req(name: &str, request: impl Into<Vec<u8>>) -> Case {
    Case {
        name: name.to_owned(),
        request: request.into(),
        script: None,
    }
}

/// A GET with these extra header lines (each ending in CRLF).
fn get_with(name: &str, headers: &str) -> Case {
    req(name, format!("GET / HTTP/1.1\r\n{H}{headers}\r\n"))
}

/// A POST with these extra header lines and this raw body.
fn post(name: &str, headers: &str, body: &str) -> Case {
    req(name, format!("POST / HTTP/1.1\r\n{H}{headers}\r\n{body}"))
}

/// A GET of `/r/<name>` answered with `script`.
fn resp(name: &str, script: impl Into<Vec<u8>>) -> Case {
    Case {
        name: name.to_owned(),
        request: format!("GET /r/{name} HTTP/1.1\r\n{H}\r\n").into_bytes(),
        script: Some(script.into()),
    }
}

/// A smuggled follow-up: a second request that must never be answered as
/// one if the first one's framing was refused.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n";

/// Every case, in print order.
pub(crate) fn all() -> Vec<Case> {
    let mut cases = targets();
    cases.extend(lines_and_fields());
    cases.extend(transfer_encoding());
    cases.extend(content_length());
    cases.extend(chunks());
    cases.extend(versions_and_methods());
    cases.extend(semantics());
    cases.extend(responses());
    cases
}

fn targets() -> Vec<Case> {
    vec![
        get_with("baseline", ""),
        req(
            "abs-form",
            format!("GET http://example.com/p HTTP/1.1\r\n{H}\r\n"),
        ),
        req(
            "abs-form-host-mismatch",
            format!("GET http://other.test/p HTTP/1.1\r\n{H}\r\n"),
        ),
        req(
            "abs-form-https",
            format!("GET https://example.com/p HTTP/1.1\r\n{H}\r\n"),
        ),
        req(
            "abs-form-no-host",
            "GET http://example.com/p HTTP/1.1\r\n\r\n",
        ),
        req(
            "abs-form-userinfo",
            format!("GET http://u:p@example.com/ HTTP/1.1\r\n{H}\r\n"),
        ),
        req(
            "abs-form-ftp",
            format!("GET ftp://example.com/ HTTP/1.1\r\n{H}\r\n"),
        ),
        req("options-star", format!("OPTIONS * HTTP/1.1\r\n{H}\r\n")),
        req("get-star", format!("GET * HTTP/1.1\r\n{H}\r\n")),
        req(
            "connect-authority",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        ),
        req(
            "get-authority-form",
            format!("GET example.com:80 HTTP/1.1\r\n{H}\r\n"),
        ),
        req("path-space", format!("GET /a b HTTP/1.1\r\n{H}\r\n")),
        req("path-pct00", format!("GET /a%00b HTTP/1.1\r\n{H}\r\n")),
        req("path-fragment", format!("GET /a#frag HTTP/1.1\r\n{H}\r\n")),
        req(
            "path-raw-utf8",
            format!("GET /caf\u{e9} HTTP/1.1\r\n{H}\r\n"),
        ),
        req("path-dotdot", format!("GET /a/../b HTTP/1.1\r\n{H}\r\n")),
        req("double-space-line", format!("GET  / HTTP/1.1\r\n{H}\r\n")),
        req("leading-crlf", format!("\r\nGET / HTTP/1.1\r\n{H}\r\n")),
        req(
            "line-8k",
            format!("GET /{} HTTP/1.1\r\n{H}\r\n", "a".repeat(8 * 1024)),
        ),
        req(
            "line-64k",
            format!("GET /{} HTTP/1.1\r\n{H}\r\n", "a".repeat(64 * 1024)),
        ),
    ]
}

fn lines_and_fields() -> Vec<Case> {
    let many = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    vec![
        get_with("header-8k", &format!("X-Big: {}\r\n", "a".repeat(8 * 1024))),
        get_with(
            "header-64k",
            &format!("X-Big: {}\r\n", "a".repeat(64 * 1024)),
        ),
        get_with("headers-99", &many(99)),
        get_with("headers-150", &many(150)),
        get_with("empty-value", "X-Empty:\r\n"),
        get_with("name-trailing-space", "X-A : b\r\n"),
        get_with("no-colon", "X-NoColon\r\n"),
        get_with("value-nul", "X-A: a\0b\r\n"),
        get_with("value-del", "X-A: a\x7fb\r\n"),
        get_with("value-tab", "X-A: a\tb\r\n"),
        get_with("value-ctl-01", "X-A: a\x01b\r\n"),
        req(
            "value-obs-text",
            [
                format!("GET / HTTP/1.1\r\n{H}X-A: a").as_bytes(),
                b"\x80\xff",
                b"b\r\n\r\n",
            ]
            .concat(),
        ),
        get_with("value-bare-cr", "X-A: a\rb\r\n"),
        get_with("name-underscore", "X_Under: 1\r\n"),
        get_with("name-bad-char", "X(A): 1\r\n"),
        get_with("obs-fold", "X-A: a\r\n b\r\n"),
        req(
            "first-header-folded",
            format!("GET / HTTP/1.1\r\n X-A: 1\r\n{H}\r\n"),
        ),
        req("bare-lf-head", "GET / HTTP/1.1\nHost: example.com\n\n"),
        req("no-host-11", "GET / HTTP/1.1\r\n\r\n"),
        req("no-host-10", "GET / HTTP/1.0\r\n\r\n"),
        req("empty-host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        req("two-hosts-same", format!("GET / HTTP/1.1\r\n{H}{H}\r\n")),
        req(
            "two-hosts-diff",
            format!("GET / HTTP/1.1\r\n{H}Host: other.test\r\n\r\n"),
        ),
        req(
            "host-userinfo",
            "GET / HTTP/1.1\r\nHost: u@example.com\r\n\r\n",
        ),
        req(
            "host-slash",
            "GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n",
        ),
        req("host-space", "GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n"),
        req(
            "host-port",
            "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        ),
        req(
            "host-bad-port",
            "GET / HTTP/1.1\r\nHost: example.com:80x\r\n\r\n",
        ),
    ]
}

fn transfer_encoding() -> Vec<Case> {
    let chunked = "5\r\nhello\r\n0\r\n\r\n";
    let te = |name: &str, header: &str| {
        post(
            name,
            &format!("{header}\r\n"),
            &format!("{chunked}{SMUGGLED}"),
        )
    };
    vec![
        te("te-chunked", "Transfer-Encoding: chunked"),
        te("te-Chunked-case", "Transfer-Encoding: Chunked"),
        te(
            "te-chunked-twice-list",
            "Transfer-Encoding: chunked , chunked",
        ),
        te("te-gzip-chunked", "Transfer-Encoding: gzip, chunked"),
        te("te-chunked-gzip", "Transfer-Encoding: chunked, gzip"),
        te("te-spaces-tabs", "Transfer-Encoding: \t chunked \t"),
        te("te-space-before-colon", "Transfer-Encoding : chunked"),
        te("te-xchunked", "Transfer-Encoding: xchunked"),
        te(
            "te-chunked-then-identity",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
        ),
        te("te-identity", "Transfer-Encoding: identity"),
        te("te-vtab", "Transfer-Encoding: \x0bchunked"),
        te(
            "te-empty-then-chunked",
            "Transfer-Encoding:\r\nTransfer-Encoding: chunked",
        ),
        te("te-chunked-param", "Transfer-Encoding: chunked;q=1"),
        te("te-quoted", "Transfer-Encoding: \"chunked\""),
        req(
            "te-http10",
            format!("POST / HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n{chunked}"),
        ),
        post(
            "cl-te",
            "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
            &format!("0\r\n\r\n{SMUGGLED}"),
        ),
        post(
            "te-cl",
            "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
            &format!("5c\r\n{}\r\n0\r\n\r\n", "x".repeat(0x5c)),
        ),
        post("te-on-get", "Transfer-Encoding: chunked\r\n", chunked),
    ]
}

fn content_length() -> Vec<Case> {
    let cl = |name: &str, value: &str| post(name, &format!("Content-Length: {value}\r\n"), "hello");
    vec![
        cl("cl-5", "5"),
        cl("cl-007", "005"),
        cl("cl-plus", "+5"),
        cl("cl-trailing-space", "5 "),
        cl("cl-list-equal", "5,5"),
        cl("cl-list-differ", "5, 6"),
        post(
            "cl-two-equal",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "hello",
        ),
        post(
            "cl-two-differ",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "hello!",
        ),
        cl("cl-2pow64", "18446744073709551616"),
        cl("cl-negative", "-1"),
        cl("cl-empty", ""),
        cl("cl-hex", "0x5"),
        cl("cl-list-empty-item", "5,"),
        req(
            "cl-on-get",
            format!("GET / HTTP/1.1\r\n{H}Content-Length: 5\r\n\r\nhello"),
        ),
        req(
            "cl-http10",
            format!("POST / HTTP/1.0\r\n{H}Content-Length: 5\r\n\r\nhello"),
        ),
        req("post-no-length", format!("POST / HTTP/1.1\r\n{H}\r\n")),
    ]
}

fn chunks() -> Vec<Case> {
    let body = |name: &str, body: &str| {
        post(
            name,
            "Transfer-Encoding: chunked\r\n",
            &format!("{body}{SMUGGLED}"),
        )
    };
    vec![
        body("chunk-leading-zeros", "0005\r\nhello\r\n0\r\n\r\n"),
        body("chunk-upper-hex", "A\r\n0123456789\r\n0\r\n\r\n"),
        body("chunk-ext", "5;a=b\r\nhello\r\n0\r\n\r\n"),
        body(
            "chunk-ext-quoted",
            "5;name=\"a;b\\\"c\"\r\nhello\r\n0\r\n\r\n",
        ),
        body("chunk-ext-bws", "5 ;a=b\r\nhello\r\n0\r\n\r\n"),
        body("chunk-size-space", "5 \r\nhello\r\n0\r\n\r\n"),
        body("chunk-overflow", "10000000000000005\r\nhello\r\n0\r\n\r\n"),
        body("chunk-lf-only", "5\nhello\n0\n\n"),
        body("chunk-data-no-crlf", "5\r\nhelloXX0\r\n\r\n"),
        post(
            "chunk-missing-final-crlf",
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n",
        ),
        body("chunk-trailer", "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
        body(
            "chunk-trailer-forbidden",
            "5\r\nhello\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        body("chunk-negative", "-5\r\nhello\r\n0\r\n\r\n"),
        body("chunk-0x-prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
        body("chunk-empty-size", "\r\nhello\r\n0\r\n\r\n"),
    ]
}

fn versions_and_methods() -> Vec<Case> {
    vec![
        req("http09", "GET /\r\n\r\n"),
        req("http-1.2", format!("GET / HTTP/1.2\r\n{H}\r\n")),
        req("http-2.0", format!("GET / HTTP/2.0\r\n{H}\r\n")),
        req("http-lowercase", format!("GET / http/1.1\r\n{H}\r\n")),
        req("http-01.1", format!("GET / HTTP/01.1\r\n{H}\r\n")),
        req(
            "http-10-keepalive",
            format!("GET / HTTP/1.0\r\n{H}Connection: keep-alive\r\n\r\n"),
        ),
        req("method-lower", format!("get / HTTP/1.1\r\n{H}\r\n")),
        req("method-purge", format!("PURGE / HTTP/1.1\r\n{H}\r\n")),
        req("method-foo", format!("FOO / HTTP/1.1\r\n{H}\r\n")),
        req("method-bad-char", format!("G@T / HTTP/1.1\r\n{H}\r\n")),
        req("method-trace", format!("TRACE / HTTP/1.1\r\n{H}\r\n")),
    ]
}

fn semantics() -> Vec<Case> {
    vec![
        req(
            "expect-100-http10",
            format!("POST / HTTP/1.0\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
        ),
        post(
            "expect-100",
            "Expect: 100-continue\r\nContent-Length: 5\r\n",
            "hello",
        ),
        post(
            "expect-foo",
            "Expect: foo\r\nContent-Length: 5\r\n",
            "hello",
        ),
        get_with(
            "conn-close-upgrade",
            "Connection: close, upgrade\r\nUpgrade: websocket\r\n",
        ),
        get_with("upgrade-no-connection", "Upgrade: websocket\r\n"),
        get_with(
            "conn-lists-header",
            "Connection: X-Secret\r\nX-Secret: 1\r\n",
        ),
        get_with("conn-lists-host", "Connection: Host\r\n"),
        get_with("te-header-trailers", "TE: trailers\r\n"),
        get_with("proxy-connection", "Proxy-Connection: keep-alive\r\n"),
        req(
            "pipelined-bad-second",
            format!("GET /1 HTTP/1.1\r\n{H}\r\nGET /2 HTTP/1.1\r\nHost: a\r\nX\r\n\r\n"),
        ),
        req(
            "pipelined-two",
            format!("GET /1 HTTP/1.1\r\n{H}\r\nGET /2 HTTP/1.1\r\n{H}\r\n"),
        ),
    ]
}

fn responses() -> Vec<Case> {
    let mut cases = vec![
        resp("resp-cl-and-te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        resp("resp-status-4-digits", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-no-reason-no-sp", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-no-reason-sp", "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-100-then-200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-103-then-200", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-101-unsolicited", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nraw"),
        resp("resp-204-with-body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"),
        resp("resp-304-with-cl", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
        resp("resp-no-length", "HTTP/1.1 200 OK\r\n\r\nuntil close"),
        resp("resp-cl-two-equal", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-cl-two-differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
        resp("resp-cl-invalid", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok"),
        resp("resp-huge-header", format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok", "a".repeat(64 * 1024))),
        resp("resp-bare-lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
        resp("resp-http10-chunked", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
        resp("resp-te-gzip-only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil close"),
        resp("resp-status-600", "HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-status-099", "HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-value-nul", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-bad-chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"),
        resp("resp-http09", "just bytes\r\n"),
        resp("resp-http-1.2", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        resp("resp-name-space", "HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok"),
    ];
    let mut head = resp(
        "resp-head-with-cl",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    );
    head.request = format!("HEAD /r/resp-head-with-cl HTTP/1.1\r\n{H}\r\n").into_bytes();
    cases.push(head);
    cases
}
