//! Changes to listeners: added (with the socket main handed over), updated in place (the
//! socket stays), removed, activated or deactivated; and the routes of a new HTTP listener.

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
