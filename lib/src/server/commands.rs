//! Requests from the main process: each is checked against the worker's mirror of the
//! state, applied to the live structures, and answered with the same id. A request that
//! fails changes nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sluice_command::proto::{
    self, request::RequestType, response_content::ContentType, worker_message::MessageType,
    ResponseContent, ResponseStatus, WorkerInfo, WorkerMessage, WorkerRequest, WorkerResponse,
    WorkerRunState, WorkerStatuses,
};
use sluice_command::state::ConfigState;

use super::http_driver::{HttpRoutes, DEFAULT_STICKY_COOKIE};
use super::listeners::ListenerKind;
use super::metrics::{add_retry_state, MapAvailability};
use super::session::SessionTimeouts;
use super::{RunState, Server, ServerError};
use crate::http::answers::Answers;
use crate::http::router::Router;

/// Longest a soft stop waits for sessions to end when the request names no grace period.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// The answer to one request: a message, optional content.
type Answer = Result<(String, Option<ContentType>), String>;

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
                log::info!("worker {}: main process gone, exiting", self.options.id);
                self.run_state = RunState::Stopped;
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        for request in requests {
            let answer = self.handle(&request, now);
            self.close_idle_of_gone_backends();
            self.answer(request.id, answer)?;
        }
        Ok(())
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
            Err(message) => WorkerResponse {
                id,
                status: ResponseStatus::Failure as i32,
                message,
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
        for mut event in self.backends.take_events() {
            event.worker_id = Some(self.options.id);
            if event.kind == proto::EventKind::RemovedBackendHasNoConnections as i32 {
                if let (Some(cluster), Some(backend)) = (&event.cluster_id, &event.backend_id) {
                    self.metrics.remove_backend(cluster, backend);
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
            return Err("empty request".to_owned());
        };
        if ConfigState::is_state_change(&request.content) {
            return self.change_state(&request.content, content, now);
        }
        match content {
            RequestType::QueryStatus(_) => Ok((String::new(), Some(self.status()))),
            RequestType::QueryMetrics(query) => {
                let availability = MapAvailability(&self.backends);
                let mut snapshot = self.metrics.snapshot(self.options.id, query, &availability);
                add_retry_state(&mut snapshot, &self.backends);
                Ok((String::new(), Some(ContentType::WorkerMetrics(snapshot))))
            }
            RequestType::QueryClusters(query) => Ok((
                String::new(),
                Some(ContentType::Clusters(self.state.cluster_list(query))),
            )),
            RequestType::SoftStop(_) => {
                self.listeners.close_all(self.poll.registry());
                self.run_state = RunState::Draining {
                    deadline: now + DEFAULT_DRAIN,
                };
                Ok(("draining".to_owned(), None))
            }
            RequestType::HardStop(_) => {
                self.run_state = RunState::Stopped;
                Ok(("stopping".to_owned(), None))
            }
            other => Err(format!("a worker does not handle {}", request_name(other))),
        }
    }

    /// Applies a configuration change to the mirror, then to the live structures; if the
    /// live part fails (an address in use), the mirror is restored.
    fn change_state(
        &mut self,
        request: &proto::Request,
        content: &RequestType,
        now: Instant,
    ) -> Answer {
        let before = self.state.clone();
        self.state
            .apply(request)
            .map_err(|error| error.to_string())?;
        if let Err(message) = self.apply_live(content, now) {
            self.state = before;
            return Err(message);
        }
        if matches!(
            content,
            RequestType::AddCluster(_)
                | RequestType::AddHttpFrontend(_)
                | RequestType::RemoveHttpFrontend(_)
                | RequestType::AddHttpListener(_)
        ) {
            self.refresh_sticky_cookies();
        }
        Ok((String::new(), None))
    }

    fn apply_live(&mut self, content: &RequestType, now: Instant) -> Result<(), String> {
        let registry = self.poll.registry();
        match content {
            RequestType::AddHttpListener(listener) => {
                let address = parse(&listener.address)?;
                self.listeners
                    .add(
                        address,
                        ListenerKind::Http,
                        timeouts(&listener.timeouts),
                        listener.expect_proxy,
                    )
                    .map_err(|e| e.to_string())?;
                self.http_routes.insert(address, self.new_routes(listener));
                Ok(())
            }
            RequestType::AddTcpListener(listener) => self
                .listeners
                .add(
                    parse(&listener.address)?,
                    ListenerKind::Tcp,
                    timeouts(&listener.timeouts),
                    listener.expect_proxy,
                )
                .map_err(|e| e.to_string()),
            RequestType::RemoveListener(remove) => {
                let address = parse(&remove.address)?;
                self.listeners
                    .remove(address, registry)
                    .map_err(|e| e.to_string())?;
                self.http_routes.remove(&address);
                self.tcp_frontends.remove(&address);
                Ok(())
            }
            RequestType::ActivateListener(activate) => self
                .listeners
                .activate(parse(&activate.address)?, registry)
                .map_err(|e| e.to_string()),
            RequestType::DeactivateListener(deactivate) => self
                .listeners
                .deactivate(parse(&deactivate.address)?, registry)
                .map_err(|e| e.to_string()),
            RequestType::AddCluster(cluster) => {
                self.backends.set_cluster(cluster, now);
                self.health.set_cluster(
                    &cluster.cluster_id,
                    cluster.protocol(),
                    cluster.health_check.as_ref(),
                    registry,
                    now,
                );
                for routes in self.http_routes.values_mut() {
                    routes
                        .answers
                        .set_cluster(&cluster.cluster_id, &cluster.answers);
                }
                if cluster.sticky_session {
                    self.sticky_clusters.insert(cluster.cluster_id.clone());
                } else {
                    self.sticky_clusters.remove(&cluster.cluster_id);
                }
                Ok(())
            }
            RequestType::RemoveCluster(cluster_id) => {
                self.backends.remove_cluster(cluster_id);
                self.metrics.remove_cluster(cluster_id);
                self.health.remove_cluster(cluster_id, registry);
                self.tcp_frontends
                    .retain(|_, cluster| cluster != cluster_id);
                self.sticky_clusters.remove(cluster_id);
                for routes in self.http_routes.values_mut() {
                    routes.answers.remove_cluster(cluster_id);
                }
                self.rebuild_routers();
                Ok(())
            }
            RequestType::AddBackend(add) => {
                self.backends
                    .add_backend(&add.backend, now)
                    .map_err(|e| e.to_string())?;
                let backend = &add.backend;
                self.metrics
                    .backend(&backend.cluster_id, &backend.backend_id, &backend.address);
                self.health.run_due(&mut self.backends, registry, now);
                Ok(())
            }
            RequestType::RemoveBackend(remove) => self
                .backends
                .remove_backend(&remove.cluster_id, &parse(&remove.address)?, now)
                .map_err(|e| e.to_string()),
            RequestType::AddTcpFrontend(frontend) => {
                self.tcp_frontends
                    .insert(parse(&frontend.address)?, frontend.cluster_id.clone());
                Ok(())
            }
            RequestType::RemoveTcpFrontend(frontend) => {
                self.tcp_frontends.remove(&parse(&frontend.address)?);
                Ok(())
            }
            RequestType::SetHealthCheck(set) => {
                if let Some(cluster) = self.state.clusters().get(&set.cluster_id) {
                    self.backends.set_cluster(cluster, now);
                    self.health.set_cluster(
                        &cluster.cluster_id,
                        cluster.protocol(),
                        set.config.as_ref(),
                        registry,
                        now,
                    );
                }
                Ok(())
            }
            RequestType::AddHttpFrontend(frontend) => {
                let routes = self
                    .http_routes
                    .get_mut(&parse(&frontend.address)?)
                    .ok_or_else(|| format!("no HTTP listener on {}", frontend.address))?;
                routes.router.add(frontend).map_err(|e| e.to_string())
            }
            RequestType::RemoveHttpFrontend(frontend) => {
                let routes = self
                    .http_routes
                    .get_mut(&parse(&frontend.address)?)
                    .ok_or_else(|| format!("no HTTP listener on {}", frontend.address))?;
                routes.router.remove(frontend).map_err(|e| e.to_string())
            }
            other => Err(format!("a worker does not handle {}", request_name(other))),
        }
    }

    /// Routes for a new HTTP listener, with the custom answers of every known cluster.
    fn new_routes(&self, listener: &proto::HttpListener) -> HttpRoutes {
        let mut routes = HttpRoutes {
            router: Router::new(),
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
        for (address, routes) in self.http_routes.iter_mut() {
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

    /// Rebuilds every router from the state mirror (after a removal that cascades).
    fn rebuild_routers(&mut self) {
        for (address, routes) in self.http_routes.iter_mut() {
            routes.router = Router::new();
            let frontends = self.state.http_frontends().values();
            for frontend in frontends.filter(|f| f.address.parse().ok() == Some(*address)) {
                if let Err(error) = routes.router.add(frontend) {
                    log::error!("cannot restore a route of {address}: {error}");
                }
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
        })
    }
}

fn parse(address: &str) -> Result<SocketAddr, String> {
    address
        .parse()
        .map_err(|_| format!("invalid socket address {address:?}"))
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
        RequestType::AddHttpsListener(_)
        | RequestType::AddCertificate(_)
        | RequestType::RemoveCertificate(_)
        | RequestType::ReplaceCertificate(_) => "TLS (not supported yet)",
        _ => "this request",
    }
}
