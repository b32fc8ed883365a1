//! TLS termination through the real worker: SNI, HTTPS to a backend, versions and ALPN,
//! certificates replaced under load, tickets resumed across workers, hostile clients,
//! and TLS on a TCP listener. Certificates are made at test time with `openssl`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_command::proto::{self, response_content::ContentType, ListenerProtocol};
use sluice_e2e::requests::{self, certificate_and_key, tls_settings};
use sluice_e2e::tls::{s_client, KeyType, TestCertificate};
use sluice_e2e::tls_client::{client_config, client_config_without_resumption, TlsConn};
use sluice_e2e::worker::WorkerHarness;
use sluice_e2e::{free_addr, MockHttpServer, MockResponse, TcpEchoServer};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The three certificates of the SNI tests.
struct Certificates {
    a: TestCertificate,
    b: TestCertificate,
    fallback: TestCertificate,
    _dir: tempfile::TempDir,
}

fn certificates() -> Certificates {
    let dir = tempfile::tempdir().expect("temp dir");
    Certificates {
        a: TestCertificate::generate(dir.path(), &["a.test"], KeyType::EcdsaP256),
        b: TestCertificate::generate(dir.path(), &["*.b.test"], KeyType::Rsa2048),
        fallback: TestCertificate::generate(dir.path(), &["default.test"], KeyType::EcdsaP256),
        _dir: dir,
    }
}

fn add(worker: &mut WorkerHarness, certificate: &TestCertificate, names: &[&str], default: bool) {
    worker.expect_ok(&requests::add_certificate(certificate_and_key(
        &certificate.certificate,
        &certificate.key,
        names,
        default,
    )));
}

/// An HTTPS listener routing every host to one mock backend.
fn https_proxy(
    worker: &mut WorkerHarness,
    tls: proto::TlsSettings,
    backend: &MockHttpServer,
) -> SocketAddr {
    let listen = free_addr();
    worker.expect_ok(&requests::add_cluster("web", ListenerProtocol::Http));
    worker.expect_ok(&requests::add_backend("web", backend.addr()));
    worker.expect_ok(&requests::add_https_listener(listen, tls));
    worker.expect_ok(&requests::add_http_frontend(listen, "*", "/", "web"));
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Https));
    worker.wait_for_listener(listen);
    listen
}

fn backend() -> MockHttpServer {
    let backend = MockHttpServer::start(free_addr(), "web").expect("mock backend");
    backend.set_default_handler(|_| MockResponse::new(200, "hello over tls"));
    backend
}

fn proxy_metric(worker: &mut WorkerHarness, name: &str) -> u64 {
    let response = worker.expect_ok(&requests::query_metrics());
    match response.content.and_then(|c| c.content_type) {
        Some(ContentType::WorkerMetrics(metrics)) => metrics
            .proxy
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
            .unwrap_or_else(|| panic!("no metric {name}")),
        other => panic!("QueryMetrics answered {other:?}"),
    }
}

#[test]
fn sni_picks_exact_then_wildcard_then_default_and_strict_sni_refuses() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.a, &["a.test"], false);
    add(&mut worker, &certs.b, &["*.b.test"], false);
    add(&mut worker, &certs.fallback, &["default.test"], true);
    let mock = backend();
    let listen = https_proxy(&mut worker, tls_settings(), &mock);
    let served = |name: Option<&str>| {
        let args: Vec<&str> = match name {
            Some(name) => vec!["-servername", name],
            None => vec!["-noservername"],
        };
        s_client(listen, &args, b"", CLIENT_TIMEOUT).served
    };
    assert_eq!(served(Some("a.test")), Some(certs.a.fingerprint.clone()));
    assert_eq!(served(Some("x.b.test")), Some(certs.b.fingerprint.clone()));
    assert_eq!(
        served(Some("y.x.b.test")),
        Some(certs.fallback.fingerprint.clone())
    );
    assert_eq!(
        served(Some("unknown.test")),
        Some(certs.fallback.fingerprint.clone())
    );
    assert_eq!(served(None), Some(certs.fallback.fingerprint.clone()));

    let mut strict = tls_settings();
    strict.strict_sni = Some(true);
    let strict_listen = free_addr();
    worker.expect_ok(&requests::add_https_listener(strict_listen, strict));
    worker.expect_ok(&requests::activate(strict_listen, ListenerProtocol::Https));
    worker.wait_for_listener(strict_listen);
    let refused = s_client(
        strict_listen,
        &["-servername", "unknown.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(!refused.connected(), "{}", refused.text);
    assert!(refused.text.contains("alert"), "{}", refused.text);
    let known = s_client(
        strict_listen,
        &["-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert_eq!(known.served, Some(certs.a.fingerprint.clone()));
    assert_eq!(
        proxy_metric(&mut worker, "tls_handshakes_failed_unknown_sni"),
        1
    );
}

#[test]
fn curl_over_https_reaches_the_backend_which_sees_https_forwarding() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.a, &["a.test"], true);
    let mock = backend();
    let listen = https_proxy(&mut worker, tls_settings(), &mock);
    let output = std::process::Command::new("curl")
        .args(["-sk", "--max-time", "10", "--resolve"])
        .arg(format!("a.test:{}:127.0.0.1", listen.port()))
        .arg(format!("https://a.test:{}/path?q=1", listen.port()))
        .output()
        .expect("run curl; install the `curl` package");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello over tls");
    let seen = mock.requests_seen();
    let request = seen.last().expect("the backend got the request");
    assert_eq!(request.header("X-Forwarded-Proto"), Some("https"));
    assert_eq!(
        request.header("X-Forwarded-Port"),
        Some(&*listen.port().to_string())
    );
    assert!(request
        .header("Forwarded")
        .is_some_and(|f| f.contains("proto=https")));
    assert!(proxy_metric(&mut worker, "tls_handshakes_completed") >= 1);
}

fn only13_settings() -> proto::TlsSettings {
    let mut only13 = tls_settings();
    only13.min_version = Some(proto::TlsVersion::Tls13 as i32);
    only13
}

#[test]
fn old_versions_are_refused_a_tls13_listener_refuses_tls12_and_alpn_is_http11() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.a, &["a.test"], true);
    let mock = backend();
    let listen = https_proxy(&mut worker, tls_settings(), &mock);
    let tls11 = s_client(
        listen,
        &["-tls1_1", "-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(!tls11.connected(), "{}", tls11.text);
    let tls12 = s_client(
        listen,
        &["-tls1_2", "-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(tls12.connected(), "{}", tls12.text);
    let alpn = s_client(
        listen,
        &["-alpn", "h2,http/1.1", "-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(
        alpn.text.contains("ALPN protocol: http/1.1"),
        "{}",
        alpn.text
    );

    let listen13 = free_addr();
    worker.expect_ok(&requests::add_https_listener(listen13, only13_settings()));
    worker.expect_ok(&requests::activate(listen13, ListenerProtocol::Https));
    worker.wait_for_listener(listen13);
    let refused = s_client(
        listen13,
        &["-tls1_2", "-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(!refused.connected(), "{}", refused.text);
    let accepted = s_client(
        listen13,
        &["-tls1_3", "-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(accepted.connected(), "{}", accepted.text);
    assert!(
        proxy_metric(
            &mut worker,
            "tls_handshakes_failed_no_shared_cipher_or_version"
        ) >= 2
    );

    // The first listener's settings change in place: TLS 1.3 only from now on.
    let mut update = requests::add_https_listener(listen, only13_settings());
    if let Some(proto::request::RequestType::AddHttpListener(listener)) = update.request_type.take()
    {
        update.request_type = Some(proto::request::RequestType::UpdateHttpListener(listener));
    }
    worker.expect_ok(&update);
    let now_refused = s_client(
        listen,
        &["-tls1_2", "-servername", "a.test"],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(!now_refused.connected(), "{}", now_refused.text);

    let mut unknown = tls_settings();
    unknown.cipher_suites = vec!["TLS13_NOT_A_SUITE".to_owned()];
    let error = worker.expect_failure(&requests::add_https_listener(free_addr(), unknown));
    // Refused by the worker's mirror of the state, in the words of a config file or ctl.
    assert!(
        error.contains("TLS13_NOT_A_SUITE") && error.contains("unknown cipher suite"),
        "{error}"
    );
}

#[test]
fn replacing_the_certificate_ten_times_under_load_fails_no_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut worker = WorkerHarness::start(0);
    let first = TestCertificate::generate(dir.path(), &["a.test"], KeyType::EcdsaP256);
    add(&mut worker, &first, &["a.test"], true);
    let mock = backend();
    let listen = https_proxy(&mut worker, tls_settings(), &mock);
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for kept in [false, true, false] {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        clients.push(std::thread::spawn(move || {
            let config = client_config_without_resumption(false);
            let mut conn: Option<TlsConn> = None;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() || !kept {
                    conn = TlsConn::connect(listen, "a.test", &config).ok();
                }
                let ok = conn
                    .as_mut()
                    .is_some_and(|c| c.get("a.test", "/").is_ok_and(|r| r.status == 200));
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                }
            }
        }));
    }
    let mut current = first;
    let config = client_config_without_resumption(false);
    for _ in 0..10 {
        let next = TestCertificate::generate(dir.path(), &["a.test"], KeyType::EcdsaP256);
        worker.expect_ok(&requests::replace_certificate(
            &current.fingerprint,
            certificate_and_key(&next.certificate, &next.key, &["a.test"], true),
        ));
        let fresh = TlsConn::connect(listen, "a.test", &config).expect("a new handshake");
        assert_eq!(fresh.served_fingerprint(), Some(next.fingerprint.clone()));
        current = next;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    assert!(done.load(Ordering::Relaxed) > 10, "too few requests");
    let error = worker.expect_failure(&requests::remove_certificate("00ff"));
    assert!(
        error.contains("no certificate with fingerprint 00ff"),
        "{error}"
    );
}

#[test]
fn a_ticket_from_one_worker_resumes_on_another_with_the_same_keys() {
    let certs = certificates();
    let mock = backend();
    let keys = [[7u8; 32], [9u8; 32]];
    let mut listens = Vec::new();
    let mut workers = Vec::new();
    for id in 0..2 {
        let mut worker = WorkerHarness::start(id);
        worker.expect_ok(&requests::set_ticket_keys(&keys));
        add(&mut worker, &certs.a, &["a.test"], true);
        listens.push(https_proxy(&mut worker, tls_settings(), &mock));
        workers.push(worker);
    }
    // TLS 1.2 tickets, with openssl s_client.
    let dir = tempfile::tempdir().expect("temp dir");
    let session = dir.path().join("session.pem");
    let session = session.to_str().expect("utf-8 path");
    let first = s_client(
        listens[0],
        &["-tls1_2", "-servername", "a.test", "-sess_out", session],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(first.text.contains("New,"), "{}", first.text);
    let second = s_client(
        listens[1],
        &["-tls1_2", "-servername", "a.test", "-sess_in", session],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(second.text.contains("Reused,"), "{}", second.text);
    // TLS 1.3 resumption, with a rustls client keeping its tickets.
    let config = client_config(true);
    let mut conn = TlsConn::connect(listens[1], "a.test", &config).expect("handshake");
    conn.get("a.test", "/")
        .expect("a response (and the ticket before it)");
    let resumed = TlsConn::connect(listens[0], "a.test", &config).expect("handshake");
    assert!(
        resumed.resumed(),
        "TLS 1.3 session not resumed on the other worker"
    );
    assert_eq!(proxy_metric(&mut workers[0], "tls_handshakes_resumed"), 1);
    // A worker with keys of its own does not open them.
    let mut alone = WorkerHarness::start(2);
    add(&mut alone, &certs.a, &["a.test"], true);
    let listen = https_proxy(&mut alone, tls_settings(), &mock);
    let elsewhere = s_client(
        listen,
        &["-tls1_2", "-servername", "a.test", "-sess_in", session],
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(elsewhere.text.contains("New,"), "{}", elsewhere.text);
}

/// Reads until the peer closes (or `deadline`); the bytes read.
fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(deadline)).expect("timeout");
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Some(received),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(received),
        Err(_) => None,
    }
}

#[test]
fn plaintext_garbage_cut_hellos_and_silent_clients_are_closed_and_counted() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.a, &["a.test"], true);
    let mock = backend();
    let listen = free_addr();
    worker.expect_ok(&requests::add_cluster("web", ListenerProtocol::Http));
    worker.expect_ok(&requests::add_backend("web", mock.addr()));
    let mut add = requests::add_https_listener(listen, tls_settings());
    if let Some(proto::request::RequestType::AddHttpListener(listener)) = add.request_type.as_mut()
    {
        listener.timeouts.request_timeout_ms = 500;
    }
    worker.expect_ok(&add);
    worker.expect_ok(&requests::add_http_frontend(listen, "*", "/", "web"));
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Https));
    worker.wait_for_listener(listen);

    let mut plain = TcpStream::connect(listen).expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .expect("send");
    let answer = read_until_closed(&mut plain, CLIENT_TIMEOUT).expect("closed");
    assert!(
        answer.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let mut garbage = TcpStream::connect(listen).expect("connect");
    let noise: Vec<u8> = (0..600u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect();
    garbage.write_all(&noise).expect("send");
    assert!(
        read_until_closed(&mut garbage, CLIENT_TIMEOUT).is_some(),
        "random bytes: not closed"
    );

    // The first half of a real ClientHello, then silence: the handshake timeout closes it.
    let hello = client_hello_bytes();
    let mut cut = TcpStream::connect(listen).expect("connect");
    cut.write_all(&hello[..hello.len() / 2]).expect("send");
    assert!(
        read_until_closed(&mut cut, CLIENT_TIMEOUT).is_some(),
        "cut hello: not closed"
    );

    let mut silent = TcpStream::connect(listen).expect("connect");
    let started = Instant::now();
    assert!(
        read_until_closed(&mut silent, CLIENT_TIMEOUT).is_some(),
        "silent: not closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));

    let config = client_config_without_resumption(false);
    let mut conn = TlsConn::connect(listen, "a.test", &config).expect("still serving");
    assert_eq!(conn.get("a.test", "/").expect("response").status, 200);
    assert_eq!(
        proxy_metric(&mut worker, "tls_handshakes_failed_plain_http"),
        1
    );
    assert_eq!(
        proxy_metric(&mut worker, "tls_handshakes_failed_bad_record"),
        1
    );
    assert_eq!(
        proxy_metric(&mut worker, "tls_handshakes_failed_timeout"),
        2
    );
}

/// The bytes of a ClientHello, as a rustls client writes them.
fn client_hello_bytes() -> Vec<u8> {
    let config = client_config(false);
    let name = rustls::pki_types::ServerName::try_from("a.test").expect("name");
    let mut client = rustls::ClientConnection::new(config, name).expect("client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("hello");
    hello
}

#[test]
fn tls_on_a_tcp_listener_round_trips_bytes_to_an_echo_backend() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.a, &["a.test"], true);
    let echo = TcpEchoServer::start(free_addr()).expect("echo");
    let listen = free_addr();
    worker.expect_ok(&requests::add_cluster("echo", ListenerProtocol::Tcp));
    worker.expect_ok(&requests::add_backend("echo", echo.addr()));
    worker.expect_ok(&requests::add_tls_tcp_listener(
        listen,
        tls_settings(),
        requests::default_timeouts(),
    ));
    worker.expect_ok(&requests::add_tcp_frontend(listen, "echo"));
    worker.expect_ok(&requests::activate(listen, ListenerProtocol::Tcp));
    worker.wait_for_listener(listen);
    let config = client_config_without_resumption(false);
    let mut conn = TlsConn::connect(listen, "a.test", &config).expect("handshake");
    assert_eq!(conn.alpn(), None, "no ALPN on a TCP listener by default");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in payload.chunks(16 * 1024) {
        conn.send(chunk).expect("send");
        let echoed = conn.read_exact(chunk.len()).expect("echo");
        assert!(echoed == chunk, "bytes changed on the way");
    }
}

fn frontend_with(
    listen: SocketAddr,
    change: impl FnOnce(&mut proto::HttpFrontend),
) -> proto::Request {
    let mut request = requests::add_http_frontend(listen, "*", "/", "web");
    if let Some(proto::request::RequestType::AddHttpFrontend(frontend)) =
        request.request_type.as_mut()
    {
        change(frontend);
    }
    request
}

#[test]
fn redirect_https_answers_plain_requests_and_hsts_marks_responses_over_tls() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.a, &["a.test"], true);
    let mock = backend();
    let plain = free_addr();
    worker.expect_ok(&requests::add_cluster("web", ListenerProtocol::Http));
    worker.expect_ok(&requests::add_backend("web", mock.addr()));
    worker.expect_ok(&requests::add_http_listener(plain));
    worker.expect_ok(&frontend_with(plain, |f| f.redirect_https = Some(true)));
    worker.expect_ok(&requests::activate(plain, ListenerProtocol::Http));
    worker.wait_for_listener(plain);
    let mut conn = sluice_e2e::HttpConn::connect(plain).expect("connect");
    let moved = conn.get("a.test:8080", "/p?q=1").expect("answer");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("Location"), Some("https://a.test/p?q=1"));
    let mut conn = sluice_e2e::HttpConn::connect(plain).expect("connect");
    let post = conn
        .request(b"POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n")
        .expect("answer");
    assert_eq!(post.status, 308);
    assert_eq!(
        mock.request_count(),
        0,
        "redirected requests reach no backend"
    );

    let secure = free_addr();
    let hsts = "max-age=31536000; includeSubDomains";
    worker.expect_ok(&requests::add_https_listener(secure, tls_settings()));
    worker.expect_ok(&frontend_with(secure, |f| {
        f.redirect_https = Some(true);
        f.hsts = Some(hsts.to_owned());
    }));
    worker.expect_ok(&requests::activate(secure, ListenerProtocol::Https));
    worker.wait_for_listener(secure);
    let config = client_config_without_resumption(false);
    let mut tls = TlsConn::connect(secure, "a.test", &config).expect("handshake");
    let response = tls.get("a.test", "/").expect("response");
    assert_eq!(response.status, 200, "requests over TLS are not redirected");
    assert_eq!(response.header("Strict-Transport-Security"), Some(hsts));
}

#[test]
fn a_certificate_restricted_to_a_listener_is_served_only_there() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    add(&mut worker, &certs.fallback, &["default.test"], true);
    let mock = backend();
    let first = https_proxy(&mut worker, tls_settings(), &mock);
    let second = free_addr();
    worker.expect_ok(&requests::add_https_listener(second, tls_settings()));
    worker.expect_ok(&requests::activate(second, ListenerProtocol::Https));
    worker.wait_for_listener(second);
    let mut only_second =
        certificate_and_key(&certs.a.certificate, &certs.a.key, &["a.test"], false);
    only_second.listeners = vec![second.to_string()];
    worker.expect_ok(&requests::add_certificate(only_second));
    let config = client_config_without_resumption(false);
    let on = |listen| {
        TlsConn::connect(listen, "a.test", &config)
            .expect("handshake")
            .served_fingerprint()
    };
    assert_eq!(on(second), Some(certs.a.fingerprint.clone()));
    assert_eq!(on(first), Some(certs.fallback.fingerprint.clone()));
    let mismatched = certificate_and_key(&certs.a.certificate, &certs.b.key, &["a.test"], false);
    let error = worker.expect_failure(&requests::add_certificate(mismatched));
    assert!(error.contains("does not match"), "{error}");
    let duplicate = certificate_and_key(&certs.a.certificate, &certs.a.key, &["a.test"], false);
    let error = worker.expect_failure(&requests::add_certificate(duplicate));
    assert!(error.contains("already loaded"), "{error}");
}

#[test]
fn a_refused_batch_takes_its_certificates_and_ticket_keys_back() {
    let certs = certificates();
    let mut worker = WorkerHarness::start(0);
    let valid = certificate_and_key(&certs.a.certificate, &certs.a.key, &["a.test"], true);
    let broken = certificate_and_key(&certs.b.certificate, "not a key", &["x.b.test"], false);
    let batch = proto::Request {
        request_type: Some(proto::request::RequestType::Batch(proto::RequestBatch {
            requests: vec![
                requests::add_certificate(valid.clone()),
                requests::set_ticket_keys(&[[1; 32]]),
                requests::add_certificate(broken),
            ],
        })),
    };
    let error = worker.expect_failure(&batch);
    assert!(error.contains("not a PEM private key"), "{error}");
    // Nothing of the batch stayed: the certificate can be added again.
    worker.expect_ok(&requests::add_certificate(valid));
}
