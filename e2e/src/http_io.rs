//! Buffered reading of HTTP/1.1 messages, shared by the mock backend
//! (requests) and the test client (responses): heads, chunked and
//! fixed-length bodies. Deliberately plain and strict: it is the reference
//! the proxy is checked against, not a proxy itself.

use std::io::{self, Read};

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

/// Errors of reading an HTTP message.
#[derive(Debug, thiserror::Error)]
pub enum HttpIoError {
    /// The socket failed (including read timeouts).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed in the middle of a message.
    #[error("connection closed in the middle of {0}")]
    UnexpectedEof(&'static str),
    /// A head or line was longer than allowed.
    #[error("{0} longer than allowed")]
    TooLong(&'static str),
    /// A chunk-size line was not hexadecimal.
    #[error("bad chunk size line {0:?}")]
    BadChunkSize(String),
}

/// A stream with a read buffer that keeps what was read past the current
/// message for the next one (pipelining, keep-alive).
pub(crate) struct BufferedStream<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl<S: Read> BufferedStream<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Whether bytes are buffered but not consumed yet.
    pub(crate) fn has_buffered(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Reads more bytes into the buffer; 0 means end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let start = self.buffer.len();
        self.buffer.resize(start + READ_SIZE, 0);
        let read = self.stream.read(&mut self.buffer[start..]);
        self.buffer.truncate(start + *read.as_ref().unwrap_or(&0));
        read
    }

    /// The next head, up to and including its empty line; `None` when the
    /// stream ends cleanly before the first byte of a head.
    pub(crate) fn read_head(&mut self, max: usize) -> Result<Option<Vec<u8>>, HttpIoError> {
        let mut searched = 0;
        loop {
            if let Some(at) = find(&self.buffer[searched..], b"\r\n\r\n") {
                let end = searched + at + 4;
                return Ok(Some(self.buffer.drain(..end).collect()));
            }
            if self.buffer.len() > max {
                return Err(HttpIoError::TooLong("head"));
            }
            searched = self.buffer.len().saturating_sub(3);
            if self.fill()? == 0 {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(HttpIoError::UnexpectedEof("a head")),
                };
            }
        }
    }

    /// One line without its CRLF.
    fn read_line(&mut self) -> Result<Vec<u8>, HttpIoError> {
        loop {
            if let Some(at) = find(&self.buffer, b"\r\n") {
                let mut line: Vec<u8> = self.buffer.drain(..at + 2).collect();
                line.truncate(at);
                return Ok(line);
            }
            if self.buffer.len() > MAX_LINE {
                return Err(HttpIoError::TooLong("line"));
            }
            if self.fill()? == 0 {
                return Err(HttpIoError::UnexpectedEof("a line"));
            }
        }
    }

    /// Consumes up to `len` buffered-or-read bytes, appending at most `keep`
    /// of the body's bytes to `body`; returns how many were consumed.
    fn consume(&mut self, len: usize, keep: usize, body: &mut Vec<u8>) -> io::Result<usize> {
        if self.buffer.is_empty() && self.fill()? == 0 {
            return Ok(0);
        }
        let n = len.min(self.buffer.len());
        let room = keep.saturating_sub(body.len()).min(n);
        body.extend_from_slice(&self.buffer[..room]);
        self.buffer.drain(..n);
        Ok(n)
    }

    /// Reads a body of exactly `len` bytes; returns `len`.
    pub(crate) fn read_fixed(
        &mut self,
        len: u64,
        keep: usize,
        body: &mut Vec<u8>,
    ) -> Result<u64, HttpIoError> {
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX);
            match self.consume(want, keep, body)? {
                0 => return Err(HttpIoError::UnexpectedEof("a body")),
                n => left -= n as u64,
            }
        }
        Ok(len)
    }

    /// Reads a chunked body, its last chunk and trailers; returns the
    /// decoded length.
    pub(crate) fn read_chunked(
        &mut self,
        keep: usize,
        body: &mut Vec<u8>,
    ) -> Result<u64, HttpIoError> {
        let mut total = 0;
        loop {
            let line = self.read_line()?;
            let size = parse_chunk_size(&line)?;
            if size == 0 {
                // Trailer fields, then the empty line.
                while !self.read_line()?.is_empty() {}
                return Ok(total);
            }
            total += self.read_fixed(size, keep, body)?;
            if !self.read_line()?.is_empty() {
                return Err(HttpIoError::BadChunkSize(
                    "missing CRLF after chunk data".into(),
                ));
            }
        }
    }

    /// Reads until the peer closes; returns the length read.
    pub(crate) fn read_to_close(
        &mut self,
        keep: usize,
        body: &mut Vec<u8>,
    ) -> Result<u64, HttpIoError> {
        let mut total = 0;
        loop {
            match self.consume(usize::MAX, keep, body)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpIoError> {
    let bad = || HttpIoError::BadChunkSize(String::from_utf8_lossy(line).into_owned());
    let digits = line.split(|b| *b == b';').next().unwrap_or_default();
    let digits = std::str::from_utf8(digits)
        .map_err(|_| bad())?
        .trim_end_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad())
}

/// Position of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Headers parsed from a head, as owned (name, value) pairs.
pub(crate) fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// The value of the first header named `name` (case-insensitive).
pub(crate) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether a comma-separated header (Connection, Transfer-Encoding) holds
/// `token`, case-insensitively.
pub(crate) fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(bytes: &[u8]) -> BufferedStream<&[u8]> {
        BufferedStream::new(bytes)
    }

    #[test]
    fn heads_are_split_at_the_empty_line_and_the_rest_is_kept() {
        let mut s = stream(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
        assert_eq!(
            s.read_head(1024).unwrap().unwrap(),
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        );
        assert_eq!(
            s.read_head(1024).unwrap().unwrap(),
            b"GET /2 HTTP/1.1\r\n\r\n"
        );
        assert!(s.read_head(1024).unwrap().is_none());
    }

    #[test]
    fn a_truncated_head_is_an_error() {
        let mut s = stream(b"GET / HTTP/1.1\r\n");
        assert!(matches!(
            s.read_head(1024),
            Err(HttpIoError::UnexpectedEof(_))
        ));
    }

    #[test]
    fn chunked_bodies_are_decoded_with_extensions_and_trailers() {
        let mut s = stream(b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nnext");
        let mut body = Vec::new();
        assert_eq!(s.read_chunked(usize::MAX, &mut body).unwrap(), 13);
        assert_eq!(body, b"abc0123456789");
        assert_eq!(s.buffer, b"next");
    }

    #[test]
    fn bad_chunk_sizes_are_rejected() {
        for input in [&b"zz\r\n"[..], b"\r\n", b"-1\r\n", b"3\r\nabcX\r\n"] {
            let mut body = Vec::new();
            assert!(
                stream(input).read_chunked(10, &mut body).is_err(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn fixed_bodies_keep_at_most_the_asked_bytes() {
        let mut s = stream(b"0123456789rest");
        let mut body = Vec::new();
        assert_eq!(s.read_fixed(10, 4, &mut body).unwrap(), 10);
        assert_eq!(body, b"0123");
        assert_eq!(s.buffer, b"rest");
    }

    #[test]
    fn connection_tokens_are_found_in_lists() {
        let headers = vec![("connection".to_owned(), "Upgrade, Close".to_owned())];
        assert!(header_has_token(&headers, "Connection", "close"));
        assert!(!header_has_token(&headers, "Connection", "keep-alive"));
    }
}
