//! Changes to frontends: the cluster of a TCP listener, the routes of an HTTP listener.

use sluice_command::proto::request::RequestType;

use super::changes::Effects;
use super::{parse, request_name, CommandError};
use crate::server::http_driver::HttpRoutes;
use crate::server::Server;

impl Server {
    /// Adds or removes a TCP or HTTP frontend.
    pub(super) fn apply_frontend(
        &mut self,
        content: &RequestType,
        effects: &mut Effects,
    ) -> Result<(), CommandError> {
        match content {
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
            RequestType::AddHttpFrontend(frontend) => {
                effects.sticky_cookies = true;
                let routes = self.routes_of(&frontend.address)?;
                routes.router.add(frontend).map_err(CommandError::from)
            }
            RequestType::RemoveHttpFrontend(frontend) => {
                effects.sticky_cookies = true;
                let routes = self.routes_of(&frontend.address)?;
                routes.router.remove(frontend).map_err(CommandError::from)
            }
            other => Err(CommandError::Unsupported(request_name(other))),
        }
    }

    /// The routes of the HTTP listener on `address`.
    fn routes_of(&mut self, address: &str) -> Result<&mut HttpRoutes, CommandError> {
        self.ctx
            .http_routes
            .get_mut(&parse(address)?)
            .ok_or_else(|| CommandError::NoHttpListener(address.to_owned()))
    }
}
