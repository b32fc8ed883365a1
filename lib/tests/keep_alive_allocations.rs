//! A keep-alive HTTP session allocates nothing per request once warm: buffers
//! come from the pool, heads are parsed into the worker's header array, actions
//! and records go to the worker's reused output. A counting global allocator
//! checks it over many requests.
//!
//! This file is its own test binary, with this one test, so that nothing else
//! allocates while it counts.

use std::net::SocketAddr;
use std::time::Instant;

use sluice_command::proto::{HttpFrontend, PathRule, PathRuleKind};
use sluice_lib::http::answers::Answers;
use sluice_lib::http::rewrite::RequestIds;
use sluice_lib::http::router::Router;
use sluice_lib::http::session::{HttpContext, HttpSession, SessionAction, SessionOutput};
use sluice_lib::pool::BufferPool;

mod sys {
    //! The only `unsafe` of this test: a global allocator that forwards to the
    //! system allocator and counts allocations. Its contract is the one of
    //! `GlobalAlloc`, met by delegating every call unchanged.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

    /// Counts allocations and reallocations, then lets `System` do them.
    pub(crate) struct Counting;

    // SAFETY: every method forwards its arguments unchanged to `System`, which
    // upholds the `GlobalAlloc` contract; counting touches no memory it hands out.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the caller's guarantees for `alloc` are passed on as they are.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation is).
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as for `dealloc`, and the caller's guarantees on `new_size` hold.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Allocations made so far by the whole process.
    pub(crate) fn allocations() -> usize {
        ALLOCATIONS.load(Ordering::Relaxed)
    }
}

#[global_allocator]
static ALLOCATOR: sys::Counting = sys::Counting;

const REQUEST: &[u8] =
    b"GET /x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nCookie: SLUICEID=b1\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: b\r\n\r\nhello";

struct Worker {
    router: Router,
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
            now: Instant::now(),
            out: &mut self.out,
        };
        f(session, &mut ctx);
    }

    /// One request and its response through `session`; its actions go to `actions`.
    fn exchange(&mut self, session: &mut HttpSession, actions: &mut Vec<SessionAction>) {
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

fn frontend() -> HttpFrontend {
    HttpFrontend {
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

#[test]
fn keep_alive_requests_allocate_nothing_once_warm() {
    let mut router = Router::new();
    router.add(&frontend()).expect("valid frontend");
    let mut worker = Worker {
        router,
        answers: Answers::default(),
        pool: BufferPool::new(4096, 8),
        ids: RequestIds::new(1),
        out: SessionOutput::default(),
    };
    let client: SocketAddr = "192.0.2.1:4000".parse().expect("address");
    let listener: SocketAddr = "127.0.0.1:8080".parse().expect("address");
    let mut session = HttpSession::new(client, listener, 4096);
    let mut actions = Vec::with_capacity(16);
    for _ in 0..10 {
        worker.exchange(&mut session, &mut actions);
        actions.clear();
    }
    let before = sys::allocations();
    for _ in 0..1000 {
        worker.exchange(&mut session, &mut actions);
        actions.clear();
    }
    let made = sys::allocations() - before;
    assert_eq!(made, 0, "allocations over 1000 keep-alive requests");
}
