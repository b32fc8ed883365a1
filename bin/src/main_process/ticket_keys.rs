//! TLS session ticket keys: main generates them and hands them to every worker, so that a
//! client resumes its session on whichever worker accepts its next connection.
//!
//! Each key is 32 random bytes. A new key is made every [`ROTATION_PERIOD`] (12 hours);
//! the previous key stays, so that a ticket issued just before a rotation still resumes
//! for one more period. Workers get `SetTicketKeys` (newest key first) before anything
//! else when they are spawned or respawned, and again after each rotation.
//!
//! `sluice ctl upgrade` hands the keys, with the current one's age, to the new main
//! process ([`handover_file`]): sessions resumed before the upgrade resume after it, and
//! the rotation keeps its schedule.

pub(crate) mod handover_file;

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use sluice_command::proto::{self, request::RequestType, Request};

use super::{lock, MainProcess, WORKER_ANSWER_TIMEOUT};

/// How often a new ticket key is made (documented in the README).
pub(crate) const ROTATION_PERIOD: Duration = Duration::from_secs(12 * 60 * 60);

/// Bytes of one key.
pub(crate) const KEY_LEN: usize = 32;

/// One ticket key.
pub(crate) type TicketKey = [u8; KEY_LEN];

/// The current key, the previous one, and when the current one was made.
pub(crate) struct TicketKeys {
    current: TicketKey,
    previous: Option<TicketKey>,
    made_at: Instant,
}

impl TicketKeys {
    /// A first key, made at `now`.
    pub(crate) fn new(now: Instant, random: impl FnOnce() -> TicketKey) -> TicketKeys {
        TicketKeys {
            current: random(),
            previous: None,
            made_at: now,
        }
    }

    /// When the next rotation is due.
    pub(crate) fn next_rotation(&self) -> Instant {
        self.made_at + ROTATION_PERIOD
    }

    /// Makes a new key if the current one is [`ROTATION_PERIOD`] old at `now`, keeping the
    /// current one as the previous; says whether it did.
    pub(crate) fn rotate_if_due(
        &mut self,
        now: Instant,
        random: impl FnOnce() -> TicketKey,
    ) -> bool {
        if now < self.next_rotation() {
            return false;
        }
        self.previous = Some(self.current);
        self.current = random();
        self.made_at = now;
        true
    }

    /// The keys, newest first: the first encrypts new tickets, all decrypt.
    pub(crate) fn keys(&self) -> Vec<TicketKey> {
        std::iter::once(self.current).chain(self.previous).collect()
    }

    /// The request that hands them to a worker.
    pub(crate) fn request(&self) -> Request {
        Request {
            request_type: Some(RequestType::SetTicketKeys(proto::SetTicketKeys {
                keys: self.keys().iter().map(|key| key.to_vec()).collect(),
            })),
        }
    }
}

/// Shows when the keys were made, never the keys.
impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("previous", &self.previous.is_some())
            .field("made_at", &self.made_at)
            .finish_non_exhaustive()
    }
}

/// 32 bytes from the operating system's random source.
pub(crate) fn random_key() -> TicketKey {
    let mut key = [0u8; KEY_LEN];
    if let Err(error) = getrandom::getrandom(&mut key) {
        // The OS random source does not fail on Linux once booted; a process that cannot
        // make a secret key must not make a guessable one.
        panic!("cannot read random bytes for a TLS ticket key: {error}");
    }
    key
}

/// Rotates the keys every [`ROTATION_PERIOD`] and sends them to every worker, until main
/// stops (the thread ends with the process).
pub(crate) fn spawn_rotation(main: Arc<MainProcess>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ticket-keys".to_owned())
        .spawn(move || loop {
            let due = lock(&main.ticket_keys).next_rotation();
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let request = {
                let mut keys = lock(&main.ticket_keys);
                if !keys.rotate_if_due(Instant::now(), random_key) {
                    continue;
                }
                keys.request()
            };
            info!("TLS ticket keys rotated");
            for outcome in main.workers.broadcast(&request, WORKER_ANSWER_TIMEOUT) {
                if let Some(reason) = outcome.failure() {
                    warn!(
                        "worker {}: ticket keys not taken: {reason}",
                        outcome.worker_id
                    );
                }
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys 1, 2, 3… in turn.
    fn counter() -> impl FnMut() -> TicketKey {
        let mut next = 0u8;
        move || {
            next += 1;
            [next; KEY_LEN]
        }
    }

    #[test]
    fn keys_rotate_every_period_keeping_the_previous_one() {
        let start = Instant::now();
        let mut random = counter();
        let mut keys = TicketKeys::new(start, &mut random);
        assert_eq!(keys.keys(), vec![[1; KEY_LEN]]);
        assert_eq!(keys.next_rotation(), start + ROTATION_PERIOD);

        let almost = start + ROTATION_PERIOD - Duration::from_secs(1);
        assert!(!keys.rotate_if_due(almost, &mut random));
        assert_eq!(keys.keys(), vec![[1; KEY_LEN]]);

        let due = start + ROTATION_PERIOD;
        assert!(keys.rotate_if_due(due, &mut random));
        assert_eq!(keys.keys(), vec![[2; KEY_LEN], [1; KEY_LEN]]);
        assert_eq!(keys.next_rotation(), due + ROTATION_PERIOD);

        // Late: the period counts from the rotation, and only one previous key stays.
        let late = due + ROTATION_PERIOD + Duration::from_secs(3600);
        assert!(keys.rotate_if_due(late, &mut random));
        assert_eq!(keys.keys(), vec![[3; KEY_LEN], [2; KEY_LEN]]);
        assert_eq!(keys.next_rotation(), late + ROTATION_PERIOD);
    }

    #[test]
    fn the_request_carries_the_newest_key_first() {
        let start = Instant::now();
        let mut random = counter();
        let mut keys = TicketKeys::new(start, &mut random);
        keys.rotate_if_due(start + ROTATION_PERIOD, &mut random);
        let Some(RequestType::SetTicketKeys(set)) = keys.request().request_type else {
            panic!("a SetTicketKeys request");
        };
        assert_eq!(set.keys, vec![vec![2; KEY_LEN], vec![1; KEY_LEN]]);
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key(), random_key());
    }
}
