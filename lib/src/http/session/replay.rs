//! Sending a request again when the kept backend connection it went on was
//! closed by the backend while idle (the close raced the request): like nginx
//! and HAProxy, once, for requests without a body and with an idempotent method.

use super::{HttpContext, HttpSession, ResponseProgress, SessionAction, State, Window};

impl HttpSession {
    /// The reused backend connection closed before any response byte, and
    /// the request can be sent again.
    pub(super) fn can_replay(&self) -> bool {
        let State::Exchanging(exchange) = &self.state else {
            return false;
        };
        exchange.replay
            && !exchange.response_started
            && matches!(exchange.response, ResponseProgress::Head)
            && self.back.as_ref().is_none_or(Window::is_empty)
    }

    /// Sends the request again on a fresh connection to the same cluster (once).
    pub(super) fn replay(&mut self, ctx: &mut HttpContext<'_>) {
        let (State::Exchanging(mut exchange), Some(link)) = (
            std::mem::replace(&mut self.state, State::Closed),
            self.backend.as_mut(),
        ) else {
            return self.abort(ctx);
        };
        log::debug!("kept backend connection closed before answering: sending the request again");
        exchange.replay = false;
        exchange.connected_at = None;
        self.back_out.rewind();
        link.connected = false;
        let cluster_id = std::rc::Rc::clone(&link.cluster_id);
        ctx.out.actions.push(SessionAction::CloseBackend);
        ctx.out.actions.push(SessionAction::ConnectBackend {
            cluster_id,
            sticky_id: self.sticky_text(),
            // A fresh connection: another kept one may be just as stale.
            reuse: false,
            current_connection: false,
        });
        self.state = State::Connecting(exchange);
    }
}

/// Methods that may be sent twice (RFC 9110 section 9.2.2).
pub(super) fn is_idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}
