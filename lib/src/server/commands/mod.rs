//! Requests from the main process: each is checked against the worker's mirror of the
//! state, applied to the live structures, and answered with the same id. A request that
//! fails changes nothing.
//!
//! A batch (a reload, a state load, the replay of the state to a new worker) is applied
//! whole, inside one call, between two turns of the loop: no session ever sees half of
//! it. What every change needs once (sticky cookie names, due health checks, idle
//! connections to removed backends) is done once per batch, after it; everything else
//! costs what the change changes. A refused batch is undone by applying the inverse of
//! what was applied; a batch applied to an empty mirror (a new worker's replay) records
//! no inverse, and is undone by removing everything the mirror holds.
//!
//! Each family of requests has its handler, in a file of its own: configuration changes
//! and batches (`changes.rs`), which hand each change to listeners (`listeners.rs`),
//! clusters and backends (`clusters.rs`), frontends (`frontends.rs`) or certificates and
//! ticket keys (`../tls_commands.rs`); logging (`logging.rs`); status, metrics and stops
//! (`status.rs`). Every refusal is a [`CommandError`].

mod changes;
mod clusters;
mod frontends;
mod listeners;
mod logging;
mod status;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use sluice_command::listener_sockets::added_listeners;
use sluice_command::proto::{
    self, request::RequestType, response_content::ContentType, worker_message::MessageType,
    ResponseContent, ResponseStatus, WorkerMessage, WorkerRequest, WorkerResponse,
};
use sluice_command::state::{ConfigState, StateError};
use thiserror::Error;

use super::listeners::ListenerError;
use super::session::SessionTimeouts;
use super::{RunState, Server, ServerError};
use crate::access_log::AccessLogTarget;
use crate::backends::BackendError;
use crate::http::router::RouterError;

/// The answer to one request: a message, optional content.
pub(super) type Answer = Result<(String, Option<ContentType>), CommandError>;

/// Why a worker refused a request from the main process; its text is the answer's
/// message.
#[derive(Debug, Error)]
pub(super) enum CommandError {
    /// The request carried no request type.
    #[error("empty request")]
    Empty,
    /// A request kind workers do not handle.
    #[error("a worker does not handle {0}")]
    Unsupported(&'static str),
    /// An address that does not parse as a socket address.
    #[error("invalid socket address {0:?}")]
    InvalidAddress(String),
    /// An HTTP frontend on an address without an HTTP listener.
    #[error("no HTTP listener on {0}")]
    NoHttpListener(String),
    /// A log level that does not exist.
    #[error("unknown log level {0:?}")]
    UnknownLogLevel(String),
    /// The access log could not be (re)opened.
    #[error("cannot open the access log {target}: {source}")]
    AccessLog {
        /// Where it should have been written.
        target: AccessLogTarget,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// The worker's mirror of the state refused the change.
    #[error(transparent)]
    State(#[from] StateError),
    /// A listener could not be added, changed or removed.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// A backend could not be added or removed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A route could not be added or removed.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// A certificate, ticket keys or a listener's TLS settings were refused.
    #[error(transparent)]
    Tls(crate::tls::TlsError),
    /// A TLS listener that expects a PROXY protocol header first.
    #[error("listener {0}: TLS after a PROXY protocol header is not supported")]
    TlsBehindProxyProtocol(SocketAddr),
    /// A listener's update would add or remove TLS: remove it and add it again.
    #[error("listener {0}: TLS cannot be turned on or off in place")]
    TlsChange(SocketAddr),
    /// One request of a batch was refused.
    #[error("{summary}: {source}")]
    InBatch {
        /// The refused request, in a few words.
        summary: String,
        /// Why it was refused.
        source: Box<CommandError>,
    },
}

impl Server {
    /// Reads and handles every request the channel holds.
    pub(super) fn channel_ready(
        &mut self,
        event: &mio::event::Event,
        now: Instant,
    ) -> Result<(), ServerError> {
        if event.is_writable() {
            self.channel.flush()?;
        }
        if !event.is_readable() && !event.is_read_closed() {
            return Ok(());
        }
        let requests = match self.channel.read_available() {
            Ok(requests) => requests,
            Err(sluice_command::channel::ChannelError::Eof) => {
                if matches!(self.run_state, RunState::Draining { .. }) {
                    // A main process that handed over to a new one (upgrade) leaves its
                    // draining workers to finish their sessions on their own.
                    log::info!(
                        "worker {}: main process gone, still draining",
                        self.options.id
                    );
                    self.poll
                        .registry()
                        .deregister(&mut mio::unix::SourceFd(&self.channel.as_raw_fd()))?;
                    self.orphaned = true;
                    return Ok(());
                }
                log::info!("worker {}: main process gone, exiting", self.options.id);
                self.run_state = RunState::Stopped;
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        for mut request in requests {
            self.take_handed_over_sockets(&request.content);
            // A snapshot of 10 000 clusters is tens of megabytes, gone once sent; a large
            // batch and its undo are gone once applied: the resident size should be the
            // state's, not this peak's. Done once answered, so that main does not wait.
            // (Asked before handling: a batch's requests are taken as they are applied.)
            let metrics = matches!(
                request.content.request_type,
                Some(RequestType::QueryMetrics(_))
            );
            let hand_memory_back = metrics || Server::is_large_batch(&request.content);
            let answer = self.handle(&mut request, now);
            self.listeners.drop_spare_sockets();
            self.answer(request.id, answer)?;
            if hand_memory_back {
                crate::sys::release_free_memory();
            }
        }
        Ok(())
    }

    /// Takes from the channel the sockets that came with `request`, one per listener it
    /// adds ([`added_listeners`]), for the listeners to adopt.
    fn take_handed_over_sockets(&mut self, request: &proto::Request) {
        for address in added_listeners(request) {
            let Some(socket) = self.channel.take_received_fd() else {
                log::error!(
                    "worker {}: the request adding the listener on {address} came without its \
                     socket",
                    self.options.id
                );
                return;
            };
            match address.parse() {
                Ok(address) => self.listeners.hand_over(address, socket),
                Err(_) => log::warn!("worker {}: socket for {address:?} dropped", self.options.id),
            }
        }
    }

    fn answer(&mut self, id: String, answer: Answer) -> Result<(), ServerError> {
        let response = match answer {
            Ok((message, content)) => WorkerResponse {
                id,
                status: ResponseStatus::Ok as i32,
                message,
                content: content.map(|c| ResponseContent {
                    content_type: Some(c),
                }),
            },
            Err(error) => WorkerResponse {
                id,
                status: ResponseStatus::Failure as i32,
                message: error.to_string(),
                content: None,
            },
        };
        self.channel.write_message(&WorkerMessage {
            message_type: Some(MessageType::Response(response)),
        })?;
        Ok(())
    }

    /// Sends queued backend events, tagged with this worker's id.
    pub(super) fn forward_backend_events(&mut self) -> Result<(), ServerError> {
        if self.orphaned {
            self.ctx.backends.take_events();
            return Ok(());
        }
        for mut event in self.ctx.backends.take_events() {
            event.worker_id = Some(self.options.id);
            if event.kind == proto::EventKind::RemovedBackendHasNoConnections as i32 {
                if let (Some(cluster), Some(backend)) = (&event.cluster_id, &event.backend_id) {
                    self.ctx.metrics.remove_backend(cluster, backend);
                }
            }
            self.channel.write_message(&WorkerMessage {
                message_type: Some(MessageType::Event(event)),
            })?;
        }
        Ok(())
    }

    /// Answers a request; a change takes the request's content (see
    /// [`Server::change_state`]).
    fn handle(&mut self, request: &mut WorkerRequest, now: Instant) -> Answer {
        if ConfigState::is_state_change(&request.content) {
            return self.change_state(&mut request.content, now);
        }
        let Some(content) = request.content.request_type.as_ref() else {
            return Err(CommandError::Empty);
        };
        match content {
            RequestType::QueryStatus(_) => Ok((String::new(), Some(self.status()))),
            RequestType::QueryMetrics(query) => {
                Ok((String::new(), Some(self.metrics_snapshot(query))))
            }
            RequestType::QueryClusters(query) => Ok((
                String::new(),
                Some(ContentType::Clusters(self.state.cluster_list(query))),
            )),
            RequestType::SoftStop(stop) => Ok(self.soft_stop(stop, now)),
            RequestType::HardStop(_) => Ok(self.hard_stop()),
            RequestType::SetLogging(settings) => self.set_logging(settings),
            RequestType::SetTicketKeys(_) => self.change_state(&mut request.content, now),
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }
}

fn parse(address: &str) -> Result<SocketAddr, CommandError> {
    address
        .parse()
        .map_err(|_| CommandError::InvalidAddress(address.to_owned()))
}

fn timeouts(timeouts: &proto::Timeouts) -> SessionTimeouts {
    SessionTimeouts {
        front_ms: timeouts.front_timeout_ms.max(1),
        back_ms: timeouts.back_timeout_ms.max(1),
        connect_ms: timeouts.connect_timeout_ms.max(1),
        request_ms: timeouts.request_timeout_ms.max(1),
    }
}

/// A short name of a request kind, for messages.
fn request_name(request: &RequestType) -> &'static str {
    match request {
        RequestType::SubscribeEvents(_) => "event subscriptions",
        RequestType::SaveState(_) | RequestType::LoadState(_) => "state files",
        RequestType::ReloadConfiguration(_) => "reloads",
        RequestType::UpgradeMain(_) => "upgrades",
        RequestType::QueryCertificates(_) => "certificate queries",
        _ => "this request",
    }
}
