//! A parsed request head meets the router: an answer of Sluice's own (redirect, deny,
//! not found, body too large), or a request head written for the backend and a
//! connection asked of the loop. Every request is balanced: the session's connection is
//! kept only if the cluster's selection picks its backend again.

use super::*;
use crate::http::parser::RequestHead;

impl HttpSession {
    /// Routes the request whose head was just parsed.
    pub(super) fn route(&mut self, head: RequestHead, ctx: &mut HttpContext<'_>) {
        let Some(window) = self.front.as_mut() else {
            return;
        };
        let buf = window.bytes();
        let host = head.host.map_or(&[][..], |h| h.of(buf));
        let mut exchange = ctx.out.boxed_exchange(Exchange::new(buf, &head, ctx.now));
        let cluster = match ctx
            .router
            .lookup(host, head.path.of(buf), head.method.of(buf))
        {
            Some(Route::Cluster(cluster)) => {
                self.hsts = None;
                cluster
            }
            Some(Route::ClusterWithHsts { cluster, hsts }) => {
                if self.hsts.as_ref() != Some(hsts) {
                    self.hsts = Some(Rc::clone(hsts));
                }
                cluster
            }
            Some(Route::RedirectHttps) => {
                let answer = redirect::to_https(host, head.target.of(buf), head.method.of(buf));
                return self.answer_redirect(answer, exchange, ctx);
            }
            Some(Route::Deny) => return self.answer_logged(AnswerStatus::Forbidden, exchange, ctx),
            None => return self.answer_logged(AnswerStatus::NotFound, exchange, ctx),
        };
        exchange.log.routed = true;
        if body_limit::exceeded(&exchange, ctx) {
            return self.refuse_large_body(exchange, cluster, ctx);
        }
        match head.sticky {
            // The vector is reused from request to request.
            Some(sticky) => {
                let kept = self.request_sticky.get_or_insert_with(Vec::new);
                kept.clear();
                kept.extend_from_slice(sticky.of(buf));
            }
            None => self.request_sticky = None,
        }
        let generated;
        let request_id = match head.request_id {
            Some(kept) => {
                exchange.log.set_request_id(kept.of(buf));
                None
            }
            None => {
                generated = ctx.request_ids.next_id();
                exchange.log.set_request_id(&generated);
                Some(&generated[..])
            }
        };
        let out = self.back_out.fill(ctx.buffers);
        let rewrite = RequestRewrite {
            forwarded: &self.forwarded,
            request_id,
        };
        write_request_head(out, buf, &head, &ctx.out.headers, &rewrite);
        let replayable = exchange.idempotent && exchange.request.is_done();
        window.consume(head.len);
        // Every request is balanced: the loop keeps the current connection only if the
        // cluster's selection picks its backend again.
        let current_connection = match self.backend.take() {
            Some(mut link) if link.connected && link.cluster_id == *cluster => {
                // Kept with its sticky id: if the loop keeps the connection, nothing
                // about the link changes.
                link.connected = false;
                self.backend = Some(link);
                true
            }
            Some(link) => {
                ctx.out.actions.push(if link.connected {
                    SessionAction::ReleaseBackend
                } else {
                    SessionAction::CloseBackend
                });
                false
            }
            None => false,
        };
        if !current_connection {
            self.backend = Some(BackendLink {
                cluster_id: Rc::clone(cluster),
                sticky_id: None,
                connected: false,
            });
        }
        // Balancing the request also answers a pending rebalance.
        self.rebalance = false;
        self.release_when_idle = false;
        ctx.out.actions.push(SessionAction::ConnectBackend {
            cluster_id: Rc::clone(cluster),
            sticky_id: self.sticky_text(),
            reuse: replayable,
            current_connection,
        });
        self.state = State::Connecting(exchange);
    }
}
