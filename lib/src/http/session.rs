//! The state machine of one HTTP/1.1 client connection (see `LIFECYCLE.md`).
//!
//! The loop drives it: it reads into [`HttpSession::front_read_buffer`] /
//! [`HttpSession::back_read_buffer`] and reports with `*_received`, writes
//! [`HttpSession::front_pending`] / [`HttpSession::back_pending`] and reports
//! with `*_written`, reports backend connection outcomes and timeouts, and
//! after every call drains [`HttpSession::next_action`]. Requests are served
//! one at a time: the next request is parsed only once the previous response
//! was entirely written, so pipelined requests wait in the buffer (or the
//! kernel) and are answered in order.

mod body_limit;
mod exchange;
mod interface;
mod redirect;
mod replay;
mod response;
mod routing;
mod termination;

use std::{net::SocketAddr, rc::Rc};

pub use exchange::RequestLog;
use exchange::{BodyProgress, Exchange, ResponseProgress};
pub use interface::{HttpContext, Interest, SessionAction, SessionOutput, TimeoutKind};
use response::ResponseStep;
pub use termination::Termination;

use super::{
    answers::AnswerStatus,
    buffers::{BufferSource, Outgoing, Window},
    parser::{
        oversized_request, parse_request, parse_response, BodyFraming, HeadError, Parsed,
        RequestOptions, Version,
    },
    rewrite::{
        write_request_head, write_response_head, ClientConnection, ForwardedValues, RequestRewrite,
        ResponseRewrite,
    },
    router::Route,
};

/// The backend connection the session has or waits for.
#[derive(Debug)]
struct BackendLink {
    cluster_id: Rc<str>,
    sticky_id: Option<Box<str>>,
    connected: bool,
}

/// What an HTTP session hands the loop once a `101` switched protocols: the loop goes on
/// with the connection as a byte pipe (the same as a TCP session's), starting with the
/// bytes already read on each side.
#[derive(Debug)]
pub struct Handover {
    /// Client bytes read after the request, for the backend.
    pub(crate) client_bytes: Option<Window>,
    /// Backend bytes read after the `101` head, for the client.
    pub(crate) backend_bytes: Option<Window>,
    /// The upgrade's record so far (status 101, the heads' bytes, its time to the switch),
    /// for the access log when the pipe closes.
    pub log: RequestLog,
}

/// An answer of Sluice's own being written, then the connection closes.
#[derive(Debug)]
struct Answering {
    answer: Rc<[u8]>,
    written: usize,
}

#[derive(Debug)]
enum State {
    /// Between requests, or inside a request head.
    ExpectRequest,
    /// Routed; the loop is connecting a backend.
    Connecting(Box<Exchange>),
    /// Request and response flowing.
    Exchanging(Box<Exchange>),
    /// After a 101: the switching head is written to the client, then the loop takes the
    /// connection over as a byte pipe (`take_pipe`).
    Switching(Box<Exchange>),
    /// Writing an answer of Sluice's own.
    Answering(Answering),
    /// Close was asked; nothing more happens.
    Closed,
}

/// Most bytes an idle keep-alive session without sticky cookie may hold, the
/// struct and its own heap parts together (pooled buffers go back when idle).
/// Thousands of idle connections are kept per worker: a test holds the session
/// to this bound so that it cannot grow unnoticed.
pub const IDLE_SESSION_MAX_BYTES: usize = 400;

/// One client connection.
#[derive(Debug)]
pub struct HttpSession {
    buffer_size: usize,
    forwarded: ForwardedValues,
    state: State,
    /// Client bytes not consumed yet.
    front: Option<Window>,
    /// Backend bytes not consumed yet.
    back: Option<Window>,
    /// Heads to write to the client (rewritten responses).
    front_out: Outgoing,
    /// Heads to write to the backend (rewritten requests).
    back_out: Outgoing,
    backend: Option<BackendLink>,
    /// The client's sticky cookie value in the current request.
    request_sticky: Option<Vec<u8>>,
    /// The next request picks its backend again instead of reusing the connection it has
    /// (its backend's weight or state changed, see [`HttpSession::rebalance`]).
    rebalance: bool,
    /// The backend connection goes as soon as the exchange on it is over (its backend
    /// takes no new request).
    release_when_idle: bool,
    /// That value as text, shared with the loop: kept while the client sends
    /// the same cookie, so that balancing each request allocates nothing.
    sticky_text: Option<Rc<str>>,
    /// The `Strict-Transport-Security` value of the current request's route.
    hsts: Option<Rc<str>>,
    /// A request started on this connection: idle now means between two requests.
    requested: bool,
}

impl HttpSession {
    /// A session for a client connected to `listener`; `buffer_size` is the
    /// pool's buffer size.
    pub fn new(client: SocketAddr, listener: SocketAddr, buffer_size: usize) -> Self {
        Self::with_tls(client, listener, buffer_size, false)
    }

    /// A session for a client connected to `listener`, over TLS when `tls` (its
    /// requests are forwarded with `proto=https`).
    pub fn with_tls(
        client: SocketAddr,
        listener: SocketAddr,
        buffer_size: usize,
        tls: bool,
    ) -> Self {
        HttpSession {
            buffer_size: buffer_size.max(1024),
            forwarded: ForwardedValues::new(client, listener, tls),
            state: State::ExpectRequest,
            front: None,
            back: None,
            front_out: Outgoing::default(),
            back_out: Outgoing::default(),
            backend: None,
            request_sticky: None,
            rebalance: false,
            release_when_idle: false,
            sticky_text: None,
            hsts: None,
            requested: false,
        }
    }

    /// Where to read client bytes now; `None`: don't read (backpressure, or
    /// a pipelined request must wait).
    pub fn front_read_buffer(&mut self, buffers: &mut dyn BufferSource) -> Option<&mut [u8]> {
        if !self.wants_front_read() {
            return None;
        }
        let size = self.buffer_size;
        let window = self.front.get_or_insert_with(|| take_window(buffers, size));
        Some(window.free_space()).filter(|space| !space.is_empty())
    }

    /// `n` client bytes were read into `front_read_buffer`; 0 means EOF.
    pub fn front_received(&mut self, n: usize, ctx: &mut HttpContext<'_>) {
        if n == 0 {
            self.front_eof(ctx);
        } else if let Some(window) = &mut self.front {
            window.filled(n);
        }
        self.settle(ctx);
    }

    /// Where to read backend bytes now; `None`: don't read.
    pub fn back_read_buffer(&mut self, buffers: &mut dyn BufferSource) -> Option<&mut [u8]> {
        if !self.wants_back_read() {
            return None;
        }
        let size = self.buffer_size;
        let window = self.back.get_or_insert_with(|| take_window(buffers, size));
        Some(window.free_space()).filter(|space| !space.is_empty())
    }

    /// `n` backend bytes were read into `back_read_buffer`; 0 means EOF. The
    /// loop may also report an EOF (n = 0) it noticed on an idle backend
    /// connection without having asked for a buffer.
    pub fn back_received(&mut self, n: usize, ctx: &mut HttpContext<'_>) {
        if n == 0 {
            self.back_eof(ctx, false);
        } else if let Some(window) = &mut self.back {
            window.filled(n);
            if let State::Exchanging(exchange) = &mut self.state {
                if exchange.replay {
                    // The connection answers: the request will not be sent again.
                    exchange.replay = false;
                    self.back_out.stop_keeping(ctx.buffers);
                }
                if exchange.log.response_time.is_none() {
                    let since = exchange.connected_at.unwrap_or(exchange.started_at);
                    exchange.log.response_time = Some(ctx.now.saturating_duration_since(since));
                }
            }
        }
        self.settle(ctx);
    }

    /// Bytes to write to the client now.
    pub fn front_pending(&self) -> &[u8] {
        match &self.state {
            State::Answering(answering) => &answering.answer[answering.written..],
            State::Exchanging(exchange) if self.front_out.is_empty() => {
                let ready = exchange.response_ready;
                self.back.as_ref().map_or(&[], |w| &w.bytes()[..ready])
            }
            State::Exchanging(_) | State::Switching(_) => self.front_out.pending(),
            _ => &[],
        }
    }

    /// `n` bytes of `front_pending` were written.
    pub fn front_written(&mut self, n: usize, ctx: &mut HttpContext<'_>) {
        match &mut self.state {
            State::Answering(answering) => {
                answering.written = (answering.written + n).min(answering.answer.len());
                if answering.written == answering.answer.len() {
                    self.close(ctx);
                }
            }
            State::Exchanging(exchange) => {
                exchange.log.bytes_out += n as u64;
                if !self.front_out.is_empty() {
                    self.front_out.written(n, ctx.buffers);
                } else if let Some(window) = &mut self.back {
                    let n = n.min(exchange.response_ready);
                    window.consume(n);
                    exchange.response_ready -= n;
                }
            }
            State::Switching(upgrade) => {
                upgrade.log.bytes_out += n as u64;
                self.front_out.written(n, ctx.buffers);
                self.announce_switch(ctx);
            }
            _ => {}
        }
        self.settle(ctx);
    }

    /// Bytes to write to the backend now.
    pub fn back_pending(&self) -> &[u8] {
        match &self.state {
            State::Exchanging(_) | State::Switching(_) if !self.back_out.is_empty() => {
                self.back_out.pending()
            }
            State::Exchanging(exchange) => {
                let ready = exchange.request_ready;
                self.front.as_ref().map_or(&[], |w| &w.bytes()[..ready])
            }
            _ => &[],
        }
    }

    /// `n` bytes of `back_pending` were written.
    pub fn back_written(&mut self, n: usize, ctx: &mut HttpContext<'_>) {
        match &mut self.state {
            State::Exchanging(_) | State::Switching(_) if !self.back_out.is_empty() => {
                // The rewritten head: `bytes_in` counted the client's own at parse time.
                self.back_out.written(n, ctx.buffers);
                self.announce_switch(ctx);
            }
            State::Exchanging(exchange) => {
                exchange.log.bytes_in += n as u64;
                if let Some(window) = &mut self.front {
                    let n = n.min(exchange.request_ready);
                    window.consume(n);
                    exchange.request_ready -= n;
                }
            }
            _ => {}
        }
        self.settle(ctx);
    }

    /// The connection asked by `ConnectBackend` is ready; `sticky_id` is the
    /// chosen backend's sticky id when its cluster is sticky (the response then
    /// sets the cookie if the client's differs).
    pub fn backend_connected(&mut self, sticky_id: Option<&str>, ctx: &mut HttpContext<'_>) {
        self.linked(sticky_id, false, ctx);
    }

    /// Like [`HttpSession::backend_connected`], for an idle connection the loop
    /// kept from an earlier session (`ConnectBackend` allowed `reuse`): if it
    /// turns out closed before answering, the request is sent again once.
    pub fn backend_reused(&mut self, sticky_id: Option<&str>, ctx: &mut HttpContext<'_>) {
        self.linked(sticky_id, true, ctx);
    }

    fn linked(&mut self, sticky_id: Option<&str>, reused: bool, ctx: &mut HttpContext<'_>) {
        if let Some(link) = &mut self.backend {
            link.connected = true;
            if link.sticky_id.as_deref() != sticky_id {
                link.sticky_id = sticky_id.map(Box::from);
            }
        }
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::Connecting(mut exchange) => {
                exchange.connected_at = Some(ctx.now);
                if reused && exchange.idempotent && exchange.request.is_done() {
                    exchange.replay = true;
                    self.back_out.keep_after_write();
                }
                ctx.out.actions.push(SessionAction::RequestStarted);
                State::Exchanging(exchange)
            }
            other => other,
        };
        self.settle(ctx);
    }

    /// Every attempt to connect failed: 503.
    pub fn backend_connect_failed(&mut self, ctx: &mut HttpContext<'_>) {
        self.backend_unavailable(ctx);
    }

    /// The cluster has no backend to connect to: 503.
    pub fn backend_unavailable(&mut self, ctx: &mut HttpContext<'_>) {
        if matches!(self.state, State::Connecting(_)) {
            // The link stays until the answer is chosen: it names the cluster
            // whose custom 503 applies.
            self.fail_exchange(AnswerStatus::ServiceUnavailable, ctx);
        }
        self.settle(ctx);
    }

    /// The backend connection failed (reset, error): 502 if nothing of the
    /// response was sent yet, else a close.
    pub fn backend_closed_with_error(&mut self, ctx: &mut HttpContext<'_>) {
        self.back_eof(ctx, true);
        self.settle(ctx);
    }

    /// A timer fired.
    pub fn timed_out(&mut self, which: TimeoutKind, ctx: &mut HttpContext<'_>) {
        let head_started = self.front.as_ref().is_some_and(|w| !w.is_empty());
        match (&self.state, which) {
            (State::ExpectRequest, TimeoutKind::Request) if head_started => {
                self.answer(AnswerStatus::RequestTimeout, None, ctx);
            }
            (State::ExpectRequest, _) => self.close(ctx),
            (State::Connecting(exchange) | State::Exchanging(exchange), TimeoutKind::Request)
                if !exchange.request.is_done() =>
            {
                self.fail_exchange(AnswerStatus::RequestTimeout, ctx);
            }
            (State::Connecting(_) | State::Exchanging(_), TimeoutKind::Back) => {
                self.fail_exchange(AnswerStatus::GatewayTimeout, ctx);
            }
            (State::Connecting(_) | State::Exchanging(_), TimeoutKind::Front) => {
                self.log_unfinished(Termination::ClientTimeout, ctx);
                self.close(ctx);
            }
            // The client does not take the switching head.
            (State::Switching(_), _) => self.close(ctx),
            // The client did not take Sluice's own answer in time.
            (State::Answering(_), _) => self.close(ctx),
            // The request ended since the timer was armed: the backend's timer applies.
            (State::Connecting(_) | State::Exchanging(_), TimeoutKind::Request)
            | (State::Closed, _) => {}
        }
        self.settle(ctx);
    }

    /// What to poll each socket for.
    pub fn wants(&self) -> Interest {
        Interest {
            front_read: self.wants_front_read(),
            front_write: !self.front_pending().is_empty(),
            back_read: self.wants_back_read(),
            back_write: !self.back_pending().is_empty(),
        }
    }

    /// Idle after at least one request: a draining worker closes such a connection at once,
    /// while a connection just accepted gets to send its first request.
    pub fn is_idle_between_requests(&self) -> bool {
        self.requested && self.is_idle()
    }

    /// Between requests with nothing buffered (no buffer held).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::ExpectRequest)
            && self.front.as_ref().is_none_or(Window::is_empty)
            && self.back.is_none()
            && self.front_out.is_empty()
            && self.back_out.is_empty()
    }

    /// The timer the loop should arm now, if any (connect timeouts are the loop's).
    pub fn expected_timeout(&self) -> Option<TimeoutKind> {
        match &self.state {
            State::ExpectRequest if self.front.as_ref().is_none_or(Window::is_empty) => {
                Some(TimeoutKind::Front)
            }
            State::ExpectRequest => Some(TimeoutKind::Request),
            State::Exchanging(exchange) if !exchange.request.is_done() => {
                Some(TimeoutKind::Request)
            }
            State::Exchanging(_) => Some(TimeoutKind::Back),
            State::Switching(_) | State::Answering(_) => Some(TimeoutKind::Front),
            State::Connecting(_) | State::Closed => None,
        }
    }

    /// Gives every held buffer back (the session is being dropped, or idle).
    pub fn release_buffers(&mut self, buffers: &mut dyn BufferSource) {
        let closing = matches!(self.state, State::Closed);
        for window in [&mut self.front, &mut self.back] {
            if window.as_ref().is_some_and(|w| closing || w.is_empty()) {
                if let Some(window) = window.take() {
                    buffers.give(window.into_inner());
                }
            }
        }
        if closing {
            self.front_out.release(buffers);
            self.back_out.release(buffers);
        }
    }

    /// Gives every held buffer back whatever the state, for a session the loop
    /// drops (a socket broke, a timer of its own fired, the worker stops): the
    /// session is closed afterwards and asks for nothing more.
    pub fn release_all_buffers(&mut self, buffers: &mut dyn BufferSource) {
        self.state = State::Closed;
        self.release_buffers(buffers);
    }

    fn wants_front_read(&self) -> bool {
        let state_wants = match &self.state {
            State::ExpectRequest => true,
            State::Connecting(exchange) | State::Exchanging(exchange) => {
                !exchange.request.is_done()
            }
            State::Switching(_) | State::Answering(_) | State::Closed => false,
        };
        state_wants && self.front.as_ref().is_none_or(|w| !w.is_full())
    }

    fn wants_back_read(&self) -> bool {
        let state_wants = match &self.state {
            State::Exchanging(exchange) => !matches!(exchange.response, ResponseProgress::Done),
            _ => false,
        };
        state_wants && self.back.as_ref().is_none_or(|w| !w.is_full())
    }

    /// Runs the state machine as far as the buffered bytes allow, then gives
    /// back the buffers that are empty.
    fn settle(&mut self, ctx: &mut HttpContext<'_>) {
        loop {
            let progressed = match &self.state {
                State::ExpectRequest => self.start_request(ctx),
                State::Exchanging(_) => self.pump_exchange(ctx),
                _ => false,
            };
            if !progressed {
                break;
            }
        }
        self.release_buffers(ctx.buffers);
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    /// Parses and routes a request head if one is buffered.
    fn start_request(&mut self, ctx: &mut HttpContext<'_>) -> bool {
        let Some(window) = &self.front else {
            return false;
        };
        if window.is_empty() {
            return false;
        }
        self.requested = true;
        let options = RequestOptions {
            sticky_cookie: Some(ctx.sticky_cookie),
        };
        match parse_request(window.bytes(), &options, &mut ctx.out.headers) {
            Ok(Parsed::Partial) if window.is_full() => {
                self.refuse(oversized_request(window.bytes()), ctx)
            }
            Ok(Parsed::Partial) => return false,
            Err(error) => self.refuse(error, ctx),
            Ok(Parsed::Complete(head)) => self.route(head, ctx),
        }
        true
    }

    fn refuse(&mut self, error: HeadError, ctx: &mut HttpContext<'_>) {
        log::debug!("request refused: {error}");
        let status = AnswerStatus::from_code(error.status()).unwrap_or(AnswerStatus::BadRequest);
        self.answer(status, None, ctx);
    }

    /// Follows the request body, then the response, and finishes the exchange.
    fn pump_exchange(&mut self, ctx: &mut HttpContext<'_>) -> bool {
        let State::Exchanging(exchange) = &mut self.state else {
            return false;
        };
        let mut progressed = false;
        if let Some(window) = &self.front {
            let unseen = &window.bytes()[exchange.request_ready..];
            if !exchange.request.is_done() && !unseen.is_empty() {
                match exchange.request.scan_limited(unseen, ctx.max_request_body) {
                    Ok(n) => {
                        exchange.request_ready += n;
                        progressed |= n > 0;
                    }
                    Err(error) => {
                        log::debug!("request body refused: {error}");
                        self.fail_exchange(error.status(), ctx);
                        return true;
                    }
                }
            }
        }
        progressed |= match exchange.response {
            ResponseProgress::Head => ResponseStep::Head,
            ResponseProgress::Body(_) => ResponseStep::Body,
            ResponseProgress::Done => ResponseStep::Finish,
        }
        .run(self, ctx);
        progressed
    }

    /// Once the switching head is written (and the request entirely), the loop may take
    /// the connection over: `Upgraded` says so, once.
    fn announce_switch(&mut self, ctx: &mut HttpContext<'_>) {
        if let State::Switching(_) = self.state {
            if self.front_out.is_empty() && self.back_out.is_empty() {
                ctx.out.actions.push(SessionAction::Upgraded);
            }
        }
    }

    /// After `Upgraded`: hands the connection over to the loop as a byte pipe, with the
    /// bytes already read on each side and the upgrade's record. The session is closed
    /// afterwards (without a `Close`: the connections go on under the loop).
    pub fn take_pipe(&mut self, ctx: &mut HttpContext<'_>) -> Option<Handover> {
        if !(self.front_out.is_empty() && self.back_out.is_empty()) {
            return None;
        }
        let State::Switching(upgrade) = std::mem::replace(&mut self.state, State::Closed) else {
            return None;
        };
        let log = upgrade.log;
        ctx.out.recycle_exchange(upgrade);
        self.backend = None;
        self.front_out.release(ctx.buffers);
        self.back_out.release(ctx.buffers);
        Some(Handover {
            client_bytes: self.front.take(),
            backend_bytes: self.back.take(),
            log,
        })
    }

    fn front_eof(&mut self, ctx: &mut HttpContext<'_>) {
        match &mut self.state {
            State::ExpectRequest => self.close(ctx),
            State::Connecting(exchange) | State::Exchanging(exchange) => {
                if exchange.request.is_done() {
                    exchange.close_client = true;
                } else {
                    self.log_unfinished(Termination::ClientAbort, ctx);
                    self.abort(ctx);
                }
            }
            State::Switching(_) | State::Answering(_) | State::Closed => {}
        }
    }

    fn back_eof(&mut self, ctx: &mut HttpContext<'_>, error: bool) {
        if self.can_replay() {
            return self.replay(ctx);
        }
        match &mut self.state {
            State::Exchanging(exchange) => match &exchange.response {
                ResponseProgress::Body(BodyProgress::UntilClose) if !error => {
                    exchange.response = ResponseProgress::Done;
                    exchange.keep_backend = false;
                }
                ResponseProgress::Done => exchange.keep_backend = false,
                _ => self.fail_exchange(AnswerStatus::BadGateway, ctx),
            },
            State::Switching(_) => self.abort(ctx),
            _ => {
                if self.backend.take().is_some() {
                    ctx.out.actions.push(SessionAction::CloseBackend);
                }
            }
        }
    }

    /// The exchange cannot go on: answer `status` if the client has seen
    /// nothing of the response yet, else close.
    fn fail_exchange(&mut self, status: AnswerStatus, ctx: &mut HttpContext<'_>) {
        let exchange = match std::mem::replace(&mut self.state, State::ExpectRequest) {
            State::Connecting(exchange) | State::Exchanging(exchange) => exchange,
            other => {
                self.state = other;
                return self.abort(ctx);
            }
        };
        if exchange.response_started {
            self.state = State::Exchanging(exchange);
            let termination = match status {
                AnswerStatus::GatewayTimeout => Termination::BackendTimeout,
                _ => Termination::BackendError,
            };
            self.log_unfinished(termination, ctx);
            return self.abort(ctx);
        }
        self.front_out.release(ctx.buffers);
        self.answer_logged(status, exchange, ctx);
    }

    /// Logs the exchange in progress, if any, as ended by `termination` (the
    /// connection is about to close): the access log has a line for every
    /// request, finished or not.
    fn log_unfinished(&mut self, termination: Termination, ctx: &mut HttpContext<'_>) {
        if let State::Connecting(exchange) | State::Exchanging(exchange) = &mut self.state {
            let mut log = exchange.finish_log(ctx.now);
            log.termination = termination;
            ctx.out.request_finished(log);
        }
    }

    fn answer(&mut self, status: AnswerStatus, cluster: Option<&str>, ctx: &mut HttpContext<'_>) {
        let answer = Rc::clone(ctx.answers.get(status, cluster));
        let mut log = RequestLog::empty();
        log.status = status.code();
        log.bytes_out = answer.len() as u64;
        log.termination = Termination::of_answer(log.status, false);
        self.start_answer(answer, log, ctx);
    }

    fn answer_logged(
        &mut self,
        status: AnswerStatus,
        mut exchange: Box<Exchange>,
        ctx: &mut HttpContext<'_>,
    ) {
        let cluster = self.backend.as_ref().map(|l| &*l.cluster_id);
        let answer = Rc::clone(ctx.answers.get(status, cluster));
        let mut log = exchange.finish_log(ctx.now);
        log.status = status.code();
        log.bytes_out = answer.len() as u64;
        log.termination = Termination::of_answer(log.status, exchange.connected_at.is_some());
        self.start_answer(answer, log, ctx);
    }

    /// Answers a request with a redirect built for it (`redirect_https`).
    fn answer_redirect(
        &mut self,
        answer: redirect::Redirect,
        mut exchange: Box<Exchange>,
        ctx: &mut HttpContext<'_>,
    ) {
        let mut log = exchange.finish_log(ctx.now);
        log.status = answer.status;
        log.bytes_out = answer.bytes.len() as u64;
        log.termination = Termination::of_answer(log.status, false);
        self.start_answer(answer.bytes, log, ctx);
    }

    fn start_answer(&mut self, answer: Rc<[u8]>, mut log: RequestLog, ctx: &mut HttpContext<'_>) {
        log.answered_by_proxy = true;
        if self.backend.take().is_some() {
            ctx.out.actions.push(SessionAction::CloseBackend);
        }
        ctx.out.request_finished(log);
        self.state = State::Answering(Answering { answer, written: 0 });
    }

    /// Drops both connections now.
    fn abort(&mut self, ctx: &mut HttpContext<'_>) {
        if self.backend.take().is_some() {
            ctx.out.actions.push(SessionAction::CloseBackend);
        }
        self.close(ctx);
    }

    /// The client's sticky cookie value, as the loop looks backends up.
    fn sticky_text(&mut self) -> Option<Rc<str>> {
        let bytes = self.request_sticky.as_deref()?;
        if let Some(text) = self.sticky_text.as_ref().filter(|t| t.as_bytes() == bytes) {
            return Some(Rc::clone(text));
        }
        let text: Rc<str> = String::from_utf8_lossy(bytes).into();
        self.sticky_text = Some(Rc::clone(&text));
        Some(text)
    }

    fn close(&mut self, ctx: &mut HttpContext<'_>) {
        // Between requests the kept backend connection is idle and reusable.
        if matches!(self.state, State::ExpectRequest)
            && self.backend.as_ref().is_some_and(|l| l.connected)
        {
            self.backend = None;
            ctx.out.actions.push(SessionAction::ReleaseBackend);
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Closed => {}
            // Closed before the loop took the pipe over: the upgrade is logged now.
            State::Switching(upgrade) => {
                ctx.out.pipe_finished(upgrade.log);
                ctx.out.recycle_exchange(upgrade);
                ctx.out.actions.push(SessionAction::Close);
            }
            _ => ctx.out.actions.push(SessionAction::Close),
        }
    }

    /// The client connection broke (a read or write error): the loop closes the session
    /// at once; what was under way is logged as ended by the client.
    pub fn front_broken(&mut self, ctx: &mut HttpContext<'_>) {
        self.log_unfinished(Termination::ClientAbort, ctx);
        self.abort(ctx);
    }

    /// The backend of this session's connection changed weight or state: its next request
    /// picks a backend again, letting the connection go (the loop keeps it for reuse when its
    /// backend is still ready). With `release_now` (its backend takes no new request: drain
    /// or maintenance), a connection idle between two requests goes at once, and one in use
    /// as soon as its exchange is over.
    pub fn rebalance(&mut self, release_now: bool, ctx: &mut HttpContext<'_>) {
        let idle = matches!(self.state, State::ExpectRequest)
            && self.backend.as_ref().is_some_and(|l| l.connected);
        if release_now && idle {
            self.backend = None;
            self.rebalance = false;
            ctx.out.actions.push(SessionAction::ReleaseBackend);
            return;
        }
        self.rebalance = self.backend.is_some();
        self.release_when_idle = release_now && self.rebalance;
    }

    /// Bytes the session holds on the heap apart from pooled buffers.
    pub fn heap_bytes(&self) -> usize {
        let link = self.backend.as_ref();
        self.forwarded.heap_len()
            + self.request_sticky.as_ref().map_or(0, Vec::capacity)
            + self.sticky_text.as_ref().map_or(0, |t| t.len())
            + link
                .and_then(|l| l.sticky_id.as_ref())
                .map_or(0, |s| s.len())
    }

    /// Panics when the session's bookkeeping is inconsistent (debug builds).
    #[cfg(debug_assertions)]
    pub fn check_invariants(&self) {
        let front_len = self.front.as_ref().map_or(0, |w| w.bytes().len());
        let back_len = self.back.as_ref().map_or(0, |w| w.bytes().len());
        match &self.state {
            State::Exchanging(exchange) => {
                assert!(
                    exchange.request_ready <= front_len,
                    "request bytes beyond the buffer"
                );
                assert!(
                    exchange.response_ready <= back_len,
                    "response bytes beyond the buffer"
                );
                assert!(
                    self.backend.as_ref().is_some_and(|l| l.connected),
                    "exchanging without a connected backend"
                );
            }
            State::Connecting(_) => {
                assert!(self.backend.as_ref().is_some_and(|l| !l.connected));
            }
            State::ExpectRequest => {
                assert!(self.back_out.is_empty() && self.front_out.is_empty());
                assert!(self.back.is_none(), "backend bytes kept between requests");
            }
            State::Answering(answering) => {
                assert!(self.backend.is_none() && answering.written <= answering.answer.len());
            }
            State::Switching(_) | State::Closed => {}
        }
    }
}

fn take_window(buffers: &mut dyn BufferSource, size: usize) -> Window {
    let mut buffer = buffers.take();
    if buffer.len() < size {
        buffer.resize(size, 0);
    }
    Window::new(buffer)
}

#[cfg(test)]
mod tests;
