//! What each backend host name resolves to, when it is looked up next, and
//! whether it stopped resolving: the bookkeeping of the refreshes, without I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::resolver::Lookup;

/// Shortest time between two lookups of a name, whatever its TTL says.
const MIN_REFRESH: Duration = Duration::from_millis(100);

/// One name's resolution.
#[derive(Debug, Clone)]
pub(crate) struct NameEntry {
    /// Its addresses from the last lookup that answered, `None` if none ever did.
    pub(crate) addresses: Option<Vec<IpAddr>>,
    /// The error of the last lookup, while the name does not resolve.
    pub(crate) error: Option<String>,
    /// Lookups that failed since the start.
    pub(crate) failures: u64,
    /// When it is looked up again.
    pub(crate) next_lookup: Instant,
}

/// What a lookup changed for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Same addresses as before.
    Unchanged,
    /// Other addresses than before (or the first ones).
    Changed,
    /// The name stopped resolving: its last addresses stay.
    StoppedResolving(String),
    /// Still not resolving.
    StillFailing,
    /// It resolves again; `changed` if to other addresses.
    Recovered {
        /// Whether its addresses differ from the last ones.
        changed: bool,
    },
}

/// Every name in use, by name.
#[derive(Debug, Default, Clone)]
pub(crate) struct NameTable {
    names: BTreeMap<String, NameEntry>,
}

impl NameTable {
    /// The entry of `name`, if it is known.
    pub(crate) fn get(&self, name: &str) -> Option<&NameEntry> {
        self.names.get(name)
    }

    /// Every entry, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &NameEntry)> + '_ {
        self.names.iter()
    }

    /// The last addresses of `name` (none if it never resolved).
    pub(crate) fn addresses(&self, name: &str) -> &[IpAddr] {
        self.names
            .get(name)
            .and_then(|entry| entry.addresses.as_deref())
            .unwrap_or(&[])
    }

    /// Whether `name` resolved at least once.
    pub(crate) fn ever_resolved(&self, name: &str) -> bool {
        self.names
            .get(name)
            .is_some_and(|entry| entry.addresses.is_some())
    }

    /// Records a lookup of `name` made at `now`, and schedules the next one after
    /// `refresh`, or at the answer's expiry if sooner.
    pub(crate) fn record(
        &mut self,
        name: &str,
        lookup: Lookup,
        now: Instant,
        refresh: Duration,
    ) -> Outcome {
        let entry = self.entry(name, now);
        match lookup {
            Ok(answer) => {
                let ttl = answer.valid_until.saturating_duration_since(now);
                entry.next_lookup = now + refresh.min(ttl).max(MIN_REFRESH);
                let changed = entry.addresses.as_ref() != Some(&answer.addresses);
                entry.addresses = Some(answer.addresses);
                match entry.error.take() {
                    Some(_) => Outcome::Recovered { changed },
                    None if changed => Outcome::Changed,
                    None => Outcome::Unchanged,
                }
            }
            Err(error) => {
                entry.next_lookup = now + refresh.max(MIN_REFRESH);
                entry.failures += 1;
                match entry.error.replace(error.clone()) {
                    Some(_) => Outcome::StillFailing,
                    None => Outcome::StoppedResolving(error),
                }
            }
        }
    }

    /// The names whose next lookup is due at `now`.
    pub(crate) fn due(&self, now: Instant) -> Vec<String> {
        self.names
            .iter()
            .filter(|(_, entry)| entry.next_lookup <= now)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// When the next lookup is due, if any name is known.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.names.values().map(|entry| entry.next_lookup).min()
    }

    /// Adds `name`, unknown so far, to be looked up at `now`.
    pub(crate) fn ensure(&mut self, name: &str, now: Instant) {
        self.entry(name, now);
    }

    /// The entry of `name`, made (to be looked up at `now`) if it is new.
    fn entry(&mut self, name: &str, now: Instant) -> &mut NameEntry {
        self.names
            .entry(name.to_owned())
            .or_insert_with(|| NameEntry {
                addresses: None,
                error: None,
                failures: 0,
                next_lookup: now,
            })
    }

    /// Forgets the names `used` says are no longer used.
    pub(crate) fn retain(&mut self, used: impl Fn(&str) -> bool) {
        self.names.retain(|name, _| used(name));
    }
}

#[cfg(test)]
mod tests {
    use super::super::resolver::Answer;
    use super::*;

    fn answer(addresses: &[&str], ttl: Duration, now: Instant) -> Lookup {
        Ok(Answer {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            valid_until: now + ttl,
        })
    }

    #[test]
    fn refreshes_at_the_ttl_when_shorter_than_the_refresh() {
        let mut names = NameTable::default();
        let now = Instant::now();
        let refresh = Duration::from_secs(5);
        let first = names.record(
            "a",
            answer(&["10.0.0.1"], Duration::from_secs(2), now),
            now,
            refresh,
        );
        assert_eq!(first, Outcome::Changed);
        assert_eq!(names.next_due(), Some(now + Duration::from_secs(2)));
        names.record(
            "a",
            answer(&["10.0.0.1"], Duration::from_secs(60), now),
            now,
            refresh,
        );
        assert_eq!(names.next_due(), Some(now + refresh));
        assert!(names.due(now + Duration::from_secs(4)).is_empty());
        assert_eq!(names.due(now + refresh), vec!["a".to_owned()]);
    }

    #[test]
    fn a_name_that_stops_resolving_keeps_its_addresses() {
        let mut names = NameTable::default();
        let now = Instant::now();
        let refresh = Duration::from_secs(1);
        names.record(
            "a",
            answer(&["10.0.0.1", "10.0.0.2"], refresh, now),
            now,
            refresh,
        );
        let failed = names.record("a", Err("timeout".into()), now, refresh);
        assert_eq!(failed, Outcome::StoppedResolving("timeout".into()));
        assert_eq!(names.addresses("a").len(), 2);
        assert_eq!(
            names.record("a", Err("timeout".into()), now, refresh),
            Outcome::StillFailing
        );
        assert_eq!(names.get("a").unwrap().failures, 2);
        let back = names.record(
            "a",
            answer(&["10.0.0.1", "10.0.0.2"], refresh, now),
            now,
            refresh,
        );
        assert_eq!(back, Outcome::Recovered { changed: false });
        assert_eq!(
            names.record("a", answer(&["10.0.0.3"], refresh, now), now, refresh),
            Outcome::Changed
        );
    }

    #[test]
    fn a_name_that_never_resolved_has_no_addresses() {
        let mut names = NameTable::default();
        let now = Instant::now();
        names.record("a", Err("NXDOMAIN".into()), now, Duration::from_secs(1));
        assert!(!names.ever_resolved("a"));
        assert!(names.addresses("a").is_empty());
        names.retain(|_| false);
        assert!(names.get("a").is_none());
        names.ensure("a", now);
        assert!(!names.ever_resolved("a"));
        assert_eq!(names.due(now), vec!["a".to_owned()]);
    }
}
