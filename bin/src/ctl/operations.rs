//! `sluice ctl metrics|reload|state|shutdown`: operations on the whole instance.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sluice_command::proto::{self, request::RequestType};

use super::absolute;

/// Arguments of `metrics`.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Only this backend.
    #[arg(long)]
    backend: Option<String>,
}

impl MetricsArgs {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> RequestType {
        RequestType::QueryMetrics(proto::QueryMetrics {
            cluster_id: self.cluster.clone(),
            backend_id: self.backend.clone(),
        })
    }
}

/// Arguments of `reload`.
#[derive(Debug, Args)]
pub(crate) struct ReloadArgs {
    /// The config file to load (default: the one the main process was started with).
    #[arg(short = 'c', long)]
    config: Option<PathBuf>,
    /// Apply the file even if it leaves no listener or no cluster.
    #[arg(long)]
    allow_empty: bool,
}

impl ReloadArgs {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        let path = self.config.as_deref().map(absolute).transpose()?;
        Ok(RequestType::ReloadConfiguration(
            proto::ReloadConfiguration {
                path,
                allow_empty: self.allow_empty.then_some(true),
            },
        ))
    }
}

/// `state save|load`.
#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Writes the current state to a file.
    Save {
        /// The file to write.
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// Makes the state equal to a saved one, applying the difference.
    Load {
        /// The file to read.
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Apply the state even if it has no listener or no cluster (an empty
        /// file is refused all the same).
        #[arg(long)]
        allow_empty: bool,
    },
}

impl StateCommand {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            StateCommand::Save { file } => RequestType::SaveState(proto::SaveState {
                path: absolute(file)?,
            }),
            StateCommand::Load { file, allow_empty } => RequestType::LoadState(proto::LoadState {
                path: absolute(file)?,
                allow_empty: allow_empty.then_some(true),
            }),
        })
    }
}

/// Arguments of `shutdown`.
#[derive(Debug, Args)]
pub(crate) struct ShutdownArgs {
    /// Close every connection at once instead of draining.
    #[arg(long)]
    hard: bool,
}

impl ShutdownArgs {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> RequestType {
        if self.hard {
            RequestType::HardStop(proto::HardStop {})
        } else {
            RequestType::SoftStop(proto::SoftStop::default())
        }
    }
}

/// Arguments of `ctl upgrade`.
#[derive(Debug, Args)]
pub(crate) struct UpgradeArgs {
    /// The binary to run; by default the path the main process was started from (which a
    /// package upgrade replaced).
    #[arg(long)]
    binary: Option<PathBuf>,
}

impl UpgradeArgs {
    /// The request this command sends; a relative path is made absolute here, where the
    /// operator typed it.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        let binary = self.binary.as_deref().map(absolute).transpose()?;
        Ok(RequestType::UpgradeMain(proto::UpgradeMain { binary }))
    }
}
