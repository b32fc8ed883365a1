//! `Upgrade` through the real worker: after the backend's 101 the session is
//! a byte pipe both ways, closed when both sides are done.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::{raw_backend, read_head, read_until, Proxy, HOST};

#[test]
fn websocket_upgrade_becomes_a_byte_pipe() {
    let backend = raw_backend(|mut stream| {
        let Some(head) = read_head(&mut stream) else {
            return;
        };
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if !text.contains("upgrade: websocket") || !text.contains("connection: upgrade") {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let _ = stream.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello from backend",
        );
        // Echo everything, upper-cased, until the client is done.
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stream.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = stream.write_all(b"bye");
    });
    let mut proxy = Proxy::to(&[backend.addr()]);
    let mut client = TcpStream::connect(proxy.listen).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .write_all(
            format!(
                "GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let head = read_head(&mut client).expect("101 head");
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(
        text.contains("upgrade: websocket") && text.contains("connection: upgrade"),
        "{text}"
    );
    assert_eq!(read_until(&mut client, b"backend"), b"hello from backend");
    // Bytes that are not HTTP pass as they are, many times over.
    for round in 0..50 {
        let message = format!("frame {round} \r\n\r\nGET / HTTP/1.1\r\n");
        client.write_all(message.as_bytes()).unwrap();
        let expected = message.to_ascii_uppercase();
        let echoed = read_until(&mut client, b"HTTP/1.1\r\n");
        assert_eq!(String::from_utf8_lossy(&echoed), expected);
    }
    // Half-close from the client: the backend sees EOF, answers, closes.
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("the pipe closes");
    assert_eq!(rest, b"bye");
    drop(client);
    proxy.wait_no_sessions();
}

#[test]
fn a_101_without_an_upgrade_request_is_502() {
    let backend = raw_backend(|mut stream| {
        let _ = read_head(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    });
    let proxy = Proxy::to(&[backend.addr()]);
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let raw = sluice_e2e::raw_exchange(proxy.listen, request.as_bytes(), Duration::from_secs(5))
        .expect("exchange");
    let responses = sluice_e2e::parse_responses(&raw);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(responses[0].status, 502);
}
