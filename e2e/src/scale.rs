//! Configurations of many HTTP clusters, for the `bench scale` benchmark and
//! the scale tests: cluster `i` is named `c{i}`, routes `Host: c{i}.scale.test`
//! on one listener, and has two backends.
//!
//! [`ScaleRoutes::changed`] derives the configuration a reload of a given
//! number of changes goes to: clusters removed, clusters added, backends whose
//! weight changes (updated in place) and frontends that move to another
//! hostname, a quarter each.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// One cluster of a generated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleCluster {
    /// Its number: the cluster is `c{index}`.
    pub index: usize,
    /// The host its one frontend routes.
    pub hostname: String,
    /// Its backends, with their weights.
    pub backends: Vec<(SocketAddr, u32)>,
}

impl ScaleCluster {
    /// Cluster `index` routing [`hostname`]`(index)` to `backends` (weight 100).
    pub fn new(index: usize, backends: &[SocketAddr]) -> ScaleCluster {
        ScaleCluster {
            index,
            hostname: hostname(index),
            backends: backends.iter().map(|&b| (b, 100)).collect(),
        }
    }

    /// The cluster's id.
    pub fn id(&self) -> String {
        cluster_id(self.index)
    }
}

/// The id of cluster `index`.
pub fn cluster_id(index: usize) -> String {
    format!("c{index}")
}

/// The host that cluster `index` routes, before any move.
pub fn hostname(index: usize) -> String {
    format!("c{index}.scale.test")
}

/// The clusters of a generated configuration, on one HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleRoutes {
    /// Where the one HTTP listener listens.
    pub listener: SocketAddr,
    /// The clusters, in file order.
    pub clusters: Vec<ScaleCluster>,
}

impl ScaleRoutes {
    /// `count` clusters, each sending to the same `backends`.
    pub fn new(listener: SocketAddr, count: usize, backends: &[SocketAddr]) -> ScaleRoutes {
        ScaleRoutes {
            listener,
            clusters: (0..count).map(|i| ScaleCluster::new(i, backends)).collect(),
        }
    }

    /// The routes after `changes` changes, a quarter of each kind: the first
    /// clusters are removed, as many new ones are added (sending to
    /// `backends`), the next ones change the weight of their first backend,
    /// and the next ones route another hostname. Needs at least `changes`
    /// clusters.
    pub fn changed(&self, changes: usize, backends: &[SocketAddr]) -> ScaleRoutes {
        let quarter = changes / 4;
        let next_index = self.clusters.iter().map(|c| c.index + 1).max().unwrap_or(0);
        let mut clusters: Vec<ScaleCluster> = self.clusters[quarter..].to_vec();
        for cluster in clusters.iter_mut().take(quarter) {
            if let Some((_, weight)) = cluster.backends.first_mut() {
                *weight = if *weight == 100 { 50 } else { 100 };
            }
        }
        for cluster in clusters
            .iter_mut()
            .skip(quarter)
            .take(changes - 3 * quarter)
        {
            cluster.hostname = format!("moved.{}", cluster.hostname);
        }
        clusters.extend((0..quarter).map(|i| ScaleCluster::new(next_index + i, backends)));
        ScaleRoutes {
            listener: self.listener,
            clusters,
        }
    }

    /// A Sluice configuration file: `workers` workers, no access log, the
    /// command socket `sluice.sock` beside the file.
    pub fn sluice_config(&self, workers: u32) -> String {
        let mut config = format!(
            "command_socket = \"sluice.sock\"\nworker_count = {workers}\nlog_level = \"warn\"\n\
             access_log = \"off\"\nshutdown_grace_period = \"1s\"\n\n\
             [[listeners]]\nprotocol = \"http\"\naddress = \"{}\"\n",
            self.listener
        );
        for cluster in &self.clusters {
            let backends: Vec<String> = cluster
                .backends
                .iter()
                .map(|(address, weight)| {
                    format!("{{ address = \"{address}\", weight = {weight} }}")
                })
                .collect();
            let _ = write!(
                config,
                "\n[clusters.{}]\nfrontends = [ {{ address = \"{}\", hostname = \"{}\" }} ]\n\
                 backends = [ {} ]\n",
                cluster.id(),
                self.listener,
                cluster.hostname,
                backends.join(", ")
            );
        }
        config
    }

    /// The same routes for HAProxy (one thread): a map from host to backend,
    /// `use_backend` on it. Returns the configuration and the map file's
    /// content; the configuration names the map `map_path`.
    pub fn haproxy_config(&self, map_path: &str) -> (String, String) {
        let mut config = format!(
            "global\n    maxconn 8000\n    nbthread 1\n\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    \
             timeout server 60s\n\
             frontend scale\n    bind {}\n    \
             use_backend %[req.hdr(host),lower,map({map_path})]\n",
            self.listener
        );
        let mut map = String::new();
        for cluster in &self.clusters {
            let _ = writeln!(map, "{} {}", cluster.hostname, cluster.id());
            let _ = writeln!(config, "backend {}\n    balance roundrobin", cluster.id());
            for (i, (address, weight)) in cluster.backends.iter().enumerate() {
                let _ = writeln!(config, "    server b{i} {address} weight {weight}");
            }
        }
        (config, map)
    }

    /// How many backends the routes hold.
    pub fn backend_count(&self) -> usize {
        self.clusters.iter().map(|c| c.backends.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends() -> [SocketAddr; 2] {
        [
            "127.0.0.1:9001".parse().unwrap(),
            "127.0.0.1:9002".parse().unwrap(),
        ]
    }

    #[test]
    fn changes_are_a_quarter_of_each_kind() {
        let routes = ScaleRoutes::new("127.0.0.1:9000".parse().unwrap(), 100, &backends());
        let changed = routes.changed(40, &backends());
        assert_eq!(changed.clusters.len(), 100);
        let ids = |r: &ScaleRoutes| r.clusters.iter().map(|c| c.index).collect::<Vec<_>>();
        assert!(!ids(&changed).contains(&9) && ids(&changed).contains(&10));
        assert!(ids(&changed).contains(&109) && !ids(&changed).contains(&110));
        let weights = changed.clusters.iter().filter(|c| c.backends[0].1 == 50);
        assert_eq!(weights.count(), 10);
        let moved = changed
            .clusters
            .iter()
            .filter(|c| c.hostname.starts_with("moved."));
        assert_eq!(moved.count(), 10);
    }

    #[test]
    fn configurations_name_every_cluster() {
        let routes = ScaleRoutes::new("127.0.0.1:9000".parse().unwrap(), 3, &backends());
        let config = routes.sluice_config(2);
        assert!(config.contains("[clusters.c2]") && config.contains("c2.scale.test"));
        let (haproxy, map) = routes.haproxy_config("/tmp/hosts.map");
        assert!(haproxy.contains("backend c2") && map.contains("c2.scale.test c2"));
        assert_eq!(routes.backend_count(), 6);
    }
}
