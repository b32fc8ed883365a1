//! `sluice ctl backend …`.

use clap::{Args, Subcommand, ValueEnum};
use sluice_command::proto::{self, request::RequestType};

use super::parse_backend_address;

/// Weight of a backend added without `--weight`.
const DEFAULT_WEIGHT: u32 = 100;

/// Backend commands.
#[derive(Debug, Subcommand)]
pub(crate) enum BackendCommand {
    /// Adds a backend to a cluster.
    Add {
        /// The cluster it belongs to.
        #[arg(long)]
        cluster: String,
        /// Where it listens: IP:PORT, or HOST:PORT to add one backend per address the
        /// host name resolves to (resolved and kept up to date by the main process).
        #[arg(long)]
        address: String,
        /// Its id (default: its address).
        #[arg(long)]
        id: Option<String>,
        /// Its share of the traffic relative to the others.
        #[arg(long, default_value_t = DEFAULT_WEIGHT)]
        weight: u32,
        /// Used only when no other backend can be opened.
        #[arg(long)]
        backup: bool,
        /// The sticky-session cookie value that selects it.
        #[arg(long)]
        sticky_id: Option<String>,
        /// For a HOST:PORT address: accept it even if the name does not resolve yet.
        #[arg(long)]
        resolve_later: bool,
    },
    /// Changes a backend's weight or state in place (its connections, health and metrics stay).
    Set(SetBackendArgs),
    /// Removes a backend.
    Remove {
        #[command(flatten)]
        backend: BackendRef,
        /// Drain it first and remove it once its last connection has closed.
        #[arg(long)]
        when_drained: bool,
    },
}

/// Names a backend: by address, by id, or both (then they must agree).
#[derive(Debug, Args)]
pub(crate) struct BackendRef {
    /// The cluster it belongs to.
    #[arg(long)]
    cluster: String,
    /// Its address (IP:PORT, or HOST:PORT for a backend given by host name).
    #[arg(long)]
    address: Option<String>,
    /// Its id.
    #[arg(long)]
    id: Option<String>,
}

/// Arguments of `backend set`.
#[derive(Debug, Args)]
pub(crate) struct SetBackendArgs {
    #[command(flatten)]
    backend: BackendRef,
    /// Its new share of the traffic relative to the others (0 to 1000).
    #[arg(long)]
    weight: Option<u32>,
    /// ready: in rotation; drain: no new request or connection except sticky clients, open
    /// ones finish; maint: no traffic, no health checks, kept connections closed.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
}

/// A backend state, as typed on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StateArg {
    /// In rotation.
    Ready,
    /// No new traffic except sticky clients; open requests finish.
    Drain,
    /// No traffic at all.
    Maint,
}

impl StateArg {
    fn to_proto(self) -> proto::BackendState {
        match self {
            StateArg::Ready => proto::BackendState::Ready,
            StateArg::Drain => proto::BackendState::Drain,
            StateArg::Maint => proto::BackendState::Maint,
        }
    }
}

impl BackendRef {
    /// Its address, normalized, if given; an error when neither address nor id is.
    fn address(&self) -> anyhow::Result<Option<String>> {
        if self.address.is_none() && self.id.is_none() {
            anyhow::bail!("name the backend with --address or --id");
        }
        self.address
            .as_deref()
            .map(parse_backend_address)
            .transpose()
    }
}

impl BackendCommand {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            BackendCommand::Add {
                cluster,
                address,
                id,
                weight,
                backup,
                sticky_id,
                resolve_later,
            } => {
                let address = parse_backend_address(address)?;
                RequestType::AddBackend(proto::AddBackend {
                    backend: proto::Backend {
                        cluster_id: cluster.clone(),
                        backend_id: id.clone().unwrap_or_else(|| address.clone()),
                        address,
                        sticky_id: sticky_id.clone(),
                        weight: *weight,
                        backup: *backup,
                        state: None,
                        resolve_later: resolve_later.then_some(true),
                        resolved_from: None,
                    },
                })
            }
            BackendCommand::Set(args) => {
                if args.weight.is_none() && args.state.is_none() {
                    anyhow::bail!("nothing to change: give --weight or --state");
                }
                RequestType::ChangeBackend(proto::BackendChanges {
                    cluster_id: args.backend.cluster.clone(),
                    address: args.backend.address()?,
                    backend_id: args.backend.id.clone(),
                    weight: args.weight,
                    state: args.state.map(|state| state.to_proto() as i32),
                })
            }
            BackendCommand::Remove {
                backend,
                when_drained,
            } => RequestType::RemoveBackend(proto::RemoveBackend {
                cluster_id: backend.cluster.clone(),
                // Empty when named by id only: the main process finds the address.
                address: backend.address()?.unwrap_or_default(),
                backend_id: backend.id.clone(),
                when_drained: when_drained.then_some(true),
            }),
        })
    }
}
