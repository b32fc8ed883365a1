//! Request and response heads, parsed with `httparse` into offsets into the
//! caller's buffer (no owned strings), with RFC 9112 message framing enforced.
//!
//! Decisions where the RFC leaves room (chosen to match what nginx or HAProxy do):
//! - identical repeated `Content-Length` values (`5` twice, or `5, 5`) are
//!   accepted as one; differing ones are a 400;
//! - `Transfer-Encoding` in an HTTP/1.0 request is a 400 (RFC 9112 §6.1 says the
//!   framing is faulty);
//! - `HTTP/1.x` with x > 1 is read as HTTP/1.1 (RFC 9110 §2.5: a higher minor
//!   version SHOULD be processed as the highest one implemented; HAProxy and
//!   nginx do the same), in requests and responses; any other well-formed
//!   `HTTP/x.y` is a 505, anything else in the version slot is a 400;
//! - a request `Transfer-Encoding` must be `chunked` alone: Sluice does not
//!   decode `gzip, chunked`, and a backend that only recognises a bare
//!   `chunked` would read those chunks as the next request (RFC 9112 §6.1: a
//!   coding not understood SHOULD get a 501; nginx answers 501, HAProxy 422);
//!   an empty Transfer-Encoding field is a 400 (like nginx);
//! - a fragment (`#`) in the request-target is a 400 (RFC 9112 §3.2: no form
//!   of request-target carries one; like HAProxy);
//! - a request line that does not fit in the buffer is a 414 (RFC 9110
//!   §15.5.15, like nginx), a larger head otherwise a 431;
//! - an HTTP/1.0 response with `Transfer-Encoding` is decoded by it, then the
//!   backend connection is closed (RFC 9112 §6.1: framing treated as faulty,
//!   the message processed, the connection closed after it);
//! - `CONNECT` is a 501: Sluice is a reverse proxy, not a tunnel;
//! - several `Host` fields are a 400 even when identical (like nginx);
//! - bare LF line endings are a 400 in requests but accepted in responses: the
//!   response head is rewritten with CRLF anyway, so it cannot smuggle anything.

use thiserror::Error;

/// Most header fields a head may carry; one more is a 431 (requests) or 502.
pub const MAX_HEADERS: usize = 100;

/// A byte range of the buffer a head was parsed from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes of this span in `buf` (empty if the span does not fit in `buf`).
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the span is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The span of `part`, a sub-slice of `buf` (as httparse hands them out).
    fn within(buf: &[u8], part: &[u8]) -> Span {
        let base = buf.as_ptr() as usize;
        let start = (part.as_ptr() as usize).saturating_sub(base).min(buf.len());
        let end = (start + part.len()).min(buf.len());
        Span { start, end }
    }
}

/// One header field: name and value (without surrounding whitespace).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSpan {
    /// Field name.
    pub name: Span,
    /// Field value.
    pub value: Span,
}

/// The HTTP versions Sluice speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: close by default, no chunked framing.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    fn from_minor(minor: u8) -> Version {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    /// The version as written on the wire.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }
}

/// How the end of a message body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// Chunked transfer coding, ended by the last chunk and trailers.
    Chunked,
    /// Responses only: everything until the backend closes.
    UntilClose,
}

/// Why a head was refused; [`HeadError::status`] gives the answer to send.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// httparse refused the syntax.
    #[error("malformed message head")]
    Syntax(#[from] httparse::Error),
    /// A line ended with LF alone.
    #[error("line ending without CR")]
    BareLf,
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// The head did not fit in the buffer.
    #[error("message head larger than the buffer")]
    TooLarge,
    /// The request line alone did not fit in the buffer.
    #[error("request line larger than the buffer")]
    UriTooLong,
    /// A well-formed version that is neither 1.0 nor 1.1 (HTTP/2 preface included).
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// The method is valid but not proxied (CONNECT).
    #[error("method not implemented")]
    MethodNotImplemented,
    /// The request-target is not origin-, absolute- or asterisk-form (for OPTIONS).
    #[error("invalid request target")]
    InvalidTarget,
    /// HTTP/1.1 request without Host.
    #[error("missing Host header")]
    MissingHost,
    /// More than one Host field.
    #[error("several Host headers")]
    DuplicateHost,
    /// Host with bytes no authority may hold.
    #[error("invalid Host header")]
    InvalidHost,
    /// Both Content-Length and Transfer-Encoding in a request.
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthAndTransferEncoding,
    /// Content-Length not a plain decimal that fits in 64 bits.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Content-Length values that differ.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// `chunked` present but not the final coding, or present twice, or with parameters.
    #[error("chunked is not the final transfer coding")]
    ChunkedNotFinal,
    /// A transfer coding Sluice does not know.
    #[error("unknown transfer coding")]
    UnknownTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 message.
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
}

impl HeadError {
    /// The status to answer a request refused for this reason.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooManyHeaders | HeadError::TooLarge => 431,
            HeadError::UriTooLong => 414,
            HeadError::Syntax(httparse::Error::TooManyHeaders) => 431,
            HeadError::VersionNotSupported => 505,
            HeadError::MethodNotImplemented | HeadError::UnknownTransferCoding => 501,
            _ => 400,
        }
    }
}

/// A parse result: the head, or more bytes are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The whole head was in the buffer.
    Complete(T),
    /// The head is not complete yet.
    Partial,
}

/// What the request parser needs besides the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOptions<'a> {
    /// Name of the sticky-session cookie to look for, if the route may be sticky.
    pub sticky_cookie: Option<&'a [u8]>,
}

/// A parsed request head; every span points into the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Length of the head, final CRLF included (leading empty lines too).
    pub len: usize,
    /// Method token.
    pub method: Span,
    /// Request-target as received.
    pub target: Span,
    /// Path part of the target (no query), for routing; empty for `*`.
    pub path: Span,
    /// HTTP version.
    pub version: Version,
    /// The authority to route on: the Host field, or the absolute-form target's.
    pub host: Option<Span>,
    /// How the body ends.
    pub framing: BodyFraming,
    /// Whether the client wants the connection kept after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1 only).
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` field (HTTP/1.1 only).
    pub upgrade: bool,
    /// Value of the sticky cookie, if asked for and present.
    pub sticky: Option<Span>,
    /// Value of a `Sluice-Request-Id` the client sent.
    pub request_id: Option<Span>,
    /// Value of the first `User-Agent` field, for the access log.
    pub user_agent: Option<Span>,
    /// The method is HEAD (its response has no body).
    pub is_head: bool,
}

/// A parsed response head; every span points into the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Length of the head, final CRLF included.
    pub len: usize,
    /// HTTP version of the backend.
    pub version: Version,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: Span,
    /// How the body ends.
    pub framing: BodyFraming,
    /// Whether the backend keeps the connection after this response.
    pub keep_alive: bool,
    /// Both Content-Length and Transfer-Encoding: the former must not be forwarded.
    pub drop_content_length: bool,
}

impl ResponseHead {
    /// A 1xx other than 101: another head follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Parses a request head from the start of `buf`, filling `headers` (cleared first).
pub fn parse_request(
    buf: &[u8],
    options: &RequestOptions<'_>,
    headers: &mut Vec<HeaderSpan>,
) -> Result<Parsed<RequestHead>, HeadError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => {
            return match later_minor_version(buf) {
                Some(at) => parse_request(&as_http11(buf, at), options, headers),
                None => Err(version_error(buf)),
            }
        }
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    reject_bare_lf(&buf[..len])?;
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Syntax(httparse::Error::Token));
    };
    let version = Version::from_minor(minor);
    headers.clear();
    headers.extend(req.headers.iter().map(|h| HeaderSpan {
        name: Span::within(buf, h.name.as_bytes()),
        value: Span::within(buf, h.value),
    }));
    let method_span = Span::within(buf, method.as_bytes());
    let target_span = Span::within(buf, target.as_bytes());
    if method == "CONNECT" {
        return Err(HeadError::MethodNotImplemented);
    }
    let form = classify_target(target.as_bytes(), method == "OPTIONS")?;
    let fields = Fields::collect(buf, headers, options)?;
    if fields.host_count > 1 {
        return Err(HeadError::DuplicateHost);
    }
    if version == Version::Http11 && fields.host_count == 0 {
        return Err(HeadError::MissingHost);
    }
    if let Some(host) = fields.host {
        if !host.of(buf).iter().all(|&b| is_authority_byte(b)) {
            return Err(HeadError::InvalidHost);
        }
    }
    let framing = match (fields.content_length, fields.codings.map(|c| c.transfer())) {
        (Some(_), Some(_)) => return Err(HeadError::ContentLengthAndTransferEncoding),
        (_, Some(_)) if version == Version::Http10 => {
            return Err(HeadError::TransferEncodingInHttp10)
        }
        (_, Some(Transfer::Chunked)) => BodyFraming::Chunked,
        (_, Some(Transfer::NotChunkedLast)) => return Err(HeadError::ChunkedNotFinal),
        (_, Some(Transfer::Unknown | Transfer::ChunkedAfterOthers)) => {
            return Err(HeadError::UnknownTransferCoding)
        }
        (_, Some(Transfer::EmptyField)) => return Err(HeadError::ChunkedNotFinal),
        (Some(Ok(0)), None) | (None, None) => BodyFraming::None,
        (Some(Ok(n)), None) => BodyFraming::ContentLength(n),
        (Some(Err(e)), None) => return Err(e),
    };
    let is_11 = version == Version::Http11;
    let (host, path) = match form {
        TargetForm::Origin => (fields.host, path_of(target_span, target.as_bytes(), 0)),
        TargetForm::Absolute {
            authority,
            path_start,
        } => (
            Some(Span {
                start: target_span.start + authority.0,
                end: target_span.start + authority.1,
            }),
            path_of(target_span, target.as_bytes(), path_start),
        ),
        TargetForm::Asterisk => (fields.host, Span::default()),
    };
    Ok(Parsed::Complete(RequestHead {
        len,
        method: method_span,
        target: target_span,
        path,
        version,
        host,
        framing,
        keep_alive: fields.connection.keep_alive(version),
        expect_continue: is_11 && fields.expect_continue,
        upgrade: is_11 && fields.connection.upgrade && fields.has_upgrade,
        sticky: fields.sticky,
        request_id: fields.request_id,
        user_agent: fields.user_agent,
        is_head: method == "HEAD",
    }))
}

/// Parses a response head from the start of `buf`, filling `headers` (cleared
/// first). `request_is_head`: the response answers a HEAD request (no body).
pub fn parse_response(
    buf: &[u8],
    request_is_head: bool,
    headers: &mut Vec<HeaderSpan>,
) -> Result<Parsed<ResponseHead>, HeadError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version)
            if buf.get(..8).is_some_and(is_later_minor) && buf.get(8) == Some(&b' ') =>
        {
            return parse_response(&as_http11(buf, 0), request_is_head, headers);
        }
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    let (Some(minor), Some(status)) = (resp.version, resp.code) else {
        return Err(HeadError::Syntax(httparse::Error::Status));
    };
    let version = Version::from_minor(minor);
    let reason = Span::within(buf, resp.reason.unwrap_or("").as_bytes());
    headers.clear();
    headers.extend(resp.headers.iter().map(|h| HeaderSpan {
        name: Span::within(buf, h.name.as_bytes()),
        value: Span::within(buf, h.value),
    }));
    let fields = Fields::collect(buf, headers, &RequestOptions::default())?;
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let mut drop_content_length = false;
    let framing = if no_body || request_is_head {
        BodyFraming::None
    } else if let Some(transfer) = fields.codings.map(|c| c.transfer()) {
        // With HTTP/1.0 too: the connection is closed after it (below).
        drop_content_length = fields.content_length.is_some();
        match transfer {
            Transfer::Chunked | Transfer::ChunkedAfterOthers | Transfer::EmptyField => {
                BodyFraming::Chunked
            }
            _ => BodyFraming::UntilClose,
        }
    } else {
        match fields.content_length {
            Some(Ok(n)) => BodyFraming::ContentLength(n),
            Some(Err(e)) => return Err(e),
            None => BodyFraming::UntilClose,
        }
    };
    let te_in_http10 = version == Version::Http10 && fields.codings.is_some();
    let keep_alive = fields.connection.keep_alive(version)
        && framing != BodyFraming::UntilClose
        && !drop_content_length
        && !te_in_http10;
    Ok(Parsed::Complete(ResponseHead {
        len,
        version,
        status,
        reason,
        framing,
        keep_alive,
        drop_content_length,
    }))
}

/// Whether `name` (a header name) is listed in any `Connection` field.
pub fn listed_in_connection(buf: &[u8], headers: &[HeaderSpan], name: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.of(buf).eq_ignore_ascii_case(b"connection"))
        .flat_map(|h| list_items(h.value.of(buf)))
        .any(|token| token.eq_ignore_ascii_case(name))
}

/// The comma-separated elements of a field value, trimmed, empty ones skipped.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}

fn reject_bare_lf(head: &[u8]) -> Result<(), HeadError> {
    let mut previous = 0u8;
    for &b in head {
        if b == b'\n' && previous != b'\r' {
            return Err(HeadError::BareLf);
        }
        previous = b;
    }
    Ok(())
}

/// httparse only says "bad version": tell a well-formed unsupported one (505)
/// from garbage (400).
fn version_error(buf: &[u8]) -> HeadError {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    // Only "method SP target SP version" has a version slot: with more
    // spaces the line itself is malformed (a 400, like nginx and HAProxy).
    let mut parts = line.split(|&b| b == b' ');
    let version = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(version), None) => version,
        _ => return HeadError::Syntax(httparse::Error::Version),
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HeadError::VersionNotSupported
        }
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() => {
            HeadError::VersionNotSupported
        }
        _ => HeadError::Syntax(httparse::Error::Version),
    }
}

/// Offset of the version slot of a request line (complete or not) that
/// reads `HTTP/1.x` with x in 2..=9.
fn later_minor_version(buf: &[u8]) -> Option<usize> {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    let at = line.iter().rposition(|&b| b == b' ')? + 1;
    is_later_minor(&line[at..]).then_some(at)
}

/// Whether `version` is `HTTP/1.x` with x in 2..=9.
fn is_later_minor(version: &[u8]) -> bool {
    matches!(
        version,
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9']
    )
}

/// A copy of `buf` whose version at `at` reads `HTTP/1.1`: same length, so
/// every span parsed from it is valid in `buf` too.
fn as_http11(buf: &[u8], at: usize) -> Vec<u8> {
    let mut copy = buf.to_vec();
    if let Some(minor) = copy.get_mut(at + 7) {
        *minor = b'1';
    }
    copy
}

/// The error for a request head that filled the whole buffer: 414 when the
/// request line alone did not fit (RFC 9110 §15.5.15), else 431.
pub fn oversized_request(buf: &[u8]) -> HeadError {
    // Leading empty lines are allowed before the request line.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    if buf[start..].contains(&b'\n') {
        HeadError::TooLarge
    } else {
        HeadError::UriTooLong
    }
}

enum TargetForm {
    Origin,
    /// Offsets within the target.
    Absolute {
        authority: (usize, usize),
        path_start: usize,
    },
    Asterisk,
}

fn classify_target(target: &[u8], is_options: bool) -> Result<TargetForm, HeadError> {
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(HeadError::InvalidTarget);
    }
    if target.contains(&b'#') {
        return Err(HeadError::InvalidTarget);
    }
    if target[0] == b'/' {
        return Ok(TargetForm::Origin);
    }
    if target == b"*" && is_options {
        return Ok(TargetForm::Asterisk);
    }
    let scheme_len = if starts_with_ignore_case(target, b"http://") {
        7
    } else if starts_with_ignore_case(target, b"https://") {
        8
    } else {
        return Err(HeadError::InvalidTarget);
    };
    let rest = &target[scheme_len..];
    let authority_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    if authority.is_empty() || authority.contains(&b'@') {
        return Err(HeadError::InvalidTarget);
    }
    if !authority.iter().all(|&b| is_authority_byte(b)) {
        return Err(HeadError::InvalidTarget);
    }
    Ok(TargetForm::Absolute {
        authority: (scheme_len, scheme_len + authority_len),
        path_start: scheme_len + authority_len,
    })
}

fn path_of(target_span: Span, target: &[u8], from: usize) -> Span {
    let rest = &target[from..];
    let len = rest
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    Span {
        start: target_span.start + from,
        end: target_span.start + from + len,
    }
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// reg-name, IP-literal and port characters (RFC 3986 authority without userinfo).
fn is_authority_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Chunked,
    /// `chunked` last, after other codings: responses only.
    ChunkedAfterOthers,
    NotChunkedLast,
    Unknown,
    /// A field without any coding beside a valid list: requests refuse it.
    EmptyField,
}

/// Every transfer coding listed, over all Transfer-Encoding fields.
#[derive(Default, Clone, Copy)]
struct Codings {
    count: usize,
    empty_fields: usize,
    chunked: usize,
    chunked_with_params: bool,
    last_is_chunked: bool,
    unknown: bool,
}

impl Codings {
    fn transfer(&self) -> Transfer {
        if self.unknown {
            Transfer::Unknown
        } else if self.chunked == 1 && self.last_is_chunked && !self.chunked_with_params {
            if self.count > 1 {
                Transfer::ChunkedAfterOthers
            } else if self.empty_fields > 0 {
                Transfer::EmptyField
            } else {
                Transfer::Chunked
            }
        } else {
            Transfer::NotChunkedLast
        }
    }
}

#[derive(Default)]
struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl ConnectionTokens {
    fn keep_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::Http11 || self.keep_alive)
    }
}

/// What the framing and routing rules need from the header fields.
#[derive(Default)]
struct Fields {
    host: Option<Span>,
    host_count: usize,
    content_length: Option<Result<u64, HeadError>>,
    codings: Option<Codings>,
    connection: ConnectionTokens,
    has_upgrade: bool,
    expect_continue: bool,
    sticky: Option<Span>,
    request_id: Option<Span>,
    user_agent: Option<Span>,
}

impl Fields {
    fn collect(
        buf: &[u8],
        headers: &[HeaderSpan],
        options: &RequestOptions<'_>,
    ) -> Result<Fields, HeadError> {
        let mut fields = Fields::default();
        for header in headers {
            let name = header.name.of(buf);
            let value = header.value.of(buf);
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => {
                    fields.host_count += 1;
                    fields.host = Some(header.value);
                }
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    fields.add_content_length(value);
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                    fields.add_transfer_encoding(value);
                }
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    fields.add_connection(value);
                }
                7 if name.eq_ignore_ascii_case(b"upgrade") => fields.has_upgrade = true,
                6 if name.eq_ignore_ascii_case(b"expect") => {
                    fields.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
                }
                6 if name.eq_ignore_ascii_case(b"cookie") => {
                    if let (None, Some(cookie)) = (fields.sticky, options.sticky_cookie) {
                        fields.sticky = find_cookie(header.value, value, cookie);
                    }
                }
                17 if name.eq_ignore_ascii_case(b"sluice-request-id") => {
                    fields.request_id = Some(header.value);
                }
                10 if fields.user_agent.is_none() && name.eq_ignore_ascii_case(b"user-agent") => {
                    fields.user_agent = Some(header.value);
                }
                _ => {}
            }
        }
        Ok(fields)
    }

    fn add_content_length(&mut self, value: &[u8]) {
        let mut items = 0;
        for item in value.split(|&b| b == b',').map(|i| i.trim_ascii()) {
            items += 1;
            let parsed = parse_decimal(item).ok_or(HeadError::InvalidContentLength);
            self.content_length = Some(match (self.content_length.take(), parsed) {
                (Some(Err(e)), _) | (_, Err(e)) => Err(e),
                (Some(Ok(a)), Ok(b)) if a != b => Err(HeadError::ConflictingContentLength),
                (_, Ok(b)) => Ok(b),
            });
        }
        if items == 0 {
            self.content_length = Some(Err(HeadError::InvalidContentLength));
        }
    }

    fn add_transfer_encoding(&mut self, value: &[u8]) {
        let codings = self.codings.get_or_insert_with(Codings::default);
        if list_items(value).next().is_none() {
            codings.empty_fields += 1;
        }
        for coding in list_items(value) {
            let (name, has_params) = match coding.iter().position(|&b| b == b';') {
                Some(i) => (coding[..i].trim_ascii(), true),
                None => (coding, false),
            };
            let chunked = name.eq_ignore_ascii_case(b"chunked");
            codings.count += 1;
            codings.last_is_chunked = chunked;
            if chunked {
                codings.chunked += 1;
                codings.chunked_with_params |= has_params;
            } else if !is_known_coding(name) {
                codings.unknown = true;
            }
        }
    }

    fn add_connection(&mut self, value: &[u8]) {
        for token in list_items(value) {
            if token.eq_ignore_ascii_case(b"close") {
                self.connection.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.connection.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.connection.upgrade = true;
            }
        }
    }
}

fn is_known_coding(name: &[u8]) -> bool {
    [
        &b"gzip"[..],
        b"x-gzip",
        b"deflate",
        b"compress",
        b"x-compress",
    ]
    .iter()
    .any(|known| name.eq_ignore_ascii_case(known))
}

/// 1*DIGIT that fits in a u64; no sign, no spaces, no hex.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The span of cookie `name`'s value in a Cookie field (`value_span` locates `value`).
fn find_cookie(value_span: Span, value: &[u8], name: &[u8]) -> Option<Span> {
    let mut offset = 0;
    for pair in value.split(|&b| b == b';') {
        let pair_start = offset;
        offset += pair.len() + 1;
        let leading = pair.len() - pair.trim_ascii_start().len();
        let pair = pair.trim_ascii();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if &pair[..eq] == name {
            let start = value_span.start + pair_start + leading + eq + 1;
            return Some(Span {
                start,
                end: start + pair.len() - eq - 1,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests;
