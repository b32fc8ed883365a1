//! The answers Sluice itself gives (errors, denials), built once and shared.
//!
//! Each is a complete response with a short HTML body, `Content-Length`,
//! `Cache-Control: no-cache` and `Connection: close` (the session closes the
//! client connection after any of them). A listener's [`CustomAnswer`]s replace
//! the defaults, and a cluster's replace the listener's for requests routed to
//! it. Custom answers are sent as configured, except that bare LF line endings
//! in their head are turned into CRLF.

use std::{collections::HashMap, rc::Rc};

use sluice_command::proto::CustomAnswer;

/// The statuses Sluice answers by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerStatus {
    /// 400: the request is malformed.
    BadRequest,
    /// 403: a deny route matched.
    Forbidden,
    /// 404: no route matched.
    NotFound,
    /// 408: the request did not arrive in time.
    RequestTimeout,
    /// 413: the request body is too large.
    PayloadTooLarge,
    /// 414: the request line is too long.
    UriTooLong,
    /// 431: the request head is too large.
    HeaderFieldsTooLarge,
    /// 501: a method or transfer coding Sluice does not implement.
    NotImplemented,
    /// 502: the backend failed or answered garbage.
    BadGateway,
    /// 503: no backend could be reached.
    ServiceUnavailable,
    /// 504: the backend did not answer in time.
    GatewayTimeout,
    /// 505: HTTP version not supported.
    VersionNotSupported,
}

impl AnswerStatus {
    /// Every status, in code order.
    pub const ALL: [AnswerStatus; 12] = [
        AnswerStatus::BadRequest,
        AnswerStatus::Forbidden,
        AnswerStatus::NotFound,
        AnswerStatus::RequestTimeout,
        AnswerStatus::PayloadTooLarge,
        AnswerStatus::UriTooLong,
        AnswerStatus::HeaderFieldsTooLarge,
        AnswerStatus::NotImplemented,
        AnswerStatus::BadGateway,
        AnswerStatus::ServiceUnavailable,
        AnswerStatus::GatewayTimeout,
        AnswerStatus::VersionNotSupported,
    ];

    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            AnswerStatus::BadRequest => 400,
            AnswerStatus::Forbidden => 403,
            AnswerStatus::NotFound => 404,
            AnswerStatus::RequestTimeout => 408,
            AnswerStatus::PayloadTooLarge => 413,
            AnswerStatus::UriTooLong => 414,
            AnswerStatus::HeaderFieldsTooLarge => 431,
            AnswerStatus::NotImplemented => 501,
            AnswerStatus::BadGateway => 502,
            AnswerStatus::ServiceUnavailable => 503,
            AnswerStatus::GatewayTimeout => 504,
            AnswerStatus::VersionNotSupported => 505,
        }
    }

    /// The status for `code`, if Sluice answers it by itself.
    pub fn from_code(code: u16) -> Option<AnswerStatus> {
        AnswerStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    fn reason(self) -> &'static str {
        match self {
            AnswerStatus::BadRequest => "Bad Request",
            AnswerStatus::Forbidden => "Forbidden",
            AnswerStatus::NotFound => "Not Found",
            AnswerStatus::RequestTimeout => "Request Timeout",
            AnswerStatus::PayloadTooLarge => "Payload Too Large",
            AnswerStatus::UriTooLong => "URI Too Long",
            AnswerStatus::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            AnswerStatus::NotImplemented => "Not Implemented",
            AnswerStatus::BadGateway => "Bad Gateway",
            AnswerStatus::ServiceUnavailable => "Service Unavailable",
            AnswerStatus::GatewayTimeout => "Gateway Timeout",
            AnswerStatus::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    fn default_answer(self) -> Rc<[u8]> {
        let code = self.code();
        let reason = self.reason();
        let body = format!(
            "<html><head><title>{code} {reason}</title></head>\
             <body><h1>{code} {reason}</h1></body></html>\n"
        );
        format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
        .into()
    }
}

type Table = HashMap<AnswerStatus, Rc<[u8]>>;

/// The answers of one listener and of the clusters it routes to.
#[derive(Debug, Clone)]
pub struct Answers {
    defaults: Table,
    listener: Table,
    clusters: HashMap<String, Table>,
}

impl Default for Answers {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl Answers {
    /// The defaults, replaced by the listener's custom answers.
    pub fn new(listener_answers: &[CustomAnswer]) -> Self {
        Answers {
            defaults: AnswerStatus::ALL
                .into_iter()
                .map(|s| (s, s.default_answer()))
                .collect(),
            listener: table(listener_answers),
            clusters: HashMap::new(),
        }
    }

    /// Replaces the listener's custom answers.
    pub fn set_listener(&mut self, answers: &[CustomAnswer]) {
        self.listener = table(answers);
    }

    /// Sets a cluster's custom answers (none removes them).
    pub fn set_cluster(&mut self, cluster_id: &str, answers: &[CustomAnswer]) {
        if answers.is_empty() {
            self.clusters.remove(cluster_id);
        } else {
            self.clusters.insert(cluster_id.to_owned(), table(answers));
        }
    }

    /// Forgets a cluster's custom answers.
    pub fn remove_cluster(&mut self, cluster_id: &str) {
        self.clusters.remove(cluster_id);
    }

    /// The answer for `status`, for a request routed to `cluster` if any.
    pub fn get(&self, status: AnswerStatus, cluster: Option<&str>) -> &Rc<[u8]> {
        cluster
            .and_then(|c| self.clusters.get(c))
            .and_then(|t| t.get(&status))
            .or_else(|| self.listener.get(&status))
            .or_else(|| self.defaults.get(&status))
            // Every status has a default: `new` fills the table from `ALL`.
            .unwrap_or_else(|| unreachable!("no default answer for {status:?}"))
    }
}

fn table(answers: &[CustomAnswer]) -> Table {
    let mut table = Table::new();
    for answer in answers {
        let status = u16::try_from(answer.status)
            .ok()
            .and_then(AnswerStatus::from_code);
        match status {
            Some(status) => {
                table.insert(status, normalize(answer.content.as_bytes()));
            }
            None => log::warn!("custom answer for status {} ignored", answer.status),
        }
    }
    table
}

/// CRLF line endings in the head; the body is left as is.
fn normalize(content: &[u8]) -> Rc<[u8]> {
    let head_end = find(content, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(content, b"\n\n").map(|i| i + 2))
        .unwrap_or(content.len());
    let (head, body) = content.split_at(head_end);
    let mut out = Vec::with_capacity(content.len() + 32);
    let mut previous = 0u8;
    for &b in head {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out.extend_from_slice(body);
    out.into()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parser::{parse_response, BodyFraming, Parsed};

    fn custom(status: u32, content: &str) -> CustomAnswer {
        CustomAnswer {
            status,
            content: content.to_owned(),
        }
    }

    #[test]
    fn defaults_are_well_framed_closing_responses() {
        let answers = Answers::default();
        for status in AnswerStatus::ALL {
            let raw = answers.get(status, None);
            let mut headers = Vec::new();
            let Ok(Parsed::Complete(head)) = parse_response(raw, false, &mut headers) else {
                panic!("{status:?} does not parse");
            };
            assert_eq!(head.status, status.code());
            assert!(!head.keep_alive, "{status:?} does not close");
            assert_eq!(
                head.framing,
                BodyFraming::ContentLength((raw.len() - head.len) as u64)
            );
            let text = String::from_utf8_lossy(raw);
            assert!(text.contains("Cache-Control: no-cache\r\n"));
            assert_eq!(AnswerStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(AnswerStatus::from_code(200), None);
    }

    #[test]
    fn cluster_overrides_listener_overrides_default() {
        let mut answers = Answers::new(&[custom(503, "HTTP/1.1 503 L\r\n\r\n"), custom(999, "x")]);
        answers.set_cluster("c", &[custom(503, "HTTP/1.1 503 C\n\nbody\n")]);
        let get = |answers: &Answers, cluster| {
            String::from_utf8_lossy(answers.get(AnswerStatus::ServiceUnavailable, cluster))
                .into_owned()
        };
        assert_eq!(get(&answers, Some("c")), "HTTP/1.1 503 C\r\n\r\nbody\n");
        assert_eq!(get(&answers, Some("other")), "HTTP/1.1 503 L\r\n\r\n");
        assert_eq!(get(&answers, None), "HTTP/1.1 503 L\r\n\r\n");
        answers.remove_cluster("c");
        assert_eq!(get(&answers, Some("c")), "HTTP/1.1 503 L\r\n\r\n");
        answers.set_listener(&[]);
        assert!(get(&answers, None).starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        let shared = answers.get(AnswerStatus::NotFound, None);
        assert!(Rc::ptr_eq(
            shared,
            answers.get(AnswerStatus::NotFound, Some("c"))
        ));
    }
}
