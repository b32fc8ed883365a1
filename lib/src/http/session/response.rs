//! The response side of an exchange: the backend's head (interim responses, framing,
//! the head as forwarded), its body, and the end of the exchange.

use super::*;

impl HttpSession {
    pub(super) fn read_response_head(&mut self, ctx: &mut HttpContext<'_>) -> bool {
        let (State::Exchanging(exchange), Some(window)) = (&mut self.state, &mut self.back) else {
            return false;
        };
        if window.is_empty() || !self.front_out.is_empty() {
            return false;
        }
        let head = match parse_response(window.bytes(), exchange.head_request, &mut ctx.out.headers)
        {
            Ok(Parsed::Complete(head)) => head,
            Ok(Parsed::Partial) if !window.is_full() => return false,
            Ok(Parsed::Partial) | Err(_) => {
                log::debug!("invalid response head from the backend");
                self.fail_exchange(AnswerStatus::BadGateway, ctx);
                return true;
            }
        };
        let buf = window.bytes();
        let connection = if head.status == 101 {
            if !exchange.upgrade {
                self.fail_exchange(AnswerStatus::BadGateway, ctx);
                return true;
            }
            exchange.log.status = head.status;
            ClientConnection::Upgrade
        } else if head.is_interim() {
            ClientConnection::KeepAlive
        } else {
            // A response that starts before its request was entirely sent (body
            // still coming, or bytes still unwritten) ends both connections: what
            // is left of the request is dropped, never parsed as another one.
            let request_unsent = !exchange.request.is_done()
                || exchange.request_ready > 0
                || !self.back_out.is_empty();
            exchange.close_client |= head.framing == BodyFraming::UntilClose || request_unsent;
            exchange.keep_backend = head.keep_alive;
            exchange.log.status = head.status;
            match (exchange.close_client, exchange.client_version) {
                (true, _) => ClientConnection::Close,
                (false, Version::Http10) => ClientConnection::KeepAliveHttp10,
                (false, Version::Http11) => ClientConnection::KeepAlive,
            }
        };
        let backend_sticky = self.backend.as_ref().and_then(|l| l.sticky_id.as_deref());
        let set_cookie = match backend_sticky {
            Some(id)
                if !head.is_interim() && self.request_sticky.as_deref() != Some(id.as_bytes()) =>
            {
                Some((ctx.sticky_cookie, id.as_bytes()))
            }
            _ => None,
        };
        let out = self.front_out.fill(ctx.buffers);
        let rewrite = ResponseRewrite {
            connection,
            set_cookie,
            hsts: self.hsts.as_deref().map(str::as_bytes),
        };
        write_response_head(out, buf, &head, &ctx.out.headers, &rewrite);
        window.consume(head.len);
        exchange.response_started = true;
        if head.status == 101 {
            exchange.log.termination = super::Termination::Upgraded;
            let log = exchange.finish_log(ctx.now);
            ctx.out.request_finished(log);
            if let State::Exchanging(upgrade) = std::mem::replace(&mut self.state, State::Closed) {
                self.state = State::Switching(upgrade);
            }
        } else if !head.is_interim() {
            let body = BodyProgress::new(head.framing);
            exchange.response = match body {
                BodyProgress::Done => ResponseProgress::Done,
                body => ResponseProgress::Body(body),
            };
        }
        true
    }

    pub(super) fn follow_response_body(&mut self, ctx: &mut HttpContext<'_>) -> bool {
        let (State::Exchanging(exchange), Some(window)) = (&mut self.state, &mut self.back) else {
            return false;
        };
        let ResponseProgress::Body(body) = &mut exchange.response else {
            return false;
        };
        let unseen = &window.bytes()[exchange.response_ready..];
        if unseen.is_empty() {
            return false;
        }
        match body.scan(unseen) {
            Ok(n) => {
                exchange.response_ready += n;
                if body.is_done() {
                    exchange.response = ResponseProgress::Done;
                }
                // Body bytes that fit behind the head still waiting to be written go out
                // with it, in one write instead of two.
                let ready = exchange.response_ready;
                if !self.front_out.is_empty()
                    && self.front_out.append_in_place(&window.bytes()[..ready])
                {
                    window.consume(ready);
                    exchange.response_ready = 0;
                }
                n > 0
            }
            Err(error) => {
                log::debug!("invalid response body from the backend: {error}");
                self.abort(ctx);
                true
            }
        }
    }

    /// Once the response was entirely written: next request, or close.
    pub(super) fn finish_exchange(&mut self, ctx: &mut HttpContext<'_>) -> bool {
        let State::Exchanging(exchange) = &mut self.state else {
            return false;
        };
        if exchange.response_ready > 0 || !self.front_out.is_empty() {
            return false;
        }
        let log = exchange.finish_log(ctx.now);
        self.back_out.stop_keeping(ctx.buffers);
        let leftover = self.back.as_ref().is_some_and(|w| !w.is_empty());
        // Reusable only if the whole request went out and nothing followed the response.
        let request_sent = exchange.request_ready == 0 && self.back_out.pending().is_empty();
        let request_whole = exchange.request.is_done() && request_sent;
        let keep_backend = exchange.keep_backend && request_whole && !leftover;
        // The head said `Connection: close` already when the request was not whole.
        let close_client = exchange.close_client || !request_whole;
        ctx.out.request_finished(log);
        if let Some(window) = &mut self.back {
            let all = window.bytes().len();
            window.consume(all);
        }
        let release = close_client || std::mem::take(&mut self.release_when_idle);
        if (!keep_backend || release) && self.backend.take().is_some() {
            ctx.out.actions.push(if keep_backend {
                SessionAction::ReleaseBackend
            } else {
                SessionAction::CloseBackend
            });
        }
        if close_client {
            self.close(ctx);
        } else if let State::Exchanging(exchange) =
            std::mem::replace(&mut self.state, State::ExpectRequest)
        {
            ctx.out.recycle_exchange(exchange);
        }
        true
    }
}

/// What the response side of an exchange does next.
pub(super) enum ResponseStep {
    Head,
    Body,
    Finish,
}

impl ResponseStep {
    pub(super) fn run(self, session: &mut HttpSession, ctx: &mut HttpContext<'_>) -> bool {
        match self {
            ResponseStep::Head => session.read_response_head(ctx),
            ResponseStep::Body => session.follow_response_body(ctx),
            ResponseStep::Finish => session.finish_exchange(ctx),
        }
    }
}
