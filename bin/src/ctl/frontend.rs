//! `sluice ctl frontend …`.

use clap::{Args, Subcommand, ValueEnum};
use sluice_command::proto::{self, request::RequestType};

use super::parse_address;

/// Frontend commands.
#[derive(Debug, Subcommand)]
pub(crate) enum FrontendCommand {
    /// HTTP routes: listener + hostname + path (+ method) → cluster.
    #[command(subcommand)]
    Http(HttpFrontendCommand),
    /// TCP routes: listener → cluster.
    #[command(subcommand)]
    Tcp(TcpFrontendCommand),
    /// Every frontend.
    List,
}

/// `frontend http add|remove`.
#[derive(Debug, Subcommand)]
pub(crate) enum HttpFrontendCommand {
    /// Adds an HTTP route.
    Add(HttpFrontendArgs),
    /// Removes an HTTP route (named by all of its fields).
    Remove(HttpFrontendArgs),
}

/// The fields of an HTTP route.
#[derive(Debug, Args)]
pub(crate) struct HttpFrontendArgs {
    /// The HTTP listener's address (IP:PORT).
    #[arg(long)]
    listener: String,
    /// The cluster requests go to.
    #[arg(long)]
    cluster: String,
    /// The Host to match: exact, or a `*.` wildcard.
    #[arg(long)]
    hostname: String,
    /// The path to match.
    #[arg(long, default_value = "/")]
    path: String,
    /// How the path matches.
    #[arg(long, value_enum, default_value_t = PathTypeArg::Prefix)]
    path_type: PathTypeArg,
    /// Match only this method.
    #[arg(long)]
    method: Option<String>,
}

/// How a path rule matches.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PathTypeArg {
    /// The path starts with the value.
    Prefix,
    /// The path is the value.
    Exact,
    /// The path matches the regular expression.
    Regex,
}

/// `frontend tcp add|remove`.
#[derive(Debug, Subcommand)]
pub(crate) enum TcpFrontendCommand {
    /// Sends a TCP listener's connections to a cluster.
    Add(TcpFrontendArgs),
    /// Removes that route.
    Remove(TcpFrontendArgs),
}

/// The fields of a TCP route.
#[derive(Debug, Args)]
pub(crate) struct TcpFrontendArgs {
    /// The TCP listener's address (IP:PORT).
    #[arg(long)]
    listener: String,
    /// The cluster connections go to.
    #[arg(long)]
    cluster: String,
}

impl FrontendCommand {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            FrontendCommand::Http(HttpFrontendCommand::Add(args)) => {
                RequestType::AddHttpFrontend(args.to_frontend()?)
            }
            FrontendCommand::Http(HttpFrontendCommand::Remove(args)) => {
                RequestType::RemoveHttpFrontend(args.to_frontend()?)
            }
            FrontendCommand::Tcp(TcpFrontendCommand::Add(args)) => {
                RequestType::AddTcpFrontend(args.to_frontend()?)
            }
            FrontendCommand::Tcp(TcpFrontendCommand::Remove(args)) => {
                RequestType::RemoveTcpFrontend(args.to_frontend()?)
            }
            FrontendCommand::List => RequestType::QueryFrontends(proto::QueryFrontends {}),
        })
    }
}

impl HttpFrontendArgs {
    fn to_frontend(&self) -> anyhow::Result<proto::HttpFrontend> {
        let kind = match self.path_type {
            PathTypeArg::Prefix => proto::PathRuleKind::Prefix,
            PathTypeArg::Exact => proto::PathRuleKind::Exact,
            PathTypeArg::Regex => proto::PathRuleKind::Regex,
        };
        Ok(proto::HttpFrontend {
            hsts: None,
            redirect_https: None,
            address: parse_address(&self.listener)?,
            hostname: self.hostname.clone(),
            path: proto::PathRule {
                kind: kind as i32,
                value: self.path.clone(),
            },
            method: self.method.clone(),
            cluster_id: Some(self.cluster.clone()),
        })
    }
}

impl TcpFrontendArgs {
    fn to_frontend(&self) -> anyhow::Result<proto::TcpFrontend> {
        Ok(proto::TcpFrontend {
            address: parse_address(&self.listener)?,
            cluster_id: self.cluster.clone(),
        })
    }
}
