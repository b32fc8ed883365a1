//! Idle backend connections a worker keeps for reuse, per backend (what HAProxy's
//! `http-reuse safe` and nginx's upstream `keepalive` do).
//!
//! An HTTP session that ends while its backend connection is idle and reusable leaves the
//! connection here instead of closing it; a later request for the same backend takes the
//! newest one (LIFO: the most recently used connection is the least likely to have been
//! closed by the backend, and surplus ones age and expire). Each backend keeps at most
//! `max_per_backend` (its oldest is evicted), the worker at most `max_total`. Entries are
//! keyed by a slab key, which the connection's state (`ConnectionState::Idle`) holds, so
//! that an event on a kept connection (any byte or EOF means the backend dropped it) finds
//! it.
//!
//! The structure is generic over the connection so that it is tested without sockets; the
//! loop's side is in `reuse.rs`.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use slab::Slab;

/// Kept connections of all backends.
#[derive(Debug)]
pub(crate) struct IdlePool<C> {
    entries: Slab<Entry<C>>,
    /// Keys of each backend's connections, oldest first.
    stacks: HashMap<usize, VecDeque<usize>>,
    max_per_backend: usize,
    max_total: usize,
}

#[derive(Debug)]
struct Entry<C> {
    owner: usize,
    deadline: Instant,
    connection: C,
}

/// Where [`IdlePool::insert`] put a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Inserted<C> {
    /// The connection's key in the pool.
    pub(crate) key: usize,
    /// The backend's oldest connection, pushed out to stay within the bound.
    pub(crate) evicted: Option<C>,
}

impl<C> IdlePool<C> {
    /// An empty pool keeping `max_per_backend` connections per backend and `max_total`
    /// in all.
    pub(crate) fn new(max_per_backend: usize, max_total: usize) -> Self {
        IdlePool {
            entries: Slab::new(),
            stacks: HashMap::new(),
            max_per_backend,
            max_total,
        }
    }

    /// Connections kept now.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps `connection` of backend `owner` until `deadline`. Gives the connection back
    /// when it cannot be kept (no room at all).
    pub(crate) fn insert(
        &mut self,
        owner: usize,
        connection: C,
        deadline: Instant,
    ) -> Result<Inserted<C>, C> {
        if self.max_per_backend == 0 {
            return Err(connection);
        }
        let stack = self.stacks.entry(owner).or_default();
        let evicted = if stack.len() >= self.max_per_backend {
            stack
                .pop_front()
                .map(|key| self.entries.remove(key).connection)
        } else {
            None
        };
        if self.entries.len() >= self.max_total {
            if stack.is_empty() {
                self.stacks.remove(&owner);
            }
            return Err(connection);
        }
        let key = self.entries.insert(Entry {
            owner,
            deadline,
            connection,
        });
        stack.push_back(key);
        Ok(Inserted { key, evicted })
    }

    /// Takes the newest connection of backend `owner`, with the key it had.
    pub(crate) fn take(&mut self, owner: usize) -> Option<(usize, C)> {
        let stack = self.stacks.get_mut(&owner)?;
        let key = stack.pop_back();
        if stack.is_empty() {
            self.stacks.remove(&owner);
        }
        let key = key?;
        Some((key, self.entries.remove(key).connection))
    }

    /// The connection under `key`, if kept.
    #[cfg(test)]
    pub(crate) fn get(&self, key: usize) -> Option<&C> {
        self.entries.get(key).map(|entry| &entry.connection)
    }

    /// Takes the connection under `key` out (its backend dropped it).
    pub(crate) fn remove(&mut self, key: usize) -> Option<C> {
        let owner = self.entries.get(key)?.owner;
        self.forget_key(owner, key);
        Some(self.entries.remove(key).connection)
    }

    /// Takes out every connection whose deadline passed at `now` into `expired`; returns
    /// the earliest deadline of those left.
    pub(crate) fn remove_expired(&mut self, now: Instant, expired: &mut Vec<C>) -> Option<Instant> {
        self.remove_where(|entry| entry.deadline <= now, expired);
        self.entries.iter().map(|(_, entry)| entry.deadline).min()
    }

    /// Takes out every connection `condemned` says must go (a removed backend's).
    pub(crate) fn remove_if(&mut self, mut condemned: impl FnMut(&C) -> bool, out: &mut Vec<C>) {
        self.remove_where(|entry| condemned(&entry.connection), out);
    }

    fn remove_where(&mut self, mut condemned: impl FnMut(&Entry<C>) -> bool, out: &mut Vec<C>) {
        let keys: Vec<usize> = self
            .entries
            .iter()
            .filter(|(_, entry)| condemned(entry))
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            if let Some(connection) = self.remove(key) {
                out.push(connection);
            }
        }
    }

    fn forget_key(&mut self, owner: usize, key: usize) {
        if let Some(stack) = self.stacks.get_mut(&owner) {
            stack.retain(|&k| k != key);
            if stack.is_empty() {
                self.stacks.remove(&owner);
            }
        }
    }

    /// Panics when the slab and the stacks disagree (tests).
    #[cfg(test)]
    fn check_invariants(&self) {
        let listed: usize = self.stacks.values().map(VecDeque::len).sum();
        assert_eq!(listed, self.entries.len(), "every entry listed once");
        for (owner, stack) in &self.stacks {
            assert!(!stack.is_empty() && stack.len() <= self.max_per_backend);
            for key in stack {
                assert_eq!(self.entries[*key].owner, *owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pool() -> (IdlePool<&'static str>, Instant) {
        (IdlePool::new(2, 3), Instant::now())
    }

    #[test]
    fn connections_are_taken_newest_first_per_backend() {
        let (mut pool, now) = pool();
        let a = pool.insert(1, "a", now).unwrap().key;
        pool.insert(2, "x", now).unwrap();
        let b = pool.insert(1, "b", now).unwrap().key;
        assert_eq!(pool.take(1), Some((b, "b")));
        assert_eq!(pool.take(1), Some((a, "a")));
        assert_eq!(pool.take(1), None);
        assert_eq!(pool.take(3), None);
        assert_eq!(pool.take(2).map(|(_, c)| c), Some("x"));
        assert_eq!(pool.len(), 0);
        pool.check_invariants();
    }

    #[test]
    fn each_backend_and_the_whole_pool_are_bounded() {
        let (mut pool, now) = pool();
        pool.insert(1, "a", now).unwrap();
        pool.insert(1, "b", now).unwrap();
        let third = pool.insert(1, "c", now).unwrap();
        assert_eq!(third.evicted, Some("a"), "the oldest goes");
        pool.insert(2, "x", now).unwrap();
        assert_eq!(pool.insert(3, "y", now), Err("y"), "the pool is full");
        // A full backend still swaps its oldest for the new one.
        assert_eq!(pool.insert(1, "d", now).unwrap().evicted, Some("b"));
        assert_eq!(pool.len(), 3);
        pool.check_invariants();
        assert_eq!(IdlePool::new(0, 10).insert(1, "a", now), Err("a"));
    }

    #[test]
    fn expired_and_dropped_connections_leave() {
        let (mut pool, now) = pool();
        let second = Duration::from_secs(1);
        pool.insert(1, "old", now).unwrap();
        let young = pool.insert(1, "young", now + 3 * second).unwrap().key;
        let other = pool.insert(2, "x", now + 2 * second).unwrap().key;
        let mut expired = Vec::new();
        let next = pool.remove_expired(now + second, &mut expired);
        assert_eq!(expired, ["old"]);
        assert_eq!(next, Some(now + 2 * second));
        assert_eq!(pool.get(other), Some(&"x"));
        assert_eq!(pool.remove(other), Some("x"));
        assert_eq!(pool.remove(other), None);
        assert_eq!(pool.get(young), Some(&"young"));
        pool.check_invariants();
        expired.clear();
        assert_eq!(pool.remove_expired(now + 3 * second, &mut expired), None);
        assert_eq!(expired, ["young"]);
        pool.check_invariants();
    }

    #[test]
    fn a_removed_backend_loses_all_its_connections() {
        let (mut pool, now) = pool();
        pool.insert(1, "a1", now).unwrap();
        pool.insert(2, "b1", now).unwrap();
        pool.insert(1, "a2", now).unwrap();
        let mut closed = Vec::new();
        pool.remove_if(|c| c.starts_with('a'), &mut closed);
        closed.sort();
        assert_eq!(closed, ["a1", "a2"]);
        assert_eq!(pool.take(1), None);
        assert_eq!(pool.take(2).map(|(_, c)| c), Some("b1"));
        pool.check_invariants();
    }
}
