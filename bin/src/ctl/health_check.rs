//! `sluice ctl health-check …`.

use clap::{Args, Subcommand};
use sluice_command::config::defaults;
use sluice_command::proto::{self, request::RequestType};

use super::parse_millis;

/// Health-check commands.
#[derive(Debug, Subcommand)]
pub(crate) enum HealthCheckCommand {
    /// Sets (or replaces) a cluster's active health check.
    Set(SetHealthCheckArgs),
    /// Removes it: the cluster's backends count as healthy again.
    Remove {
        /// The cluster.
        #[arg(long)]
        cluster: String,
    },
}

/// Arguments of `health-check set`.
#[derive(Debug, Args)]
pub(crate) struct SetHealthCheckArgs {
    /// The cluster whose backends are probed.
    #[arg(long)]
    cluster: String,
    /// The path probed with a GET; without it (TCP clusters), the probe is a TCP connect.
    #[arg(long)]
    uri: Option<String>,
    /// Time between two probes of a backend.
    #[arg(long, default_value = "5s")]
    interval: String,
    /// Time a probe may take (default: 2s, or the interval if shorter); at most the
    /// interval.
    #[arg(long)]
    timeout: Option<String>,
    /// Successes in a row that make a backend healthy.
    #[arg(long, default_value_t = 2)]
    healthy_threshold: u32,
    /// Failures in a row that make a backend unhealthy.
    #[arg(long, default_value_t = 3)]
    unhealthy_threshold: u32,
    /// Lowest accepted status.
    #[arg(long)]
    expected_status_min: Option<u32>,
    /// Highest accepted status.
    #[arg(long)]
    expected_status_max: Option<u32>,
    /// Host header of the probes.
    #[arg(long)]
    host: Option<String>,
}

impl HealthCheckCommand {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            HealthCheckCommand::Set(args) => RequestType::SetHealthCheck(proto::SetHealthCheck {
                cluster_id: args.cluster.clone(),
                config: Some(args.to_config()?),
            }),
            HealthCheckCommand::Remove { cluster } => {
                RequestType::SetHealthCheck(proto::SetHealthCheck {
                    cluster_id: cluster.clone(),
                    config: None,
                })
            }
        })
    }
}

impl SetHealthCheckArgs {
    fn to_config(&self) -> anyhow::Result<proto::HealthCheckConfig> {
        let uri = self.uri.clone().unwrap_or_default();
        let interval_ms = parse_millis(&self.interval)?;
        let timeout_ms = match &self.timeout {
            Some(timeout) => parse_millis(timeout)?,
            None => {
                let default = defaults::DEFAULT_HEALTH_CHECK_TIMEOUT.as_millis();
                u32::try_from(default).unwrap_or(u32::MAX).min(interval_ms)
            }
        };
        Ok(proto::HealthCheckConfig {
            uri,
            interval_ms,
            timeout_ms,
            healthy_threshold: self.healthy_threshold,
            unhealthy_threshold: self.unhealthy_threshold,
            expected_status_min: self.expected_status_min,
            expected_status_max: self.expected_status_max,
            host: self.host.clone(),
        })
    }
}
