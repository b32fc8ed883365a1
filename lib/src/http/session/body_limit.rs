//! The listener's request body limit, checked on the head: a body announced
//! longer than the limit is refused before anything reaches a backend (chunked
//! bodies are checked as they flow, in `BodyProgress::scan_limited`).

use std::rc::Rc;

use super::{exchange::Exchange, HttpContext, HttpSession};
use crate::http::answers::AnswerStatus;

/// The request's Content-Length is over the listener's limit.
pub(super) fn exceeded(exchange: &Exchange, ctx: &HttpContext<'_>) -> bool {
    ctx.max_request_body
        .is_some_and(|limit| exchange.request.exceeds(limit))
}

impl HttpSession {
    /// Answers 413 (the cluster's own answer if it has one), then closes. No
    /// `100 Continue` is ever sent for such a request: it never reaches the
    /// backend, and the proxy sends none of its own.
    pub(super) fn refuse_large_body(
        &mut self,
        mut exchange: Box<Exchange>,
        cluster: &str,
        ctx: &mut HttpContext<'_>,
    ) {
        log::debug!("request body over the listener's limit: 413");
        let status = AnswerStatus::PayloadTooLarge;
        let answer = Rc::clone(ctx.answers.get(status, Some(cluster)));
        let mut log = exchange.finish_log(ctx.now);
        log.status = status.code();
        log.bytes_out = answer.len() as u64;
        self.start_answer(answer, log, ctx);
    }
}
