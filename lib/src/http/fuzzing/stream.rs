//! Follows a byte stream as a sequence of HTTP/1.1 requests, framed the way a
//! backend frames what Sluice sends it (and the way the client meant what it
//! sent): heads by the crate's parser, bodies by their length or chunks.

use crate::http::{
    chunked::{ChunkError, ChunkedScanner},
    parser::{parse_request, BodyFraming, HeadError, Parsed, RequestOptions},
};

/// Most bytes a head may take before the stream counts as broken (larger than
/// any head Sluice forwards from the harness's buffers).
const MAX_HEAD_LEN: usize = 64 * 1024;

/// Why the bytes of a stream are not a sequence of requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A head the parser refuses.
    #[error("invalid request head: {0}")]
    Head(#[from] HeadError),
    /// A chunked body with broken framing.
    #[error("invalid chunked body: {0}")]
    Chunked(#[from] ChunkError),
    /// No head end in sight.
    #[error("request head longer than {MAX_HEAD_LEN} bytes")]
    HeadTooLong,
}

/// Where the body of the current request stands.
#[derive(Debug, Clone, Default)]
enum Body {
    /// Between requests (or inside a head).
    #[default]
    None,
    /// This many bytes left.
    Remaining(u64),
    /// Chunked, followed by the scanner.
    Chunked(ChunkedScanner),
}

/// The route a complete head asks for, as owned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadTarget {
    /// Method token.
    pub method: Vec<u8>,
    /// Host the request is routed on (empty if none).
    pub host: Vec<u8>,
    /// Path, without query.
    pub path: Vec<u8>,
}

/// A stream of requests and how far it was followed.
#[derive(Debug, Default)]
pub struct RequestStream {
    /// Bytes of a head not complete yet, or of a body not scanned yet.
    unparsed: Vec<u8>,
    body: Body,
    /// Complete heads seen so far.
    heads: usize,
    /// Raw bytes from now on (after a 101): not followed any more.
    piped: bool,
    headers: Vec<crate::http::parser::HeaderSpan>,
}

impl RequestStream {
    /// Follows `bytes`; returns the targets of the heads they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<HeadTarget>, StreamError> {
        let mut targets = Vec::new();
        if self.piped {
            return Ok(targets);
        }
        self.unparsed.extend_from_slice(bytes);
        while !self.unparsed.is_empty() {
            let consumed = match &mut self.body {
                Body::Remaining(left) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(self.unparsed.len());
                    *left -= take as u64;
                    if *left == 0 {
                        self.body = Body::None;
                    }
                    take
                }
                Body::Chunked(scanner) => {
                    let progress = scanner.feed(&self.unparsed)?;
                    if progress.done {
                        self.body = Body::None;
                    }
                    progress.consumed
                }
                Body::None => match self.next_head()? {
                    Some((len, target)) => {
                        targets.push(target);
                        len
                    }
                    None => break,
                },
            };
            self.unparsed.drain(..consumed);
            if consumed == 0 {
                break;
            }
        }
        Ok(targets)
    }

    /// Parses the head at the start of the unparsed bytes, if complete.
    fn next_head(&mut self) -> Result<Option<(usize, HeadTarget)>, StreamError> {
        let options = RequestOptions {
            sticky_cookie: None,
        };
        let head = match parse_request(&self.unparsed, &options, &mut self.headers)? {
            Parsed::Complete(head) => head,
            Parsed::Partial if self.unparsed.len() > MAX_HEAD_LEN => {
                return Err(StreamError::HeadTooLong)
            }
            Parsed::Partial => return Ok(None),
        };
        let buf = &self.unparsed;
        let target = HeadTarget {
            method: head.method.of(buf).to_vec(),
            host: head.host.map_or(&[][..], |h| h.of(buf)).to_vec(),
            path: head.path.of(buf).to_vec(),
        };
        self.heads += 1;
        self.body = match head.framing {
            BodyFraming::None | BodyFraming::ContentLength(0) => Body::None,
            BodyFraming::ContentLength(n) => Body::Remaining(n),
            BodyFraming::Chunked => Body::Chunked(ChunkedScanner::new()),
            // Requests are never framed by close: the parser gives no such framing.
            BodyFraming::UntilClose => Body::None,
        };
        Ok(Some((head.len, target)))
    }

    /// Complete heads seen so far.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The stream ends between two requests (or was piped after a 101).
    pub fn at_boundary(&self) -> bool {
        self.piped || (matches!(self.body, Body::None) && self.unparsed.is_empty())
    }

    /// From now on the bytes are a raw pipe.
    pub fn pipe(&mut self) {
        self.piped = true;
        self.unparsed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_anywhere_are_framed_alike() {
        let bytes = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
            POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nGET\r\n0\r\n\r\n\
            GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
        for split in 0..bytes.len() {
            let mut stream = RequestStream::default();
            let mut targets = stream.feed(&bytes[..split]).unwrap();
            targets.extend(stream.feed(&bytes[split..]).unwrap());
            let paths: Vec<&[u8]> = targets.iter().map(|t| &t.path[..]).collect();
            assert_eq!(paths, [&b"/a"[..], b"/b", b"/c"], "split at {split}");
            assert!(stream.at_boundary());
        }
    }

    #[test]
    fn a_body_is_not_a_request_and_garbage_is_an_error() {
        let mut stream = RequestStream::default();
        let body = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\nGET / HTTP/1.1\r\n";
        assert_eq!(stream.feed(body).unwrap().len(), 1);
        assert!(stream.at_boundary());
        stream.feed(b"GET / HTTP/1.1\r\nHo").unwrap();
        assert!(!stream.at_boundary());
        let mut garbage = RequestStream::default();
        assert!(garbage.feed(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }
}
