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
    #[command(flatten)]
    tls: TlsArgs,
}

/// TLS options of `listener add` (`--protocol https`, or `--tls` on tcp).
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// TCP only: terminate TLS and pipe the plaintext to the backend.
    #[arg(long)]
    tls: bool,
    /// Lowest TLS version accepted: 1.2 (default) or 1.3.
    #[arg(long, value_parser = ["1.2", "1.3"])]
    min_tls_version: Option<String>,
    /// A cipher suite as rustls names it (repeatable); default: the safe defaults.
    #[arg(long = "cipher-suite")]
    cipher_suites: Vec<String>,
    /// An ALPN protocol, in order of preference (repeatable); default on https: http/1.1.
    #[arg(long = "alpn")]
    alpn: Vec<String>,
    /// Refuse clients whose SNI names no certificate.
    #[arg(long)]
    strict_sni: bool,
}

impl TlsArgs {
    /// The TLS settings, `None` without TLS; TLS options without TLS are refused.
    fn settings(&self, protocol: ProtocolArg) -> anyhow::Result<Option<proto::TlsSettings>> {
        let tls = match protocol {
            ProtocolArg::Https => true,
            ProtocolArg::Tcp => self.tls,
            ProtocolArg::Http if self.tls => {
                anyhow::bail!("--tls applies to tcp listeners; use --protocol https")
            }
            ProtocolArg::Http => false,
        };
        let tuned = self.min_tls_version.is_some()
            || !self.cipher_suites.is_empty()
            || !self.alpn.is_empty()
            || self.strict_sni;
        if !tls {
            if tuned {
                anyhow::bail!(
                    "TLS options apply to TLS listeners only: use --protocol https, or --tls \
                     with --protocol tcp"
                );
            }
            return Ok(None);
        }
        Ok(Some(proto::TlsSettings {
            min_version: self
                .min_tls_version
                .as_deref()
                .map(|version| match version {
                    "1.3" => proto::TlsVersion::Tls13 as i32,
                    _ => proto::TlsVersion::Tls12 as i32,
                }),
            cipher_suites: self.cipher_suites.clone(),
            alpn_protocols: self.alpn.clone(),
            strict_sni: self.strict_sni.then_some(true),
        }))
    }
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
        let tls = self.tls.settings(self.listener.protocol)?;
        Ok(match self.listener.protocol {
            ProtocolArg::Http | ProtocolArg::Https => {
                RequestType::AddHttpListener(proto::HttpListener {
                    tls,
                    address,
                    timeouts,
                    answers: Vec::new(),
                    expect_proxy: self.expect_proxy,
                    sticky_cookie_name: None,
                    max_request_body,
                })
            }
            ProtocolArg::Tcp => RequestType::AddTcpListener(proto::TcpListener {
                tls,
                address,
                timeouts,
                expect_proxy: self.expect_proxy,
            }),
        })
    }
}
