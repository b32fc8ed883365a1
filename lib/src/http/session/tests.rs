use std::time::Instant;

use sluice_command::proto::{HttpFrontend, PathRule, PathRuleKind};

use super::*;
use crate::http::{answers::Answers, rewrite::RequestIds, router::Router};

const SIZE: usize = 4096;

#[derive(Default)]
struct Pool {
    out: usize,
}

impl BufferSource for Pool {
    fn take(&mut self) -> Vec<u8> {
        self.out += 1;
        vec![0; SIZE]
    }
    fn give(&mut self, _buffer: Vec<u8>) {
        self.out -= 1;
    }
}

struct Harness {
    router: Router,
    answers: Answers,
    pool: Pool,
    ids: RequestIds,
    session: HttpSession,
    out: SessionOutput,
    /// Actions seen, `RequestStarted` apart (counted in `started`).
    actions: Vec<SessionAction>,
    /// Records of finished requests, in order.
    logs: Vec<RequestLog>,
    started: usize,
    /// The listener's request body limit.
    max_request_body: Option<u64>,
    /// The loop's balancing picks another backend than that of the session's idle
    /// connection (else it keeps that connection, as `backend_reused`).
    balance_to_another: bool,
    /// The sticky id of the backend last connected.
    kept_sticky: Option<String>,
}

fn frontend(host: &str, path: &str, cluster: Option<&str>) -> HttpFrontend {
    HttpFrontend {
        hsts: None,
        redirect_https: None,
        address: "127.0.0.1:8080".into(),
        hostname: host.into(),
        path: PathRule {
            kind: PathRuleKind::Prefix as i32,
            value: path.into(),
        },
        method: None,
        cluster_id: cluster.map(Into::into),
    }
}

impl Harness {
    fn new() -> Self {
        let mut router = Router::new();
        router
            .add(&frontend("example.com", "/", Some("app")))
            .unwrap();
        router.add(&frontend("example.com", "/deny", None)).unwrap();
        router
            .add(&frontend("other.com", "/", Some("other")))
            .unwrap();
        Harness {
            router,
            answers: Answers::default(),
            pool: Pool::default(),
            ids: RequestIds::new(7),
            session: HttpSession::new(
                "192.0.2.1:4000".parse().unwrap(),
                "127.0.0.1:8080".parse().unwrap(),
                SIZE,
            ),
            out: SessionOutput::default(),
            actions: Vec::new(),
            logs: Vec::new(),
            started: 0,
            max_request_body: None,
            balance_to_another: false,
            kept_sticky: None,
        }
    }

    fn with(&mut self, f: impl FnOnce(&mut HttpSession, &mut HttpContext<'_>)) {
        let mut ctx = HttpContext {
            router: &self.router,
            answers: &self.answers,
            buffers: &mut self.pool,
            request_ids: &mut self.ids,
            sticky_cookie: b"SLUICEID",
            max_request_body: self.max_request_body,
            now: Instant::now(),
            out: &mut self.out,
        };
        f(&mut self.session, &mut ctx);
        // Like the loop when the balancing picks the backend of the session's idle
        // connection again: it keeps it (unless a test asks otherwise).
        let kept = ctx.out.actions.iter().position(|action| {
            matches!(
                action,
                SessionAction::ConnectBackend {
                    current_connection: true,
                    ..
                }
            )
        });
        if let Some(position) = kept.filter(|_| !self.balance_to_another) {
            ctx.out.actions.remove(position);
            self.session
                .backend_reused(self.kept_sticky.as_deref(), &mut ctx);
        }
        let finished = self.out.actions.iter();
        let finished = finished.filter(|a| {
            matches!(
                a,
                SessionAction::RequestFinished | SessionAction::PipeFinished
            )
        });
        assert_eq!(
            finished.count(),
            self.out.finished.len(),
            "one record per action"
        );
        for action in self.out.actions.drain(..) {
            match action {
                SessionAction::RequestStarted => self.started += 1,
                action => self.actions.push(action),
            }
        }
        self.logs.append(&mut self.out.finished);
    }

    /// Feeds client bytes as far as the session reads; returns how many it took.
    fn client_sends(&mut self, mut bytes: &[u8]) -> usize {
        let total = bytes.len();
        while !bytes.is_empty() {
            let Some(space) = self.session.front_read_buffer(&mut self.pool) else {
                break;
            };
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.with(|s, ctx| s.front_received(n, ctx));
        }
        total - bytes.len()
    }

    fn backend_sends(&mut self, mut bytes: &[u8]) -> usize {
        let total = bytes.len();
        while !bytes.is_empty() {
            let Some(space) = self.session.back_read_buffer(&mut self.pool) else {
                break;
            };
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.with(|s, ctx| s.back_received(n, ctx));
        }
        total - bytes.len()
    }

    fn flush_to_backend(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let pending = self.session.back_pending().to_vec();
            if pending.is_empty() {
                break;
            }
            out.extend_from_slice(&pending);
            self.with(|s, ctx| s.back_written(pending.len(), ctx));
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn flush_to_client(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let pending = self.session.front_pending().to_vec();
            if pending.is_empty() {
                break;
            }
            out.extend_from_slice(&pending);
            self.with(|s, ctx| s.front_written(pending.len(), ctx));
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn connected(&mut self, sticky: Option<&str>) {
        self.kept_sticky = sticky.map(str::to_owned);
        self.with(|s, ctx| s.backend_connected(sticky, ctx));
    }

    fn take_actions(&mut self) -> Vec<SessionAction> {
        std::mem::take(&mut self.actions)
    }

    fn take_logs(&mut self) -> Vec<RequestLog> {
        std::mem::take(&mut self.logs)
    }

    /// Statuses of the requests finished so far (actions are taken too).
    fn take_statuses(&mut self) -> Vec<u16> {
        self.take_actions();
        statuses(&self.take_logs())
    }
}

fn statuses(logs: &[RequestLog]) -> Vec<u16> {
    logs.iter().map(|log| log.status).collect()
}

fn connect_app() -> SessionAction {
    SessionAction::ConnectBackend {
        cluster_id: "app".into(),
        sticky_id: None,
        reuse: true,
        current_connection: false,
    }
}

/// What a request asks when the session's connection to "app" is idle and reusable.
fn connect_app_current() -> SessionAction {
    SessionAction::ConnectBackend {
        cluster_id: "app".into(),
        sticky_id: None,
        reuse: true,
        current_connection: true,
    }
}

/// What a replay asks: a fresh connection.
fn connect_app_fresh() -> SessionAction {
    SessionAction::ConnectBackend {
        cluster_id: "app".into(),
        sticky_id: None,
        reuse: false,
        current_connection: false,
    }
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

#[test]
fn keep_alive_reuses_the_backend() {
    let mut h = Harness::new();
    assert!(
        h.session.is_idle() && !h.session.is_idle_between_requests(),
        "a connection just accepted is not between two requests"
    );
    assert_eq!(h.client_sends(GET), GET.len());
    assert_eq!(h.take_actions(), vec![connect_app()]);
    assert_eq!(h.flush_to_backend(), "");
    h.connected(None);
    let forwarded = h.flush_to_backend();
    assert!(
        forwarded.starts_with("GET /x HTTP/1.1\r\nHost: example.com\r\n"),
        "{forwarded}"
    );
    assert!(
        forwarded.contains("X-Forwarded-For: 192.0.2.1\r\n")
            && forwarded.contains("Sluice-Request-Id: ")
    );
    h.backend_sends(OK);
    assert_eq!(
        h.flush_to_client(),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    );
    let actions = h.take_actions();
    assert_eq!(statuses(&h.take_logs()), vec![200]);
    assert_eq!(actions, vec![SessionAction::RequestFinished]);
    assert!(h.session.is_idle());
    assert!(h.session.is_idle_between_requests());
    assert_eq!(h.pool.out, 0, "an idle session holds no buffer");
    assert_eq!(h.started, 1, "one request started on the backend");
    // second request: balanced again, and the loop keeps the connection
    h.balance_to_another = true;
    h.client_sends(GET);
    assert_eq!(h.take_actions(), vec![connect_app_current()]);
    assert_eq!(
        h.flush_to_backend(),
        "",
        "nothing written before the loop decides"
    );
    h.with(|s, ctx| s.backend_reused(None, ctx));
    h.balance_to_another = false;
    assert!(h.flush_to_backend().starts_with("GET /x HTTP/1.1\r\n"));
    h.backend_sends(OK);
    assert!(h.flush_to_client().ends_with("hi"));
    // another cluster: the idle connection goes back to the pool, another is taken
    h.client_sends(b"GET / HTTP/1.1\r\nHost: other.com\r\n\r\n");
    assert_eq!(
        h.take_actions()[1..],
        [
            SessionAction::ReleaseBackend,
            SessionAction::ConnectBackend {
                cluster_id: "other".into(),
                sticky_id: None,
                reuse: true,
                current_connection: false,
            }
        ]
    );
}

#[test]
fn connection_close_both_ways() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    h.connected(None);
    assert!(h.flush_to_backend().contains("Connection: keep-alive\r\n"));
    h.backend_sends(OK);
    assert!(h.flush_to_client().contains("Connection: close\r\n"));
    let actions = h.take_actions();
    assert_eq!(
        actions[2..],
        [SessionAction::ReleaseBackend, SessionAction::Close],
        "the idle backend connection is left for reuse: {actions:?}"
    );

    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    let flush_to_client = h.flush_to_client();
    assert!(!flush_to_client.contains("Connection"), "{flush_to_client}");
    assert!(h.take_actions().contains(&SessionAction::CloseBackend));
    assert!(h.session.is_idle());
}

#[test]
fn http10_client_keep_alive() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n");
    h.connected(None);
    assert!(h.flush_to_backend().starts_with("GET / HTTP/1.0\r\n"));
    h.backend_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(h.flush_to_client().contains("Connection: keep-alive\r\n"));
    assert!(!h.take_actions().contains(&SessionAction::Close));
    h.client_sends(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(h.flush_to_client().contains("Connection: close\r\n"));
    let actions = h.take_actions();
    assert!(
        actions.contains(&SessionAction::CloseBackend)
            && actions.last() == Some(&SessionAction::Close)
    );
}

#[test]
fn bodies_stream_through_a_small_buffer() {
    let mut h = Harness::new();
    let body = vec![b'x'; SIZE * 5 + 17];
    let mut request = format!(
        "PUT /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    h.connected(None); // no effect before a request
    let mut sent = h.client_sends(&request);
    h.connected(None);
    let mut received = h.flush_to_backend();
    while sent < request.len() {
        sent += h.client_sends(&request[sent..]);
        received.push_str(&h.flush_to_backend());
    }
    let (_, forwarded_body) = received.split_once("\r\n\r\n").unwrap();
    assert_eq!(forwarded_body, "x".repeat(body.len()));
    // chunked response, bigger than the buffer, split anywhere
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..6 {
        response.extend_from_slice(format!("{:x}\r\n", SIZE - 100).as_bytes());
        response.extend(std::iter::repeat_n(b'y', SIZE - 100));
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let mut fed = 0;
    let mut flush_to_client = String::new();
    while fed < response.len() {
        fed += h.backend_sends(&response[fed..(fed + 1000).min(response.len())]);
        flush_to_client.push_str(&h.flush_to_client());
    }
    assert!(flush_to_client.ends_with("0\r\nX-Trailer: t\r\n\r\n"));
    assert_eq!(flush_to_client, String::from_utf8_lossy(&response));
    assert_eq!(h.take_statuses(), vec![200]);
    assert!(h.session.is_idle());
}

#[test]
fn chunked_request_split_at_every_byte() {
    let request = b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n";
    let body_start = request.len() - b"5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n".len();
    for cut in 0..request.len() {
        let mut h = Harness::new();
        h.client_sends(&request[..cut]);
        let early = !h.take_actions().is_empty();
        if early {
            h.connected(None);
        }
        h.client_sends(&request[cut..]);
        if !early {
            h.connected(None);
        }
        let forwarded = h.flush_to_backend();
        assert!(
            forwarded.ends_with(std::str::from_utf8(&request[body_start..]).unwrap()),
            "cut {cut}: {forwarded}"
        );
        assert!(forwarded.contains("Transfer-Encoding: chunked\r\n"));
        h.backend_sends(OK);
        assert!(h.flush_to_client().ends_with("hi"));
        assert!(h.session.is_idle(), "cut {cut}");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = Harness::new();
    let mut both = GET.to_vec();
    both.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n");
    h.client_sends(&both);
    h.connected(None);
    let first = h.flush_to_backend();
    assert!(
        first.starts_with("GET /x ") && !first.contains("/second"),
        "{first}"
    );
    h.backend_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
    assert!(h.flush_to_client().ends_with("first"));
    let second = h.flush_to_backend();
    assert!(second.starts_with("GET /second "), "{second}");
    h.backend_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
    assert!(h.flush_to_client().ends_with("second"));
    assert_eq!(h.take_statuses(), vec![200, 200]);
}

#[test]
fn interim_responses_and_100_continue() {
    let mut h = Harness::new();
    h.client_sends(
        b"PUT / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    h.connected(None);
    assert!(h.flush_to_backend().contains("Expect: 100-continue\r\n"));
    h.backend_sends(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(h.flush_to_client(), "HTTP/1.1 100 Continue\r\n\r\n");
    h.client_sends(b"data");
    assert_eq!(h.flush_to_backend(), "data");
    h.backend_sends(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        h.flush_to_client(),
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(h.take_statuses(), vec![201]);
    assert!(h.session.is_idle());
}

#[test]
fn final_answer_before_the_body_closes_the_client() {
    let mut h = Harness::new();
    h.client_sends(
        b"PUT / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
    assert!(h.flush_to_client().contains("Connection: close\r\n"));
    let actions = h.take_actions();
    assert!(actions.contains(&SessionAction::CloseBackend));
    assert_eq!(actions.last(), Some(&SessionAction::Close));
}

#[test]
fn responses_without_body() {
    for (request, response) in [
        (
            &b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"[..],
        ),
        (GET, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            GET,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        ),
    ] {
        let mut h = Harness::new();
        h.client_sends(request);
        h.connected(None);
        h.flush_to_backend();
        h.backend_sends(response);
        assert_eq!(h.flush_to_client().len(), response.len());
        assert!(h.session.is_idle());
        assert!(!h.take_actions().contains(&SessionAction::CloseBackend));
    }
}

#[test]
fn response_until_close() {
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 200 OK\r\n\r\nsome");
    assert_eq!(
        h.flush_to_client(),
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome"
    );
    h.backend_sends(b" more");
    assert_eq!(h.flush_to_client(), " more");
    h.with(|s, ctx| s.back_received(0, ctx));
    let actions = h.take_actions();
    assert!(
        actions.contains(&SessionAction::CloseBackend),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&SessionAction::Close));
    assert_eq!(statuses(&h.take_logs()), vec![200]);
}

#[test]
fn sticky_sessions() {
    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHost: example.com\r\nCookie: SLUICEID=b1\r\n\r\n");
    assert_eq!(
        h.take_actions(),
        vec![SessionAction::ConnectBackend {
            cluster_id: "app".into(),
            sticky_id: Some("b1".into()),
            reuse: true,
            current_connection: false,
        }]
    );
    h.connected(Some("b2"));
    h.flush_to_backend();
    h.backend_sends(OK);
    assert!(h
        .flush_to_client()
        .contains("Set-Cookie: SLUICEID=b2; Path=/\r\n"));
    h.client_sends(b"GET / HTTP/1.1\r\nHost: example.com\r\nCookie: SLUICEID=b2\r\n\r\n");
    h.flush_to_backend();
    h.backend_sends(OK);
    assert!(!h.flush_to_client().contains("Set-Cookie"));
}

fn answered(request: &[u8]) -> (String, Vec<SessionAction>, Vec<RequestLog>) {
    let mut h = Harness::new();
    h.client_sends(request);
    let flush_to_client = h.flush_to_client();
    assert_eq!(h.flush_to_backend(), "", "nothing may reach the backend");
    (flush_to_client, h.take_actions(), h.take_logs())
}

#[test]
fn refused_requests_get_answers_and_close() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\nHost: nowhere.com\r\n\r\n", 404),
        (b"GET /deny HTTP/1.1\r\nHost: example.com\r\n\r\n", 403),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: br\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", 505),
    ];
    for (request, status) in cases {
        let (flush_to_client, actions, logs) = answered(request);
        assert!(
            flush_to_client.starts_with(&format!("HTTP/1.1 {status} ")),
            "{flush_to_client}"
        );
        assert!(flush_to_client.contains("Connection: close\r\n"));
        assert_eq!(statuses(&logs), vec![*status]);
        assert_eq!(actions.last(), Some(&SessionAction::Close));
    }
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: example.com\r\nX: {}\r\n\r\n",
        "a".repeat(SIZE)
    );
    let (flush_to_client, _, _) = answered(huge.as_bytes());
    assert!(
        flush_to_client.starts_with("HTTP/1.1 431 "),
        "{flush_to_client}"
    );
}

#[test]
fn bad_chunked_body_reaches_no_further() {
    let mut h = Harness::new();
    h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
    h.connected(None);
    h.flush_to_backend();
    h.client_sends(b"zz\r\nGET /smuggled HTTP/1.1\r\n");
    assert_eq!(h.flush_to_backend(), "");
    assert!(h.flush_to_client().starts_with("HTTP/1.1 400 "));
    let actions = h.take_actions();
    assert!(actions.contains(&SessionAction::CloseBackend));
    assert_eq!(actions.last(), Some(&SessionAction::Close));
}

#[test]
fn backend_failures() {
    let expect = |f: &dyn Fn(&mut Harness), status: &str| {
        let mut h = Harness::new();
        h.client_sends(GET);
        f(&mut h);
        let flush_to_client = h.flush_to_client();
        assert!(flush_to_client.starts_with(status), "{flush_to_client}");
        assert_eq!(h.take_actions().last(), Some(&SessionAction::Close));
    };
    expect(
        &|h| h.with(|s, ctx| s.backend_unavailable(ctx)),
        "HTTP/1.1 503 ",
    );
    expect(
        &|h| h.with(|s, ctx| s.backend_connect_failed(ctx)),
        "HTTP/1.1 503 ",
    );
    expect(
        &|h| {
            h.connected(None);
            h.with(|s, ctx| s.backend_closed_with_error(ctx))
        },
        "HTTP/1.1 502 ",
    );
    expect(
        &|h| {
            h.connected(None);
            h.with(|s, ctx| s.back_received(0, ctx))
        },
        "HTTP/1.1 502 ",
    );
    expect(
        &|h| {
            h.connected(None);
            h.backend_sends(b"garbage\r\n\r\n");
        },
        "HTTP/1.1 502 ",
    );
    expect(
        &|h| {
            h.connected(None);
            h.backend_sends(b"HTTP/1.1 101 Switching\r\n\r\n");
        },
        "HTTP/1.1 502 ",
    );
    expect(
        &|h| {
            h.connected(None);
            h.with(|s, ctx| s.timed_out(TimeoutKind::Back, ctx))
        },
        "HTTP/1.1 504 ",
    );
    // after the response started, only a close
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.backend_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert!(h.flush_to_client().ends_with("abc"));
    h.with(|s, ctx| s.back_received(0, ctx));
    assert_eq!(h.flush_to_client(), "");
    assert_eq!(h.take_actions().last(), Some(&SessionAction::Close));
}

#[test]
fn timeouts_between_and_inside_requests() {
    let mut h = Harness::new();
    assert_eq!(h.session.expected_timeout(), Some(TimeoutKind::Front));
    h.with(|s, ctx| s.timed_out(TimeoutKind::Request, ctx));
    assert_eq!(h.flush_to_client(), "", "nothing received: silent close");
    assert_eq!(h.take_actions(), vec![SessionAction::Close]);

    let mut h = Harness::new();
    h.client_sends(b"GET / HTTP/1.1\r\nHo");
    assert_eq!(h.session.expected_timeout(), Some(TimeoutKind::Request));
    h.with(|s, ctx| s.timed_out(TimeoutKind::Request, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 408 "));

    let mut h = Harness::new();
    h.client_sends(b"PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 9\r\n\r\nabc");
    h.connected(None);
    h.flush_to_backend();
    h.with(|s, ctx| s.timed_out(TimeoutKind::Request, ctx));
    assert!(h.flush_to_client().starts_with("HTTP/1.1 408 "));
    assert!(h.take_actions().contains(&SessionAction::CloseBackend));
}

#[test]
fn client_eof_between_requests_closes() {
    let mut h = Harness::new();
    h.with(|s, ctx| s.front_received(0, ctx));
    assert_eq!(h.take_actions(), vec![SessionAction::Close]);
    assert_eq!(h.session.wants(), Interest::default());
}

#[test]
fn backend_eof_on_idle_connection_drops_it() {
    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(OK);
    h.flush_to_client();
    h.take_actions();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert_eq!(h.take_actions(), vec![SessionAction::CloseBackend]);
    h.client_sends(GET);
    assert_eq!(h.take_actions(), vec![connect_app()]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_client_and_backend_bytes_never_panic(
            client in proptest::collection::vec(any::<u8>(), 0..600),
            backend in proptest::collection::vec(any::<u8>(), 0..600),
            split in 0usize..600,
        ) {
            let mut h = Harness::new();
            let split = split.min(client.len());
            h.client_sends(b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
            h.connected(None);
            h.client_sends(&client[..split]);
            h.flush_to_backend();
            h.backend_sends(&backend);
            h.flush_to_client();
            h.client_sends(&client[split..]);
            h.flush_to_backend();
            h.flush_to_client();
            let mut raw = Harness::new();
            raw.client_sends(&client);
            raw.flush_to_client();
        }
    }
}

/// (status, routed, answered by the proxy) of each finished request.
fn origins(logs: &[RequestLog]) -> Vec<(u16, bool, bool)> {
    logs.iter()
        .map(|log| (log.status, log.routed, log.answered_by_proxy))
        .collect()
}

#[test]
fn request_logs_say_who_answered_and_whether_it_was_routed() {
    let (_, _, logs) = answered(b"GET / HTTP/1.1\r\nHost: nowhere.com\r\n\r\n");
    assert_eq!(origins(&logs), [(404, false, true)]);
    let (_, _, logs) = answered(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(origins(&logs), [(400, false, true)]);

    let mut h = Harness::new();
    h.client_sends(GET);
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
    h.flush_to_client();
    assert_eq!(origins(&h.take_logs()), [(503, true, false)]);

    // Not replayable on a fresh connection (a POST), so the failure is answered.
    h.client_sends(b"POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n");
    h.flush_to_backend();
    h.with(|s, ctx| s.backend_closed_with_error(ctx));
    h.flush_to_client();
    assert_eq!(origins(&h.take_logs()), [(502, true, true)]);
}

#[test]
fn a_small_body_goes_out_with_its_head_in_one_write() {
    let mut h = Harness::new();
    h.client_sends(GET);
    h.take_actions();
    h.connected(None);
    h.flush_to_backend();
    h.backend_sends(OK);
    assert_eq!(
        h.session.front_pending(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    );
    let n = h.session.front_pending().len();
    h.with(|s, ctx| s.front_written(n, ctx));
    assert!(h.session.is_idle());
    assert_eq!(h.pool.out, 0, "an idle session holds no buffer");
}

#[test]
fn no_backend_uses_the_clusters_own_503() {
    let content = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nmine";
    for fail in [
        HttpSession::backend_unavailable as fn(&mut HttpSession, &mut HttpContext<'_>),
        HttpSession::backend_connect_failed,
    ] {
        let mut h = Harness::new();
        h.answers.set_cluster(
            "app",
            &[sluice_command::proto::CustomAnswer {
                status: 503,
                content: content.into(),
            }],
        );
        h.client_sends(GET);
        h.with(fail);
        assert_eq!(h.flush_to_client(), content);
        assert_eq!(h.take_actions().last(), Some(&SessionAction::Close));
    }
}

#[test]
fn an_idle_keep_alive_session_stays_small() {
    let h = reused_backend();
    assert!(h.session.is_idle());
    assert_eq!(h.pool.out, 0, "no pooled buffer held");
    let held = std::mem::size_of::<HttpSession>() + h.session.heap_bytes();
    assert!(
        held <= IDLE_SESSION_MAX_BYTES,
        "an idle session holds {held} bytes"
    );
    assert!(std::mem::size_of::<SessionAction>() <= 48);
}

#[test]
fn each_request_on_a_backend_starts_and_finishes_once() {
    let mut h = reused_backend();
    assert_eq!((h.started, h.take_logs().len()), (1, 0));
    for round in 2..5 {
        h.client_sends(GET);
        assert_eq!(h.started, round, "a request sent on the kept connection");
        h.flush_to_backend();
        h.backend_sends(OK);
        h.flush_to_client();
        assert_eq!(h.take_statuses(), vec![200]);
    }
    // A replayed request starts again on the fresh connection.
    h.client_sends(GET);
    h.flush_to_backend();
    h.with(|s, ctx| s.back_received(0, ctx));
    assert_eq!(h.started, 5);
    h.connected(None);
    assert_eq!(h.started, 6);
    h.flush_to_backend();
    h.backend_sends(OK);
    h.flush_to_client();
    assert_eq!(h.take_statuses(), vec![200]);
    // Unrouted requests never reach a backend.
    let mut unrouted = Harness::new();
    unrouted.client_sends(b"GET / HTTP/1.1\r\nHost: nowhere.com\r\n\r\n");
    unrouted.flush_to_client();
    assert_eq!((unrouted.started, unrouted.take_statuses()), (0, vec![404]));
}

#[cfg(test)]
mod body_limit;
use replay::reused_backend;
mod dropped;
mod early_answers;
mod rebalance;
mod replay;
mod reuse;
mod upgrade;
