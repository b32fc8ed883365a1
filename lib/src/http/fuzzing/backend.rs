//! The backend side of the modelled loop: what a backend connection sends,
//! what Sluice writes on it (followed as requests, each routed to the
//! connection's cluster and started on it), EOFs and errors.

use super::driver::{Link, SessionDriver};
use super::violation::Violation;
use crate::http::router::Route;

impl SessionDriver {
    pub(super) fn backend_sends(&mut self, bytes: &[u8]) {
        if let Link::Connected(connection) = &mut self.link {
            if !connection.closing {
                connection.outbox.extend_from_slice(bytes);
            }
        }
    }

    pub(super) fn backend_closes(&mut self) {
        if let Link::Connected(connection) = &mut self.link {
            connection.closing = true;
        }
    }

    pub(super) fn back_readable(&mut self, max: usize) -> Result<(), Violation> {
        let Link::Connected(connection) = &mut self.link else {
            return Ok(());
        };
        let eof_due = connection.closing && !connection.eof_reported;
        if connection.outbox.is_empty() && eof_due && self.session.is_idle() {
            // An EOF the loop noticed on the idle connection between requests,
            // reported without asking for a buffer.
            connection.eof_reported = true;
            return self.call(|s, ctx| s.back_received(0, ctx));
        }
        let Some(space) = self.session.back_read_buffer(&mut self.pool) else {
            return Ok(());
        };
        let n = space.len().min(max).min(connection.outbox.len());
        if n > 0 {
            space[..n].copy_from_slice(&connection.outbox[..n]);
            connection.outbox.drain(..n);
            self.call(|s, ctx| s.back_received(n, ctx))
        } else if eof_due {
            connection.eof_reported = true;
            self.call(|s, ctx| s.back_received(0, ctx))
        } else {
            self.session.release_buffers(&mut self.pool);
            Ok(())
        }
    }

    pub(super) fn back_writable(&mut self, max: usize) -> Result<(), Violation> {
        let Link::Connected(connection) = &mut self.link else {
            return Ok(());
        };
        let pending = self.session.back_pending();
        let n = pending.len().min(max);
        if n == 0 {
            return Ok(());
        }
        if self.answered {
            return Err(Violation::WrittenAfterAnswer);
        }
        let targets =
            connection
                .received
                .feed(&pending[..n])
                .map_err(|error| Violation::NotRequests {
                    connection: connection.id,
                    error,
                })?;
        for target in targets {
            let route = self
                .router
                .lookup(&target.host, &target.path, &target.method);
            if !matches!(route, Some(Route::Cluster(c)) if *c == connection.cluster) {
                return Err(Violation::WrongCluster {
                    connection: connection.id,
                    cluster: connection.cluster.to_string(),
                    host: String::from_utf8_lossy(&target.host).into_owned(),
                    path: String::from_utf8_lossy(&target.path).into_owned(),
                });
            }
        }
        if connection.received.heads() > connection.started {
            return Err(Violation::UnstartedRequest {
                connection: connection.id,
                heads: connection.received.heads(),
                started: connection.started,
            });
        }
        self.summary.bytes_to_backends += n;
        self.call(|s, ctx| s.back_written(n, ctx))
    }

    /// The connection broke: the session hears of it, then the loop drops the
    /// connection before it carries out what the session asked.
    pub(super) fn backend_broken(&mut self) -> Result<(), Violation> {
        if !matches!(self.link, Link::Connected(_)) {
            return Ok(());
        }
        self.call_only(|s, ctx| s.backend_closed_with_error(ctx));
        self.link = Link::None;
        self.perform_actions()
    }
}
