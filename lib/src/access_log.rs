//! The access log: one line per HTTP request, buffered in memory and written once per
//! loop turn, so logging costs no system call per request and `off` costs nothing.
//!
//! Line format (space separated, `-` for absent values):
//! `client method host path status cluster backend bytes_in bytes_out connect_ms response_ms total_ms request_id`

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::http::session::RequestLog;

/// Lines kept in memory at most before new ones are dropped (and counted).
const MAX_BUFFERED: usize = 4 << 20;

pub use sluice_command::config::AccessLogTarget;

/// Buffered access-log writer.
#[derive(Debug)]
pub struct AccessLog {
    output: Option<Output>,
    buffer: Vec<u8>,
    dropped: u64,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File(File),
}

impl AccessLog {
    /// Opens the target (a file is created if missing, and appended to).
    pub fn open(target: &AccessLogTarget) -> io::Result<Self> {
        let output = match target {
            AccessLogTarget::Off => None,
            AccessLogTarget::Stdout => Some(Output::Stdout),
            AccessLogTarget::File(path) => Some(Output::File(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
        };
        Ok(AccessLog {
            output,
            buffer: Vec::new(),
            dropped: 0,
        })
    }

    /// True when lines are written somewhere.
    pub fn is_enabled(&self) -> bool {
        self.output.is_some()
    }

    /// Appends one request's line.
    pub fn record(
        &mut self,
        client: SocketAddr,
        cluster: Option<&str>,
        backend: Option<SocketAddr>,
        log: &RequestLog,
    ) {
        if self.output.is_none() {
            return;
        }
        if self.buffer.len() >= MAX_BUFFERED {
            self.dropped += 1;
            return;
        }
        let b = &mut self.buffer;
        let _ = write!(b, "{} ", client.ip());
        push_text(b, log.method());
        push_text(b, log.host());
        push_text(b, log.path());
        let _ = write!(b, "{} {} ", log.status, cluster.unwrap_or("-"));
        match backend {
            Some(address) => {
                let _ = write!(b, "{address} ");
            }
            None => b.extend_from_slice(b"- "),
        }
        let _ = write!(b, "{} {} ", log.bytes_in, log.bytes_out);
        push_millis(b, log.connect_time);
        push_millis(b, log.response_time);
        let _ = write!(b, "{:.3} ", log.total_time.as_secs_f64() * 1000.0);
        push_text(b, log.request_id());
        // `push_text` ends every field with a space; the line ends here instead.
        b.pop();
        b.push(b'\n');
    }

    /// Writes the buffered lines.
    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let result = match &mut self.output {
            Some(Output::Stdout) => io::stdout().lock().write_all(&self.buffer),
            Some(Output::File(file)) => file.write_all(&self.buffer),
            None => Ok(()),
        };
        if let Err(error) = result {
            log::warn!("access log write failed: {error}");
        }
        self.buffer.clear();
        if self.dropped > 0 {
            log::warn!(
                "access log: {} lines dropped (output too slow)",
                self.dropped
            );
            self.dropped = 0;
        }
    }
}

/// Appends a field, `-` when empty, with spaces and control bytes escaped as `\xNN`.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    if text.is_empty() {
        out.push(b'-');
    }
    for &byte in text {
        if byte.is_ascii_graphic() && byte != b'\\' {
            out.push(byte);
        } else {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push(b' ');
}

fn push_millis(out: &mut Vec<u8>, duration: Option<Duration>) {
    match duration {
        Some(d) => {
            let _ = write!(out, "{:.3} ", d.as_secs_f64() * 1000.0);
        }
        None => out.extend_from_slice(b"- "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_escaped() {
        let mut out = Vec::new();
        push_text(&mut out, b"/a b\n");
        push_text(&mut out, b"");
        assert_eq!(out, b"/a\\x20b\\x0a - ");
    }

    #[test]
    fn off_records_nothing() {
        let mut log = AccessLog::open(&AccessLogTarget::Off).unwrap();
        assert!(!log.is_enabled());
        log.flush();
        assert!(log.buffer.is_empty());
    }
}
