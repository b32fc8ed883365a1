//! `[[listeners]]`: the sockets Sluice accepts connections on.

use std::{net::SocketAddr, ops::RangeInclusive, time::Duration};

use super::{
    answers::parse_answers,
    defaults::*,
    duration::millis_u32,
    error::ConfigError,
    reader::{Field, Table},
    root::optional,
    tls::parse_tls,
    ListenerConfig,
};
use crate::proto;

/// Keys of an HTTP listener.
const HTTP_KEYS: &[&str] = &[
    "protocol",
    "address",
    "front_timeout",
    "back_timeout",
    "connect_timeout",
    "request_timeout",
    "expect_proxy",
    "answers",
    "max_request_body",
    "tls",
    "min_tls_version",
    "cipher_suites",
    "alpn",
    "strict_sni",
];

/// Keys of a TCP listener: no request, hence no request timeout or answers.
const TCP_KEYS: &[&str] = &[
    "protocol",
    "address",
    "front_timeout",
    "back_timeout",
    "connect_timeout",
    "expect_proxy",
    "tls",
    "min_tls_version",
    "cipher_suites",
    "alpn",
    "strict_sni",
];

/// Timeouts must free a stuck session within a day, and zero would close
/// every session at once.
pub(crate) const TIMEOUT_RANGE: RangeInclusive<Duration> = Duration::from_millis(1)..=MAX_DURATION;

/// The protocol of a listener, cluster or frontend, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Tcp,
}

impl Protocol {
    pub(crate) const CHOICES: &'static [(&'static str, Protocol)] =
        &[("http", Protocol::Http), ("tcp", Protocol::Tcp)];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Tcp => "tcp",
        }
    }

    /// "an http" or "a tcp", for messages.
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            Protocol::Http => "an http",
            Protocol::Tcp => "a tcp",
        }
    }

    pub(crate) fn to_proto(self) -> proto::ListenerProtocol {
        match self {
            Protocol::Http => proto::ListenerProtocol::Http,
            Protocol::Tcp => proto::ListenerProtocol::Tcp,
        }
    }

    /// Reads the `protocol` key of a table (default http) before the table's
    /// keys are checked, since the allowed keys depend on it.
    pub(crate) fn of(field: &Field<'_>) -> Result<Protocol, ConfigError> {
        let protocol = field.map()?.get("protocol");
        Ok(match protocol {
            Some(protocol) => protocol.choice(Protocol::CHOICES)?,
            None => Protocol::Http,
        })
    }
}

/// A listener and what later checks need to point back at it.
pub(crate) struct ParsedListener<'a> {
    pub(crate) config: ListenerConfig,
    pub(crate) address: SocketAddr,
    pub(crate) protocol: Protocol,
    /// Whether it terminates TLS (`protocol = "https"`, or `tls = true` on tcp).
    pub(crate) tls: bool,
    /// Key path, like `listeners[0]`.
    pub(crate) path: String,
    pub(crate) field: Field<'a>,
}

/// Parses every listener; two listeners may not share an address.
pub(crate) fn parse_listeners<'a>(
    field: Option<Field<'a>>,
) -> Result<Vec<ParsedListener<'a>>, ConfigError> {
    let Some(field) = field else {
        return Ok(Vec::new());
    };
    let mut listeners: Vec<ParsedListener<'a>> = Vec::new();
    for item in field.array()? {
        let listener = parse_listener(item)?;
        if let Some(first) = listeners.iter().find(|l| l.address == listener.address) {
            let address_field = listener.field.map()?.require("address")?;
            return Err(address_field.error(format!(
                "duplicate listener address {}, already used by {}",
                listener.address, first.path
            )));
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

fn parse_listener(field: Field<'_>) -> Result<ParsedListener<'_>, ConfigError> {
    let (protocol, https) = listener_protocol(&field)?;
    let keys = match protocol {
        Protocol::Http => HTTP_KEYS,
        Protocol::Tcp => TCP_KEYS,
    };
    let table = field.table(keys)?;
    let address = table.require("address")?.socket_addr()?;
    let timeouts = timeouts(&table)?;
    let expect_proxy = optional(&table, "expect_proxy", Field::bool)?.unwrap_or(false);
    let tls = parse_tls(&table, protocol, https)?;
    let config = match protocol {
        Protocol::Http => ListenerConfig::Http(proto::HttpListener {
            tls: tls.clone(),
            address: address.to_string(),
            timeouts,
            answers: optional(&table, "answers", parse_answers)?.unwrap_or_default(),
            expect_proxy,
            sticky_cookie_name: None,
            // 0 means no limit, like an absent key: keep one spelling of it.
            max_request_body: optional(&table, "max_request_body", Field::size)?
                .filter(|&size| size > 0),
        }),
        Protocol::Tcp => ListenerConfig::Tcp(proto::TcpListener {
            tls: tls.clone(),
            address: address.to_string(),
            timeouts,
            expect_proxy,
        }),
    };
    Ok(ParsedListener {
        config,
        address,
        protocol,
        tls: tls.is_some(),
        path: field.path(),
        field,
    })
}

/// The `protocol` of a listener: `http`, `https` (an http listener that
/// terminates TLS) or `tcp`; default http.
fn listener_protocol(field: &Field<'_>) -> Result<(Protocol, bool), ConfigError> {
    const CHOICES: &[(&str, (Protocol, bool))] = &[
        ("http", (Protocol::Http, false)),
        ("https", (Protocol::Http, true)),
        ("tcp", (Protocol::Tcp, false)),
    ];
    Ok(match field.map()?.get("protocol") {
        Some(protocol) => protocol.choice(CHOICES)?,
        None => (Protocol::Http, false),
    })
}

fn timeouts(table: &Table<'_>) -> Result<proto::Timeouts, ConfigError> {
    let timeout = |key: &str, default: Duration| -> Result<u32, ConfigError> {
        let duration = optional(table, key, |f| f.duration_in(TIMEOUT_RANGE))?;
        Ok(millis_u32(duration.unwrap_or(default)))
    };
    Ok(proto::Timeouts {
        front_timeout_ms: timeout("front_timeout", DEFAULT_FRONT_TIMEOUT)?,
        back_timeout_ms: timeout("back_timeout", DEFAULT_BACK_TIMEOUT)?,
        connect_timeout_ms: timeout("connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
        request_timeout_ms: timeout("request_timeout", DEFAULT_REQUEST_TIMEOUT)?,
    })
}
