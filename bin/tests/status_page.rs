//! The live status page on `metrics_address`, rendered by a real browser: headless Chromium
//! loads `/`, runs its script (which fetches `/status`), and the rendered page must name
//! every cluster and backend. Needs Debian's `chromium` package (`.ci/run` installs it).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::http::{http_config, Route};
use common::{free_port, Sluice};
use sluice_e2e::{free_addr, MockHttpServer};

/// Where Debian's package puts the browser.
const CHROMIUM: &str = "chromium";

/// The flags a sandboxed, offline machine needs (no first-run, no background traffic).
fn chromium(profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Lets the page's fetch of /status finish before the DOM is dumped.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {CHROMIUM} ({error}): install it with `apt-get install chromium`")
        })
}

fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics address");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn status_page_renders_clusters_and_backends_in_a_browser() {
    let shop = MockHttpServer::start(free_addr(), "backend").expect("backend");
    let blog = MockHttpServer::start(free_addr(), "backend").expect("backend");
    let listener = free_addr();
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = http_config(
        1,
        listener,
        &[
            Route::new("shop-cluster", "shop.test", &[shop.addr()]),
            Route::new("blog-cluster", "blog.test", &[blog.addr()]),
        ],
    )
    .replacen(
        "[[listeners]]",
        &format!("metrics_address = \"{metrics}\"\n\n[[listeners]]"),
        1,
    );
    let sluice = Sluice::start(&config);

    let page = get(&metrics, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Type: text/html"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads no external asset"
    );

    let profile = tempfile::tempdir().expect("profile folder");
    let url = format!("http://{metrics}/");
    let dumped = chromium(profile.path(), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dumped.stdout);
    for name in [
        "shop-cluster",
        "blog-cluster",
        &shop.addr().to_string(),
        &blog.addr().to_string(),
        "1 workers",
    ] {
        assert!(
            dom.contains(name),
            "the rendered page does not show {name}:\n{dom}\n{}",
            String::from_utf8_lossy(&dumped.stderr)
        );
    }
    assert!(dom.contains("updated "), "the page refreshed itself: {dom}");

    // A phone-sized screenshot, to look at when the page changes.
    let screenshot = profile.path().join("status.png");
    let shot = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=412,915",
        ],
        &url,
    );
    let png = std::fs::read(&screenshot).unwrap_or_else(|error| {
        panic!(
            "no screenshot ({error}): {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    drop(sluice);
}
