//! Parsing a file by parts of its clusters: the parser is given the file
//! without the other clusters' text, and the parts are put back in file order.
//! The lines that follow a left-out cluster move up, which only shows where a
//! configuration says where something was written (backends given by host
//! name): such a part is parsed again with the left-out lines kept blank, so
//! that every line and column is the file's.
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

/// The same when the other clusters of the file are reused: the text to copy
/// and blank is the whole file's all the same.
pub(crate) const MIN_CHANGED_TO_SPLIT: usize = 400;

/// What is left of a blanked cluster's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blank {
    /// Their line ends: every other line keeps its number.
    LineEnds,
    /// Nothing: the parser reads no empty lines in their place.
    Nothing,
}

/// `text` with the sections of `clusters` blanked. The sections run from a
/// line start to a line start, so every other line keeps its columns.
pub(crate) fn blanked<'a>(
    text: &str,
    clusters: impl Iterator<Item = &'a ClusterText>,
    blank: Blank,
) -> Option<String> {
    let mut ranges: Vec<&Range<usize>> =
        clusters.flat_map(|cluster| cluster.ranges.iter()).collect();
    ranges.sort_unstable_by_key(|range| range.start);
    let mut blanked = String::with_capacity(text.len());
    let mut kept_from = 0;
    for range in ranges {
        if range.start < kept_from {
            return None;
        }
        blanked.push_str(text.get(kept_from..range.start)?);
        let section = text.get(range.clone())?;
        if blank == Blank::LineEnds {
            let line_ends = section.bytes().filter(|&byte| byte == b'\n');
            blanked.extend(line_ends.map(char::from));
        }
        kept_from = range.end;
    }
    blanked.push_str(text.get(kept_from..)?);
    Some(blanked)
}

/// Parses `text` without the clusters `left_out`; `None` on any error.
pub(crate) fn parse_without(
    text: &str,
    file_name: &str,
    base_dir: &Path,
    left_out: &[&ClusterText],
) -> Option<Config> {
    let parse = |blank| {
        let text = blanked(text, left_out.iter().copied(), blank)?;
        root::parse(&text, file_name, base_dir).ok()
    };
    let config = parse(Blank::Nothing)?;
    if config.backend_names.is_empty() {
        return Some(config);
    }
    // Their locations name lines of the file.
    parse(Blank::LineEnds)
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
    let clusters: Vec<&ClusterText> = layout.clusters.iter().collect();
    let config = parse_halves(text, file_name, base_dir, &clusters, &[])?;
    let same_clusters = config.clusters.len() == count
        && config
            .clusters
            .iter()
            .zip(&layout.clusters)
            .all(|(parsed, written)| parsed.cluster.cluster_id == written.name(text));
    (same_clusters && !shares_a_route(&config.clusters)).then_some(config)
}

/// Parses `text` with the clusters `left_out` blanked, the first half of
/// `parsed` (in file order) on this thread and the second on another one. The
/// configuration holds the clusters of both halves, in file order; the caller
/// checks that they are the ones expected.
pub(crate) fn parse_halves(
    text: &str,
    file_name: &str,
    base_dir: &Path,
    parsed: &[&ClusterText],
    left_out: &[&ClusterText],
) -> Option<Config> {
    let (first, second) = parsed.split_at(parsed.len() / 2);
    let (first_part, second_part) = std::thread::scope(|scope| {
        let second_part = scope.spawn(|| {
            let others: Vec<&ClusterText> = left_out.iter().chain(first).copied().collect();
            parse_without(text, file_name, base_dir, &others)
        });
        let others: Vec<&ClusterText> = left_out.iter().chain(second).copied().collect();
        let first_part = parse_without(text, file_name, base_dir, &others);
        (first_part, second_part.join().ok().flatten())
    });
    let (mut config, second_part) = (first_part?, second_part?);
    config.clusters.extend(second_part.clusters);
    // Each part's backends come in its clusters' order, as in a whole parse.
    config.backend_names.extend(second_part.backend_names);
    Some(config)
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
        let first = layout
            .clusters
            .iter()
            .filter(|cluster| cluster.name(text) == "a");
        let lined = blanked(text, first.clone(), Blank::LineEnds).expect("blanked");
        assert_eq!(
            lined,
            "[[listeners]]\naddress = \"a\"\n\n\n[clusters.b]\ny = 2\n\n\n"
        );
        assert_eq!(lined.lines().count(), text.lines().count());
        let compact = blanked(text, first, Blank::Nothing).expect("blanked");
        assert_eq!(
            compact,
            "[[listeners]]\naddress = \"a\"\n[clusters.b]\ny = 2\n"
        );
    }
}
