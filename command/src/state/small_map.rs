//! A map kept as a sorted vector, for the per-cluster maps of the state (a
//! cluster's backends, the frontends that route to it).
//!
//! A cluster has a few backends and frontends, and there may be 10 000
//! clusters: a `BTreeMap` allocates a whole node (room for 11 entries, over
//! a kilobyte for a backend) for the first entry, a sorted vector holds what
//! it holds. Lookups are binary searches; inserts and removals move the
//! entries after them, which is cheap at the sizes a cluster has.

/// Entries sorted by key, each key once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    fn position(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.position(key).ok().map(|at| &self.entries[at].1)
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.position(key).is_ok()
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                if self.entries.len() == self.entries.capacity() {
                    // Grows by half, not double, from exactly one entry: a
                    // cluster of two backends holds two.
                    self.entries.reserve_exact(self.entries.len() / 2 + 1);
                }
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.position(key).ok().map(|at| self.entries.remove(at).1)
    }

    /// Whether the map holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, by key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, by key.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::SmallMap;

    proptest! {
        #[test]
        fn behaves_like_a_btree_map(operations in prop::collection::vec((any::<bool>(), 0u8..16, any::<u32>()), 0..64)) {
            let mut small = SmallMap::default();
            let mut reference = BTreeMap::new();
            for (insert, key, value) in operations {
                if insert {
                    prop_assert_eq!(small.insert(key, value), reference.insert(key, value));
                } else {
                    prop_assert_eq!(small.remove(&key), reference.remove(&key));
                }
                prop_assert_eq!(small.get(&key), reference.get(&key));
                prop_assert_eq!(small.contains_key(&key), reference.contains_key(&key));
            }
            prop_assert!(small.iter().eq(reference.iter()));
            prop_assert_eq!(small.is_empty(), reference.is_empty());
        }
    }
}
