//! etcd as a source of clusters: one key per cluster under `<prefix>clusters/`, each a
//! TOML document with the schema of a `[clusters.ID]` table of the file.
//!
//! One thread of the main process runs the etcd client on a current-thread tokio runtime
//! (the only async code of Sluice: the workers stay single mio loops). It reads the prefix
//! at a revision, applies it, then watches from the next revision; each batch of watch
//! events becomes one change applied like a reload (`apply`). A compaction or a lost watch
//! leads to a full re-read and a diff; an unreachable etcd to retries with backoff while
//! the last state keeps serving. Each applied batch is written to a local cache, which a
//! start without etcd begins from.

mod apply;
mod cache;
mod client;
mod ctl_guard;
mod push;
mod state_file;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sluice_command::config::{Config, EtcdConfig, ListenerConfig};
use sluice_command::proto;

pub(crate) use ctl_guard::refusal as ctl_refusal;
pub(crate) use push::run as push;
pub(crate) use state_file::{cluster_of, leave_managed, left_note, managed_ids};

use super::{lock, MainProcess};

/// How the connection to etcd stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Connection {
    /// Not yet connected since the start.
    Connecting,
    /// Reading or watching.
    Connected,
    /// Lost or never reached; why.
    Disconnected(String),
}

/// What main knows of etcd's clusters: the documents applied and those refused.
#[derive(Debug)]
pub(crate) struct SourceState {
    pub(crate) connection: Connection,
    /// The etcd revision last applied (0 before any).
    pub(crate) revision: i64,
    /// Whether the clusters served came from the cache and etcd was not read since.
    pub(crate) from_cache: bool,
    /// Applied documents: cluster id → (key, document).
    pub(crate) applied: BTreeMap<String, (String, String)>,
    /// Keys refused, with why.
    pub(crate) refused: BTreeMap<String, String>,
    /// The clusters an upgrade handed over that the file does not define: etcd's in
    /// the previous main process, or ctl's. A key naming one takes it over, until etcd
    /// was read once (see `handed_over`).
    pub(crate) handed_over: BTreeSet<String>,
}

/// The etcd source of one main process.
#[derive(Debug)]
pub(crate) struct EtcdSource {
    pub(crate) config: EtcdConfig,
    /// The local file's listeners, which the documents' frontends name.
    pub(crate) listeners: Vec<ListenerConfig>,
    /// Where relative answer paths in documents start from: the config file's folder.
    pub(crate) base_dir: PathBuf,
    pub(crate) state: Mutex<SourceState>,
}

impl EtcdSource {
    /// The source `config`'s `[etcd]` table describes, if it has one; `handed_over`
    /// are the clusters an upgrade handed over that the file does not define.
    pub(crate) fn of(config: &Config, handed_over: Vec<String>) -> Option<EtcdSource> {
        let etcd = config.etcd.clone()?;
        let base_dir = config
            .path
            .as_deref()
            .and_then(std::path::Path::parent)
            .map(|dir| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("."));
        Some(EtcdSource {
            config: etcd,
            listeners: config.listeners.clone(),
            base_dir,
            state: Mutex::new(SourceState {
                connection: Connection::Connecting,
                revision: 0,
                from_cache: false,
                applied: BTreeMap::new(),
                refused: BTreeMap::new(),
                handed_over: handed_over.into_iter().collect(),
            }),
        })
    }

    /// The key that holds `cluster_id`, if etcd manages it.
    pub(crate) fn managed_key(&self, cluster_id: &str) -> Option<String> {
        lock(&self.state)
            .applied
            .get(cluster_id)
            .map(|(key, _)| key.clone())
    }

    /// The ids of the clusters etcd manages now.
    pub(crate) fn managed_ids(&self) -> Vec<String> {
        lock(&self.state).applied.keys().cloned().collect()
    }

    /// Where the source stands, for `ctl status` and `/status`.
    pub(crate) fn status(&self) -> proto::SourceStatus {
        let state = lock(&self.state);
        let (name, error) = match &state.connection {
            Connection::Connecting => ("connecting", None),
            Connection::Connected => ("connected", None),
            Connection::Disconnected(error) => ("disconnected", Some(error.clone())),
        };
        proto::SourceStatus {
            state: name.to_owned(),
            revision: state.revision,
            endpoints: self.config.endpoints.clone(),
            clusters: state.applied.len() as u64,
            refused: state
                .refused
                .iter()
                .map(|(key, error)| proto::RefusedKey {
                    key: key.clone(),
                    error: error.clone(),
                })
                .collect(),
            from_cache: state.from_cache,
            error,
        }
    }

    /// Prometheus lines for `/metrics`: connected or not, last revision, refused keys.
    pub(crate) fn metrics_text(&self) -> String {
        let status = self.status();
        let connected = u8::from(status.state == "connected");
        format!(
            "# HELP sluice_etcd_connected Whether the etcd source of clusters is connected.\n\
             # TYPE sluice_etcd_connected gauge\n\
             sluice_etcd_connected {connected}\n\
             # HELP sluice_etcd_revision The etcd revision last applied.\n\
             # TYPE sluice_etcd_revision gauge\n\
             sluice_etcd_revision {}\n\
             # HELP sluice_etcd_clusters Clusters the etcd source manages.\n\
             # TYPE sluice_etcd_clusters gauge\n\
             sluice_etcd_clusters {}\n\
             # HELP sluice_etcd_refused_keys Keys whose document was refused.\n\
             # TYPE sluice_etcd_refused_keys gauge\n\
             sluice_etcd_refused_keys {}\n",
            status.revision,
            status.clusters,
            status.refused.len()
        )
    }
}

/// The clusters of `inherited`, a state an upgrade handed over, that the file's state
/// `from_file` does not define.
pub(crate) fn not_in_file(
    inherited: &sluice_command::state::ConfigState,
    from_file: &sluice_command::state::ConfigState,
) -> Vec<String> {
    inherited
        .clusters()
        .keys()
        .filter(|id| from_file.cluster(id).is_none())
        .cloned()
        .collect()
}

/// Starts the etcd thread for `source`, if there is one.
pub(crate) fn start(main: &Arc<MainProcess>, source: Option<EtcdSource>) -> anyhow::Result<()> {
    let Some(source) = source else {
        return Ok(());
    };
    let _ = main.etcd.set(source);
    client::spawn(Arc::clone(main))
}

/// Adds to a reload's `target` the clusters etcd manages; a cluster the file defines
/// under an id etcd manages refuses the reload, naming the key.
pub(crate) fn keep_managed_clusters(
    main: &MainProcess,
    target: &mut sluice_command::state::ConfigState,
) -> Result<(), String> {
    let Some(source) = main.etcd.get() else {
        return Ok(());
    };
    for cluster_id in source.managed_ids() {
        if target.cluster(&cluster_id).is_some() {
            let key = source.config.cluster_key(&cluster_id);
            return Err(format!(
                "cluster {cluster_id} is managed by etcd (key {key}); remove it from the file"
            ));
        }
        let Some(info) = lock(&main.state).cluster_information(&cluster_id) else {
            continue;
        };
        for request in apply::cluster_requests(&info) {
            target.apply(&request).map_err(|error| {
                format!("cluster {cluster_id} from etcd does not fit the new file: {error}")
            })?;
        }
    }
    Ok(())
}
