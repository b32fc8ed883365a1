//! The PROXY protocol (HAProxy's specification, versions 1 and 2), sans-IO.
//!
//! A load balancer in front of Sluice that terminates the client's TCP connection opens
//! its own, and starts it with a header saying where the client connected from and to.
//! [`parse`] is fed the first bytes of such a connection, as many as have arrived, and
//! says whether the header is complete, how long it is, and which addresses it carries.
//!
//! - Version 1 is one text line: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or
//!   `TCP6`), or `PROXY UNKNOWN…\r\n`, at most [`V1_MAX_LEN`] bytes with its CRLF.
//! - Version 2 is binary: a 12-byte signature, a version/command byte (`LOCAL`: a
//!   connection of the load balancer itself, no address; `PROXY`), a family/protocol
//!   byte, a big-endian length, then the addresses and optional TLVs (skipped). Lengths
//!   over [`V2_MAX_PAYLOAD`] are refused, so the header fits a small fixed buffer.
//!
//! Addresses are only reported for TCP over IPv4 or IPv6; any other family (UNSPEC,
//! UDP, UNIX) is accepted and reported without address, as is `LOCAL` and `UNKNOWN`:
//! the caller then uses the socket's own peer.
//!
//! An invalid byte is reported as soon as it is seen, so that a client that speaks
//! something else is turned away without waiting for more input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// Longest version 1 header, CRLF included (the specification's bound).
pub const V1_MAX_LEN: usize = 107;
/// Longest version 2 payload (addresses and TLVs) accepted.
pub const V2_MAX_PAYLOAD: usize = 512;
/// Longest header of either version: a buffer this big always holds a whole one.
pub const MAX_HEADER_LEN: usize = V2_HEADER_LEN + V2_MAX_PAYLOAD;

/// How every version 1 header starts.
const V1_PREFIX: &[u8] = b"PROXY ";
/// How every version 2 header starts.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/protocol and length.
const V2_HEADER_LEN: usize = 16;

/// What the first bytes of a connection hold so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A valid beginning of a header: more bytes are needed.
    Incomplete,
    /// A whole header.
    Done {
        /// Its length: the connection's own bytes start after it.
        header_len: usize,
        /// Where the client connected from, when the header says it.
        source: Option<SocketAddr>,
        /// Where the client connected to, when the header says it.
        destination: Option<SocketAddr>,
    },
}

/// Why the first bytes of a connection are not a PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProxyHeaderError {
    /// Neither a version 1 nor a version 2 header (the client spoke directly).
    #[error("no PROXY protocol signature")]
    BadSignature,
    /// A version 1 line without its CRLF within the first 107 bytes.
    #[error("PROXY protocol v1 line longer than {V1_MAX_LEN} bytes")]
    LineTooLong,
    /// A version 1 field that cannot be read.
    #[error("invalid PROXY protocol v1 {0}")]
    InvalidV1Field(V1Field),
    /// A version 2 header whose version nibble is not 2.
    #[error("unsupported PROXY protocol version {0}")]
    UnsupportedVersion(u8),
    /// A version 2 command other than `LOCAL` and `PROXY`.
    #[error("unknown PROXY protocol v2 command {0:#x}")]
    UnknownCommand(u8),
    /// A version 2 family/protocol byte the specification does not define.
    #[error("unknown PROXY protocol v2 family {0:#x}")]
    UnknownFamily(u8),
    /// A version 2 payload longer than [`V2_MAX_PAYLOAD`].
    #[error("PROXY protocol v2 payload of {0} bytes (at most {V2_MAX_PAYLOAD})")]
    TooLong(usize),
    /// A version 2 payload too short for the addresses of its family.
    #[error("PROXY protocol v2 payload of {len} bytes, {needed} needed for its addresses")]
    AddressesTruncated {
        /// The payload length the header announced.
        len: usize,
        /// The bytes the family's addresses take.
        needed: usize,
    },
}

/// The version 1 field that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Field {
    /// The line does not end with CRLF, or holds a byte that cannot be in it.
    Line,
    /// The protocol: `TCP4`, `TCP6` or `UNKNOWN`.
    Protocol,
    /// The source address.
    SourceAddress,
    /// The destination address.
    DestinationAddress,
    /// The source port.
    SourcePort,
    /// The destination port.
    DestinationPort,
    /// Something after the destination port.
    Trailing,
}

impl std::fmt::Display for V1Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            V1Field::Line => "line",
            V1Field::Protocol => "protocol",
            V1Field::SourceAddress => "source address",
            V1Field::DestinationAddress => "destination address",
            V1Field::SourcePort => "source port",
            V1Field::DestinationPort => "destination port",
            V1Field::Trailing => "trailing field",
        })
    }
}

/// Reads the header at the start of `bytes`, the first bytes a connection received.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if starts_like(bytes, V1_PREFIX) {
        parse_v1(bytes)
    } else if starts_like(bytes, V2_SIGNATURE) {
        parse_v2(bytes)
    } else {
        Err(ProxyHeaderError::BadSignature)
    }
}

/// True when `bytes` and `expected` agree on their common length.
fn starts_like(bytes: &[u8], expected: &[u8]) -> bool {
    let n = bytes.len().min(expected.len());
    bytes[..n] == expected[..n]
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let window = &bytes[..bytes.len().min(V1_MAX_LEN)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if window.iter().any(|&b| !is_v1_byte(b)) {
            return Err(ProxyHeaderError::InvalidV1Field(V1Field::Line));
        }
        return if bytes.len() >= V1_MAX_LEN {
            Err(ProxyHeaderError::LineTooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = match window[..newline].split_last() {
        Some((b'\r', line)) if line.len() >= V1_PREFIX.len() => &line[V1_PREFIX.len()..],
        _ => return Err(ProxyHeaderError::InvalidV1Field(V1Field::Line)),
    };
    if line.iter().any(|&b| !is_v1_byte(b) || b == b'\r') {
        return Err(ProxyHeaderError::InvalidV1Field(V1Field::Line));
    }
    let header_len = newline + 1;
    let mut fields = line.split(|&b| b == b' ');
    let v6 = match fields.next() {
        Some(b"UNKNOWN") => {
            // The specification says whatever follows UNKNOWN is to be ignored.
            return Ok(Parsed::Done {
                header_len,
                source: None,
                destination: None,
            });
        }
        Some(b"TCP4") => false,
        Some(b"TCP6") => true,
        _ => return Err(ProxyHeaderError::InvalidV1Field(V1Field::Protocol)),
    };
    let source = v1_ip(fields.next(), v6, V1Field::SourceAddress)?;
    let destination = v1_ip(fields.next(), v6, V1Field::DestinationAddress)?;
    let source_port = v1_port(fields.next(), V1Field::SourcePort)?;
    let destination_port = v1_port(fields.next(), V1Field::DestinationPort)?;
    if fields.next().is_some() {
        return Err(ProxyHeaderError::InvalidV1Field(V1Field::Trailing));
    }
    Ok(Parsed::Done {
        header_len,
        source: Some(SocketAddr::new(source, source_port)),
        destination: Some(SocketAddr::new(destination, destination_port)),
    })
}

/// Bytes a version 1 line may hold before its LF: printable ASCII and CR.
fn is_v1_byte(byte: u8) -> bool {
    byte == b'\r' || (b' '..=b'~').contains(&byte)
}

fn v1_ip(field: Option<&[u8]>, v6: bool, which: V1Field) -> Result<IpAddr, ProxyHeaderError> {
    let invalid = ProxyHeaderError::InvalidV1Field(which);
    let text = field
        .and_then(|f| std::str::from_utf8(f).ok())
        .ok_or(invalid.clone())?;
    let ip = if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    ip.map_err(|_| invalid)
}

/// A decimal port: digits only, no leading zero (as the specification writes them).
fn v1_port(field: Option<&[u8]>, which: V1Field) -> Result<u16, ProxyHeaderError> {
    let invalid = ProxyHeaderError::InvalidV1Field(which);
    let digits = field.ok_or(invalid.clone())?;
    let well_formed = !digits.is_empty()
        && digits.len() <= 5
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0');
    if !well_formed {
        return Err(invalid);
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(invalid)
}

/// Version 2 command: a connection of the load balancer itself.
const COMMAND_LOCAL: u8 = 0x0;
/// Version 2 command: a proxied connection.
const COMMAND_PROXY: u8 = 0x1;
/// TCP over IPv4: two addresses of 4 bytes, two ports.
const TCP_OVER_IPV4: u8 = 0x11;
/// TCP over IPv6: two addresses of 16 bytes, two ports.
const TCP_OVER_IPV6: u8 = 0x21;

fn parse_v2(bytes: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let Some(&version_command) = bytes.get(12) else {
        return Ok(Parsed::Incomplete);
    };
    let version = version_command >> 4;
    if version != 2 {
        return Err(ProxyHeaderError::UnsupportedVersion(version));
    }
    let command = version_command & 0x0f;
    if command != COMMAND_LOCAL && command != COMMAND_PROXY {
        return Err(ProxyHeaderError::UnknownCommand(command));
    }
    let Some(&family) = bytes.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    // Address families 0 to 3 (UNSPEC, INET, INET6, UNIX), transports 0 to 2
    // (UNSPEC, STREAM, DGRAM): anything else the specification says to reject.
    if family >> 4 > 3 || family & 0x0f > 2 {
        return Err(ProxyHeaderError::UnknownFamily(family));
    }
    let (Some(&high), Some(&low)) = (bytes.get(14), bytes.get(15)) else {
        return Ok(Parsed::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([high, low]));
    if len > V2_MAX_PAYLOAD {
        return Err(ProxyHeaderError::TooLong(len));
    }
    let needed = match (command, family) {
        (COMMAND_PROXY, TCP_OVER_IPV4) => 12,
        (COMMAND_PROXY, TCP_OVER_IPV6) => 36,
        _ => 0,
    };
    if len < needed {
        return Err(ProxyHeaderError::AddressesTruncated { len, needed });
    }
    let header_len = V2_HEADER_LEN + len;
    let Some(payload) = bytes.get(V2_HEADER_LEN..header_len) else {
        return Ok(Parsed::Incomplete);
    };
    let addresses = match needed {
        0 => None,
        _ => v2_addresses(payload, (needed - 4) / 2),
    };
    Ok(Parsed::Done {
        header_len,
        source: addresses.map(|(source, _)| source),
        destination: addresses.map(|(_, destination)| destination),
    })
}

/// The source and destination of a payload holding two addresses of `ip_len` bytes (4
/// or 16) then two ports.
fn v2_addresses(payload: &[u8], ip_len: usize) -> Option<(SocketAddr, SocketAddr)> {
    let ip = |at: usize| -> Option<IpAddr> {
        let bytes = payload.get(at..at + ip_len)?;
        Some(match <[u8; 4]>::try_from(bytes) {
            Ok(v4) => IpAddr::from(v4),
            Err(_) => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        })
    };
    let port = |at: usize| -> Option<u16> {
        let bytes: [u8; 2] = payload.get(at..at + 2)?.try_into().ok()?;
        Some(u16::from_be_bytes(bytes))
    };
    let source = SocketAddr::new(ip(0)?, port(2 * ip_len)?);
    let destination = SocketAddr::new(ip(ip_len)?, port(2 * ip_len + 2)?);
    Some((source, destination))
}

#[cfg(test)]
mod tests;
