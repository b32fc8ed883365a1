//! The heads as Sluice forwards them, written into a reusable output buffer.
//!
//! Requests: the request line as received; hop-by-hop fields (`Connection`,
//! `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade` unless upgrading, and every
//! field `Connection` names) removed; a single `Transfer-Encoding: chunked`
//! for a chunked body (the only coding the parser lets through, so a backend
//! never sees an empty field or odd spelling beside it), a single normalised
//! `Content-Length`; `Host` never removed by a `Connection` listing (it is
//! end-to-end, RFC 9110 §7.6.1) and, for an absolute-form target, replaced by
//! the target's authority (RFC 9112 §3.2.2: a proxy MUST generate Host from
//! it, so the backend sees the authority Sluice routed on); `X-Forwarded-For`
//! and `Forwarded` extended with this hop; `X-Forwarded-Proto`/`-Port` set;
//! `Sluice-Request-Id` kept or generated; `Connection: keep-alive` (or `upgrade`).
//! `TE` is dropped outright, `trailers` included: what Sluice forwards to the
//! client does not depend on it. `Trailer` is end-to-end and kept.
//!
//! Responses: status line as `HTTP/1.1`, the same removals (never of the
//! framing fields), `Content-Length` dropped when `Transfer-Encoding` is present, an optional sticky `Set-Cookie`,
//! and the `Connection` field that matches what Sluice does with the client.

use std::net::{IpAddr, SocketAddr};

use super::parser::{
    listed_in_connection, BodyFraming, HeaderSpan, RequestHead, ResponseHead, Span,
};

/// The parts of the forwarding headers that depend only on the connection,
/// computed once per client connection. One allocation holds the three values
/// back to back (client ip, `Forwarded` element, listener port): every idle
/// connection keeps them.
#[derive(Debug, Clone)]
pub struct ForwardedValues {
    text: Box<[u8]>,
    client_ip_len: u8,
    forwarded_element_len: u8,
    /// The client came over TLS.
    https: bool,
}

impl ForwardedValues {
    /// Values for a client connected to `listener`, over TLS when `https`.
    pub fn new(client: SocketAddr, listener: SocketAddr, https: bool) -> Self {
        let client_ip = client.ip().to_string();
        let for_node = node(client.ip(), None);
        let by_node = node(listener.ip(), Some(listener.port()));
        let proto = if https { "https" } else { "http" };
        let element = format!("for={for_node};proto={proto};by={by_node}");
        let text = format!("{client_ip}{element}{}", listener.port());
        ForwardedValues {
            text: text.into_bytes().into(),
            // An IPv6 address takes at most 39 bytes, its element at most 110.
            client_ip_len: u8::try_from(client_ip.len()).unwrap_or(u8::MAX),
            forwarded_element_len: u8::try_from(element.len()).unwrap_or(u8::MAX),
            https,
        }
    }

    /// Bytes held on the heap.
    pub(crate) fn heap_len(&self) -> usize {
        self.text.len()
    }

    fn client_ip(&self) -> &[u8] {
        &self.text[..usize::from(self.client_ip_len)]
    }

    fn forwarded_element(&self) -> &[u8] {
        let start = usize::from(self.client_ip_len);
        &self.text[start..start + usize::from(self.forwarded_element_len)]
    }

    fn listener_port(&self) -> &[u8] {
        &self.text[usize::from(self.client_ip_len) + usize::from(self.forwarded_element_len)..]
    }
}

/// A `Forwarded` node (RFC 7239 §6): quoted when it holds `:` or `[`.
fn node(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V4(ip), None) => ip.to_string(),
        (IpAddr::V4(ip), Some(port)) => format!("\"{ip}:{port}\""),
        (IpAddr::V6(ip), None) => format!("\"[{ip}]\""),
        (IpAddr::V6(ip), Some(port)) => format!("\"[{ip}]:{port}\""),
    }
}

/// Request ids: 16 hex digits, unique within a worker (a bijective mix of a
/// counter offset by a random seed), unpredictable across workers.
#[derive(Debug, Clone)]
pub struct RequestIds {
    seed: u64,
    counter: u64,
}

impl RequestIds {
    /// A generator seeded from `seed` (give each worker a random one).
    pub fn new(seed: u64) -> Self {
        RequestIds { seed, counter: 0 }
    }

    /// The next id.
    pub fn next_id(&mut self) -> [u8; 16] {
        self.counter = self.counter.wrapping_add(1);
        let mut z = self
            .seed
            .wrapping_add(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let mut id = [0u8; 16];
        for (i, digit) in id.iter_mut().enumerate() {
            let nibble = (z >> (60 - 4 * i)) & 0xf;
            *digit = b"0123456789abcdef"[nibble as usize];
        }
        id
    }
}

/// What the request rewrite adds besides the received head.
#[derive(Debug, Clone, Copy)]
pub struct RequestRewrite<'a> {
    /// Per-connection forwarding values.
    pub forwarded: &'a ForwardedValues,
    /// A generated id to add; `None` when the client sent its own.
    pub request_id: Option<&'a [u8]>,
}

/// Appends the request head to forward to `out`. `buf` holds the received head
/// that `head` and `headers` describe.
pub fn write_request_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    headers: &[HeaderSpan],
    rewrite: &RequestRewrite<'_>,
) {
    out.extend_from_slice(head.method.of(buf));
    out.push(b' ');
    out.extend_from_slice(head.target.of(buf));
    out.push(b' ');
    out.extend_from_slice(head.version.as_bytes());
    out.extend_from_slice(b"\r\n");
    let authority = target_authority(head);
    if let Some(authority) = authority {
        write_field(out, b"Host", authority.of(buf));
    }
    let has_connection = headers.iter().any(|h| is_named(buf, h, b"connection"));
    let mut had_content_length = false;
    for header in headers {
        let name = header.name.of(buf);
        let keep = match RequestField::classify(name) {
            RequestField::HopByHop | RequestField::Replaced | RequestField::TransferEncoding => {
                false
            }
            RequestField::Host => authority.is_none(),
            RequestField::ContentLength => {
                had_content_length = true;
                false
            }
            RequestField::Upgrade => head.upgrade,
            RequestField::Other => !(has_connection && listed_in_connection(buf, headers, name)),
        };
        if keep {
            write_field(out, name, header.value.of(buf));
        }
    }
    match head.framing {
        BodyFraming::ContentLength(n) => write_length(out, n),
        BodyFraming::Chunked => write_field(out, b"Transfer-Encoding", b"chunked"),
        _ if had_content_length => write_length(out, 0),
        _ => {}
    }
    write_appended(
        out,
        buf,
        headers,
        b"X-Forwarded-For",
        rewrite.forwarded.client_ip(),
    );
    write_appended(
        out,
        buf,
        headers,
        b"Forwarded",
        rewrite.forwarded.forwarded_element(),
    );
    let proto: &[u8] = if rewrite.forwarded.https {
        b"https"
    } else {
        b"http"
    };
    write_field(out, b"X-Forwarded-Proto", proto);
    write_field(out, b"X-Forwarded-Port", rewrite.forwarded.listener_port());
    if let Some(id) = rewrite.request_id {
        write_field(out, b"Sluice-Request-Id", id);
    }
    let connection: &[u8] = if head.upgrade {
        b"upgrade"
    } else {
        b"keep-alive"
    };
    write_field(out, b"Connection", connection);
    out.extend_from_slice(b"\r\n");
}

/// The `Connection` field the client gets with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientConnection {
    /// HTTP/1.1 client kept: no field (persistence is the default).
    KeepAlive,
    /// HTTP/1.0 client that asked for keep-alive and is kept: `keep-alive`.
    KeepAliveHttp10,
    /// The client connection closes after this response: `close`.
    Close,
    /// 101 Switching Protocols: `upgrade`, and `Upgrade` is forwarded.
    Upgrade,
}

/// What the response rewrite adds besides the received head.
#[derive(Debug, Clone, Copy)]
pub struct ResponseRewrite<'a> {
    /// The `Connection` field to send.
    pub connection: ClientConnection,
    /// Sticky cookie to set: (name, value).
    pub set_cookie: Option<(&'a [u8], &'a [u8])>,
    /// `Strict-Transport-Security` value to add (a response over TLS).
    pub hsts: Option<&'a [u8]>,
}

/// Appends the response head to forward to `out`.
pub fn write_response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    headers: &[HeaderSpan],
    rewrite: &ResponseRewrite<'_>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    // httparse only yields three-digit codes.
    let status = head.status.min(999);
    out.extend_from_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(head.reason.of(buf));
    out.extend_from_slice(b"\r\n");
    let has_connection = headers.iter().any(|h| is_named(buf, h, b"connection"));
    for header in headers {
        let name = header.name.of(buf);
        let keep = match RequestField::classify(name) {
            RequestField::HopByHop => false,
            RequestField::ContentLength => !head.drop_content_length,
            RequestField::TransferEncoding => true,
            RequestField::Upgrade => rewrite.connection == ClientConnection::Upgrade,
            RequestField::Replaced | RequestField::Host | RequestField::Other => {
                !(has_connection && listed_in_connection(buf, headers, name))
            }
        };
        if keep {
            write_field(out, name, header.value.of(buf));
        }
    }
    if let Some(hsts) = rewrite.hsts {
        write_field(out, b"Strict-Transport-Security", hsts);
    }
    if let Some((name, value)) = rewrite.set_cookie {
        out.extend_from_slice(b"Set-Cookie: ");
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
        out.extend_from_slice(b"; Path=/\r\n");
    }
    match rewrite.connection {
        ClientConnection::KeepAlive => {}
        ClientConnection::KeepAliveHttp10 => write_field(out, b"Connection", b"keep-alive"),
        ClientConnection::Close => write_field(out, b"Connection", b"close"),
        ClientConnection::Upgrade => write_field(out, b"Connection", b"upgrade"),
    }
    out.extend_from_slice(b"\r\n");
}

/// How a received field is treated when forwarding.
enum RequestField {
    /// Meaningful for one connection only: never forwarded.
    HopByHop,
    /// Written once by Sluice (request side); forwarded as-is in responses.
    Replaced,
    /// Normalised to one value (requests) or dropped beside TE (responses).
    ContentLength,
    /// Rewritten as `chunked` (requests) or forwarded (responses).
    TransferEncoding,
    /// End-to-end even when `Connection` names it; from the target if absolute.
    Host,
    /// Forwarded only when the protocol switches.
    Upgrade,
    /// Forwarded unless `Connection` names it.
    Other,
}

impl RequestField {
    fn classify(name: &[u8]) -> RequestField {
        const HOP_BY_HOP: [&[u8]; 4] = [b"connection", b"keep-alive", b"proxy-connection", b"te"];
        const REPLACED: [&[u8]; 4] = [
            b"x-forwarded-for",
            b"forwarded",
            b"x-forwarded-proto",
            b"x-forwarded-port",
        ];
        if HOP_BY_HOP.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            RequestField::HopByHop
        } else if name.eq_ignore_ascii_case(b"content-length") {
            RequestField::ContentLength
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            RequestField::TransferEncoding
        } else if name.eq_ignore_ascii_case(b"host") {
            RequestField::Host
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            RequestField::Upgrade
        } else if REPLACED.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            RequestField::Replaced
        } else {
            RequestField::Other
        }
    }
}

/// The authority of an absolute-form target (the parser routes on it and
/// points `host` into the target), `None` for other forms.
fn target_authority(head: &RequestHead) -> Option<Span> {
    head.host
        .filter(|host| host.start >= head.target.start && host.end <= head.target.end)
}

fn is_named(buf: &[u8], header: &HeaderSpan, name: &[u8]) -> bool {
    header.name.of(buf).eq_ignore_ascii_case(name)
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn write_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    write_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal without formatting machinery.
pub fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// One field made of every received value of `name`, then `ours`.
fn write_appended(out: &mut Vec<u8>, buf: &[u8], headers: &[HeaderSpan], name: &[u8], ours: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    for header in headers.iter().filter(|h| is_named(buf, h, name)) {
        let value = header.value.of(buf);
        if !value.is_empty() {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(ours);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
