//! `sluice ctl cluster …`.

use clap::{Subcommand, ValueEnum};
use sluice_command::proto::{self, request::RequestType};

use super::ProtocolArg;

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Every cluster with its backends and frontends, in id order; `--filter`,
    /// `--limit` and `--offset` narrow long listings.
    List(ListClustersArgs),
    /// One cluster in detail.
    Show {
        /// The cluster's id.
        id: String,
    },
    /// Adds a cluster (refused if the id exists: see `update`).
    Add(AddClusterArgs),
    /// Changes only the settings named, in place: backends, health check, answers,
    /// frontends and metrics stay.
    Update(UpdateClusterArgs),
    /// Removes a cluster.
    Remove {
        /// The cluster's id.
        id: String,
    },
    /// Prints a cluster as the TOML document of its etcd key (`<prefix>clusters/ID`):
    /// the way to move a cluster of the file into etcd.
    Export {
        /// The cluster's id.
        id: String,
    },
}

/// Arguments of `cluster list`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ListClustersArgs {
    /// Only clusters whose id or a frontend's hostname matches: a glob (`*`, `?`)
    /// when it holds either, else a substring; case is ignored.
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// At most this many clusters.
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Skips this many matching clusters first (with `--limit`: pages).
    #[arg(long, value_name = "N")]
    offset: Option<u32>,
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

/// Arguments of `cluster update`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpdateClusterArgs {
    /// The cluster's id.
    #[arg(long)]
    id: String,
    /// How a backend is picked.
    #[arg(long = "lb", value_enum)]
    load_balancing: Option<AlgorithmArg>,
    /// What "load" means for least-loaded and power-of-two.
    #[arg(long, value_enum)]
    metric: Option<MetricArg>,
    /// Keep a client on one backend with a cookie.
    #[arg(long, conflicts_with = "no_sticky")]
    sticky: bool,
    /// Stop keeping clients on one backend.
    #[arg(long)]
    no_sticky: bool,
    /// Name of the sticky-session cookie.
    #[arg(long)]
    sticky_cookie: Option<String>,
    /// Connect attempts on other backends before answering 503 (0 to 100).
    #[arg(long)]
    max_connect_retries: Option<u32>,
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
            ClusterCommand::List(args) => RequestType::QueryClusters(proto::QueryClusters {
                filter: Some(proto::query_clusters::Filter::All(true)),
                pattern: args.filter.clone(),
                limit: args.limit,
                offset: args.offset,
            }),
            ClusterCommand::Show { id } | ClusterCommand::Export { id } => {
                RequestType::QueryClusters(proto::QueryClusters {
                    filter: Some(proto::query_clusters::Filter::ClusterId(id.clone())),
                    ..Default::default()
                })
            }
            ClusterCommand::Add(args) => RequestType::AddCluster(args.to_cluster()),
            ClusterCommand::Update(args) => RequestType::ChangeCluster(args.to_changes()?),
            ClusterCommand::Remove { id } => RequestType::RemoveCluster(id.clone()),
        })
    }
}

impl AlgorithmArg {
    fn to_proto(self) -> proto::LoadBalancingAlgorithm {
        match self {
            AlgorithmArg::RoundRobin => proto::LoadBalancingAlgorithm::RoundRobin,
            AlgorithmArg::Random => proto::LoadBalancingAlgorithm::Random,
            AlgorithmArg::LeastLoaded => proto::LoadBalancingAlgorithm::LeastLoaded,
            AlgorithmArg::PowerOfTwo => proto::LoadBalancingAlgorithm::PowerOfTwo,
        }
    }
}

impl MetricArg {
    fn to_proto(self) -> proto::LoadMetric {
        match self {
            MetricArg::Connections => proto::LoadMetric::Connections,
            MetricArg::Requests => proto::LoadMetric::Requests,
            MetricArg::ConnectTime => proto::LoadMetric::ConnectTime,
        }
    }
}

impl UpdateClusterArgs {
    fn to_changes(&self) -> anyhow::Result<proto::ClusterChanges> {
        let sticky_session = match (self.sticky, self.no_sticky) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        let changes = proto::ClusterChanges {
            cluster_id: self.id.clone(),
            load_balancing: self.load_balancing.map(|a| a.to_proto() as i32),
            load_metric: self.metric.map(|m| m.to_proto() as i32),
            sticky_session,
            sticky_cookie_name: self.sticky_cookie.clone(),
            max_connect_retries: self.max_connect_retries,
        };
        if changes
            == (proto::ClusterChanges {
                cluster_id: self.id.clone(),
                ..Default::default()
            })
        {
            anyhow::bail!(
                "nothing to change: give --lb, --metric, --sticky, --no-sticky, \
                 --sticky-cookie or --max-connect-retries"
            );
        }
        Ok(changes)
    }
}

impl AddClusterArgs {
    fn to_cluster(&self) -> proto::Cluster {
        proto::Cluster {
            cluster_id: self.id.clone(),
            protocol: self.protocol.to_proto(),
            load_balancing: self.load_balancing.to_proto() as i32,
            load_metric: self.metric.to_proto() as i32,
            sticky_session: self.sticky,
            prefer_last_backend: self.prefer_last_backend.then_some(true),
            ..Default::default()
        }
    }
}
