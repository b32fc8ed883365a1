//! `sluice demo`: the default config plus two tiny built-in HTTP backends on
//! the default config's backend addresses, so that `curl 127.0.0.1:8080`
//! twice shows both `backend 1` and `backend 2`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use log::{debug, info};
use sluice_command::config::Config;
use sluice_command::proto::request::RequestType;

use crate::main_process;

/// Workers of the demo; see [`run`].
const DEMO_WORKERS: u32 = 1;
/// Largest request head a demo backend reads before answering anyway.
const MAX_HEAD: usize = 16 * 1024;

/// Runs the demo until interrupted.
pub(crate) fn run() -> anyhow::Result<()> {
    // Before any thread exists, so that the backends' threads inherit the mask too.
    let signals = main_process::block_signals().context("cannot block signals")?;
    let mut config = Config::default_embedded();
    crate::init_logging(config.log_level.as_str(), "main");
    // Each worker balances on its own and the kernel spreads connections over
    // the workers, so with several workers two requests can both land on the
    // first backend; one worker keeps the promise that two show both.
    if config.worker_count != DEMO_WORKERS {
        info!(
            "the demo runs {DEMO_WORKERS} worker instead of the default config's {}",
            config.worker_count
        );
        config.worker_count = DEMO_WORKERS;
    }
    let addresses = backend_addresses(&config);
    if addresses.is_empty() {
        bail!("the default config has no backend for the demo to serve");
    }
    for (index, address) in addresses.iter().enumerate() {
        let name = format!("backend {}", index + 1);
        let listener = TcpListener::bind(address.as_str())
            .with_context(|| format!("cannot bind demo {name} on {address}"))?;
        info!("demo {name} listening on {address}");
        thread::Builder::new()
            .name(format!("demo-{}", index + 1))
            .spawn(move || serve(&listener, &name))
            .context("cannot spawn a demo backend")?;
    }
    for request in config.to_requests() {
        if let Some(RequestType::AddHttpListener(listener)) = &request.request_type {
            info!("try: curl http://{}/ (twice)", listener.address);
        }
    }
    main_process::run(config, signals)
}

/// The distinct backend addresses of the config, in order, at most two.
fn backend_addresses(config: &Config) -> Vec<String> {
    let mut addresses: Vec<String> = Vec::new();
    for request in config.to_requests() {
        if let Some(RequestType::AddBackend(add)) = &request.request_type {
            if !addresses.contains(&add.backend.address) && addresses.len() < 2 {
                addresses.push(add.backend.address.clone());
            }
        }
    }
    addresses
}

fn serve(listener: &TcpListener, name: &str) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(error) = answer(stream, name) {
                    debug!("demo {name}: {error}");
                }
            }
            Err(error) => debug!("demo {name}: accept failed: {error}"),
        }
    }
}

/// Reads one request head and answers `name`, then closes the connection.
fn answer(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    stream.write_all(response(name).as_bytes())?;
    stream.flush()
}

/// A complete HTTP/1.1 answer whose body is `name` and a newline.
fn response(name: &str) -> String {
    let body = format!("{name}\n");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_one_request_with_its_name_and_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            answer(stream, "backend 2").expect("answer");
        });
        let mut client = TcpStream::connect(address).expect("connect");
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut reply = String::new();
        client.read_to_string(&mut reply).expect("read");
        server.join().expect("server thread");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("Content-Length: 10\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\nbackend 2\n"), "{reply}");
    }
}
