//! How long each step of reading a reloaded file takes at 10 000 clusters, run
//! by hand when working on it:
//! `cargo test --release -p sluice-command --test scale_timing -- --ignored --nocapture`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use sluice_command::config::{Config, ParseCache};
use sluice_command::state::ConfigState;

/// A file of `clusters` clusters as `bench scale` writes it; `changed` makes
/// 1 000 changes (a quarter each: removed, added, weights, hostnames).
fn scale_file(clusters: usize, changed: bool) -> String {
    let mut text = String::from(
        "command_socket = \"sluice.sock\"\nworker_count = 2\nlog_level = \"warn\"\n\
         access_log = \"off\"\n\n[[listeners]]\nprotocol = \"http\"\naddress = \"127.0.0.1:48080\"\n",
    );
    let quarter = 250;
    let first = if changed { quarter } else { 0 };
    let last = if changed {
        clusters + quarter
    } else {
        clusters
    };
    for index in first..last {
        let weight = if changed && index < 2 * quarter {
            50
        } else {
            100
        };
        let moved = if changed && (2 * quarter..3 * quarter).contains(&index) {
            "moved."
        } else {
            ""
        };
        let _ = write!(
            text,
            "\n[clusters.c{index}]\nfrontends = [ {{ address = \"127.0.0.1:48080\", hostname = \
             \"{moved}c{index}.scale.test\" }} ]\nbackends = [ {{ address = \"127.0.0.1:48101\", \
             weight = {weight} }}, {{ address = \"127.0.0.1:48102\", weight = 100 }} ]\n"
        );
    }
    text
}

#[test]
#[ignore = "a measurement, run by hand"]
fn steps_of_a_reload_at_scale() {
    let (a, b) = (scale_file(10_000, false), scale_file(10_000, true));
    let base = Path::new("/tmp");
    for _ in 0..3 {
        let t = Instant::now();
        let ca = Config::parse(&a, "a.toml", base).expect("valid");
        let parse = t.elapsed();
        let t = Instant::now();
        let mut cache = ParseCache::new();
        cache.parse(&a, "a.toml", base).expect("valid");
        let split = t.elapsed();
        let t = Instant::now();
        let (cb, usage) = cache.parse_counted(&b, "a.toml", base).expect("valid");
        let cached = t.elapsed();
        let t = Instant::now();
        let ra = ca.to_requests();
        let to_requests = t.elapsed();
        let t = Instant::now();
        let mut sa = ConfigState::from_requests(&ra).expect("valid");
        let from_requests = t.elapsed();
        let sb = ConfigState::from_requests(&cb.to_requests()).expect("valid");
        let t = Instant::now();
        let diff = sa.diff(&sb);
        let diff_time = t.elapsed();
        let t = Instant::now();
        sa.apply_batch(&diff).expect("applies");
        let apply = t.elapsed();
        println!(
            "parse {parse:?}, on two threads {split:?}, again with 1000 changes {cached:?} \
             ({usage:?}); to_requests {to_requests:?}; from_requests {from_requests:?}; \
             diff {diff_time:?} ({} requests); apply_batch {apply:?}",
            diff.len()
        );
    }
}
