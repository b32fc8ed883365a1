//! `sluice ctl`: the command-line client of a running main process.
//!
//! Each command becomes one [`Request`] sent over the command socket; the
//! [`Response`] is printed as a human-readable table, or as one JSON document
//! with `--json`. The exit status is 0 on success and 1 with a one-line reason
//! otherwise.
//!
//! Where the socket is looked for: `-s SOCKET` if given, else the
//! `command_socket` of the config named by `-c CONFIG`, else `sluice.sock` in
//! the current directory (the default config's socket).

mod backend;
mod certificate;
mod client;
mod cluster;
mod export;
mod frontend;
mod health_check;
mod json;
mod listener;
mod operations;
mod output;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use sluice_command::proto::{self, Request, Response};

/// The socket used when neither `-s` nor `-c` is given, relative to the current directory.
pub(crate) const DEFAULT_SOCKET: &str = "sluice.sock";

/// Arguments of `sluice ctl`.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// Command socket of the main process (default: `sluice.sock` in the current directory).
    #[arg(short = 's', long, conflicts_with = "config")]
    socket: Option<PathBuf>,
    /// Read the command socket's path from this config file.
    #[arg(short = 'c', long)]
    config: Option<PathBuf>,
    /// Print one JSON document per answer instead of tables (errors as `{"error": "…"}`).
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for an answer: a duration such as `30s`, `500ms` or `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    timeout: std::time::Duration,
    #[command(subcommand)]
    command: CtlCommand,
}

/// The commands of `sluice ctl`.
#[derive(Debug, Subcommand)]
pub(crate) enum CtlCommand {
    /// Each worker: id, pid, state, restarts, sessions.
    Status,
    /// List, show, add or remove clusters.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Add or remove backends.
    #[command(subcommand)]
    Backend(backend::BackendCommand),
    /// Add, remove or list frontends.
    #[command(subcommand)]
    Frontend(frontend::FrontendCommand),
    /// Add, remove, list, activate or deactivate listeners.
    #[command(subcommand)]
    Listener(listener::ListenerCommand),
    /// List, add, replace or remove TLS certificates.
    #[command(subcommand)]
    Certificate(certificate::CertificateCommand),
    /// Set or remove a cluster's active health check.
    #[command(subcommand)]
    HealthCheck(health_check::HealthCheckCommand),
    /// What the workers counted.
    Metrics(operations::MetricsArgs),
    /// Stream events as they happen, one line each, until interrupted.
    Events(EventsArgs),
    /// Reload the configuration file and apply the difference.
    Reload(operations::ReloadArgs),
    /// Save the state to a file or load it from one.
    #[command(subcommand)]
    State(operations::StateCommand),
    /// Stop the main process and its workers.
    Shutdown(operations::ShutdownArgs),
    /// Replace the main process and its workers by a new binary without dropping a
    /// connection; a new binary that fails leaves the running instance as it was.
    Upgrade(operations::UpgradeArgs),
}

/// Arguments of `ctl events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Every worker's own events; by default a health transition seen by several
    /// workers is one event (from the first worker that saw it).
    #[arg(long)]
    per_worker: bool,
}

/// The protocol of a cluster, listener or frontend, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProtocolArg {
    /// HTTP/1.1.
    Http,
    /// Plain TCP.
    Tcp,
    /// HTTP/1.1 over TLS (listeners only).
    Https,
}

impl ProtocolArg {
    fn to_proto(self) -> i32 {
        match self {
            ProtocolArg::Http => proto::ListenerProtocol::Http as i32,
            ProtocolArg::Tcp => proto::ListenerProtocol::Tcp as i32,
            ProtocolArg::Https => proto::ListenerProtocol::Https as i32,
        }
    }
}

/// A failure already reported on stdout as `{"error": "…"}`: the caller exits 1
/// without printing it again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reported(String);

/// Runs `sluice ctl` and returns an error whose message is the one-line reason to print.
///
/// With `--json`, every failure (a refused request, an unreachable socket, a bad
/// argument value) is printed on stdout as `{"error": "…"}` and returned as
/// [`Reported`].
pub(crate) fn run(args: CtlArgs) -> anyhow::Result<()> {
    let json = args.json;
    match run_command(args) {
        Err(error) if json && error.downcast_ref::<Reported>().is_none() => {
            let message = format!("{error:#}");
            crate::stdout::print_line(&json::error(&message).to_string())?;
            Err(Reported(message).into())
        }
        result => result,
    }
}

fn run_command(args: CtlArgs) -> anyhow::Result<()> {
    let socket = resolve_socket(args.socket.as_deref(), args.config.as_deref())?;
    let request = build_request(&args.command)?;
    if matches!(args.command, CtlCommand::Events(_)) {
        return client::stream_events(&socket, &request, args.json);
    }
    if let CtlCommand::Cluster(cluster::ClusterCommand::Export { id }) = &args.command {
        return export::run(&socket, id, args.timeout, args.json);
    }
    let response = client::send(&socket, &request, args.timeout)?;
    print_response(&args.command, &response, args.json)
}

/// `--timeout`: a duration as the configuration writes it; a bare number is seconds.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let duration = match text.parse::<u64>() {
        Ok(seconds) => std::time::Duration::from_secs(seconds),
        Err(_) => sluice_command::config::parse_duration(text)
            .map_err(|error| format!("expected a duration such as 30s or 500ms: {error}"))?,
    };
    if duration.is_zero() {
        return Err("the timeout must be above zero".to_owned());
    }
    Ok(duration)
}

/// Turns a command into the request the main process understands.
pub(crate) fn build_request(command: &CtlCommand) -> anyhow::Result<Request> {
    use proto::request::RequestType;
    let request_type = match command {
        CtlCommand::Status => RequestType::QueryStatus(proto::QueryStatus {}),
        CtlCommand::Cluster(command) => command.to_request()?,
        CtlCommand::Backend(command) => command.to_request()?,
        CtlCommand::Frontend(command) => command.to_request()?,
        CtlCommand::Listener(command) => command.to_request()?,
        CtlCommand::HealthCheck(command) => command.to_request()?,
        CtlCommand::Certificate(command) => command.to_request()?,
        CtlCommand::Metrics(args) => args.to_request(),
        CtlCommand::Events(args) => RequestType::SubscribeEvents(proto::SubscribeEvents {
            per_worker: Some(args.per_worker),
        }),
        CtlCommand::Reload(args) => args.to_request()?,
        CtlCommand::State(command) => command.to_request()?,
        CtlCommand::Shutdown(args) => args.to_request(),
        CtlCommand::Upgrade(args) => args.to_request()?,
    };
    Ok(Request {
        request_type: Some(request_type),
    })
}

fn print_response(command: &CtlCommand, response: &Response, json: bool) -> anyhow::Result<()> {
    let failed = response.status == proto::ResponseStatus::Failure as i32;
    if json {
        crate::stdout::print_line(&serde_json::to_string_pretty(&json::document(
            command, response,
        ))?)?;
        if failed {
            return Err(Reported(response.message.clone()).into());
        }
    } else if !failed {
        let text = output::render(command, response);
        if !text.is_empty() {
            crate::stdout::print(&text)?;
        }
    }
    if failed {
        bail!("{}", response.message);
    }
    Ok(())
}

/// Where the command socket is: `-s`, else the config's, else the default.
fn resolve_socket(socket: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(socket) = socket {
        return Ok(socket.to_path_buf());
    }
    if let Some(path) = config {
        let config = sluice_command::config::Config::load(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        return Ok(config.command_socket);
    }
    Ok(PathBuf::from(DEFAULT_SOCKET))
}

/// Makes a path given on the command line absolute, because the main process
/// resolves paths from its own working directory.
pub(crate) fn absolute(path: &Path) -> anyhow::Result<String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    absolute
        .to_str()
        .map(str::to_owned)
        .with_context(|| format!("path {} is not valid UTF-8", absolute.display()))
}

/// Checks that `address` is `IP:PORT` and returns it normalized.
pub(crate) fn parse_address(address: &str) -> anyhow::Result<String> {
    match address.parse::<std::net::SocketAddr>() {
        Ok(parsed) => Ok(parsed.to_string()),
        Err(_) => bail!("invalid address `{address}`: expected IP:PORT, e.g. 127.0.0.1:8080"),
    }
}

/// Parses a backend address, `IP:PORT` or `HOST:PORT`, into its canonical form.
pub(crate) fn parse_backend_address(address: &str) -> anyhow::Result<String> {
    sluice_command::config::parse_backend_address(address)
        .map(|address| address.to_string())
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// Parses a duration such as `5s`, `250ms` or `1m` into milliseconds.
pub(crate) fn parse_millis(text: &str) -> anyhow::Result<u32> {
    let duration = sluice_command::config::parse_duration(text)
        .map_err(|error| anyhow::anyhow!("invalid duration `{text}`: {error}"))?;
    u32::try_from(duration.as_millis()).with_context(|| format!("duration `{text}` is too long"))
}
