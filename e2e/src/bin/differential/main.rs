//! Differential conformance run: the same raw requests sent to Sluice,
//! HAProxy and nginx, each in front of its own recording backend; per case,
//! what each proxy answered and what reached its backend.
//!
//! ```text
//! cargo build -p sluice
//! cargo run -p sluice-e2e --bin differential -- [--verbose] [NAME-FILTER]
//! ```
//!
//! A row reads `case | sluice | haproxy | nginx | flag`; a cell is the
//! statuses the client got (`-` none), `C` if the proxy closed the
//! connection (`O` if it stayed open and silent), and `bN` the requests
//! its backend received. Under a row, `>` lines show each forwarded head
//! (proxy-added fields left out) and body; `<` lines what the client got
//! for response cases. Flags: `DIFF` Sluice's first answer differs from
//! both others'; `FWD` only Sluice forwarded; `HELD` both others forwarded
//! and Sluice did not.

mod backend;
mod cases;
mod proxies;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use backend::{Forwarded, Recorder};
use cases::Case;

/// Longest wait for a proxy's answer to one case.
const EXCHANGE: Duration = Duration::from_secs(3);
/// Silence after some bytes that ends an exchange (a kept-alive connection).
const QUIET: Duration = Duration::from_millis(400);
/// Time given to a backend to record what arrived after the client's exchange.
const SETTLE: Duration = Duration::from_millis(100);
/// Header fields a proxy adds itself, left out of the printed heads.
const ADDED: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "forwarded",
    "sluice-request-id",
    "x-request-id",
];

/// What one proxy did with one case.
struct Outcome {
    received: Vec<u8>,
    closed: bool,
    forwarded: Vec<Forwarded>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose" || a == "-v");
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    match run(verbose, filter.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("differential: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(verbose: bool, filter: Option<&str>) -> Result<(), String> {
    let cases: Vec<Case> = cases::all()
        .into_iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .collect();
    let scripts: HashMap<String, Vec<u8>> = cases
        .iter()
        .filter_map(|c| Some((c.name.clone(), c.script.clone()?)))
        .collect();
    let scripts = Arc::new(scripts);
    let start = |what: fn(SocketAddr) -> Result<proxies::Proxy, String>| {
        let recorder = Recorder::start(Arc::clone(&scripts)).map_err(|e| e.to_string())?;
        let proxy = what(recorder.addr())?;
        Ok::<_, String>((Arc::new(recorder), proxy))
    };
    let targets = [
        ("sluice", start(proxies::sluice)?),
        ("haproxy", start(proxies::haproxy)?),
        ("nginx", start(proxies::nginx)?),
    ];
    println!(
        "{:<28} {:<16} {:<16} {:<16} flag",
        "case", "sluice", "haproxy", "nginx"
    );
    let mut flagged = 0;
    for case in &cases {
        let outcomes: Vec<Outcome> = thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(_, (recorder, proxy))| {
                    let request = &case.request;
                    let (recorder, addr) = (Arc::clone(recorder), proxy.addr);
                    scope.spawn(move || {
                        let (received, closed) = exchange(addr, request);
                        thread::sleep(SETTLE);
                        let outcome = Outcome {
                            received,
                            closed,
                            forwarded: recorder.take(),
                        };
                        if !key(&outcome).starts_with(['2', '3', '4']) {
                            recover(addr);
                            recorder.take();
                        }
                        outcome
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| panic!("exchange thread died")))
                .collect()
        });
        let flag = flag(&outcomes);
        flagged += usize::from(!flag.is_empty());
        println!(
            "{:<28} {:<16} {:<16} {:<16} {flag}",
            case.name,
            cell(&outcomes[0]),
            cell(&outcomes[1]),
            cell(&outcomes[2])
        );
        if verbose || !flag.is_empty() {
            for ((name, _), outcome) in targets.iter().zip(&outcomes) {
                details(name, outcome, case.script.is_some(), verbose);
            }
        }
    }
    println!("{} cases, {flagged} flagged", cases.len());
    Ok(())
}

/// Waits until a plain GET through `addr` succeeds again: Sluice backs a
/// backend off after it broke a response (a passive health check), which
/// would turn the next cases into 503s that say nothing about them.
fn recover(addr: SocketAddr) {
    let probe = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let (received, _) = exchange(addr, probe);
        if received.starts_with(b"HTTP/1.1 200") {
            return;
        }
        // Pacing between probes of a backoff window, not a synchronisation.
        thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `request`, reads until close, [`EXCHANGE`], or [`QUIET`] after data.
fn exchange(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, EXCHANGE) else {
        return (received, true);
    };
    let _ = stream.set_write_timeout(Some(EXCHANGE));
    let _ = stream.write_all(request);
    let deadline = Instant::now() + EXCHANGE;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = if received.is_empty() {
            left
        } else {
            left.min(QUIET)
        };
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return (received, false);
        }
        match stream.read(&mut buf) {
            Ok(0) => return (received, true),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return (received, false)
            }
            Err(_) => return (received, true),
        }
    }
}

/// Status codes of every response start found in `received` (interim ones
/// included), by status-line position.
fn statuses(received: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = find(&received[at..], b"HTTP/1.") {
        let start = at + offset;
        let line_start = start == 0 || received[start - 1] == b'\n';
        if line_start {
            if let Some(code) = received.get(start + 9..start + 12) {
                found.push(String::from_utf8_lossy(code).into_owned());
            }
        }
        at = start + 7;
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn cell(outcome: &Outcome) -> String {
    let statuses = statuses(&outcome.received);
    let answer = if statuses.is_empty() {
        if outcome.received.is_empty() {
            "-".to_owned()
        } else {
            "junk".to_owned()
        }
    } else {
        statuses.join(",")
    };
    let end = if outcome.closed { "C" } else { "O" };
    format!("{answer} {end} b{}", outcome.forwarded.len())
}

/// The key compared across proxies: the first final status, else how it ended.
fn key(outcome: &Outcome) -> String {
    statuses(&outcome.received)
        .into_iter()
        .find(|s| !s.starts_with('1'))
        .unwrap_or_else(|| if outcome.closed { "closed" } else { "silent" }.to_owned())
}

fn flag(outcomes: &[Outcome]) -> String {
    let keys: Vec<String> = outcomes.iter().map(key).collect();
    let fwd: Vec<bool> = outcomes.iter().map(|o| !o.forwarded.is_empty()).collect();
    let mut flags = Vec::new();
    if keys[0] != keys[1] && keys[0] != keys[2] {
        flags.push("DIFF");
    }
    if fwd[0] && !fwd[1] && !fwd[2] {
        flags.push("FWD");
    }
    if !fwd[0] && fwd[1] && fwd[2] {
        flags.push("HELD");
    }
    flags.join(" ")
}

fn details(name: &str, outcome: &Outcome, response_case: bool, verbose: bool) {
    for forwarded in &outcome.forwarded {
        println!("    {name:>7}> {}", head_summary(&forwarded.head));
        if !forwarded.body.is_empty() || forwarded.body_end != "none" {
            println!(
                "    {name:>7}>   body[{}] {}B {}",
                forwarded.body_end,
                forwarded.body.len(),
                escape(&forwarded.body, 60)
            );
        }
    }
    if response_case || verbose {
        println!(
            "    {name:>7}< {}B {}",
            outcome.received.len(),
            escape(&outcome.received, 160)
        );
    }
}

/// The head on one line, without the fields proxies add.
fn head_summary(head: &[u8]) -> String {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .filter(|line| {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            !ADDED.contains(&name.as_str())
        })
        .map(|line| escape(line, 60))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn escape(bytes: &[u8], max: usize) -> String {
    let shown: String = bytes
        .iter()
        .take(max)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > max {
        format!("{shown}…")
    } else {
        shown
    }
}
