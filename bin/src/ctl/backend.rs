//! `sluice ctl backend …`.

use clap::Subcommand;
use sluice_command::proto::{self, request::RequestType};

use super::parse_address;

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
        /// Where it listens (IP:PORT).
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
    },
    /// Removes a backend.
    Remove {
        /// The cluster it belongs to.
        #[arg(long)]
        cluster: String,
        /// Its address (IP:PORT).
        #[arg(long)]
        address: String,
    },
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
            } => {
                let address = parse_address(address)?;
                RequestType::AddBackend(proto::AddBackend {
                    backend: proto::Backend {
                        cluster_id: cluster.clone(),
                        backend_id: id.clone().unwrap_or_else(|| address.clone()),
                        address,
                        sticky_id: sticky_id.clone(),
                        weight: *weight,
                        backup: *backup,
                    },
                })
            }
            BackendCommand::Remove { cluster, address } => {
                RequestType::RemoveBackend(proto::RemoveBackend {
                    cluster_id: cluster.clone(),
                    address: parse_address(address)?,
                    backend_id: None,
                })
            }
        })
    }
}
