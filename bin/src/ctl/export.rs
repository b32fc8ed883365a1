//! `sluice ctl cluster export ID`: a cluster as the TOML document of its etcd key, the
//! way to move a cluster of the file into etcd; and the etcd lines of `ctl status`.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use sluice_command::config::{cluster_document, ListenerConfig};
use sluice_command::proto::{
    self, query_clusters::Filter, request::RequestType, response_content::ContentType, Request,
};

use super::client;

/// Prints cluster `id` as a document (or `{"document": …}` with `--json`).
pub(crate) fn run(socket: &Path, id: &str, timeout: Duration, json: bool) -> anyhow::Result<()> {
    let clusters = ask(
        socket,
        RequestType::QueryClusters(proto::QueryClusters {
            filter: Some(Filter::ClusterId(id.to_owned())),
            ..Default::default()
        }),
        timeout,
    )?;
    let Some(ContentType::Clusters(list)) = clusters else {
        bail!("the main process answered without clusters");
    };
    let Some(cluster) = list.clusters.first() else {
        bail!("unknown cluster `{id}`");
    };
    let listeners = match ask(
        socket,
        RequestType::QueryListeners(proto::QueryListeners {}),
        timeout,
    )? {
        Some(ContentType::Listeners(list)) => list
            .listeners
            .into_iter()
            .filter_map(|l| match (l.http, l.tcp) {
                (Some(http), _) => Some(ListenerConfig::Http(http)),
                (None, Some(tcp)) => Some(ListenerConfig::Tcp(tcp)),
                (None, None) => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let document = cluster_document(cluster, &listeners);
    if json {
        crate::stdout::print_line(&serde_json::json!({ "document": document }).to_string())?;
    } else {
        crate::stdout::print(&document)?;
    }
    Ok(())
}

/// The content of the answer to `request`, or the failure it says.
fn ask(
    socket: &Path,
    request_type: RequestType,
    timeout: Duration,
) -> anyhow::Result<Option<ContentType>> {
    let request = Request {
        request_type: Some(request_type),
    };
    let response = client::send(socket, &request, timeout)?;
    if response.status == proto::ResponseStatus::Failure as i32 {
        bail!("{}", response.message);
    }
    Ok(response.content.and_then(|c| c.content_type))
}

/// `status`: the etcd source's state, revision and refused keys.
pub(crate) fn source_lines(source: &proto::SourceStatus) -> String {
    let mut text = format!(
        "\netcd: {} ({}), revision {}, {} clusters{}\n",
        source.state,
        source.endpoints.join(", "),
        source.revision,
        source.clusters,
        if source.from_cache {
            ", started from the cache"
        } else {
            ""
        }
    );
    if let Some(error) = &source.error {
        text.push_str(&format!("  last error: {error}\n"));
    }
    for refused in &source.refused {
        text.push_str(&format!("  refused {}: {}\n", refused.key, refused.error));
    }
    text
}
