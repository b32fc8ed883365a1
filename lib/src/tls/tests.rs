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
    // One directory per call: tests run in parallel in this process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sluice-tls-unit-{}-{call}", std::process::id()));
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

/// The client's TLS settings: every version and suite of the provider by default.
fn client_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Option<&[rustls::SupportedCipherSuite]>,
) -> rustls::ClientConfig {
    let mut provider = super::provider();
    if let Some(suites) = suites {
        provider.cipher_suites = suites.to_vec();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth()
}

/// The client's stream.
type Client = rustls::StreamOwned<rustls::ClientConnection, StdStream>;

/// A server transport and a client stream whose handshake finished (TLS 1.3).
pub(super) fn connected() -> (Transport, Client) {
    connected_with(client_config(&[&rustls::version::TLS13], None), b"")
}

/// A server transport and a client with `config` whose handshake finished; `first`
/// (if any) is sent by the client right behind its `Finished`, before the server read
/// the `Finished`.
fn connected_with(config: rustls::ClientConfig, first: &[u8]) -> (Transport, Client) {
    connect(&Listener::new(), config, first)
}

/// A TLS listener: its socket and its rustls configuration (certificate, ticket keys).
struct Listener {
    socket: TcpListener,
    config: super::ServerConfig,
}

impl Listener {
    fn new() -> Self {
        let mut tls = TlsListeners::default();
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = socket.local_addr().expect("address");
        tls.set_listener(address, Some(&proto::TlsSettings::default()), true)
            .expect("settings");
        tls.add_certificate(&certificate()).expect("certificate");
        tls.rebuild();
        let config = Arc::clone(tls.config(&address).expect("a TLS listener"));
        Listener { socket, config }
    }
}

/// A connection to `listener` (see [`connected_with`]).
fn connect(listener: &Listener, config: rustls::ClientConfig, first: &[u8]) -> (Transport, Client) {
    connect_and_speak_first(listener, config, first, b"")
}

/// A connection to `listener` whose server side writes `server_first` before it read a
/// byte (a TCP backend that speaks first), see [`connected_with`].
fn connect_and_speak_first(
    listener: &Listener,
    config: rustls::ClientConfig,
    first: &[u8],
    server_first: &[u8],
) -> (Transport, Client) {
    let config_of_listener = Arc::clone(&listener.config);
    let listener = &listener.socket;
    let client = StdStream::connect(listener.local_addr().expect("address")).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let (accepted, _) = listener.accept().expect("accept");
    accepted.set_nonblocking(true).expect("non-blocking");
    let connection = rustls::server::UnbufferedServerConnection::new(config_of_listener)
        .expect("server connection");
    let mut server = Transport::tls(mio::net::TcpStream::from_std(accepted), connection);
    server.assume_writable();
    if !server_first.is_empty() {
        assert_eq!(
            server
                .write(server_first)
                .expect("write during the handshake"),
            Some(server_first.len()),
            "held until the handshake is over"
        );
    }
    let name = ServerName::try_from("a.test").expect("name");
    let mut client = rustls::StreamOwned::new(
        rustls::ClientConnection::new(Arc::new(config), name).expect("client"),
        client,
    );
    // The client writes its hello; the server answers as it reads; until both are done.
    let deadline = Instant::now() + Duration::from_secs(5);
    client.conn.write_tls(&mut client.sock).expect("hello");
    let mut first_sent = first.is_empty();
    let mut received = Vec::new();
    while client.conn.is_handshaking() || server.tls_layer().is_some_and(|t| t.is_handshaking()) {
        assert!(Instant::now() < deadline, "handshake not finished");
        server.assume_readable();
        let mut space = [0; 64];
        if let Some(n) = server.read(&mut space).expect("server read") {
            received.extend_from_slice(&space[..n]);
        }
        if client.conn.is_handshaking() && client.conn.wants_read() {
            client.conn.read_tls(&mut client.sock).expect("client read");
            client.conn.process_new_packets().expect("client process");
        }
        if !client.conn.is_handshaking() && !first_sent {
            // Into the same flight as the client's `Finished`.
            client.conn.writer().write_all(first).expect("first bytes");
            first_sent = true;
        }
        while client.conn.wants_write() {
            client
                .conn
                .write_tls(&mut client.sock)
                .expect("client write");
        }
    }
    if !first.is_empty() {
        while received.len() < first.len() {
            let mut space = [0; 64];
            let n = read_some(&mut server, &mut space);
            received.extend_from_slice(&space[..n]);
        }
        assert_eq!(received, first, "bytes sent with the Finished");
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

/// One request from the client and one answer from the server, of the sizes given.
fn exchange(server: &mut Transport, client: &mut Client, request: usize, answer: usize) {
    let sent: Vec<u8> = (0..request).map(|i| (i % 251) as u8).collect();
    client.write_all(&sent).expect("request");
    client.flush().expect("flush");
    let mut received = Vec::new();
    let mut space = [0u8; 1500];
    while received.len() < request {
        let n = read_some(server, &mut space);
        assert!(n > 0, "end of stream in the middle of the request");
        received.extend_from_slice(&space[..n]);
    }
    assert!(received == sent, "the request arrived changed");
    let answered: Vec<u8> = (0..answer).map(|i| (i % 241) as u8).collect();
    let mut written = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while written < answer {
        assert!(
            Instant::now() < deadline,
            "the answer was not taken in time"
        );
        server.assume_writable();
        match server.write(&answered[written..]).expect("write") {
            Some(n) => written += n,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    while server.holds_output() {
        assert!(Instant::now() < deadline, "the answer was not sent in time");
        server.assume_writable();
        server.flush().expect("flush");
    }
    let mut back = vec![0u8; answer];
    client.read_exact(&mut back).expect("answer");
    assert!(back == answered, "the answer arrived changed");
}

/// Closes the server's side and checks the client sees a clean end of stream.
fn close_cleanly(server: &mut Transport, client: &mut Client) {
    server.shutdown_write().expect("close_notify");
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("end of stream after close_notify");
    assert!(rest.is_empty());
}

/// Each of `suites` under `version` negotiates and carries records from one byte to
/// several records' worth, both ways, then closes cleanly.
fn carries_records_of_every_size(
    version: &'static rustls::SupportedProtocolVersion,
    suites: &[rustls::SupportedCipherSuite],
) {
    for &suite in suites {
        let config = client_config(&[version], Some(&[suite]));
        let (mut server, mut client) = connected_with(config, b"");
        let connection = server.tls_layer().expect("tls").connection();
        assert_eq!(connection.protocol_version(), Some(version.version));
        assert_eq!(connection.negotiated_cipher_suite(), Some(suite));
        for (request, answer) in [(1, 1), (100, 5000), (40_000, 70_000)] {
            exchange(&mut server, &mut client, request, answer);
        }
        close_cleanly(&mut server, &mut client);
    }
}

#[test]
fn tls12_with_aes_gcm_and_chacha20_carries_records_of_every_size_both_ways() {
    use rustls::crypto::aws_lc_rs::cipher_suite;
    carries_records_of_every_size(
        &rustls::version::TLS12,
        &[
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
    );
}

#[test]
fn tls13_suites_carry_records_of_every_size_both_ways() {
    use rustls::crypto::aws_lc_rs::cipher_suite;
    carries_records_of_every_size(
        &rustls::version::TLS13,
        &[
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
    );
}

#[test]
fn a_request_sent_with_the_clients_finished_is_read_whole() {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let request = [b'r'; 3000];
        let (mut server, mut client) = connected_with(client_config(&[version], None), &request);
        exchange(&mut server, &mut client, 10, 10);
        close_cleanly(&mut server, &mut client);
    }
}

#[test]
fn a_key_update_the_client_asks_for_is_answered_with_new_keys_both_ways() {
    let (mut server, mut client) = connected();
    exchange(&mut server, &mut client, 10, 10);
    let before = server
        .tls_layer()
        .expect("tls")
        .records_sent_with_current_keys();
    assert!(before >= Some(1));
    for _ in 0..3 {
        client.conn.refresh_traffic_keys().expect("key update");
        exchange(&mut server, &mut client, 10, 10);
        // Our key update, then the answer under the new keys.
        assert_eq!(
            server
                .tls_layer()
                .expect("tls")
                .records_sent_with_current_keys(),
            Some(1)
        );
    }
    close_cleanly(&mut server, &mut client);
}

#[test]
fn a_tampered_record_is_refused_with_an_alert() {
    let (mut server, mut client) = connected();
    exchange(&mut server, &mut client, 10, 10);
    client.conn.writer().write_all(b"hello").expect("plaintext");
    let mut record = Vec::new();
    client.conn.write_tls(&mut record).expect("record");
    let last = record.len() - 1;
    record[last] ^= 1;
    client.sock.write_all(&record).expect("tampered record");
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        assert!(Instant::now() < deadline, "the record was not read in time");
        server.assume_readable();
        match server.read(&mut [0; 64]) {
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Ok(Some(n)) => panic!("a tampered record gave {n} bytes"),
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    client.conn.read_tls(&mut client.sock).expect("the alert");
    let refused = client.conn.process_new_packets().expect_err("an alert");
    assert_eq!(
        refused,
        rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac)
    );
}

#[test]
fn an_idle_connection_holds_no_buffer() {
    let (mut server, mut client) = connected();
    exchange(&mut server, &mut client, 100, 20_000);
    let layer = server.tls_layer().expect("tls");
    assert_eq!(layer.buffers_held(), 0, "buffers are given back once empty");
    assert!(!layer.holds_plaintext() && !layer.holds_output());
}

#[test]
fn a_rustls_client_resumes_with_the_ticket_of_its_last_connection() {
    let listener = Listener::new();
    let config = client_config(&[&rustls::version::TLS13], None);
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let (mut server, mut client) = connect(&listener, config.clone(), b"");
        exchange(&mut server, &mut client, 10, 10);
        kinds.push(
            server
                .tls_layer()
                .expect("tls")
                .connection()
                .handshake_kind(),
        );
        close_cleanly(&mut server, &mut client);
    }
    assert_eq!(
        kinds,
        [
            Some(rustls::HandshakeKind::Full),
            Some(rustls::HandshakeKind::Resumed),
            Some(rustls::HandshakeKind::Resumed)
        ]
    );
}

#[test]
fn garbage_after_the_handshake_is_refused_without_a_panic() {
    use rand::{Rng, SeedableRng};
    let listener = Listener::new();
    let mut random = rand::rngs::StdRng::seed_from_u64(12);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for round in 0..20 {
            let (mut server, mut client) = connect(&listener, client_config(&[version], None), b"");
            // Records with a plausible header (or none) and random bodies.
            let length: usize = random.gen_range(0..2048);
            let mut bytes: Vec<u8> = (0..length + 5).map(|_| random.gen()).collect();
            if round % 2 == 0 {
                bytes[0] = [20, 21, 22, 23][round / 2 % 4];
                bytes[1..3].copy_from_slice(&[3, 3]);
                bytes[3..5].copy_from_slice(&(length as u16).to_be_bytes());
            }
            client.sock.write_all(&bytes).expect("garbage");
            client
                .sock
                .shutdown(std::net::Shutdown::Write)
                .expect("FIN");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                assert!(
                    Instant::now() < deadline,
                    "garbage neither refused nor read in time"
                );
                server.assume_readable();
                match server.read(&mut [0; 512]) {
                    Err(_) | Ok(Some(0)) => break,
                    Ok(Some(_)) => {}
                    Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
    }
}

#[test]
fn bytes_written_before_the_handshake_is_over_follow_it() {
    let listener = Listener::new();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let banner = b"220 a.test ESMTP\r\n";
        let (mut server, mut client) =
            connect_and_speak_first(&listener, client_config(&[version], None), b"", banner);
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.holds_output() {
            assert!(Instant::now() < deadline, "the banner was not sent in time");
            server.assume_writable();
            server.flush().expect("flush");
        }
        let mut received = vec![0u8; banner.len()];
        client.read_exact(&mut received).expect("banner");
        assert_eq!(&received, banner);
        exchange(&mut server, &mut client, 10, 10);
        close_cleanly(&mut server, &mut client);
    }
}
