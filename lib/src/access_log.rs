//! The access log: one line per HTTP request, buffered in memory and written once per
//! loop turn, so logging costs no system call per request and `off` costs nothing.
//!
//! Text lines (`access_log_format = "text"`, space separated, `-` for absent values):
//! `time client method host path version status termination cluster backend_id
//! backend_address bytes_in bytes_out connect_ms response_ms total_ms request_id
//! "user agent"`. With `json`, one object per line with the same fields.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::parser::Version;
use crate::http::session::RequestLog;

/// Lines kept in memory at most before new ones are dropped (and counted).
const MAX_BUFFERED: usize = 4 << 20;

pub use sluice_command::config::{AccessLogFormat, AccessLogTarget};

/// What a request over TLS logs of its connection.
#[derive(Debug, Clone, Copy)]
pub struct LoggedTls<'a> {
    /// The TLS version negotiated (`TLSv1_3`…).
    pub version: &'static str,
    /// The cipher suite negotiated, as rustls names it.
    pub cipher_suite: &'static str,
    /// The name the client asked for (SNI), if any.
    pub sni: Option<&'a str>,
}

/// The backend a request went to, as the log names it.
#[derive(Debug, Clone, Copy)]
pub struct LoggedBackend<'a> {
    /// Its id in the cluster.
    pub id: &'a str,
    /// Its address.
    pub address: SocketAddr,
}

/// Buffered access-log writer.
#[derive(Debug)]
pub struct AccessLog {
    output: Option<Output>,
    format: AccessLogFormat,
    buffer: Vec<u8>,
    dropped: u64,
    clock: Clock,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File(File),
}

impl AccessLog {
    /// Opens the target (a file is created if missing, and appended to).
    pub fn open(target: &AccessLogTarget, format: AccessLogFormat) -> io::Result<Self> {
        let output = match target {
            AccessLogTarget::Off => None,
            AccessLogTarget::Stdout => Some(Output::Stdout),
            AccessLogTarget::File(path) => Some(Output::File(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
        };
        Ok(AccessLog {
            output,
            format,
            buffer: Vec::new(),
            dropped: 0,
            clock: Clock::default(),
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
        backend: Option<LoggedBackend<'_>>,
        log: &RequestLog,
        tls: Option<LoggedTls<'_>>,
    ) {
        if self.output.is_none() {
            return;
        }
        if self.buffer.len() >= MAX_BUFFERED {
            self.dropped += 1;
            return;
        }
        let now = self.clock.now();
        match self.format {
            AccessLogFormat::Text => {
                text_line(&mut self.buffer, now, client, cluster, backend, log, tls)
            }
            AccessLogFormat::Json => {
                json_line(&mut self.buffer, now, client, cluster, backend, log, tls)
            }
        }
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

/// The wall clock as RFC 3339 UTC with milliseconds (`2026-12-05T14:23:01.123Z`); the
/// date and time of day are formatted once per second.
#[derive(Debug, Default)]
struct Clock {
    second: u64,
    prefix: [u8; 19],
}

impl Clock {
    fn now(&mut self) -> [u8; 24] {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.at(since)
    }

    fn at(&mut self, since_epoch: Duration) -> [u8; 24] {
        let second = since_epoch.as_secs();
        if second != self.second || self.prefix[0] == 0 {
            self.second = second;
            self.prefix = date_time(second);
        }
        let mut text = [0u8; 24];
        text[..19].copy_from_slice(&self.prefix);
        let millis = since_epoch.subsec_millis();
        text[19] = b'.';
        text[20] = b'0' + (millis / 100) as u8;
        text[21] = b'0' + (millis / 10 % 10) as u8;
        text[22] = b'0' + (millis % 10) as u8;
        text[23] = b'Z';
        text
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (UTC, proleptic Gregorian calendar).
fn date_time(unix_seconds: u64) -> [u8; 19] {
    let days = (unix_seconds / 86_400) as i64;
    let of_day = unix_seconds % 86_400;
    // Days since 1970-01-01 to a civil date: eras of 400 years from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut text = [0u8; 19];
    let mut cursor = &mut text[..];
    let _ = write!(
        cursor,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60
    );
    text
}

fn version_name(version: Option<Version>) -> &'static str {
    match version {
        Some(Version::Http10) => "HTTP/1.0",
        Some(Version::Http11) => "HTTP/1.1",
        None => "-",
    }
}

fn text_line(
    b: &mut Vec<u8>,
    now: [u8; 24],
    client: SocketAddr,
    cluster: Option<&str>,
    backend: Option<LoggedBackend<'_>>,
    log: &RequestLog,
    tls: Option<LoggedTls<'_>>,
) {
    b.extend_from_slice(&now);
    let _ = write!(b, " {client} ");
    push_text(b, log.method());
    push_text(b, log.host());
    push_text(b, log.path());
    let _ = write!(
        b,
        "{} {} {} ",
        version_name(log.version),
        log.status,
        log.termination.as_str()
    );
    push_text(b, cluster.unwrap_or("").as_bytes());
    match backend {
        Some(backend) => {
            push_text(b, backend.id.as_bytes());
            let _ = write!(b, "{} ", backend.address);
        }
        None => b.extend_from_slice(b"- - "),
    }
    let _ = write!(b, "{} {} ", log.bytes_in, log.bytes_out);
    push_millis(b, log.connect_time);
    push_millis(b, log.response_time);
    let _ = write!(b, "{:.3} ", log.total_time.as_secs_f64() * 1000.0);
    push_text(b, log.request_id());
    b.push(b'"');
    push_quoted(b, log.user_agent());
    b.push(b'"');
    // Only requests over TLS have these: plain lines keep their fields.
    if let Some(tls) = tls {
        b.push(b' ');
        push_text(b, tls.version.as_bytes());
        push_text(b, tls.cipher_suite.as_bytes());
        push_text(b, tls.sni.unwrap_or("").as_bytes());
        b.pop();
    }
    b.push(b'\n');
}

fn json_line(
    b: &mut Vec<u8>,
    now: [u8; 24],
    client: SocketAddr,
    cluster: Option<&str>,
    backend: Option<LoggedBackend<'_>>,
    log: &RequestLog,
    tls: Option<LoggedTls<'_>>,
) {
    b.extend_from_slice(b"{\"time\":\"");
    b.extend_from_slice(&now);
    let _ = write!(b, "\",\"client\":\"{client}\",\"method\":");
    push_json(b, Some(log.method()));
    b.extend_from_slice(b",\"host\":");
    push_json(b, Some(log.host()).filter(|h| !h.is_empty()));
    b.extend_from_slice(b",\"path\":");
    push_json(b, Some(log.path()));
    b.extend_from_slice(b",\"version\":");
    push_json(b, log.version.map(|v| version_name(Some(v)).as_bytes()));
    let _ = write!(
        b,
        ",\"status\":{},\"termination\":\"{}\",\"cluster\":",
        log.status,
        log.termination.as_str()
    );
    push_json(b, cluster.map(str::as_bytes));
    b.extend_from_slice(b",\"backend\":");
    push_json(b, backend.map(|backend| backend.id.as_bytes()));
    b.extend_from_slice(b",\"backend_address\":");
    match backend {
        Some(backend) => {
            let _ = write!(b, "\"{}\"", backend.address);
        }
        None => b.extend_from_slice(b"null"),
    }
    let _ = write!(
        b,
        ",\"bytes_in\":{},\"bytes_out\":{},\"connect_ms\":",
        log.bytes_in, log.bytes_out
    );
    push_json_millis(b, log.connect_time);
    b.extend_from_slice(b",\"response_ms\":");
    push_json_millis(b, log.response_time);
    b.extend_from_slice(b",\"total_ms\":");
    push_json_millis(b, Some(log.total_time));
    b.extend_from_slice(b",\"request_id\":");
    push_json(b, Some(log.request_id()).filter(|id| !id.is_empty()));
    b.extend_from_slice(b",\"user_agent\":");
    push_json(b, Some(log.user_agent()).filter(|ua| !ua.is_empty()));
    b.extend_from_slice(b",\"tls_version\":");
    push_json(b, tls.map(|t| t.version.as_bytes()));
    b.extend_from_slice(b",\"tls_cipher\":");
    push_json(b, tls.map(|t| t.cipher_suite.as_bytes()));
    b.extend_from_slice(b",\"tls_sni\":");
    push_json(b, tls.and_then(|t| t.sni).map(str::as_bytes));
    b.extend_from_slice(b"}\n");
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

/// Appends the inside of a quoted field: `"`, `\` and non-printable bytes as `\xNN`.
fn push_quoted(out: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        if (byte == b' ' || byte.is_ascii_graphic()) && byte != b'\\' && byte != b'"' {
            out.push(byte);
        } else {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
}

/// A JSON string (bytes outside printable ASCII as `\u00NN`), or `null`.
fn push_json(out: &mut Vec<u8>, text: Option<&[u8]>) {
    let Some(text) = text else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    for &byte in text {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b' '..=b'~' => out.push(byte),
            _ => {
                let _ = write!(out, "\\u{byte:04x}");
            }
        }
    }
    out.push(b'"');
}

fn push_json_millis(out: &mut Vec<u8>, duration: Option<Duration>) {
    match duration {
        Some(d) => {
            let _ = write!(out, "{:.3}", d.as_secs_f64() * 1000.0);
        }
        None => out.extend_from_slice(b"null"),
    }
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
        let mut quoted = Vec::new();
        push_quoted(&mut quoted, b"curl/8 \"x\"\\");
        assert_eq!(quoted, b"curl/8 \\x22x\\x22\\x5c");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        push_json(&mut out, Some(b"a\"b\\c\n\xff"));
        assert_eq!(out, b"\"a\\\"b\\\\c\\u000a\\u00ff\"");
    }

    #[test]
    fn the_clock_writes_rfc3339_with_milliseconds() {
        let mut clock = Clock::default();
        // 2026-12-05T14:23:01.007Z
        let at = Duration::from_millis(1_796_480_581_007);
        assert_eq!(&clock.at(at), b"2026-12-05T14:23:01.007Z");
        assert_eq!(&date_time(0), b"1970-01-01T00:00:00");
        // A leap day.
        assert_eq!(&date_time(951_782_400), b"2000-02-29T00:00:00");
    }

    #[test]
    fn requests_over_tls_log_version_cipher_and_sni() {
        let client: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let log = RequestLog::empty();
        let tls = LoggedTls {
            version: "TLSv1_3",
            cipher_suite: "TLS13_AES_128_GCM_SHA256",
            sni: Some("a.test"),
        };
        let (mut plain, mut over_tls) = (Vec::new(), Vec::new());
        text_line(&mut plain, [b'T'; 24], client, None, None, &log, None);
        text_line(
            &mut over_tls,
            [b'T'; 24],
            client,
            None,
            None,
            &log,
            Some(tls),
        );
        assert!(
            plain.ends_with(b"\"\n"),
            "{}",
            String::from_utf8_lossy(&plain)
        );
        let line = String::from_utf8_lossy(&over_tls).into_owned();
        assert!(
            line.ends_with("\" TLSv1_3 TLS13_AES_128_GCM_SHA256 a.test\n"),
            "{line}"
        );
        let mut json = Vec::new();
        json_line(&mut json, [b'T'; 24], client, None, None, &log, Some(tls));
        let json = String::from_utf8_lossy(&json).into_owned();
        assert!(json.contains(",\"tls_version\":\"TLSv1_3\",\"tls_cipher\":\"TLS13_AES_128_GCM_SHA256\",\"tls_sni\":\"a.test\"}"), "{json}");
    }

    #[test]
    fn off_records_nothing() {
        let mut log = AccessLog::open(&AccessLogTarget::Off, AccessLogFormat::Text).unwrap();
        assert!(!log.is_enabled());
        log.flush();
        assert!(log.buffer.is_empty());
    }
}
