//! `cluster list --filter PATTERN --limit N --offset N`: which clusters a listing
//! shows, decided from ids and hostnames alone, so that a page of a 10 000-cluster
//! state copies only the clusters on the page.

use super::{ConfigState, FrontendRef};
use crate::proto;

/// A pattern on cluster ids and hostnames: a glob when it holds `*` or `?`, else a
/// substring; ASCII case is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterPattern {
    /// Matches text that contains it.
    Substring(String),
    /// Matches whole text: `*` any run of characters, `?` exactly one.
    Glob(Vec<char>),
}

impl ClusterPattern {
    /// The pattern `text` writes.
    pub fn new(text: &str) -> ClusterPattern {
        let lower = text.to_ascii_lowercase();
        if lower.contains(['*', '?']) {
            ClusterPattern::Glob(lower.chars().collect())
        } else {
            ClusterPattern::Substring(lower)
        }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        match self {
            ClusterPattern::Substring(part) => lower.contains(part.as_str()),
            ClusterPattern::Glob(glob) => {
                let text: Vec<char> = lower.chars().collect();
                glob_matches(glob, &text)
            }
        }
    }
}

/// Iterative glob matching with one backtrack point: linear in practice, never
/// exponential.
fn glob_matches(glob: &[char], text: &[char]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || (glob[g] != '*' && glob[g] == text[t])) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((star_g, star_t)) = star {
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

impl ConfigState {
    /// Whether the cluster's id or the hostname of a frontend routing to it matches.
    fn cluster_matches(&self, cluster_id: &str, pattern: &ClusterPattern) -> bool {
        pattern.matches(cluster_id)
            || self
                .cluster_users
                .get(cluster_id)
                .into_iter()
                .flat_map(|users| users.keys())
                .any(
                    |user| matches!(user, FrontendRef::Http(key) if pattern.matches(&key.hostname)),
                )
    }

    /// The page of clusters, in id order, that `query`'s pattern, offset and limit
    /// select, and how many matched in all. Only the clusters on the page are copied.
    pub(super) fn cluster_page(&self, query: &proto::QueryClusters) -> proto::ClusterList {
        let pattern = query.pattern.as_deref().map(ClusterPattern::new);
        let offset = query.offset.unwrap_or(0) as usize;
        let limit = query.limit.map_or(usize::MAX, |limit| limit as usize);
        let mut matched = 0u32;
        let mut clusters = Vec::new();
        for cluster_id in self.clusters.keys() {
            if let Some(pattern) = &pattern {
                if !self.cluster_matches(cluster_id, pattern) {
                    continue;
                }
            }
            let position = matched as usize;
            matched = matched.saturating_add(1);
            if position >= offset && clusters.len() < limit {
                clusters.extend(self.cluster_information(cluster_id));
            }
        }
        proto::ClusterList {
            clusters,
            matched: Some(matched),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_without_wildcards_is_a_substring_ignoring_case() {
        let pattern = ClusterPattern::new("Shop");
        assert!(pattern.matches("eshop-eu"));
        assert!(pattern.matches("SHOP"));
        assert!(!pattern.matches("shp"));
    }

    #[test]
    fn globs_match_whole_text() {
        let pattern = ClusterPattern::new("c1?.scale.*");
        assert!(pattern.matches("c12.scale.test"));
        assert!(!pattern.matches("c1.scale.test"));
        assert!(!pattern.matches("xc12.scale.test"));
        assert!(ClusterPattern::new("*api*").matches("v2.api.example.com"));
        assert!(ClusterPattern::new("a*b*c").matches("aXbYbZc"));
        assert!(!ClusterPattern::new("a*b*c").matches("aXbYbZ"));
        assert!(ClusterPattern::new("*").matches(""));
    }
}
