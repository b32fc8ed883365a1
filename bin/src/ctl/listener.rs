//! `sluice ctl listener …`.

use clap::{Args, Subcommand};
use sluice_command::{
    config::parse_size,
    proto::{self, request::RequestType},
};

use super::{parse_address, parse_millis, ProtocolArg};

/// Listener commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ListenerCommand {
    /// Every listener with its activation state.
    List,
    /// Adds a listener (each worker binds it).
    Add(AddListenerArgs),
    /// Changes only the settings named, in place: the listener keeps its socket, frontends
    /// and activation.
    Update(UpdateListenerArgs),
    /// Removes a listener.
    Remove(ListenerRef),
    /// Starts accepting on a listener.
    Activate(ListenerRef),
    /// Stops accepting on a listener; open sessions go on.
    Deactivate(ListenerRef),
}

/// Names a listener.
#[derive(Debug, Args)]
pub(crate) struct ListenerRef {
    /// Its protocol.
    #[arg(long, value_enum)]
    protocol: ProtocolArg,
    /// Its address (IP:PORT).
    #[arg(long)]
    address: String,
}

/// Arguments of `listener add`.
#[derive(Debug, Args)]
pub(crate) struct AddListenerArgs {
    #[command(flatten)]
    listener: ListenerRef,
    /// Idle time allowed on the client side.
    #[arg(long, default_value = "60s")]
    front_timeout: String,
    /// Idle time allowed on the backend side.
    #[arg(long, default_value = "30s")]
    back_timeout: String,
    /// Time allowed to connect to a backend.
    #[arg(long, default_value = "3s")]
    connect_timeout: String,
    /// Time allowed to receive a whole request head.
    #[arg(long, default_value = "10s")]
    request_timeout: String,
    /// Expect a PROXY protocol header on each connection.
    #[arg(long)]
    expect_proxy: bool,
    /// HTTP only: largest request body accepted, like 10m, 512k, 1g or a
    /// number of bytes; larger ones are answered 413. 0 or absent: no limit.
    #[arg(long)]
    max_request_body: Option<String>,
}

/// Arguments of `listener update`.
#[derive(Debug, Args)]
pub(crate) struct UpdateListenerArgs {
    #[command(flatten)]
    listener: ListenerRef,
    /// Idle time allowed on the client side.
    #[arg(long)]
    front_timeout: Option<String>,
    /// Idle time allowed on the backend side.
    #[arg(long)]
    back_timeout: Option<String>,
    /// Time allowed to connect to a backend.
    #[arg(long)]
    connect_timeout: Option<String>,
    /// Time allowed to receive a whole request head.
    #[arg(long)]
    request_timeout: Option<String>,
    /// Expect a PROXY protocol header on each new connection (true or false).
    #[arg(long)]
    expect_proxy: Option<bool>,
    /// HTTP only: largest request body accepted (10m, 512k, 1g, bytes); 0: no limit.
    #[arg(long)]
    max_request_body: Option<String>,
}

impl UpdateListenerArgs {
    fn to_request(&self) -> anyhow::Result<RequestType> {
        let millis = |text: &Option<String>| text.as_deref().map(parse_millis).transpose();
        let changes = proto::ListenerChanges {
            address: parse_address(&self.listener.address)?,
            protocol: self.listener.protocol.to_proto(),
            front_timeout_ms: millis(&self.front_timeout)?,
            back_timeout_ms: millis(&self.back_timeout)?,
            connect_timeout_ms: millis(&self.connect_timeout)?,
            request_timeout_ms: millis(&self.request_timeout)?,
            max_request_body: self
                .max_request_body
                .as_deref()
                .map(parse_size)
                .transpose()?,
            expect_proxy: self.expect_proxy,
        };
        Ok(RequestType::ChangeListener(changes))
    }
}

impl ListenerCommand {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            ListenerCommand::List => RequestType::QueryListeners(proto::QueryListeners {}),
            ListenerCommand::Add(args) => args.to_request()?,
            ListenerCommand::Update(args) => args.to_request()?,
            ListenerCommand::Remove(listener) => {
                RequestType::RemoveListener(proto::RemoveListener {
                    address: parse_address(&listener.address)?,
                    protocol: listener.protocol.to_proto(),
                })
            }
            ListenerCommand::Activate(listener) => {
                RequestType::ActivateListener(proto::ActivateListener {
                    address: parse_address(&listener.address)?,
                    protocol: listener.protocol.to_proto(),
                })
            }
            ListenerCommand::Deactivate(listener) => {
                RequestType::DeactivateListener(proto::DeactivateListener {
                    address: parse_address(&listener.address)?,
                    protocol: listener.protocol.to_proto(),
                })
            }
        })
    }
}

impl AddListenerArgs {
    fn to_request(&self) -> anyhow::Result<RequestType> {
        let address = parse_address(&self.listener.address)?;
        let timeouts = proto::Timeouts {
            front_timeout_ms: parse_millis(&self.front_timeout)?,
            back_timeout_ms: parse_millis(&self.back_timeout)?,
            connect_timeout_ms: parse_millis(&self.connect_timeout)?,
            request_timeout_ms: parse_millis(&self.request_timeout)?,
        };
        let max_request_body = match &self.max_request_body {
            Some(size) => Some(parse_size(size)?).filter(|&size| size > 0),
            None => None,
        };
        if max_request_body.is_some() && matches!(self.listener.protocol, ProtocolArg::Tcp) {
            anyhow::bail!("--max-request-body applies to http listeners only");
        }
        Ok(match self.listener.protocol {
            ProtocolArg::Http => RequestType::AddHttpListener(proto::HttpListener {
                tls: None,
                address,
                timeouts,
                answers: Vec::new(),
                expect_proxy: self.expect_proxy,
                sticky_cookie_name: None,
                max_request_body,
            }),
            ProtocolArg::Tcp => RequestType::AddTcpListener(proto::TcpListener {
                tls: None,
                address,
                timeouts,
                expect_proxy: self.expect_proxy,
            }),
        })
    }
}
