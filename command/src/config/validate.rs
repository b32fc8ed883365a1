//! Checks of single values, as pure functions from the text written to the
//! normalised value or to a message saying what would be valid. The readers
//! attach the position and key path.

use std::ops::RangeInclusive;
use std::time::Duration;

use regex::Regex;

use super::duration::format_duration;

/// Longest hostname accepted (RFC 1035).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest label of a hostname (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Longest name or id accepted.
const MAX_ID_LEN: usize = 128;

/// A whole number within `range`. The one message for a number out of range,
/// whether it comes from the file, `sluice ctl` or a state file.
pub(crate) fn number_in(value: i128, range: RangeInclusive<u64>) -> Result<u64, String> {
    match u64::try_from(value) {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(format!(
            "{value} is out of range, expected a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A duration within `range`; `text` is how it was written (`"48h"`). The one
/// message for a duration out of range, whatever its source.
pub(crate) fn duration_in(
    text: &str,
    duration: Duration,
    range: &RangeInclusive<Duration>,
) -> Result<Duration, String> {
    if range.contains(&duration) {
        return Ok(duration);
    }
    Err(format!(
        "duration {text:?} is out of range, expected {} to {}",
        format_duration(*range.start()),
        format_duration(*range.end()),
    ))
}

/// A duration given in milliseconds (from `sluice ctl` or a state file),
/// checked like the same duration in the file.
pub(crate) fn millis_in(millis: u32, range: &RangeInclusive<Duration>) -> Result<u32, String> {
    let duration = Duration::from_millis(u64::from(millis));
    duration_in(&format_duration(duration), duration, range).map(|_| millis)
}

/// A health check's timeout: at most its interval.
pub(crate) fn probe_timeout_within(timeout: Duration, interval: Duration) -> Result<(), String> {
    if timeout <= interval {
        return Ok(());
    }
    Err(format!(
        "timeout {} is longer than interval {}, expected at most the interval",
        format_duration(timeout),
        format_duration(interval),
    ))
}

/// The kind of a health check follows the cluster's protocol: an HTTP probe
/// (with a `uri`) for an HTTP cluster, a TCP connect (without) for a TCP one.
pub(crate) fn probe_uri_for(tcp: bool, uri: &str) -> Result<(), String> {
    match (tcp, uri.is_empty()) {
        (true, false) => Err(format!(
            "an HTTP health check (uri {uri:?}) cannot run on a tcp cluster, \
             expected no uri: a tcp cluster's check is a TCP connect"
        )),
        (false, true) => Err("an http cluster's health check needs a uri, like /health".to_owned()),
        _ => Ok(()),
    }
}

/// A frontend hostname: `*`, `*.example.com` or `api.example.com`, lowercased
/// because DNS names are case-insensitive and the router compares bytes.
pub(crate) fn hostname(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    let valid = lower == "*"
        || (name.len() <= MAX_HOSTNAME_LEN && name.split('.').all(valid_label))
        || (lower == name && is_bracketed_ipv6(name));
    if valid {
        Ok(lower)
    } else {
        Err(format!(
            "invalid hostname {text:?}, expected an exact name like api.example.com, \
             a wildcard like *.example.com, or *"
        ))
    }
}

/// A `Strict-Transport-Security` value: `max-age=SECONDS`, then optional
/// `; includeSubDomains` and `; preload` directives.
pub(crate) fn hsts(text: &str) -> Result<String, String> {
    let mut directives = text.split(';').map(str::trim);
    let max_age = directives
        .next()
        .and_then(|first| first.strip_prefix("max-age="))
        .filter(|seconds| !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit()));
    let known = directives.all(|directive| {
        directive.eq_ignore_ascii_case("includeSubDomains")
            || directive.eq_ignore_ascii_case("preload")
    });
    if max_age.is_some() && known {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid hsts {text:?}, expected a Strict-Transport-Security value like \
             \"max-age=31536000; includeSubDomains\""
        ))
    }
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_bracketed_ipv6(name: &str) -> bool {
    name.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
}

/// A prefix or exact path: starts with `/`, no spaces or control characters.
pub(crate) fn plain_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') && text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid path {text:?}, expected a path starting with / without spaces, like /api/"
        ))
    }
}

/// A regex path, compiled once here so that the worker never meets a bad one.
pub(crate) fn regex_path(text: &str) -> Result<String, String> {
    match Regex::new(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(error) => Err(format!("invalid regex {text:?}: {}", regex_reason(&error))),
    }
}

/// The regex crate writes a multi-line diagram; its last `error:` line is
/// the reason, which is what fits in a one-line message.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map_or_else(|| text.lines().collect::<Vec<_>>().join(" "), str::to_owned)
}

/// An HTTP method as sent on the wire: upper-case letters.
pub(crate) fn method(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid method {text:?}, expected an upper-case HTTP method like GET or POST"
        ))
    }
}

/// A cookie name (an RFC 6265 token).
pub(crate) fn cookie_name(text: &str) -> Result<String, String> {
    let separator = |b: u8| b"()<>@,;:\\\"/[]?={}".contains(&b);
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() && !separator(b)) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid cookie name {text:?}, expected letters, digits and !#$%&'*+-.^_`|~ like SLUICEID"
        ))
    }
}

/// A cluster name: it appears in commands, logs and metric labels.
pub(crate) fn cluster_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid cluster name {text:?}, expected 1 to {MAX_ID_LEN} letters, digits, '.', '_' or '-'"
        ))
    }
}

/// A backend id or sticky id: it also travels in a cookie value, so no
/// spaces, quotes, commas, semicolons or backslashes.
pub(crate) fn backend_id(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid id {text:?}, expected 1 to {MAX_ID_LEN} visible ASCII characters \
             other than \" , ; \\"
        ))
    }
}

/// The path and query of a health probe.
pub(crate) fn probe_uri(text: &str) -> Result<String, String> {
    if text.starts_with('/') && text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid uri {text:?}, expected a path starting with / without spaces, like /health"
        ))
    }
}

/// `"200-399"` or `"200"`: the statuses a health probe accepts.
pub(crate) fn status_range(text: &str) -> Result<(u32, u32), String> {
    let status = |s: &str| s.parse::<u32>().ok().filter(|s| (100..=599).contains(s));
    let range = match text.split_once('-') {
        Some((min, max)) => status(min).zip(status(max)),
        None => status(text).map(|s| (s, s)),
    };
    match range {
        Some((min, max)) if min <= max => Ok((min, max)),
        _ => Err(format!(
            "invalid status range {text:?}, expected a status or an ordered range \
             between 100 and 599, like \"200-399\" or \"200\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        let valid = [
            ("*", "*"),
            ("api.example.com", "api.example.com"),
            ("API.Example.COM", "api.example.com"),
            ("*.example.com", "*.example.com"),
            ("localhost", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "[::1]"),
            ("my_host.internal", "my_host.internal"),
        ];
        for (text, normalised) in valid {
            assert_eq!(hostname(text).as_deref(), Ok(normalised), "{text}");
        }
        let long_label = "a".repeat(64);
        for text in [
            "",
            "exa mple.com",
            "*example.com",
            "a.*.com",
            "**",
            "example..com",
            ".example.com",
            "example.com.",
            "-a.com",
            "a-.com",
            "a:80",
            &long_label,
            "*.[::1]",
            "[nope]",
        ] {
            assert!(hostname(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn paths_and_regexes() {
        assert!(plain_path("/").is_ok());
        assert!(plain_path("/api/v1").is_ok());
        assert!(plain_path("api").is_err());
        assert!(plain_path("/a b").is_err());
        assert!(regex_path("^/api/[0-9]+$").is_ok());
        assert_eq!(
            regex_path("(").unwrap_err(),
            "invalid regex \"(\": unclosed group"
        );
    }

    #[test]
    fn status_ranges() {
        assert_eq!(status_range("200-399"), Ok((200, 399)));
        assert_eq!(status_range("204"), Ok((204, 204)));
        for text in [
            "",
            "399-200",
            "200-",
            "abc",
            "99",
            "600",
            "200-700",
            "200 - 399",
        ] {
            assert!(status_range(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn names_methods_and_cookies() {
        assert!(method("GET").is_ok());
        assert!(method("get").is_err());
        assert!(method("").is_err());
        assert!(cookie_name("SLUICEID").is_ok());
        assert!(cookie_name("a=b").is_err());
        assert!(cookie_name("").is_err());
        assert!(cluster_name("web-1.eu_west").is_ok());
        assert!(cluster_name("web 1").is_err());
        assert!(backend_id("127.0.0.1:8081").is_ok());
        assert!(backend_id("[::1]:80").is_ok());
        assert!(backend_id("a;b").is_err());
        assert!(probe_uri("/health?full=1").is_ok());
        assert!(probe_uri("health").is_err());
    }
}
