//! Drives one sans-IO HTTP session through keep-alive exchanges in memory, as the
//! worker loop would: shared by the allocation test and the micro-benchmarks.

use std::net::SocketAddr;
use std::time::Instant;

use sluice_command::proto::{HttpFrontend, PathRule, PathRuleKind};
use sluice_lib::http::answers::Answers;
use sluice_lib::http::rewrite::RequestIds;
use sluice_lib::http::router::Router;
use sluice_lib::http::session::{HttpContext, HttpSession, SessionAction, SessionOutput};
use sluice_lib::pool::BufferPool;

pub(crate) const REQUEST: &[u8] =
    b"GET /x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nCookie: SLUICEID=b1\r\n\r\n";
pub(crate) const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: b\r\n\r\nhello";

pub(crate) struct Worker {
    pub(crate) router: Router,
    answers: Answers,
    pool: BufferPool,
    ids: RequestIds,
    out: SessionOutput,
}

impl Worker {
    fn call(
        &mut self,
        session: &mut HttpSession,
        f: impl FnOnce(&mut HttpSession, &mut HttpContext<'_>),
    ) {
        let mut ctx = HttpContext {
            router: &self.router,
            answers: &self.answers,
            buffers: &mut self.pool,
            request_ids: &mut self.ids,
            sticky_cookie: b"SLUICEID",
            max_request_body: None,
            now: Instant::now(),
            out: &mut self.out,
        };
        f(session, &mut ctx);
    }

    /// One request and its response through `session`; its actions go to `actions`.
    pub(crate) fn exchange(&mut self, session: &mut HttpSession, actions: &mut Vec<SessionAction>) {
        let space = session
            .front_read_buffer(&mut self.pool)
            .expect("reads a request");
        space[..REQUEST.len()].copy_from_slice(REQUEST);
        self.call(session, |s, ctx| s.front_received(REQUEST.len(), ctx));
        self.drain(actions);
        if actions
            .iter()
            .any(|a| matches!(a, SessionAction::ConnectBackend { .. }))
        {
            self.call(session, |s, ctx| s.backend_connected(Some("b1"), ctx));
            self.drain(actions);
        }
        let sent = session.back_pending().len();
        assert!(sent > 0, "the request goes to the backend");
        self.call(session, |s, ctx| s.back_written(sent, ctx));
        let space = session
            .back_read_buffer(&mut self.pool)
            .expect("reads a response");
        space[..RESPONSE.len()].copy_from_slice(RESPONSE);
        self.call(session, |s, ctx| s.back_received(RESPONSE.len(), ctx));
        let written = session.front_pending().len();
        assert!(written > 0, "the response goes to the client");
        self.call(session, |s, ctx| s.front_written(written, ctx));
        self.drain(actions);
        assert!(session.is_idle(), "back between requests");
    }

    fn drain(&mut self, actions: &mut Vec<SessionAction>) {
        actions.append(&mut self.out.actions);
        self.out.clear();
    }
}

pub(crate) fn frontend() -> HttpFrontend {
    HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: "127.0.0.1:8080".into(),
        hostname: "example.com".into(),
        path: PathRule {
            kind: PathRuleKind::Prefix as i32,
            value: "/".into(),
        },
        method: None,
        cluster_id: Some("app".into()),
    }
}

impl Worker {
    /// A worker routing `example.com` to one cluster, with a session of its own.
    pub(crate) fn with_session() -> (Worker, HttpSession) {
        let mut router = Router::new();
        router.add(&frontend()).expect("valid frontend");
        let worker = Worker {
            router,
            answers: Answers::default(),
            pool: BufferPool::new(4096, 8),
            ids: RequestIds::new(1),
            out: SessionOutput::default(),
        };
        let client: SocketAddr = "192.0.2.1:4000".parse().expect("address");
        let listener: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        (worker, HttpSession::new(client, listener, 4096))
    }
}
