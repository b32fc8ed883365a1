//! A backend's address: `IP:PORT`, or `HOST:PORT` for a backend given by host
//! name, which the main process resolves into one backend per address (see
//! the README's "Backends by host name"). The same checks serve the file,
//! `sluice ctl backend add` and state files.

use std::fmt;
use std::net::SocketAddr;

use super::defaults::MAX_WEIGHT;
use super::validate;
use crate::proto::{self, BackendState};

/// Longest host name (RFC 1035).
const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Longest id or sticky id of a backend given by host name: each resolved backend
/// appends `@` and its address (at most 47 bytes, `@[IPv6]:65535`), and ids stay
/// within 128 bytes.
pub const MAX_NAMED_ID_LEN: usize = 80;

/// Where a backend listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendAddress {
    /// A socket address, used as is.
    Socket(SocketAddr),
    /// A host name (lower case) and port, resolved by the main process.
    Name {
        /// The host name, lower case, without a final dot.
        host: String,
        /// The port, not 0.
        port: u16,
    },
}

impl BackendAddress {
    /// The host name, for an address given by name.
    pub fn host(&self) -> Option<&str> {
        match self {
            BackendAddress::Socket(_) => None,
            BackendAddress::Name { host, .. } => Some(host),
        }
    }
}

impl fmt::Display for BackendAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddress::Socket(address) => address.fmt(f),
            BackendAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Parses `IP:PORT` or `HOST:PORT`, with a port other than 0.
pub fn parse_backend_address(text: &str) -> Result<BackendAddress, String> {
    let expected = "expected IP:PORT like 127.0.0.1:8080 or [::1]:8080, \
                    or HOST:PORT like api.internal:8080";
    if let Ok(address) = text.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(format!(
                "port 0 in {text:?} is not allowed, expected a fixed port like 127.0.0.1:8080"
            ));
        }
        return Ok(BackendAddress::Socket(address));
    }
    let invalid = || format!("invalid address {text:?}, {expected}");
    let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    if port == 0 {
        return Err(format!(
            "port 0 in {text:?} is not allowed, expected a fixed port like api.internal:8080"
        ));
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let labels_valid = host.split('.').all(valid_label);
    // All-digit labels read as a mistyped IPv4 address, not as a name.
    let numeric = host
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || host.len() > MAX_HOST_LEN || !labels_valid || numeric {
        return Err(invalid());
    }
    Ok(BackendAddress::Name { host, port })
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

/// Checks a backend given by host name as the state checks any backend (ids,
/// weight, state), plus the length its ids may have; returns it normalized (address
/// in canonical form, ready state absent) with its parsed address.
pub fn check_named_backend(
    backend: &proto::Backend,
) -> Result<(proto::Backend, BackendAddress), String> {
    let address = parse_backend_address(&backend.address)?;
    if address.host().is_none() {
        return Err(format!(
            "{} is not a host name: resolve_later applies to backends given by host name",
            backend.address
        ));
    }
    validate::cluster_name(&backend.cluster_id)?;
    named_id(&backend.backend_id)?;
    if let Some(sticky_id) = &backend.sticky_id {
        named_id(sticky_id)?;
    }
    validate::number_in(backend.weight.into(), 0..=u64::from(MAX_WEIGHT))?;
    let mut normalized = backend.clone();
    normalized.address = address.to_string();
    normalized.resolved_from = None;
    normalized.state = match backend.state.map(BackendState::try_from) {
        None | Some(Ok(BackendState::Ready)) => None,
        Some(Ok(state)) => Some(state as i32),
        Some(Err(_)) => return Err("unknown backend state, expected ready, drain or maint".into()),
    };
    Ok((normalized, address))
}

/// An id or sticky id of a backend given by host name: a backend id, short enough
/// for its resolved backends' ids.
pub fn named_id(text: &str) -> Result<String, String> {
    let id = validate::backend_id(text)?;
    if id.len() > MAX_NAMED_ID_LEN {
        return Err(format!(
            "id {text:?} is {} bytes long, expected at most {MAX_NAMED_ID_LEN} for a backend \
             given by host name (each of its addresses appends @IP:PORT)",
            id.len()
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_and_names_are_told_apart() {
        assert_eq!(
            parse_backend_address("127.0.0.1:80"),
            Ok(BackendAddress::Socket("127.0.0.1:80".parse().unwrap()))
        );
        assert_eq!(
            parse_backend_address("API.Internal.:8080"),
            Ok(BackendAddress::Name {
                host: "api.internal".into(),
                port: 8080
            })
        );
        assert_eq!(
            parse_backend_address("localhost:1").unwrap().to_string(),
            "localhost:1"
        );
    }

    #[test]
    fn bad_addresses_say_what_is_valid() {
        for text in [
            "api.internal",
            "api.internal:0",
            "api.internal:99999",
            ":80",
            "10.0.0.300:80",
            "bad host:80",
            "-a.b:80",
            "::1:80",
            "127.0.0.1:0",
        ] {
            let error = parse_backend_address(text).unwrap_err();
            assert!(error.contains(text), "{text}: {error}");
        }
    }

    #[test]
    fn named_ids_leave_room_for_the_address() {
        assert!(named_id(&"a".repeat(MAX_NAMED_ID_LEN)).is_ok());
        assert!(named_id(&"a".repeat(MAX_NAMED_ID_LEN + 1)).is_err());
    }
}
