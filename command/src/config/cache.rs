//! Reading a reloaded file again costs what changed in it: the clusters
//! whose sections hold the same bytes as at the last read, in a file whose
//! other sections (root keys, listeners, certificates) are the same too, are
//! taken from that read instead of being parsed again.
//!
//! The result is always the one a whole parse gives:
//! - the text of a reused cluster is left out (see [`parts`](super::parts)),
//!   and every refusal comes from a whole parse, so that every line and
//!   column reported is the one of the whole file;
//! - a cluster is reused only when every byte of its sections and every byte
//!   outside the clusters (with the file's folder) is as before: the parse of
//!   a cluster depends on nothing else, but for answer files (read from
//!   disk) and backends given by host name (whose origin names the file and
//!   line), whose clusters are never kept. The file's name only appears in
//!   refusals, which always come from a whole parse, so another file of the
//!   same folder (`reload -c other.toml`, and back) reuses them too;
//! - whatever goes wrong on this path (an error, a route two clusters share,
//!   a layout the scan cannot tell) is answered by a parse of the whole file,
//!   so that refusals read exactly as they always did.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState as FastHash;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::path::Path;

use prost::Message;

use super::{
    parts, root,
    sections::{self, Layout, Ranges},
    Config, ConfigError,
};
use crate::proto;

/// What the last read of a file left to reuse. Costs about a copy of the
/// file and a few hundred bytes per cluster.
#[derive(Debug)]
pub struct ParseCache {
    /// The text the entries' ranges point into.
    text: String,
    /// The file's folder and its text outside the clusters.
    context: String,
    /// Each cluster of the last read by name: its sections and, when it can be
    /// reused, its parse, encoded.
    entries: HashMap<String, CachedCluster, FastHash>,
    /// The clusters of the last read, in file order, by where their name is
    /// written in `text`, and whether each was taken unchanged from the read
    /// before.
    order: Vec<(Range<usize>, bool)>,
    /// The clusters of the read before that the last read no longer has.
    dropped: Vec<String>,
    /// A file of this many clusters or more is parsed on two threads.
    min_clusters_to_split: usize,
    /// A read that parses this many changed clusters or more parses them on
    /// two threads.
    min_changed_to_split: usize,
    /// One more for each read that succeeded.
    generation: u64,
    /// What the last read that succeeded reused.
    last: LastRead,
    /// Where the last read was from, when it left its unchanged clusters out
    /// of its configuration, for [`ParseCache::complete`].
    left_out: Option<LeftOut>,
}

/// The file a read that left its unchanged clusters out read.
#[derive(Debug)]
struct LeftOut {
    file_name: String,
    base_dir: std::path::PathBuf,
}

/// What the last read that succeeded reused, for a caller that keeps what it
/// built from the read before.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LastRead {
    /// The number of that read (see [`ParseCache::generation`]).
    pub generation: u64,
    /// The number of the read it compared with, when its text outside the
    /// clusters was the same and some clusters were reused.
    pub compared_with: Option<u64>,
    /// How many clusters had the same text as in that read (named by
    /// [`ParseCache::unchanged`]): every other cluster of the file is new or
    /// changed (or was not kept).
    pub unchanged: usize,
}

impl Default for ParseCache {
    fn default() -> Self {
        ParseCache {
            text: String::new(),
            context: String::new(),
            entries: HashMap::default(),
            order: Vec::new(),
            dropped: Vec::new(),
            min_clusters_to_split: parts::MIN_CLUSTERS_TO_SPLIT,
            min_changed_to_split: parts::MIN_CHANGED_TO_SPLIT,
            generation: 0,
            last: LastRead::default(),
            left_out: None,
        }
    }
}

#[derive(Debug)]
struct CachedCluster {
    ranges: Ranges,
    /// Its parse, unless it cannot be reused (it reads answer files, or
    /// names backends by host name).
    encoded: Option<Vec<u8>>,
    /// A hash of each route its frontends take (see [`route_hashes`]).
    routes: Box<[u64]>,
    /// The read that last found it in the file.
    seen: u64,
}

/// How a read went, for tests and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheUse {
    /// Clusters taken from the last read.
    pub reused: usize,
    /// Clusters parsed.
    pub parsed: usize,
}

impl ParseCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache that parses files of `min_clusters` clusters or more,
    /// and as many changed clusters, on two threads.
    #[cfg(test)]
    pub(crate) fn splitting_from(min_clusters: usize) -> Self {
        ParseCache {
            min_clusters_to_split: min_clusters,
            min_changed_to_split: min_clusters,
            ..ParseCache::default()
        }
    }

    /// The number of the last read that succeeded (0 before any).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What the last read that succeeded reused.
    pub fn last_read(&self) -> &LastRead {
        &self.last
    }

    /// The clusters of the last read that had the same text as in the read
    /// before, in file order.
    pub fn unchanged(&self) -> impl Iterator<Item = &str> + '_ {
        self.order
            .iter()
            .filter(|(_, unchanged)| *unchanged)
            .map(|(name, _)| &self.text[name.clone()])
    }

    /// The clusters of the read before the last one that the last read no
    /// longer has: with the last read's, every cluster a state made from the
    /// read before and the one from the last read hold.
    pub fn dropped(&self) -> impl Iterator<Item = &str> + '_ {
        self.dropped.iter().map(String::as_str)
    }

    /// Reads and checks the file at `path` as [`Config::load`] does, reusing
    /// what it can of the last read.
    pub fn load(&mut self, path: &Path) -> Result<Config, ConfigError> {
        let (text, file_name, base_dir) = super::read_file(path)?;
        let (mut config, _) = self.read_completed(Cow::Owned(text), &file_name, &base_dir)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// [`ParseCache::load`], but the configuration leaves out the clusters
    /// taken unchanged from the last read (named in
    /// [`LastRead::unchanged`]): a caller that compares only what changed
    /// never pays for them, and one that needs them asks
    /// [`ParseCache::complete`] before the next read.
    pub fn load_changes(&mut self, path: &Path) -> Result<Config, ConfigError> {
        let (text, file_name, base_dir) = super::read_file(path)?;
        let (mut config, _) = self.read(Cow::Owned(text), &file_name, &base_dir)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Puts back into `config`, read by the [`ParseCache::load_changes`] of
    /// number `generation` (its [`LastRead::generation`]), the clusters it
    /// left out, in file order, making it what [`ParseCache::load`] gives.
    /// `false` when the cache read another file since, and `config` is left
    /// as it is.
    pub fn complete(&mut self, generation: u64, config: &mut Config) -> bool {
        if generation != self.generation {
            return false;
        }
        let Some(left_out) = self.left_out.take() else {
            return true;
        };
        let places = self
            .order
            .iter()
            .enumerate()
            .filter(|(_, (_, unchanged))| *unchanged)
            .map(|(place, (name, _))| (place, &self.text[name.clone()]));
        let decoded = self.decode_placed(places);
        match decoded {
            Some(decoded) => {
                config.clusters = interleave(std::mem::take(&mut config.clusters), decoded);
                true
            }
            // What the cache encoded reads back; if it ever did not, the text
            // it keeps is the file's.
            None => match root::parse(&self.text, &left_out.file_name, &left_out.base_dir) {
                Ok(whole) => {
                    config.clusters = whole.clusters;
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// Checks `text` as [`Config::parse`] does, reusing what it can of the
    /// last read; what this read parsed is kept for the next one.
    pub fn parse(
        &mut self,
        text: &str,
        file_name: &str,
        base_dir: &Path,
    ) -> Result<Config, ConfigError> {
        self.parse_counted(text, file_name, base_dir)
            .map(|(config, _)| config)
    }

    /// [`ParseCache::parse`], also saying how many clusters were reused.
    pub fn parse_counted(
        &mut self,
        text: &str,
        file_name: &str,
        base_dir: &Path,
    ) -> Result<(Config, CacheUse), ConfigError> {
        self.read_completed(Cow::Borrowed(text), file_name, base_dir)
    }

    /// A read of `text` completed with the clusters it reused.
    fn read_completed(
        &mut self,
        text: Cow<'_, str>,
        file_name: &str,
        base_dir: &Path,
    ) -> Result<(Config, CacheUse), ConfigError> {
        let (mut config, usage) = self.read(text, file_name, base_dir)?;
        if self.complete(self.generation, &mut config) {
            return Ok((config, usage));
        }
        // `complete` fails only when the text it keeps (the one just read) does
        // not parse whole, which this parse then says.
        root::parse(&self.text, file_name, base_dir).map(|config| (config, usage))
    }

    /// Reads `text`; the clusters reused are left out of the configuration
    /// (see [`ParseCache::complete`]).
    fn read(
        &mut self,
        text: Cow<'_, str>,
        file_name: &str,
        base_dir: &Path,
    ) -> Result<(Config, CacheUse), ConfigError> {
        let Some(layout) = sections::layout(&text) else {
            let config = root::parse(&text, file_name, base_dir)?;
            self.text = String::new();
            self.context = String::new();
            self.entries = HashMap::default();
            self.order = Vec::new();
            self.dropped = Vec::new();
            self.left_out = None;
            self.generation += 1;
            self.last = LastRead {
                generation: self.generation,
                ..LastRead::default()
            };
            let parsed = config.clusters.len();
            return Ok((config, CacheUse { reused: 0, parsed }));
        };
        let context = context_of(&text, &layout, base_dir);
        let reused = self.reusable(&text, &layout, &context);
        let count = reused.iter().filter(|reused| **reused).count();
        let rest = (count > 0)
            .then(|| self.parse_rest(&text, file_name, base_dir, &layout, &reused))
            .flatten();
        let (config, count, reused) = match rest {
            Some(config) => (config, count, reused),
            // Every refusal and every doubt is answered by the whole file. A
            // refused text is no base for the next read: the entries of the
            // last good one stay.
            None => (
                parse_whole(
                    &text,
                    file_name,
                    base_dir,
                    &layout,
                    self.min_clusters_to_split,
                )?,
                0,
                vec![false; layout.clusters.len()],
            ),
        };
        let usage = CacheUse {
            reused: count,
            parsed: layout.clusters.len() - count,
        };
        let previous = self.generation;
        self.generation += 1;
        self.keep(text, layout, &reused, context, &config);
        self.last = LastRead {
            generation: self.generation,
            compared_with: (count > 0).then_some(previous),
            unchanged: count,
        };
        self.left_out = (count > 0).then(|| LeftOut {
            file_name: file_name.to_owned(),
            base_dir: base_dir.to_path_buf(),
        });
        Ok((config, usage))
    }

    /// The entry of each named cluster, decoded, with its place; `None` if
    /// one is missing or does not decode.
    fn decode_placed<'a>(
        &self,
        places: impl Iterator<Item = (usize, &'a str)>,
    ) -> Option<Vec<(usize, proto::ClusterInformation)>> {
        places
            .map(|(place, name)| {
                let encoded = self.entries.get(name)?.encoded.as_deref()?;
                let information = proto::ClusterInformation::decode(encoded).ok()?;
                Some((place, information))
            })
            .collect()
    }

    /// Whether each cluster of `layout`, in layout order, is one the last
    /// read left and that has not changed since.
    fn reusable(&self, text: &str, layout: &Layout, context: &str) -> Vec<bool> {
        let same_context = context == self.context;
        layout
            .clusters
            .iter()
            .map(|cluster| {
                same_context
                    && self.entries.get(cluster.name(text)).is_some_and(|entry| {
                        entry.encoded.is_some()
                            && cluster.ranges.same_text(text, &entry.ranges, &self.text)
                    })
            })
            .collect()
    }

    /// Parses `text` with the reused clusters blanked out: the configuration
    /// holds the clusters parsed, in file order; `None` on any error or doubt
    /// (a cluster out of place, a route two clusters take).
    fn parse_rest(
        &self,
        text: &str,
        file_name: &str,
        base_dir: &Path,
        layout: &Layout,
        reused: &[bool],
    ) -> Option<Config> {
        let mut reused_text = Vec::new();
        let mut parsed_text = Vec::new();
        for (cluster, &reused) in layout.clusters.iter().zip(reused) {
            if reused {
                reused_text.push(cluster);
            } else {
                parsed_text.push(cluster);
            }
        }
        let config = if parsed_text.len() >= self.min_changed_to_split {
            parts::parse_halves(text, file_name, base_dir, &parsed_text, &reused_text)?
        } else {
            parts::parse_without(text, file_name, base_dir, &reused_text)?
        };
        let mut parsed = config.clusters.iter();
        let mut routes: HashSet<u64, FastHash> =
            HashSet::with_capacity_and_hasher(layout.clusters.len(), FastHash::default());
        for (cluster, &reused) in layout.clusters.iter().zip(reused) {
            if reused {
                // The clusters of the last read took distinct routes.
                routes.extend(self.entries.get(cluster.name(text))?.routes.iter().copied());
            } else if parsed.next()?.cluster.cluster_id != cluster.name(text) {
                return None;
            }
        }
        if parsed.next().is_some() {
            return None;
        }
        for information in &config.clusters {
            for route in route_hashes(information).iter() {
                if !routes.insert(*route) {
                    return None;
                }
            }
        }
        Some(config)
    }

    /// Keeps what this read (number `self.generation`) parsed for the next
    /// one: the clusters `reused` keep their entries, with their new places.
    fn keep(
        &mut self,
        text: Cow<'_, str>,
        layout: Layout,
        reused: &[bool],
        context: String,
        config: &Config,
    ) {
        let named: HashSet<&str> = config
            .backend_names
            .iter()
            .map(|origin| origin.cluster_id.as_str())
            .collect();
        let by_id: HashMap<&str, &proto::ClusterInformation, FastHash> = config
            .clusters
            .iter()
            .map(|cluster| (cluster.cluster.cluster_id.as_str(), cluster))
            .collect();
        let seen = self.generation;
        let mut order = Vec::with_capacity(layout.clusters.len());
        for (cluster, &reused) in layout.clusters.into_iter().zip(reused) {
            if reused {
                if let Some(entry) = self.entries.get_mut(cluster.name(&text)) {
                    entry.ranges = cluster.ranges;
                    entry.seen = seen;
                    order.push((cluster.name, true));
                    continue;
                }
            }
            let name = cluster.name(&text);
            let information = by_id.get(name);
            // Answer files and DNS names are read from outside the file.
            let encoded = information
                .filter(|information| {
                    information.cluster.answers.is_empty() && !named.contains(name)
                })
                .map(|information| information.encode_to_vec());
            let entry = CachedCluster {
                ranges: cluster.ranges,
                encoded,
                routes: information
                    .map_or_else(Default::default, |information| route_hashes(information)),
                seen,
            };
            self.entries.insert(name.to_owned(), entry);
            order.push((cluster.name, false));
        }
        let mut dropped = Vec::new();
        self.entries.retain(|name, entry| {
            let kept = entry.seen == seen;
            if !kept {
                dropped.push(name.clone());
            }
            kept
        });
        self.dropped = dropped;
        self.text = text.into_owned();
        self.context = context;
        self.order = order;
    }
}

/// Parses the whole of `text`, on two threads when it is large.
fn parse_whole(
    text: &str,
    file_name: &str,
    base_dir: &Path,
    layout: &Layout,
    min_clusters_to_split: usize,
) -> Result<Config, ConfigError> {
    match parts::parse_in_halves(text, file_name, base_dir, layout, min_clusters_to_split) {
        Some(config) => Ok(config),
        None => root::parse(text, file_name, base_dir),
    }
}

/// The file's folder and its text outside the clusters' sections.
fn context_of(text: &str, layout: &Layout, base_dir: &Path) -> String {
    let mut context = format!("{}\0", base_dir.display());
    for range in &layout.rest {
        context.push_str(&text[range.clone()]);
        context.push('\0');
    }
    context
}

/// `parsed` in order, with each of `placed` put at its place.
fn interleave(
    parsed: Vec<proto::ClusterInformation>,
    placed: Vec<(usize, proto::ClusterInformation)>,
) -> Vec<proto::ClusterInformation> {
    let mut clusters = Vec::with_capacity(parsed.len() + placed.len());
    let mut parsed = parsed.into_iter();
    for (place, information) in placed {
        while clusters.len() < place {
            match parsed.next() {
                Some(next) => clusters.push(next),
                None => break,
            }
        }
        clusters.push(information);
    }
    clusters.extend(parsed);
    clusters
}

/// A hash of each route the frontends of `information` take, as
/// [`parts::shares_a_route`] tells them apart. Two routes with one hash only
/// cost a whole parse.
fn route_hashes(information: &proto::ClusterInformation) -> Box<[u64]> {
    let http = information.http_frontends.iter().map(|frontend| {
        let mut hasher = DefaultHasher::new();
        (
            "http",
            &frontend.address,
            &frontend.hostname,
            frontend.path.kind,
            &frontend.path.value,
            &frontend.method,
        )
            .hash(&mut hasher);
        hasher.finish()
    });
    let tcp = information.tcp_frontends.iter().map(|frontend| {
        let mut hasher = DefaultHasher::new();
        ("tcp", &frontend.address).hash(&mut hasher);
        hasher.finish()
    });
    http.chain(tcp).collect()
}

#[cfg(test)]
mod tests;
