//! Parsing a file by parts of its clusters: the parser is given the file with
//! the other clusters' text blanked (only their line ends kept, so that every
//! line and column is the file's), and the parts are put back in file order.
//!
//! A large file is parsed in two halves on two threads at once; the
//! [`cache`](super::cache) parses only the clusters that changed. Either way
//! the result is the one a whole parse gives, or `None`, for the caller to
//! parse the whole file (any error, a route two parts share, a cluster the
//! parts do not agree on).

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use super::{root, sections::ClusterText, sections::Layout, Config};
use crate::proto;

/// Fewer clusters than this are parsed on one thread: a second one would cost
/// more than it saves.
pub(crate) const MIN_CLUSTERS_TO_SPLIT: usize = 2_000;

/// `text` with the sections of `clusters` blanked: each is reduced to its line
/// ends. The sections run from a line start to a line start, so every line of
/// the rest keeps its number and its columns.
pub(crate) fn blanked<'a>(
    text: &str,
    clusters: impl Iterator<Item = &'a ClusterText>,
) -> Option<String> {
    let mut ranges: Vec<&Range<usize>> = clusters.flat_map(|cluster| &cluster.ranges).collect();
    ranges.sort_unstable_by_key(|range| range.start);
    let mut blanked = String::with_capacity(text.len());
    let mut kept_from = 0;
    for range in ranges {
        if range.start < kept_from {
            return None;
        }
        blanked.push_str(text.get(kept_from..range.start)?);
        let line_ends = text
            .get(range.clone())?
            .bytes()
            .filter(|&byte| byte == b'\n');
        blanked.extend(line_ends.map(char::from));
        kept_from = range.end;
    }
    blanked.push_str(text.get(kept_from..)?);
    Some(blanked)
}

/// Parses the first half of the clusters on this thread and the second on
/// another one, when `layout` has at least `min_clusters`.
pub(crate) fn parse_in_halves(
    text: &str,
    file_name: &str,
    base_dir: &Path,
    layout: &Layout,
    min_clusters: usize,
) -> Option<Config> {
    let count = layout.clusters.len();
    if count < min_clusters.max(2) {
        return None;
    }
    let (first, second) = layout.clusters.split_at(count / 2);
    let (first_part, second_part) = std::thread::scope(|scope| {
        let second_part = scope.spawn(|| {
            let text = blanked(text, first.iter())?;
            root::parse(&text, file_name, base_dir).ok()
        });
        let first_part = blanked(text, second.iter())
            .and_then(|text| root::parse(&text, file_name, base_dir).ok());
        (first_part, second_part.join().ok().flatten())
    });
    let (mut config, second_part) = (first_part?, second_part?);
    config.clusters.extend(second_part.clusters);
    // Each part's backends come in its clusters' order, as in a whole parse.
    config.backend_names.extend(second_part.backend_names);
    let same_clusters = config.clusters.len() == count
        && config
            .clusters
            .iter()
            .zip(&layout.clusters)
            .all(|(parsed, written)| parsed.cluster.cluster_id == written.name);
    (same_clusters && !shares_a_route(&config.clusters)).then_some(config)
}

/// Whether two frontends of `clusters` take the same route (a whole parse
/// says which, and where).
pub(crate) fn shares_a_route(clusters: &[proto::ClusterInformation]) -> bool {
    let mut http = HashSet::new();
    let mut tcp = HashSet::new();
    for cluster in clusters {
        for frontend in &cluster.http_frontends {
            let key = (
                &frontend.address,
                &frontend.hostname,
                frontend.path.kind,
                &frontend.path.value,
                &frontend.method,
            );
            if !http.insert(key) {
                return true;
            }
        }
        for frontend in &cluster.tcp_frontends {
            if !tcp.insert(&frontend.address) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sections::layout;

    #[test]
    fn a_blanked_cluster_keeps_only_its_line_ends_and_the_rest_its_lines() {
        let text = "[[listeners]]\naddress = \"a\"\n[clusters.a]\nx = 1\r\n\
                    [clusters.b]\ny = 2\n[clusters.a.health_check]\nuri = \"/\"\n";
        let layout = layout(text).expect("a layout");
        let first = layout.clusters.iter().filter(|cluster| cluster.name == "a");
        let blanked = blanked(text, first).expect("blanked");
        assert_eq!(
            blanked,
            "[[listeners]]\naddress = \"a\"\n\n\n[clusters.b]\ny = 2\n\n\n"
        );
        assert_eq!(blanked.lines().count(), text.lines().count());
    }
}
