//! The layout of a configuration file by top-level sections: which bytes
//! belong to each `[clusters.NAME…]` table and which to everything else,
//! found by a lexical scan that knows TOML's strings, comments and brackets
//! but builds nothing.
//!
//! The [`cache`](super::cache) reads a reload's file by it, to parse again
//! only the clusters whose text changed. The scan is conservative: a file it
//! cannot split with certainty (a quoted or spaced table name, a root key
//! that could name `clusters`, a string or bracket left open, `[clusters]`
//! itself) has no layout, and is parsed whole.

use std::collections::HashMap;
use std::ops::Range;

/// A file split into the text of each cluster and the text of the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Each cluster's sections, in the order its name first appears.
    pub(crate) clusters: Vec<ClusterText>,
    /// The byte ranges of everything that is not a cluster's section (the
    /// root keys, listeners, certificates, …), in file order.
    pub(crate) rest: Vec<Range<usize>>,
}

/// Every section of one cluster: `[clusters.NAME]`, `[clusters.NAME.x]`,
/// `[[clusters.NAME.backends]]`, …, each from its header line to the next
/// header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterText {
    /// Where the name is written in the first header (a bare key).
    pub(crate) name: Range<usize>,
    /// Its sections, in file order.
    pub(crate) ranges: Ranges,
}

impl ClusterText {
    /// Its name, in the `text` it was found in.
    pub(crate) fn name<'t>(&self, text: &'t str) -> &'t str {
        &text[self.name.clone()]
    }
}

/// The byte ranges of a cluster's sections, in file order, sections that
/// follow each other taken as one: most clusters have one range, which takes
/// no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Ranges {
    first: Range<usize>,
    more: Vec<Range<usize>>,
}

impl Ranges {
    /// Adds the next section, which starts at or after the end of the last.
    fn push(&mut self, range: Range<usize>) {
        let last = self.more.last_mut().unwrap_or(&mut self.first);
        if last.start == last.end {
            *last = range;
        } else if last.end == range.start {
            last.end = range.end;
        } else {
            self.more.push(range);
        }
    }

    /// Every range, in file order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Range<usize>> + '_ {
        std::iter::once(&self.first)
            .chain(&self.more)
            .filter(|range| range.start < range.end)
    }

    /// Whether they hold the same bytes of `text` as `other` of `other_text`.
    pub(crate) fn same_text(&self, text: &str, other: &Ranges, other_text: &str) -> bool {
        self.more.len() == other.more.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(mine, theirs)| text.get(mine.clone()) == other_text.get(theirs.clone()))
    }
}

/// What a header line names.
enum Header<'a> {
    /// A table of cluster `name` (the cluster itself or one of its parts).
    Cluster(&'a str),
    /// Any other table.
    Other,
}

/// The layout of `text`, or `None` when it cannot be told with certainty.
pub(crate) fn layout(text: &str) -> Option<Layout> {
    let bytes = text.as_bytes();
    let mut clusters: Vec<ClusterText> = Vec::new();
    let mut by_name: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut rest = Vec::new();
    // The section being read: where it started and the cluster it belongs to.
    let mut section_start = 0;
    let mut section_cluster: Option<usize> = None;
    let mut in_root = true;
    let mut at = 0;
    let mut close =
        |start: usize, end: usize, cluster: Option<usize>, clusters: &mut Vec<ClusterText>| {
            if start < end {
                match cluster {
                    Some(index) => clusters[index].ranges.push(start..end),
                    None => rest.push(start..end),
                }
            }
        };
    while at < bytes.len() {
        let line_start = at;
        at = skip_blanks(bytes, at);
        match bytes.get(at) {
            None => break,
            Some(b'\n' | b'\r') => at = line_end(bytes, at)?,
            Some(b'#') => at = line_end(bytes, skip_comment(bytes, at)?)?,
            Some(b'[') => {
                let (header, next) = header(bytes, at)?;
                close(section_start, line_start, section_cluster, &mut clusters);
                section_start = line_start;
                in_root = false;
                section_cluster = match header {
                    Header::Other => None,
                    Header::Cluster(name) => Some(*by_name.entry(name).or_insert_with(|| {
                        // `name` is a slice of `text`.
                        let start = name.as_ptr() as usize - text.as_ptr() as usize;
                        clusters.push(ClusterText {
                            name: start..start + name.len(),
                            ranges: Ranges::default(),
                        });
                        clusters.len() - 1
                    })),
                };
                at = next;
            }
            Some(&first) => {
                // A root key could define clusters: `clusters.x = …`, or a quoted
                // name whose escapes TOML resolves.
                if in_root
                    && (first == b'"' || first == b'\'' || bytes[at..].starts_with(b"clusters"))
                {
                    return None;
                }
                at = key_value_line(bytes, at)?;
            }
        }
    }
    close(section_start, bytes.len(), section_cluster, &mut clusters);
    Some(Layout { clusters, rest })
}

/// Past the spaces and tabs at `at`.
fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// The end of the comment at `at`: its line's `\n` (or `\r\n`), or the end of
/// the text; `None` on a control character TOML refuses in a comment, so that
/// nothing is hidden behind one.
fn skip_comment(bytes: &[u8], mut at: usize) -> Option<usize> {
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\n' => return Some(at),
            b'\r' if bytes.get(at + 1) == Some(&b'\n') => return Some(at),
            b'\t' => {}
            0..=0x1f | 0x7f => return None,
            _ => {}
        }
        at += 1;
    }
    Some(at)
}

/// Past the line end at `at`, which must be one (or the end of the text).
fn line_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at) {
        None => Some(at),
        Some(b'\n') => Some(at + 1),
        Some(b'\r') if bytes.get(at + 1) == Some(&b'\n') => Some(at + 2),
        Some(_) => None,
    }
}

/// The header line at `at` (on a `[`) and where the next line starts.
fn header(bytes: &[u8], at: usize) -> Option<(Header<'_>, usize)> {
    let double = bytes.get(at + 1) == Some(&b'[');
    let open = if double { 2 } else { 1 };
    let start = at + open;
    let end = start + bytes[start..].iter().position(|&b| b == b']')?;
    if double && bytes.get(end + 1) != Some(&b']') {
        return None;
    }
    let content = std::str::from_utf8(&bytes[start..end]).ok()?;
    let mut parts = content
        .split('.')
        .map(|part| part.trim_matches([' ', '\t']));
    let first = parts.next()?;
    let mut names = Vec::new();
    for part in std::iter::once(first).chain(parts) {
        let bare = !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !bare {
            return None;
        }
        names.push(part);
    }
    let mut after = skip_blanks(bytes, end + open);
    if bytes.get(after) == Some(&b'#') {
        after = skip_comment(bytes, after)?;
    }
    let next = line_end(bytes, after)?;
    let header = match names.as_slice() {
        ["clusters"] => return None,
        ["clusters", name, ..] => Header::Cluster(name),
        _ => Header::Other,
    };
    Some((header, next))
}

/// Past a `key = value` line (and the lines its value spans) at `at`: strings,
/// comments and brackets are followed so that a `[` inside them is not taken
/// for a header. `None` when something is left open or looks wrong.
fn key_value_line(bytes: &[u8], mut at: usize) -> Option<usize> {
    let mut depth: usize = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\n' | b'\r' if depth == 0 => return line_end(bytes, at),
            b'"' | b'\'' => at = string(bytes, at)?,
            b'#' => at = skip_comment(bytes, at)?,
            b'[' | b'{' => {
                depth += 1;
                at += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            _ => at += 1,
        }
    }
    (depth == 0).then_some(at)
}

/// Past the string that opens at `at`, of any of TOML's four kinds.
fn string(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = bytes[at];
    let escapes = quote == b'"';
    let triple = bytes.get(at + 1) == Some(&quote) && bytes.get(at + 2) == Some(&quote);
    if !triple {
        // `""` is an empty string; one line otherwise.
        let mut i = at + 1;
        loop {
            match *bytes.get(i)? {
                b'\\' if escapes => i += 2,
                b'\n' | b'\r' => return None,
                byte if byte == quote => return Some(i + 1),
                _ => i += 1,
            }
        }
    }
    let mut i = at + 3;
    loop {
        match *bytes.get(i)? {
            b'\\' if escapes => i += 2,
            byte if byte == quote
                && bytes.get(i + 1) == Some(&quote)
                && bytes.get(i + 2) == Some(&quote) =>
            {
                // Up to two more quotes belong to the content.
                let mut end = i + 3;
                for _ in 0..2 {
                    if bytes.get(end) == Some(&quote) {
                        end += 1;
                    }
                }
                return Some(end);
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests;
