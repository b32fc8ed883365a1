use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

fn addr(text: &str) -> Option<SocketAddr> {
    Some(text.parse().expect("test address"))
}

fn done(header_len: usize, source: &str, destination: &str) -> Result<Parsed, ProxyHeaderError> {
    Ok(Parsed::Done {
        header_len,
        source: addr(source),
        destination: addr(destination),
    })
}

fn no_address(header_len: usize) -> Result<Parsed, ProxyHeaderError> {
    Ok(Parsed::Done {
        header_len,
        source: None,
        destination: None,
    })
}

fn invalid(field: V1Field) -> Result<Parsed, ProxyHeaderError> {
    Err(ProxyHeaderError::InvalidV1Field(field))
}

/// A version 2 header: version/command byte, family byte, payload.
fn v2(version_command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(version_command);
    header.push(family);
    let len = u16::try_from(payload.len()).expect("test payload length");
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

/// The payload of TCP over IPv4 from 192.0.2.1:56324 to 198.51.100.2:443.
const IPV4_PAYLOAD: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb];

fn ipv6_payload() -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    payload.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    payload.extend_from_slice(&4000u16.to_be_bytes());
    payload.extend_from_slice(&80u16.to_be_bytes());
    payload
}

#[test]
fn version_1_headers() {
    let longest_unknown = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 16));
    assert_eq!(longest_unknown.len(), V1_MAX_LEN);
    let too_long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 15));
    let cases: Vec<(&[u8], Result<Parsed, ProxyHeaderError>)> = vec![
        (
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /",
            done(45, "192.0.2.1:56324", "198.51.100.2:443"),
        ),
        (
            b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 80\r\n",
            done(44, "[2001:db8::1]:4000", "[2001:db8::2]:80"),
        ),
        (
            b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
            done(44, "0.0.0.0:0", "255.255.255.255:65535"),
        ),
        (b"PROXY UNKNOWN\r\n", no_address(15)),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nx", no_address(35)),
        (longest_unknown.as_bytes(), no_address(V1_MAX_LEN)),
        (b"", Ok(Parsed::Incomplete)),
        (b"PRO", Ok(Parsed::Incomplete)),
        (b"PROXY TCP4 192.0.2.1 198.51", Ok(Parsed::Incomplete)),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", Ok(Parsed::Incomplete)),
        (too_long.as_bytes(), Err(ProxyHeaderError::LineTooLong)),
        (b"GET / HTTP/1.1\r\n", Err(ProxyHeaderError::BadSignature)),
        (b"PROXY\r\n", Err(ProxyHeaderError::BadSignature)),
        (b"proxy TCP4", Err(ProxyHeaderError::BadSignature)),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", invalid(V1Field::Line)),
        (b"PROXY TCP4 1.2.3.4\x005.6.7.8", invalid(V1Field::Line)),
        (b"PROXY \r\n", invalid(V1Field::Protocol)),
        (
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            invalid(V1Field::Protocol),
        ),
        (
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            invalid(V1Field::SourceAddress),
        ),
        (
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            invalid(V1Field::SourceAddress),
        ),
        (
            b"PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
            invalid(V1Field::DestinationAddress),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            invalid(V1Field::SourcePort),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            invalid(V1Field::SourcePort),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            invalid(V1Field::SourcePort),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            invalid(V1Field::DestinationPort),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            invalid(V1Field::Trailing),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            invalid(V1Field::Trailing),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            parse(bytes),
            expected,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn version_2_headers() {
    let ipv4 = v2(0x21, 0x11, &IPV4_PAYLOAD);
    let mut with_tlvs = IPV4_PAYLOAD.to_vec();
    with_tlvs.extend_from_slice(&[0x04, 0x00, 0x03, b'a', b'b', b'c']);
    let cases: Vec<(Vec<u8>, Result<Parsed, ProxyHeaderError>)> = vec![
        (
            ipv4.clone(),
            done(28, "192.0.2.1:56324", "198.51.100.2:443"),
        ),
        (
            v2(0x21, 0x11, &with_tlvs),
            done(34, "192.0.2.1:56324", "198.51.100.2:443"),
        ),
        (
            v2(0x21, 0x21, &ipv6_payload()),
            done(52, "[2001:db8::1]:4000", "[2001:db8::2]:80"),
        ),
        (v2(0x20, 0x11, &IPV4_PAYLOAD), no_address(28)),
        (v2(0x20, 0x00, &[]), no_address(16)),
        (v2(0x21, 0x00, &[]), no_address(16)),
        (v2(0x21, 0x12, &IPV4_PAYLOAD), no_address(28)),
        (v2(0x21, 0x31, &[0; 216]), no_address(232)),
        (
            v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD]),
            done(528, "0.0.0.0:0", "0.0.0.0:0"),
        ),
        (ipv4[..12].to_vec(), Ok(Parsed::Incomplete)),
        (ipv4[..15].to_vec(), Ok(Parsed::Incomplete)),
        (ipv4[..27].to_vec(), Ok(Parsed::Incomplete)),
        (
            b"\r\n\r\n\0\r\nQUIT\r".to_vec(),
            Err(ProxyHeaderError::BadSignature),
        ),
        (
            v2(0x11, 0x11, &IPV4_PAYLOAD),
            Err(ProxyHeaderError::UnsupportedVersion(1)),
        ),
        (
            v2(0x22, 0x11, &IPV4_PAYLOAD),
            Err(ProxyHeaderError::UnknownCommand(2)),
        ),
        (
            v2(0x21, 0x41, &IPV4_PAYLOAD),
            Err(ProxyHeaderError::UnknownFamily(0x41)),
        ),
        (
            v2(0x21, 0x13, &IPV4_PAYLOAD),
            Err(ProxyHeaderError::UnknownFamily(0x13)),
        ),
        (
            v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD + 1])[..16].to_vec(),
            Err(ProxyHeaderError::TooLong(V2_MAX_PAYLOAD + 1)),
        ),
        (
            v2(0x21, 0x21, &IPV4_PAYLOAD),
            Err(ProxyHeaderError::AddressesTruncated {
                len: 12,
                needed: 36,
            }),
        ),
        (
            v2(0x21, 0x11, &IPV4_PAYLOAD[..11]),
            Err(ProxyHeaderError::AddressesTruncated {
                len: 11,
                needed: 12,
            }),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(parse(&bytes), expected, "{bytes:?}");
    }
}

/// Valid headers of every shape, followed by a few bytes of the connection itself.
fn valid_header() -> impl Strategy<Value = Vec<u8>> {
    let ipv4 = (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
    );
    let ipv6 = (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
    );
    prop_oneof![
        ipv4.prop_map(|(s, d, sp, dp)| format!(
            "PROXY TCP4 {} {} {sp} {dp}\r\n",
            Ipv4Addr::from(s),
            Ipv4Addr::from(d)
        )
        .into_bytes()),
        ipv6.prop_map(|(s, d, sp, dp)| format!(
            "PROXY TCP6 {} {} {sp} {dp}\r\n",
            Ipv6Addr::from(s),
            Ipv6Addr::from(d)
        )
        .into_bytes()),
        "[ -~]{0,90}".prop_map(|rest| format!("PROXY UNKNOWN {rest}\r\n").into_bytes()),
        (
            0x20u8..=0x21,
            prop::sample::select(vec![0x00u8, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]),
            prop::collection::vec(any::<u8>(), 36..=V2_MAX_PAYLOAD),
        )
            .prop_map(|(command, family, payload)| v2(command, family, &payload)),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn random_bytes_after_a_signature_never_panic(
        v2_header in any::<bool>(),
        rest in prop::collection::vec(any::<u8>(), 0..700),
    ) {
        let mut bytes = if v2_header { V2_SIGNATURE.to_vec() } else { V1_PREFIX.to_vec() };
        bytes.extend_from_slice(&rest);
        if let Ok(Parsed::Done { header_len, .. }) = parse(&bytes) {
            prop_assert!(header_len <= bytes.len() && header_len <= MAX_HEADER_LEN);
        }
    }

    #[test]
    fn a_valid_header_parses_the_same_however_it_is_split(
        header in valid_header(),
        trailing in prop::collection::vec(any::<u8>(), 0..64),
        split in any::<prop::sample::Index>(),
    ) {
        let mut bytes = header.clone();
        bytes.extend_from_slice(&trailing);
        let whole = parse(&bytes);
        let Ok(Parsed::Done { header_len, .. }) = whole else {
            return Err(TestCaseError::fail(format!("{whole:?} for {bytes:?}")));
        };
        prop_assert_eq!(header_len, header.len());
        // Every strict prefix of the header asks for more; with all of it, the same answer.
        let at = split.index(header.len());
        prop_assert_eq!(parse(&bytes[..at]), Ok(Parsed::Incomplete));
        prop_assert_eq!(parse(&bytes[..header.len()]), whole.clone());
        prop_assert_eq!(parse(&bytes[..header.len() + split.index(trailing.len() + 1)]), whole);
    }
}
