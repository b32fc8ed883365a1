//! A TLS client for the end-to-end tests and the benchmark, built on rustls: it accepts
//! any server certificate (the tests check which one was served by its fingerprint) and
//! reports the negotiated version, ALPN protocol and whether the session was resumed.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::client::{read_response, ClientError, HttpResponse};
use crate::http_io::BufferedStream;

/// Accepts every certificate; signatures are checked unless `check_signatures` is off
/// (a load client that must cost less than the server it loads).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
    check_signatures: bool,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.check_signatures {
            return Ok(HandshakeSignatureValid::assertion());
        }
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.check_signatures {
            return Ok(HandshakeSignatureValid::assertion());
        }
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration: TLS 1.3 only when `tls13_only`, ALPN `http/1.1`, session
/// resumption on (tickets kept in memory, shared by every connection of the config).
pub fn client_config(tls13_only: bool) -> Arc<ClientConfig> {
    config_checking(tls13_only, true)
}

/// A TLS 1.3 client configuration for load generation: signatures are not checked (the
/// client must not cost more than the server it measures); with or without resumption.
/// Its only key exchange group is X25519, so that every proxy measured does the same
/// work per handshake: the OpenSSL 3.0 of HAProxy and nginx has no hybrid post-quantum
/// group, which a rustls server would otherwise pick (X25519MLKEM768).
pub fn load_client_config(resumption: bool) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let mut config = (*config_with(provider, true, false)).clone();
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

fn config_checking(tls13_only: bool, check_signatures: bool) -> Arc<ClientConfig> {
    config_with(
        rustls::crypto::aws_lc_rs::default_provider(),
        tls13_only,
        check_signatures,
    )
}

fn config_with(
    provider: rustls::crypto::CryptoProvider,
    tls13_only: bool,
    check_signatures: bool,
) -> Arc<ClientConfig> {
    let provider = Arc::new(provider);
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::ALL_VERSIONS
    };
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("versions supported")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
            provider,
            check_signatures,
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The same configuration without session resumption (every handshake is full).
pub fn client_config_without_resumption(tls13_only: bool) -> Arc<ClientConfig> {
    let mut config = (*client_config(tls13_only)).clone();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One TLS connection whose handshake finished.
pub struct TlsConn {
    stream: BufferedStream<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsConn {
    /// Connects to `addr` asking for `server_name` (SNI) and finishes the handshake.
    pub fn connect(
        addr: SocketAddr,
        server_name: &str,
        config: &Arc<ClientConfig>,
    ) -> io::Result<Self> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let connection = ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        socket.set_write_timeout(Some(Duration::from_secs(10)))?;
        socket.set_nodelay(true)?;
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsConn {
            stream: BufferedStream::new(stream),
        })
    }

    fn connection(&self) -> &ClientConnection {
        &self.stream.get_ref().conn
    }

    /// The fingerprint (SHA-256 of the DER, lowercase hex) of the certificate served.
    pub fn served_fingerprint(&self) -> Option<String> {
        let leaf = self.connection().peer_certificates()?.first()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf);
        Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether the session was resumed.
    pub fn resumed(&self) -> bool {
        self.connection().handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// The ALPN protocol negotiated.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.connection().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The TLS version negotiated.
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.connection().protocol_version()
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Reads exactly `len` bytes.
    pub fn read_exact(&mut self, len: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut out = vec![0; len];
        self.stream.get_mut().read_exact(&mut out)?;
        Ok(out)
    }

    /// Sends `bytes` and reads one response.
    pub fn request(&mut self, bytes: &[u8]) -> Result<HttpResponse, ClientError> {
        self.send(bytes)?;
        read_response(&mut self.stream, false)
    }

    /// Sends `GET path` with `Host: host` and reads the response.
    pub fn get(&mut self, host: &str, path: &str) -> Result<HttpResponse, ClientError> {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
    }
}
