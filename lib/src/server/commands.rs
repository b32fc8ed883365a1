//! Requests from the main process: each is checked against the worker's mirror of the
//! state, applied to the live structures, and answered with the same id. A request that
//! fails changes nothing.
//!
//! A batch (a reload, a state load, the replay of the state to a new worker) is applied
//! whole, inside one call, between two turns of the loop: no session ever sees half of
//! it. What every change needs once (sticky cookie names, due health checks, idle
//! connections to removed backends) is done once per batch, after it; everything else
//! costs what the change changes. A refused batch is undone by applying the inverse of
//! what was applied ([`Undo::requests`]).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use sluice_command::listener_sockets::added_listeners;
use sluice_command::proto::{
    self, request::RequestType, response_content::ContentType, worker_message::MessageType,
    ResponseContent, ResponseStatus, WorkerInfo, WorkerMessage, WorkerRequest, WorkerResponse,
    WorkerRunState, WorkerStatuses,
};
use sluice_command::state::{ConfigState, StateError, Undo};
use thiserror::Error;

use super::http_driver::{HttpRoutes, DEFAULT_STICKY_COOKIE};
use super::listeners::{ListenerError, ListenerKind};
use super::metrics::{add_retry_state, MapAvailability};
use super::session::SessionTimeouts;
use super::{RunState, Server, ServerError};
use crate::access_log::{AccessLog, AccessLogFormat, AccessLogTarget};
use crate::backends::BackendError;
use crate::http::answers::Answers;
use crate::http::router::{Router, RouterError};

/// Longest a soft stop waits for sessions to end when the request names no grace period.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// Requests in a batch past which the memory its application used is handed back.
const LARGE_BATCH: usize = 1_000;

/// The answer to one request: a message, optional content.
type Answer = Result<(String, Option<ContentType>), CommandError>;

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
        for request in requests {
            self.take_handed_over_sockets(&request.content);
            let answer = self.handle(&request, now);
            self.listeners.drop_spare_sockets();
            self.answer(request.id, answer)?;
            if let Some(RequestType::QueryMetrics(_)) = request.content.request_type {
                // A snapshot of 10 000 clusters is tens of megabytes, gone once sent.
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

    fn handle(&mut self, request: &WorkerRequest, now: Instant) -> Answer {
        let Some(content) = request.content.request_type.as_ref() else {
            return Err(CommandError::Empty);
        };
        if ConfigState::is_state_change(&request.content) {
            return self.change_state(&request.content, now);
        }
        match content {
            RequestType::QueryStatus(_) => Ok((String::new(), Some(self.status()))),
            RequestType::QueryMetrics(query) => {
                let availability = MapAvailability(&self.ctx.backends);
                let mut snapshot = self
                    .ctx
                    .metrics
                    .snapshot(self.options.id, query, &availability);
                self.ctx.tls_stats.push_values(&mut snapshot.proxy);
                add_retry_state(&mut snapshot, &self.ctx.backends);
                Ok((String::new(), Some(ContentType::WorkerMetrics(snapshot))))
            }
            RequestType::QueryClusters(query) => Ok((
                String::new(),
                Some(ContentType::Clusters(self.state.cluster_list(query))),
            )),
            RequestType::SoftStop(stop) => {
                // A draining worker finishes its sessions even if main goes away meanwhile
                // (it hands over to a new main in an upgrade); its drain deadline bounds it.
                if let Err(error) = crate::sys::outlive_parent() {
                    log::warn!("worker {}: {error}", self.options.id);
                }
                self.listeners.close_all(self.poll.registry());
                let drain = stop
                    .drain_timeout_ms
                    .map_or(DEFAULT_DRAIN, Duration::from_millis);
                self.run_state = RunState::Draining {
                    deadline: now + drain,
                };
                Ok(("draining".to_owned(), None))
            }
            RequestType::HardStop(_) => {
                self.run_state = RunState::Stopped;
                Ok(("stopping".to_owned(), None))
            }
            RequestType::SetLogging(settings) => self.set_logging(settings),
            RequestType::SetTicketKeys(_) => self.change_state(&request.content, now),
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }

    /// Takes new logging settings: the log level (unless `RUST_LOG` overrides it) and the
    /// access log, reopened even when its path did not change (logrotate moved it away).
    /// On an error, the current access log stays.
    fn set_logging(&mut self, settings: &proto::LoggingSettings) -> Answer {
        let level: log::LevelFilter = settings
            .log_level
            .parse()
            .map_err(|_| CommandError::UnknownLogLevel(settings.log_level.clone()))?;
        let target = AccessLogTarget::from_arg(&settings.access_log);
        let format = AccessLogFormat::from_arg(settings.access_log_format.as_deref().unwrap_or(""));
        let reopened = match AccessLog::open(&target, format) {
            Ok(reopened) => reopened,
            Err(source) => return Err(CommandError::AccessLog { target, source }),
        };
        self.ctx.access_log.flush();
        self.ctx.access_log = reopened;
        if std::env::var_os("RUST_LOG").is_none() {
            log::set_max_level(level);
        }
        Ok((format!("logging at {level}, access log {target}"), None))
    }

    /// Applies a configuration change, one request or a batch, to the mirror and to the
    /// live structures, whole or not at all (see the module docs).
    fn change_state(&mut self, request: &proto::Request, now: Instant) -> Answer {
        let requests = match &request.request_type {
            Some(RequestType::Batch(batch)) => batch.requests.as_slice(),
            _ => std::slice::from_ref(request),
        };
        let mut undo = Undo::new();
        let mut effects = Effects::default();
        let mut refused = None;
        for request in requests {
            if let Err(error) = self.apply_change(request, &mut undo, &mut effects, now) {
                refused = Some(if requests.len() > 1 {
                    CommandError::InBatch {
                        summary: ConfigState::summary_of(request),
                        source: Box::new(error),
                    }
                } else {
                    error
                });
                break;
            }
        }
        if refused.is_some() {
            self.roll_back(undo, &mut effects, now);
        }
        self.finish_changes(effects, now);
        if requests.len() >= LARGE_BATCH {
            // The decoded batch and its undo were large and are gone: the resident size
            // should be the state's, not this peak's.
            crate::sys::release_free_memory();
        }
        match refused {
            Some(error) => Err(error),
            None => Ok((String::new(), None)),
        }
    }

    /// Applies one change to the mirror then to the live structures, recording its writes
    /// in `undo`; if the live part fails (an address in use), the mirror is put back.
    fn apply_change(
        &mut self,
        request: &proto::Request,
        undo: &mut Undo,
        effects: &mut Effects,
        now: Instant,
    ) -> Result<(), CommandError> {
        let Some(content) = request.request_type.as_ref() else {
            return Err(CommandError::Empty);
        };
        if let RequestType::Batch(batch) = content {
            for inner in &batch.requests {
                self.apply_change(inner, undo, effects, now)?;
            }
            return Ok(());
        }
        if let Some(done) = self.apply_tls_request(content, &mut effects.tls_undo) {
            return done;
        }
        let mark = undo.len();
        self.state.apply_recorded(request, undo)?;
        if let Err(error) = self.apply_live(content, undo, mark, effects, now) {
            let mine = undo.split_off(mark);
            self.state.revert(mine);
            return Err(error);
        }
        Ok(())
    }

    /// Undoes the applied part of a refused batch. A worker that cannot (an address taken
    /// meanwhile) no longer matches main's state: it exits, and main respawns it and
    /// replays the state.
    fn roll_back(&mut self, undo: Undo, effects: &mut Effects, now: Instant) {
        while let Some(change) = effects.tls_undo.pop() {
            self.ctx.tls.undo(change);
        }
        for request in undo.requests() {
            if let Err(message) = self.apply_change(&request, &mut Undo::new(), effects, now) {
                log::error!(
                    "worker {}: cannot undo a refused change ({}: {message}): exiting so that \
                     the main process replays its state",
                    self.options.id,
                    ConfigState::summary_of(&request)
                );
                self.run_state = RunState::Stopped;
                return;
            }
        }
    }

    /// What a change needs once, done once after a request or a whole batch.
    fn finish_changes(&mut self, effects: Effects, now: Instant) {
        self.ctx.tls.rebuild();
        if effects.sticky_cookies {
            self.refresh_sticky_cookies();
        }
        if effects.health_checks {
            self.ctx
                .health
                .run_due(&mut self.ctx.backends, self.poll.registry(), now);
        }
        if !effects.rebalance.is_empty() {
            self.rebalance_sessions(&effects.rebalance, now);
        }
        self.close_idle_of_gone_backends();
    }

    fn apply_live(
        &mut self,
        content: &RequestType,
        undo: &Undo,
        mark: usize,
        effects: &mut Effects,
        now: Instant,
    ) -> Result<(), CommandError> {
        match content {
            RequestType::AddHttpListener(_)
            | RequestType::AddTcpListener(_)
            | RequestType::UpdateHttpListener(_)
            | RequestType::UpdateTcpListener(_)
            | RequestType::RemoveListener(_)
            | RequestType::ActivateListener(_)
            | RequestType::DeactivateListener(_) => self.apply_listener(content, effects),
            RequestType::AddCluster(cluster) => {
                self.set_cluster(cluster, now);
                effects.sticky_cookies = true;
                Ok(())
            }
            RequestType::RemoveCluster(cluster_id) => {
                self.remove_cluster(cluster_id, undo, mark);
                effects.sticky_cookies = true;
                Ok(())
            }
            RequestType::AddBackend(proto::AddBackend { backend })
            | RequestType::UpdateBackend(backend) => {
                let before = self.balancing_of(backend);
                self.ctx
                    .backends
                    .add_backend(backend, now)
                    .map_err(CommandError::from)?;
                if before.is_some() && before != self.balancing_of(backend) {
                    effects.rebalance.insert(backend.cluster_id.clone());
                }
                self.ctx.metrics.register_backend(
                    &backend.cluster_id,
                    &backend.backend_id,
                    &backend.address,
                );
                effects.health_checks = true;
                Ok(())
            }
            RequestType::RemoveBackend(remove) => self
                .ctx
                .backends
                .remove_backend(&remove.cluster_id, &parse(&remove.address)?, now)
                .map_err(CommandError::from),
            RequestType::AddTcpFrontend(frontend) => {
                self.ctx
                    .tcp_frontends
                    .insert(parse(&frontend.address)?, frontend.cluster_id.clone());
                Ok(())
            }
            RequestType::RemoveTcpFrontend(frontend) => {
                self.ctx.tcp_frontends.remove(&parse(&frontend.address)?);
                Ok(())
            }
            RequestType::SetHealthCheck(set) => {
                if let Some(cluster) = self.state.clusters().get(&set.cluster_id).cloned() {
                    self.set_cluster(&cluster, now);
                }
                Ok(())
            }
            RequestType::AddHttpFrontend(frontend) => {
                effects.sticky_cookies = true;
                let routes = self
                    .ctx
                    .http_routes
                    .get_mut(&parse(&frontend.address)?)
                    .ok_or_else(|| CommandError::NoHttpListener(frontend.address.clone()))?;
                routes.router.add(frontend).map_err(CommandError::from)
            }
            RequestType::RemoveHttpFrontend(frontend) => {
                effects.sticky_cookies = true;
                let routes = self
                    .ctx
                    .http_routes
                    .get_mut(&parse(&frontend.address)?)
                    .ok_or_else(|| CommandError::NoHttpListener(frontend.address.clone()))?;
                routes.router.remove(frontend).map_err(CommandError::from)
            }
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }

    /// Adds, updates (in place: the socket stays), removes, activates or deactivates a
    /// listener.
    fn apply_listener(
        &mut self,
        content: &RequestType,
        effects: &mut Effects,
    ) -> Result<(), CommandError> {
        let registry = self.poll.registry();
        match content {
            RequestType::AddHttpListener(listener) => {
                let address = parse(&listener.address)?;
                self.set_listener_tls(address, listener.tls.as_ref(), true, listener.expect_proxy)?;
                self.listeners
                    .add(
                        address,
                        ListenerKind::Http,
                        timeouts(&listener.timeouts),
                        listener.expect_proxy,
                    )
                    .map_err(CommandError::from)
                    .inspect_err(|_| self.ctx.tls.remove_listener(&address))?;
                self.ctx
                    .http_routes
                    .insert(address, self.new_routes(listener));
                effects.sticky_cookies = true;
                Ok(())
            }
            RequestType::AddTcpListener(listener) => {
                let address = parse(&listener.address)?;
                self.set_listener_tls(
                    address,
                    listener.tls.as_ref(),
                    false,
                    listener.expect_proxy,
                )?;
                self.listeners
                    .add(
                        address,
                        ListenerKind::Tcp,
                        timeouts(&listener.timeouts),
                        listener.expect_proxy,
                    )
                    .map_err(CommandError::from)
                    .inspect_err(|_| self.ctx.tls.remove_listener(&address))
            }
            RequestType::UpdateHttpListener(listener) => {
                let address = parse(&listener.address)?;
                if self.ctx.tls.is_tls(&address) != listener.tls.is_some() {
                    return Err(CommandError::TlsChange(address));
                }
                self.set_listener_tls(address, listener.tls.as_ref(), true, listener.expect_proxy)?;
                self.listeners
                    .update(
                        address,
                        ListenerKind::Http,
                        timeouts(&listener.timeouts),
                        listener.expect_proxy,
                    )
                    .map_err(CommandError::from)?;
                if let Some(routes) = self.ctx.http_routes.get_mut(&address) {
                    routes.answers.set_listener(&listener.answers);
                    routes.max_request_body = listener.max_request_body.filter(|&size| size > 0);
                }
                effects.sticky_cookies = true;
                Ok(())
            }
            RequestType::UpdateTcpListener(listener) => {
                let address = parse(&listener.address)?;
                if self.ctx.tls.is_tls(&address) != listener.tls.is_some() {
                    return Err(CommandError::TlsChange(address));
                }
                self.set_listener_tls(
                    address,
                    listener.tls.as_ref(),
                    false,
                    listener.expect_proxy,
                )?;
                self.listeners
                    .update(
                        address,
                        ListenerKind::Tcp,
                        timeouts(&listener.timeouts),
                        listener.expect_proxy,
                    )
                    .map_err(CommandError::from)
            }
            RequestType::RemoveListener(remove) => {
                let address = parse(&remove.address)?;
                self.listeners
                    .remove(address, registry)
                    .map_err(CommandError::from)?;
                self.ctx.http_routes.remove(&address);
                self.ctx.tcp_frontends.remove(&address);
                self.ctx.tls.remove_listener(&address);
                Ok(())
            }
            RequestType::ActivateListener(activate) => self
                .listeners
                .activate(parse(&activate.address)?, registry)
                .map_err(CommandError::from),
            RequestType::DeactivateListener(deactivate) => self
                .listeners
                .deactivate(parse(&deactivate.address)?, registry)
                .map_err(CommandError::from),
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }

    /// The weight and state of the live backend a request names, if it exists.
    fn balancing_of(&self, backend: &proto::Backend) -> Option<(u32, proto::BackendState)> {
        let address = backend.address.parse().ok()?;
        let live = self
            .ctx
            .backends
            .backend(&backend.cluster_id, &address)?
            .borrow();
        Some((live.weight(), live.state()))
    }

    /// Adds a cluster or updates its settings in place (backends keep their state).
    fn set_cluster(&mut self, cluster: &proto::Cluster, now: Instant) {
        self.ctx.backends.set_cluster(cluster, now);
        self.ctx.health.set_cluster(
            &cluster.cluster_id,
            cluster.protocol(),
            cluster.health_check.as_ref(),
            self.poll.registry(),
            now,
        );
        for routes in self.ctx.http_routes.values_mut() {
            routes
                .answers
                .set_cluster(&cluster.cluster_id, &cluster.answers);
        }
        if cluster.sticky_session {
            self.ctx.sticky_clusters.insert(cluster.cluster_id.clone());
        } else {
            self.ctx.sticky_clusters.remove(&cluster.cluster_id);
        }
    }

    /// Removes a cluster and the frontends its removal took from the mirror (those in
    /// `undo` since `mark`): only they leave the routers.
    fn remove_cluster(&mut self, cluster_id: &str, undo: &Undo, mark: usize) {
        self.ctx.backends.remove_cluster(cluster_id);
        self.ctx.metrics.remove_cluster(cluster_id);
        self.ctx
            .health
            .remove_cluster(cluster_id, self.poll.registry());
        self.ctx.sticky_clusters.remove(cluster_id);
        for frontend in undo.removed_tcp_frontends(mark) {
            if let Ok(address) = frontend.address.parse() {
                self.ctx.tcp_frontends.remove(&address);
            }
        }
        for routes in self.ctx.http_routes.values_mut() {
            routes.answers.remove_cluster(cluster_id);
        }
        for frontend in undo.removed_http_frontends(mark) {
            let routes = frontend
                .address
                .parse()
                .ok()
                .and_then(|address: SocketAddr| self.ctx.http_routes.get_mut(&address));
            if let Some(routes) = routes {
                if let Err(error) = routes.router.remove(frontend) {
                    log::error!("cannot remove a route of cluster {cluster_id}: {error}");
                }
            }
        }
    }

    /// Routes for a new HTTP listener, with the custom answers of every known cluster.
    fn new_routes(&self, listener: &proto::HttpListener) -> HttpRoutes {
        let mut routes = HttpRoutes {
            router: Router::for_listener(listener.tls.is_some()),
            answers: Answers::new(&listener.answers),
            sticky_cookie: listener
                .sticky_cookie_name
                .clone()
                .unwrap_or_else(|| DEFAULT_STICKY_COOKIE.to_owned()),
            // 0 is how a request says "no limit" too.
            max_request_body: listener.max_request_body.filter(|&size| size > 0),
        };
        for cluster in self.state.clusters().values() {
            routes
                .answers
                .set_cluster(&cluster.cluster_id, &cluster.answers);
        }
        routes
    }

    /// Sets each HTTP listener's sticky cookie name: the one named by the first sticky
    /// cluster (by id) its frontends route to, else the listener's own, else the default.
    /// Sessions read the cookie before routing, so one listener has one cookie name.
    fn refresh_sticky_cookies(&mut self) {
        for (address, routes) in self.ctx.http_routes.iter_mut() {
            let mut names = self
                .state
                .http_frontends()
                .values()
                .filter(|f| f.address.parse().ok() == Some(*address))
                .filter_map(|f| self.state.cluster(f.cluster_id.as_deref()?))
                .filter(|c| c.sticky_session)
                .filter_map(|c| c.sticky_cookie_name.as_deref());
            let from_clusters = names.next();
            if let Some(other) = names.find(|name| Some(*name) != from_clusters) {
                log::warn!(
                    "listener {address}: sticky clusters name different cookies; \
                     using {from_clusters:?}, not {other:?}"
                );
            }
            let from_listener = self
                .state
                .http_listeners()
                .find(|l| l.address.parse().ok() == Some(*address))
                .and_then(|l| l.sticky_cookie_name.as_deref());
            let name = from_clusters
                .or(from_listener)
                .unwrap_or(DEFAULT_STICKY_COOKIE);
            if routes.sticky_cookie != name {
                routes.sticky_cookie = name.to_owned();
            }
        }
    }

    fn status(&self) -> ContentType {
        let state = match self.run_state {
            RunState::Running => WorkerRunState::Running,
            RunState::Draining { .. } => WorkerRunState::Stopping,
            RunState::Stopped => WorkerRunState::Stopped,
        };
        ContentType::Workers(WorkerStatuses {
            workers: vec![WorkerInfo {
                id: self.options.id,
                pid: std::process::id(),
                state: state as i32,
                restarts: 0,
                sessions: self.sessions.len() as u64,
            }],
            ..Default::default()
        })
    }
}

/// What changes need done once, after a request or a whole batch.
#[derive(Debug, Default)]
struct Effects {
    /// Frontends, sticky clusters or listeners changed: listeners' cookie names may too.
    sticky_cookies: bool,
    /// Backends were added: their health checks may be due.
    health_checks: bool,
    /// Clusters of which a backend changed weight or state: their sessions pick again.
    rebalance: std::collections::HashSet<String>,
    /// Certificate and ticket key changes, newest last, to undo a refused batch.
    tls_undo: Vec<crate::tls::CertificateUndo>,
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
