//! Requests about TLS: certificates and ticket keys (held by the worker's
//! [`TlsListeners`](crate::tls::TlsListeners), not by its mirror of the state), and the
//! TLS settings of listeners.

use std::net::SocketAddr;

use sluice_command::proto::{self, request::RequestType};

use super::commands::CommandError;
use super::Server;
use crate::tls::CertificateUndo;

impl Server {
    /// Applies a certificate or ticket key request; `None` for any other request.
    pub(super) fn apply_tls_request(
        &mut self,
        content: &RequestType,
        undo: &mut Vec<CertificateUndo>,
    ) -> Option<Result<(), CommandError>> {
        let done = match content {
            RequestType::AddCertificate(add) => self.ctx.tls.add_certificate(&add.certificate),
            RequestType::RemoveCertificate(remove) => {
                self.ctx.tls.remove_certificate(&remove.fingerprint)
            }
            RequestType::ReplaceCertificate(replace) => self
                .ctx
                .tls
                .replace_certificate(&replace.old_fingerprint, &replace.new_certificate),
            RequestType::SetTicketKeys(keys) => self.ctx.tls.set_ticket_keys(&keys.keys),
            _ => return None,
        };
        Some(match done {
            Ok(change) => {
                undo.push(change);
                Ok(())
            }
            Err(error) => Err(CommandError::Tls(error)),
        })
    }

    /// Sets (or clears) the TLS side of a listener added or updated.
    pub(super) fn set_listener_tls(
        &mut self,
        address: SocketAddr,
        settings: Option<&proto::TlsSettings>,
        http: bool,
        expect_proxy: bool,
    ) -> Result<(), CommandError> {
        if settings.is_some() && expect_proxy {
            return Err(CommandError::TlsBehindProxyProtocol(address));
        }
        self.ctx
            .tls
            .set_listener(address, settings, http)
            .map_err(CommandError::Tls)
    }
}

impl Server {
    /// Sends what the session's TLS layer holds, if the socket takes it; false when the
    /// session is gone or was closed (a broken socket). A TCP session waiting to close
    /// for those records closes once they are sent.
    pub(super) fn flush_front(&mut self, key: usize) -> bool {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return false;
        };
        let front = &mut session.io.front;
        if !front.holds_output() || !front.is_writable() {
            return true;
        }
        match front.flush() {
            Ok(true)
                if matches!(session.core, super::session::Core::Tcp(_))
                    && matches!(session.phase, super::session::Phase::Lingering { .. }) =>
            {
                self.close_session(key);
                false
            }
            Ok(_) => true,
            Err(error) => {
                log::debug!("session {key}: sending TLS records: {error}");
                self.close_session(key);
                false
            }
        }
    }

    /// Counts a handshake that just finished.
    pub(super) fn check_handshake(&mut self, key: usize, now: std::time::Instant) {
        let Some(session) = self.sessions.get_mut(key).filter(|s| !s.is_closed()) else {
            return;
        };
        let Some(since) = session.handshake_since else {
            return;
        };
        let Some(tls) = session.io.front.tls_layer().filter(|t| !t.is_handshaking()) else {
            return;
        };
        let connection = tls.connection();
        let resumed = connection.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.ctx.tls_stats.completed(
            connection.protocol_version(),
            resumed,
            now.saturating_duration_since(since),
        );
        session.handshake_since = None;
    }
}
