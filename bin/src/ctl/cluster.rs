//! `sluice ctl cluster …`.

use clap::{Subcommand, ValueEnum};
use sluice_command::proto::{self, request::RequestType};

use super::ProtocolArg;

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Every cluster with its backends and frontends.
    List,
    /// One cluster in detail.
    Show {
        /// The cluster's id.
        id: String,
    },
    /// Adds a cluster.
    Add(AddClusterArgs),
    /// Removes a cluster.
    Remove {
        /// The cluster's id.
        id: String,
    },
}

/// Arguments of `cluster add`.
#[derive(Debug, clap::Args)]
pub(crate) struct AddClusterArgs {
    /// The new cluster's id.
    #[arg(long)]
    id: String,
    /// The protocol its frontends speak.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Http)]
    protocol: ProtocolArg,
    /// How a backend is picked.
    #[arg(long = "lb", value_enum, default_value_t = AlgorithmArg::RoundRobin)]
    load_balancing: AlgorithmArg,
    /// What "load" means for least-loaded and power-of-two.
    #[arg(long, value_enum, default_value_t = MetricArg::Connections)]
    metric: MetricArg,
    /// Keep a client on one backend with a cookie.
    #[arg(long)]
    sticky: bool,
    /// HTTP: keep a client connection's requests on the backend its previous request
    /// went to while that backend can take them, instead of balancing each request.
    #[arg(long)]
    prefer_last_backend: bool,
}

/// A load-balancing algorithm.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AlgorithmArg {
    /// Each backend in turn.
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
    /// A random backend.
    Random,
    /// The backend with the least load.
    #[value(name = "least_loaded", alias = "least-loaded")]
    LeastLoaded,
    /// The less loaded of two random backends.
    #[value(name = "power_of_two", alias = "power-of-two")]
    PowerOfTwo,
}

/// A load metric.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum MetricArg {
    /// Open connections.
    Connections,
    /// Requests in flight.
    Requests,
    /// Peak-EWMA connect time.
    #[value(name = "connect_time", alias = "connect-time")]
    ConnectTime,
}

impl ClusterCommand {
    /// The request this command sends.
    pub(crate) fn to_request(&self) -> anyhow::Result<RequestType> {
        Ok(match self {
            ClusterCommand::List => RequestType::QueryClusters(proto::QueryClusters {
                filter: Some(proto::query_clusters::Filter::All(true)),
            }),
            ClusterCommand::Show { id } => RequestType::QueryClusters(proto::QueryClusters {
                filter: Some(proto::query_clusters::Filter::ClusterId(id.clone())),
            }),
            ClusterCommand::Add(args) => RequestType::AddCluster(args.to_cluster()),
            ClusterCommand::Remove { id } => RequestType::RemoveCluster(id.clone()),
        })
    }
}

impl AddClusterArgs {
    fn to_cluster(&self) -> proto::Cluster {
        let load_balancing = match self.load_balancing {
            AlgorithmArg::RoundRobin => proto::LoadBalancingAlgorithm::RoundRobin,
            AlgorithmArg::Random => proto::LoadBalancingAlgorithm::Random,
            AlgorithmArg::LeastLoaded => proto::LoadBalancingAlgorithm::LeastLoaded,
            AlgorithmArg::PowerOfTwo => proto::LoadBalancingAlgorithm::PowerOfTwo,
        };
        let load_metric = match self.metric {
            MetricArg::Connections => proto::LoadMetric::Connections,
            MetricArg::Requests => proto::LoadMetric::Requests,
            MetricArg::ConnectTime => proto::LoadMetric::ConnectTime,
        };
        proto::Cluster {
            cluster_id: self.id.clone(),
            protocol: self.protocol.to_proto(),
            load_balancing: load_balancing as i32,
            load_metric: load_metric as i32,
            sticky_session: self.sticky,
            prefer_last_backend: self.prefer_last_backend.then_some(true),
            ..Default::default()
        }
    }
}
