#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_lib::http::{chunked::ChunkedScanner, parser};

fuzz_target!(|data: &[u8]| {
    let mut headers = Vec::new();
    let options = parser::RequestOptions {
        sticky_cookie: Some(b"SLUICEID"),
    };
    let _ = parser::parse_request(data, &options, &mut headers);
    let _ = parser::parse_response(data, false, &mut headers);
    let (first, second) = data.split_at(data.len() / 2);
    let mut scanner = ChunkedScanner::new();
    if scanner.feed(first).is_ok_and(|p| !p.done) {
        let _ = scanner.feed(second);
    }
});
