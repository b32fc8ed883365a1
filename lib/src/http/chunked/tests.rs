use super::*;

/// Feeds `input` in pieces cut at `cuts`, returns (body length, done).
fn scan_split(input: &[u8], cuts: &[usize]) -> Result<(usize, bool), ChunkError> {
    let mut scanner = ChunkedScanner::new();
    let mut start = 0;
    let mut consumed = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        let progress = scanner.feed(&input[start..end])?;
        consumed += progress.consumed;
        if progress.done {
            return Ok((consumed, true));
        }
        assert_eq!(
            progress.consumed,
            end - start,
            "stopped early without being done"
        );
        start = end;
    }
    Ok((consumed, false))
}

const BODIES: &[&[u8]] = &[
    b"0\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;ext=1;b=\"q\"\r\nhello\r\n0\r\n\r\n",
    b"5 ;ext\r\nhello\r\n0 \r\n\r\n",
    b"A\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n",
    b"a\r\n0123456789\r\n0\r\nTrailer-A: x\r\nTrailer-B: y\r\n\r\n",
    b"00000003\r\nabc\r\n000\r\n\r\n",
    b"3\r\n\r\n\r\r\n0;last\r\n\r\n",
];

#[test]
fn valid_bodies_at_every_split() {
    for body in BODIES {
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(scan_split(&input, &[]), Ok((body.len(), true)));
        for cut in 0..=input.len() {
            assert_eq!(
                scan_split(&input, &[cut]),
                Ok((body.len(), true)),
                "cut {cut} of {body:?}"
            );
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(scan_split(&input, &every), Ok((body.len(), true)));
    }
}

#[test]
fn incomplete_bodies_are_not_done() {
    for body in BODIES {
        for len in 0..body.len() {
            assert_eq!(
                scan_split(&body[..len], &[]),
                Ok((len, false)),
                "{body:?} cut at {len}"
            );
        }
    }
}

#[test]
fn invalid_bodies() {
    let cases: &[(&[u8], ChunkError)] = &[
        (b"\r\n", ChunkError::InvalidSize),
        (b"g\r\n", ChunkError::InvalidSize),
        (b"-1\r\n", ChunkError::InvalidSize),
        (b"+1\r\n", ChunkError::InvalidSize),
        (b"0x1\r\n", ChunkError::InvalidSize),
        (b" 1\r\n", ChunkError::InvalidSize),
        (b"1 2\r\n", ChunkError::InvalidSize),
        (b"10000000000000000\r\n", ChunkError::SizeOverflow),
        (b"5\nhello\r\n", ChunkError::BareLf),
        (b"5;a\nhello\r\n", ChunkError::BareLf),
        (b"5\rhello\r\n", ChunkError::MissingCrlf),
        (b"5\r\nhelloX\r\n", ChunkError::MissingCrlf),
        (b"5\r\nhello\n0\r\n\r\n", ChunkError::BareLf),
        (b"5\r\nhello\rX", ChunkError::MissingCrlf),
        (b"0\r\n\n", ChunkError::BareLf),
        (b"0\r\nA: b\n\r\n", ChunkError::BareLf),
        (b"0\r\nA: b\r\r\n", ChunkError::MissingCrlf),
        (b"0\r\n\rX", ChunkError::MissingCrlf),
        (b"0\r\nA: \x00\r\n\r\n", ChunkError::ControlByte),
        (b"1;\x01\r\n", ChunkError::ControlByte),
    ];
    for (input, error) in cases {
        for cut in 0..=input.len() {
            assert_eq!(
                scan_split(input, &[cut]),
                Err(*error),
                "{:?} cut {cut}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn limits() {
    let mut long_extension = b"1;".to_vec();
    long_extension.extend(std::iter::repeat_n(b'a', MAX_EXTENSION_LEN + 1));
    assert_eq!(
        scan_split(&long_extension, &[]),
        Err(ChunkError::ExtensionTooLong)
    );
    let mut long_trailers = b"0\r\n".to_vec();
    for _ in 0..(MAX_TRAILERS_LEN / 9 + 1) {
        long_trailers.extend_from_slice(b"A: 12345\r\n");
    }
    assert_eq!(
        scan_split(&long_trailers, &[]),
        Err(ChunkError::TrailersTooLong)
    );
}

#[test]
fn large_chunk_counts_down() {
    let mut scanner = ChunkedScanner::new();
    assert_eq!(scanner.feed(b"FFFFFFFF\r\n").map(|p| p.consumed), Ok(10));
    let block = [0u8; 4096];
    let progress = scanner.feed(&block).unwrap();
    assert_eq!(
        progress,
        ChunkProgress {
            consumed: 4096,
            done: false
        }
    );
    assert!(!scanner.is_done());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_bytes_in_random_splits_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            cuts in proptest::collection::vec(0usize..512, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let _ = scan_split(&bytes, &cuts);
        }

        #[test]
        fn generated_bodies_end_where_they_should(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..6),
            cuts in proptest::collection::vec(0usize..2000, 0..6),
        ) {
            let mut body = Vec::new();
            for chunk in &chunks {
                body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            let body_len = body.len();
            body.extend_from_slice(b"NEXT");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            prop_assert_eq!(scan_split(&body, &cuts), Ok((body_len, true)));
        }
    }
}

#[test]
fn data_len_counts_announced_chunk_sizes_before_their_data() {
    let mut scanner = ChunkedScanner::new();
    scanner.feed(b"A\r\n0123").expect("valid start");
    assert_eq!(scanner.data_len(), 10, "announced, not yet received");
    scanner.feed(b"456789\r\n5;x=1\r\nhel").expect("valid");
    assert_eq!(scanner.data_len(), 15);
    scanner.feed(b"lo\r\n0\r\nT: v\r\n\r\n").expect("valid end");
    assert!(scanner.is_done());
    assert_eq!(
        scanner.data_len(),
        15,
        "the last chunk and trailers add nothing"
    );
}
