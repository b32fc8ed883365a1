//! Volume through the real worker: 1 GiB each way with a bounded RSS, and
//! 500 concurrent keep-alive clients. The release binary is used when built
//! (`cargo build --release -p sluice`), the test profile's otherwise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{raw_backend, read_head, read_until, Proxy, HOST};
use sluice_command::channel::Channel;
use sluice_command::proto::PathRuleKind;
use sluice_e2e::process::inherit_fd;
use sluice_e2e::{
    free_addr, mock_http::MockHttpServer, sluice_binary, ChildGuard, HttpConn, WorkerHarness,
};

const GIB: u64 = 1 << 30;
/// Most resident memory the worker may use while moving 1 GiB.
const RSS_LIMIT_KIB: u64 = 64 * 1024;
const CHUNK: usize = 256 * 1024;

/// The release binary if it was built, else the one of this profile.
fn fastest_binary() -> PathBuf {
    let release = std::env::current_exe().ok().and_then(|exe| {
        let target = exe.parent()?.parent()?.parent()?;
        Some(target.join("release").join("sluice"))
    });
    release
        .filter(|p| p.is_file())
        .unwrap_or_else(sluice_binary)
}

fn fast_proxy(backend: std::net::SocketAddr) -> Proxy {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    let mut command = Command::new(fastest_binary());
    command.args(["worker", "--id", "1", "--channel-fd", "3"]);
    inherit_fd(&mut command, &theirs, 3);
    let child = ChildGuard::spawn(command, "worker-1").expect("start worker");
    drop(theirs);
    let worker = WorkerHarness::from_parts(1, Channel::new(ours), child);
    let mut proxy = Proxy::with_worker(worker, |_| {});
    proxy.cluster("app", &[backend], |_| {});
    proxy.route(HOST, PathRuleKind::Prefix, "/", None, Some("app"));
    proxy
}

fn check_rss(proxy: &Proxy, peak: &mut u64) {
    let rss = proxy.worker.process().rss_kib().expect("worker RSS");
    *peak = (*peak).max(rss);
    assert!(rss < RSS_LIMIT_KIB, "worker RSS {rss} KiB");
}

#[test]
fn upload_1gib() {
    let backend = raw_backend(|mut stream| {
        let Some(_head) = read_head(&mut stream) else {
            return;
        };
        let mut left = GIB;
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= (n as u64).min(left),
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nreceived");
    });
    let mut proxy = fast_proxy(backend.addr());
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(
            format!("PUT /big HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {GIB}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let chunk = vec![b'u'; CHUNK];
    let mut peak = 0;
    for i in 0..(GIB / CHUNK as u64) {
        stream.write_all(&chunk).expect("upload");
        if i % 256 == 0 {
            check_rss(&proxy, &mut peak);
        }
    }
    // The connection stays open (keep-alive): read up to the body's end.
    let answer = read_until(&mut stream, b"received");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("received"),
        "{text}"
    );
    check_rss(&proxy, &mut peak);
    eprintln!("1 GiB up in {:?}, peak RSS {peak} KiB", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
    drop(stream);
    proxy.wait_no_sessions();
}

#[test]
fn download_1gib() {
    let backend = raw_backend(|mut stream| {
        let Some(_head) = read_head(&mut stream) else {
            return;
        };
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {GIB}\r\nConnection: close\r\n\r\n");
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'd'; CHUNK];
        for _ in 0..(GIB / CHUNK as u64) {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut proxy = fast_proxy(backend.addr());
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(format!("GET /big HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .unwrap();
    let head = read_head(&mut stream).expect("response head");
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut next_check = 0u64;
    let mut peak = 0;
    while total < GIB {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("download stalled after {total} bytes: {e}"),
        }
        if total >= next_check {
            check_rss(&proxy, &mut peak);
            next_check += 64 << 20;
        }
    }
    assert_eq!(total, GIB);
    eprintln!("1 GiB down in {:?}, peak RSS {peak} KiB", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
    drop(stream);
    proxy.wait_no_sessions();
}

#[test]
fn five_hundred_keepalive_clients_twenty_requests_each() {
    let backends: Vec<MockHttpServer> = (0..2)
        .map(|i| MockHttpServer::start(free_addr(), &format!("b{i}")).unwrap())
        .collect();
    let mut proxy = Proxy::with_listener(|_| {});
    let addrs: Vec<_> = backends.iter().map(|b| b.addr()).collect();
    proxy.cluster("app", &addrs, |_| {});
    proxy.route(HOST, PathRuleKind::Prefix, "/", None, Some("app"));
    let listen = proxy.listen;
    let barrier = Arc::new(std::sync::Barrier::new(500));
    let clients: Vec<_> = (0..500)
        .map(|c| {
            let barrier = Arc::clone(&barrier);
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || -> Result<(), String> {
                    let mut conn = HttpConn::connect(listen).map_err(|e| format!("{c}: {e}"))?;
                    barrier.wait();
                    for r in 0..20 {
                        let response = conn
                            .get(HOST, &format!("/{c}/{r}"))
                            .map_err(|e| format!("client {c} request {r}: {e}"))?;
                        if response.status != 200 {
                            return Err(format!("client {c} request {r}: {}", response.status));
                        }
                    }
                    Ok(())
                })
                .expect("spawn client")
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|t| t.join().expect("client thread").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let total: usize = backends.iter().map(|b| b.request_count()).sum();
    assert_eq!(total, 500 * 20);
    proxy.wait_no_sessions();
}
