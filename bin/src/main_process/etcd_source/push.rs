//! `sluice etcd push -c FILE`: writes every cluster of a config file to etcd, each as the
//! document of its key, in one transaction (all keys or none). The migration path from a
//! file to etcd; the file's `[etcd]` table says where etcd is.

use std::path::Path;

use anyhow::{bail, Context};
use etcd_client::{Client, Txn, TxnOp};
use sluice_command::config::{cluster_document, Config};

use super::client::options;

/// Pushes `path`'s clusters; prints the keys written.
pub(crate) fn run(path: &Path) -> anyhow::Result<()> {
    let config =
        Config::load(path).with_context(|| format!("invalid config {}", path.display()))?;
    let Some(etcd) = &config.etcd else {
        bail!("{}: no [etcd] table: nowhere to push to", path.display());
    };
    if config.clusters.is_empty() {
        bail!("{}: no cluster to push", path.display());
    }
    let writes: Vec<(String, String)> = config
        .clusters
        .iter()
        .map(|cluster| {
            (
                etcd.cluster_key(&cluster.cluster.cluster_id),
                cluster_document(cluster, &config.listeners),
            )
        })
        .collect();
    let operations: Vec<TxnOp> = writes
        .iter()
        .map(|(key, document)| TxnOp::put(key.as_str(), document.as_str(), None))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let revision = runtime.block_on(async {
        let mut client = tokio::time::timeout(
            etcd.dial_timeout,
            Client::connect(&etcd.endpoints, Some(options(etcd)?)),
        )
        .await
        .map_err(|_| anyhow::anyhow!("etcd did not answer within {:?}", etcd.dial_timeout))??;
        let response = client
            .txn(Txn::new().and_then(operations))
            .await
            .with_context(|| {
                format!(
                    "cannot write {} keys in one transaction (etcd's --max-txn-ops, 128 by \
                     default, bounds a transaction)",
                    writes.len()
                )
            })?;
        anyhow::Ok(response.header().map_or(0, |h| h.revision()))
    })?;
    for (key, _) in &writes {
        println!("{key}");
    }
    println!("{} clusters written at revision {revision}", writes.len());
    Ok(())
}
