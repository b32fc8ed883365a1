//! The TLS transport over a loopback connection, with a rustls client on the other end
//! and a certificate made by the `openssl` command.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sluice_command::proto;

use super::TlsListeners;
use crate::transport::Transport;

/// A certificate and key for `a.test` (PEM), made with openssl.
fn certificate() -> proto::CertificateAndKey {
    let dir = std::env::temp_dir().join(format!("sluice-tls-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("a.crt"), dir.join("a.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=a.test",
        ])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (install the `openssl` package)");
    assert!(status.status.success(), "openssl failed");
    let certificate = proto::CertificateAndKey {
        certificate: std::fs::read_to_string(&cert).expect("certificate"),
        key: std::fs::read_to_string(&key).expect("key"),
        chain: Vec::new(),
        names: vec!["a.test".to_owned()],
        listeners: Vec::new(),
        default: Some(true),
        certificate_path: None,
        key_path: None,
        chain_path: None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    certificate
}

#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        super::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A server transport and a client stream whose handshake finished.
fn connected() -> (
    Transport,
    rustls::StreamOwned<rustls::ClientConnection, StdStream>,
) {
    let mut tls = TlsListeners::default();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    tls.set_listener(address, Some(&proto::TlsSettings::default()), true)
        .expect("settings");
    tls.add_certificate(&certificate()).expect("certificate");
    tls.rebuild();
    let config = Arc::clone(tls.config(&address).expect("a TLS listener"));
    let client = StdStream::connect(address).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let (accepted, _) = listener.accept().expect("accept");
    accepted.set_nonblocking(true).expect("non-blocking");
    let connection = rustls::ServerConnection::new(config).expect("server connection");
    let mut server = Transport::tls(mio::net::TcpStream::from_std(accepted), connection);
    server.assume_writable();
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(super::provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    let name = ServerName::try_from("a.test").expect("name");
    let mut client = rustls::StreamOwned::new(
        rustls::ClientConnection::new(Arc::new(client_config), name).expect("client"),
        client,
    );
    // The client writes its hello; the server answers as it reads; until both are done.
    let deadline = Instant::now() + Duration::from_secs(5);
    client.conn.write_tls(&mut client.sock).expect("hello");
    while client.conn.is_handshaking() || server.tls_layer().is_some_and(|t| t.is_handshaking()) {
        assert!(Instant::now() < deadline, "handshake not finished");
        server.assume_readable();
        let _ = server.read(&mut [0; 64]).expect("server read");
        if client.conn.wants_write() {
            client
                .conn
                .write_tls(&mut client.sock)
                .expect("client write");
        }
        if client.conn.is_handshaking() && client.conn.wants_read() {
            client.conn.read_tls(&mut client.sock).expect("client read");
            client.conn.process_new_packets().expect("client process");
            while client.conn.wants_write() {
                client
                    .conn
                    .write_tls(&mut client.sock)
                    .expect("client write");
            }
        }
    }
    (server, client)
}

/// Reads until the transport gives something, within a deadline.
fn read_some(server: &mut Transport, space: &mut [u8]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        server.assume_readable();
        if let Some(n) = server.read(space).expect("read") {
            return n;
        }
        assert!(Instant::now() < deadline, "nothing to read in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn decrypted_bytes_left_after_the_socket_is_drained_keep_the_transport_readable() {
    let (mut server, mut client) = connected();
    client.write_all(&[b'x'; 3000]).expect("write");
    client.flush().expect("flush");
    let mut space = [0u8; 1000];
    let mut received = read_some(&mut server, &mut space);
    // The socket may be drained now: the rest is in the TLS layer, and the transport
    // says so whatever the socket's readiness.
    while received < 3000 {
        assert!(server.is_readable(), "bytes held but not readable");
        received += read_some(&mut server, &mut space);
    }
    assert_eq!(received, 3000);
    assert_eq!(server.write(b"pong").expect("write"), Some(4));
    assert!(!server.holds_output(), "a small answer is sent at once");
    let mut answer = [0u8; 4];
    client.read_exact(&mut answer).expect("answer");
    assert_eq!(&answer, b"pong");
    server.shutdown_write().expect("close_notify");
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("end of stream after close_notify");
    assert!(rest.is_empty());
    let layer = server.tls_layer().expect("tls");
    assert_eq!(layer.connection().server_name(), Some("a.test"));
    assert!(layer.failure().is_none());
}
