//! Shared setup of the HTTP end-to-end tests: a worker with one HTTP
//! listener, clusters of mock backends, and waits on the worker's status.
// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use sluice_command::proto::{self, request::RequestType, response_content::ContentType};
use sluice_e2e::{free_addr, requests, wait_until, MockHttpServer, WorkerHarness};

/// Host every default route answers.
pub(crate) const HOST: &str = "example.com";
/// How long a test waits for a condition.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A worker with one activated HTTP listener.
pub(crate) struct Proxy {
    pub(crate) worker: WorkerHarness,
    pub(crate) listen: SocketAddr,
}

/// Wraps a request type.
pub(crate) fn request(request_type: RequestType) -> proto::Request {
    proto::Request {
        request_type: Some(request_type),
    }
}

/// A route of any kind on `listen`.
pub(crate) fn route(
    listen: SocketAddr,
    host: &str,
    kind: proto::PathRuleKind,
    path: &str,
    method: Option<&str>,
    cluster_id: Option<&str>,
) -> proto::Request {
    request(RequestType::AddHttpFrontend(proto::HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: listen.to_string(),
        hostname: host.to_owned(),
        path: proto::PathRule {
            kind: kind as i32,
            value: path.to_owned(),
        },
        method: method.map(str::to_owned),
        cluster_id: cluster_id.map(str::to_owned),
    }))
}

impl Proxy {
    /// A worker and a listener (not routed yet) with these timeouts and answers.
    pub(crate) fn with_listener(edit: impl FnOnce(&mut proto::HttpListener)) -> Proxy {
        Proxy::with_worker(WorkerHarness::start(1), edit)
    }

    /// Like [`Proxy::with_listener`] on a worker started by the caller.
    pub(crate) fn with_worker(
        mut worker: WorkerHarness,
        edit: impl FnOnce(&mut proto::HttpListener),
    ) -> Proxy {
        let listen = free_addr();
        let mut listener = proto::HttpListener {
            tls: None,
            address: listen.to_string(),
            timeouts: requests::default_timeouts(),
            answers: Vec::new(),
            expect_proxy: false,
            sticky_cookie_name: None,
            max_request_body: None,
        };
        edit(&mut listener);
        worker.expect_ok(&request(RequestType::AddHttpListener(listener)));
        worker.expect_ok(&requests::activate(listen, proto::ListenerProtocol::Http));
        worker.wait_for_listener(listen);
        Proxy { worker, listen }
    }

    /// A worker routing every path of [`HOST`] to cluster `app` on `backends`.
    pub(crate) fn to(backends: &[SocketAddr]) -> Proxy {
        let mut proxy = Proxy::with_listener(|_| {});
        proxy.cluster("app", backends, |_| {});
        proxy.route(HOST, proto::PathRuleKind::Prefix, "/", None, Some("app"));
        proxy
    }

    /// Adds a cluster (edited by `edit`) with one backend per address.
    pub(crate) fn cluster(
        &mut self,
        cluster_id: &str,
        backends: &[SocketAddr],
        edit: impl FnOnce(&mut proto::Cluster),
    ) {
        let mut cluster = requests::cluster(cluster_id, proto::ListenerProtocol::Http);
        edit(&mut cluster);
        self.worker
            .expect_ok(&request(RequestType::AddCluster(cluster)));
        for backend in backends {
            self.worker
                .expect_ok(&requests::add_backend(cluster_id, *backend));
        }
    }

    /// Adds a route on the listener.
    pub(crate) fn route(
        &mut self,
        host: &str,
        kind: proto::PathRuleKind,
        path: &str,
        method: Option<&str>,
        cluster_id: Option<&str>,
    ) {
        self.worker
            .expect_ok(&route(self.listen, host, kind, path, method, cluster_id));
    }

    /// Sessions the worker holds now.
    pub(crate) fn sessions(&mut self) -> u64 {
        let response = self
            .worker
            .expect_ok(&request(RequestType::QueryStatus(proto::QueryStatus {})));
        match response.content.and_then(|c| c.content_type) {
            Some(ContentType::Workers(statuses)) => {
                statuses.workers.iter().map(|w| w.sessions).sum()
            }
            other => panic!("unexpected status answer {other:?}"),
        }
    }

    /// Waits until the worker holds no session (every buffer back in the pool).
    pub(crate) fn wait_no_sessions(&mut self) {
        wait_until("the worker has no session left", DEADLINE, || {
            self.sessions() == 0
        });
    }
}

/// A mock backend on a free port. A port found free may be taken by another test's
/// connection before the bind, so a few ports are tried.
pub(crate) fn mock(name: &str) -> MockHttpServer {
    let mut last_error = None;
    for _ in 0..5 {
        match MockHttpServer::start(free_addr(), name) {
            Ok(server) => return server,
            Err(error) => last_error = Some(error),
        }
    }
    panic!("cannot start mock backend {name}: {last_error:?}")
}

/// A backend scripted byte by byte: `handler` serves each connection.
pub(crate) fn raw_backend(
    handler: impl Fn(std::net::TcpStream) + Send + Sync + 'static,
) -> sluice_e2e::MockServer {
    sluice_e2e::MockServer::start(free_addr(), std::sync::Arc::new(handler))
        .expect("start raw backend")
}

/// Reads one head (up to and with its empty line), byte by byte; `None` at EOF.
pub(crate) fn read_head(stream: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// Reads until `needle` was seen (inclusive) or EOF; returns what was read.
pub(crate) fn read_until(stream: &mut impl std::io::Read, needle: &[u8]) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(needle) {
        match stream.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => break,
        }
    }
    seen
}
