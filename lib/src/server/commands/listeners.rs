//! Changes to listeners: added (with the socket main handed over), updated in place (the
//! socket stays), removed, activated or deactivated; and the routes of a new HTTP listener.

use std::net::SocketAddr;

use sluice_command::proto::{self, request::RequestType};

use super::changes::Effects;
use super::{parse, request_name, timeouts, CommandError};
use crate::http::answers::Answers;
use crate::http::router::Router;
use crate::server::http_driver::{HttpRoutes, DEFAULT_STICKY_COOKIE};
use crate::server::listeners::ListenerKind;
use crate::server::Server;

impl Server {
    /// Adds, updates (in place: the socket stays), removes, activates or deactivates a
    /// listener.
    pub(super) fn apply_listener(
        &mut self,
        content: &RequestType,
        effects: &mut Effects,
    ) -> Result<(), CommandError> {
        let registry = self.poll.registry();
        match content {
            RequestType::AddHttpListener(listener) => {
                let address = self.add_listener(ListenerSpec::http(listener))?;
                self.ctx
                    .http_routes
                    .insert(address, self.new_routes(listener));
                effects.sticky_cookies = true;
                Ok(())
            }
            RequestType::AddTcpListener(listener) => {
                self.add_listener(ListenerSpec::tcp(listener)).map(drop)
            }
            RequestType::UpdateHttpListener(listener) => {
                let address = self.update_listener(ListenerSpec::http(listener))?;
                if let Some(routes) = self.ctx.http_routes.get_mut(&address) {
                    routes.answers.set_listener(&listener.answers);
                    routes.max_request_body = listener.max_request_body.filter(|&size| size > 0);
                }
                effects.sticky_cookies = true;
                Ok(())
            }
            RequestType::UpdateTcpListener(listener) => {
                self.update_listener(ListenerSpec::tcp(listener)).map(drop)
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

    /// Binds (or adopts the socket main handed over for) a new listener, with its TLS
    /// settings if any.
    fn add_listener(&mut self, spec: ListenerSpec<'_>) -> Result<SocketAddr, CommandError> {
        let address = parse(spec.address)?;
        let http = spec.kind == ListenerKind::Http;
        self.set_listener_tls(address, spec.tls, http, spec.expect_proxy)?;
        self.listeners
            .add(
                address,
                spec.kind,
                timeouts(spec.timeouts),
                spec.expect_proxy,
            )
            .map_err(CommandError::from)
            .inspect_err(|_| self.ctx.tls.remove_listener(&address))?;
        Ok(address)
    }

    /// Changes a listener's settings in place: its socket stays. TLS cannot be turned on
    /// or off this way.
    fn update_listener(&mut self, spec: ListenerSpec<'_>) -> Result<SocketAddr, CommandError> {
        let address = parse(spec.address)?;
        if self.ctx.tls.is_tls(&address) != spec.tls.is_some() {
            return Err(CommandError::TlsChange(address));
        }
        let http = spec.kind == ListenerKind::Http;
        self.set_listener_tls(address, spec.tls, http, spec.expect_proxy)?;
        self.listeners
            .update(
                address,
                spec.kind,
                timeouts(spec.timeouts),
                spec.expect_proxy,
            )
            .map_err(CommandError::from)?;
        Ok(address)
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
}

/// What adding or updating a listener of either kind needs.
struct ListenerSpec<'a> {
    address: &'a str,
    kind: ListenerKind,
    tls: Option<&'a proto::TlsSettings>,
    timeouts: &'a proto::Timeouts,
    expect_proxy: bool,
}

impl<'a> ListenerSpec<'a> {
    fn http(listener: &'a proto::HttpListener) -> Self {
        ListenerSpec {
            address: &listener.address,
            kind: ListenerKind::Http,
            tls: listener.tls.as_ref(),
            timeouts: &listener.timeouts,
            expect_proxy: listener.expect_proxy,
        }
    }

    fn tcp(listener: &'a proto::TcpListener) -> Self {
        ListenerSpec {
            address: &listener.address,
            kind: ListenerKind::Tcp,
            tls: listener.tls.as_ref(),
            timeouts: &listener.timeouts,
            expect_proxy: listener.expect_proxy,
        }
    }
}
