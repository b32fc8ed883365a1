//! The redirect of a `redirect_https` frontend: `301` for GET and HEAD, `308` for other
//! methods (which keeps the method and body), to `https://HOST/PATH?QUERY` on the
//! default port.

use std::rc::Rc;

/// A redirect answer, built for one request.
pub(super) struct Redirect {
    pub(super) status: u16,
    pub(super) bytes: Rc<[u8]>,
}

/// The redirect of a request for `host` (a port in it is dropped), `target` (path and
/// query) and `method`.
pub(super) fn to_https(host: &[u8], target: &[u8], method: &[u8]) -> Redirect {
    let (status, reason): (u16, &[u8]) = match method {
        b"GET" | b"HEAD" => (301, b"Moved Permanently"),
        _ => (308, b"Permanent Redirect"),
    };
    let host = strip_port(host);
    let target: &[u8] = if target.starts_with(b"/") {
        target
    } else {
        b"/"
    };
    let mut bytes = Vec::with_capacity(128 + host.len() + target.len());
    bytes.extend_from_slice(b"HTTP/1.1 ");
    bytes.extend_from_slice(status.to_string().as_bytes());
    bytes.push(b' ');
    bytes.extend_from_slice(reason);
    bytes.extend_from_slice(b"\r\nLocation: https://");
    bytes.extend_from_slice(host);
    bytes.extend_from_slice(target);
    bytes.extend_from_slice(
        b"\r\nContent-Length: 0\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    );
    Redirect {
        status,
        bytes: bytes.into(),
    }
}

/// The host without its port (`[v6]:port` keeps its brackets).
fn strip_port(host: &[u8]) -> &[u8] {
    if host.starts_with(b"[") {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(redirect: &Redirect) -> String {
        String::from_utf8_lossy(&redirect.bytes).into_owned()
    }

    #[test]
    fn get_and_head_move_permanently_other_methods_keep_theirs() {
        let get = to_https(b"example.com:8080", b"/a/b?x=1", b"GET");
        assert_eq!(get.status, 301);
        assert!(text(&get).starts_with("HTTP/1.1 301 Moved Permanently\r\n"));
        assert!(text(&get).contains("\r\nLocation: https://example.com/a/b?x=1\r\n"));
        assert_eq!(to_https(b"example.com", b"/", b"HEAD").status, 301);
        let post = to_https(b"[::1]:80", b"/form", b"POST");
        assert_eq!(post.status, 308);
        assert!(text(&post).contains("Location: https://[::1]/form\r\n"));
        assert!(text(&to_https(b"h", b"*", b"OPTIONS")).contains("Location: https://h/\r\n"));
    }
}
