//! Session tickets sealed with keys the main process hands to every worker, so that a
//! client resumes on any worker (TLS 1.2 tickets and TLS 1.3 resumption alike).
//!
//! A ticket is `key id (4 bytes) | nonce (12 bytes) | AES-256-GCM(state) | tag`, the key
//! id being the first four bytes of the SHA-256 of the key: the first key seals, every
//! key opens the tickets it sealed. A worker that was given no keys seals with a random
//! key of its own.

use rustls::server::ProducesTickets;

use super::{crypto, TlsError};
use crypto::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use crypto::rand::{SecureRandom, SystemRandom};

/// How long a client may keep a ticket, in seconds: one rotation period of the keys
/// (the previous key still opens tickets for that long).
const TICKET_LIFETIME_SECONDS: u32 = 12 * 3600;
const KEY_ID_LEN: usize = 4;
/// Size of a ticket key.
pub(crate) const TICKET_KEY_LEN: usize = 32;

/// The ticket keys of the worker: the first seals, all open.
pub(crate) struct TicketKeys {
    keys: Vec<([u8; KEY_ID_LEN], LessSafeKey)>,
    random: SystemRandom,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TicketKeys {
    /// Keys from the main process, each 32 bytes.
    pub(crate) fn new(keys: &[Vec<u8>]) -> Result<Self, TlsError> {
        let mut loaded = Vec::with_capacity(keys.len());
        for key in keys {
            if key.len() != TICKET_KEY_LEN {
                return Err(TlsError::TicketKeySize(key.len()));
            }
            let digest = crypto::digest::digest(&crypto::digest::SHA256, key);
            let mut id = [0; KEY_ID_LEN];
            id.copy_from_slice(&digest.as_ref()[..KEY_ID_LEN]);
            let unbound = UnboundKey::new(&AES_256_GCM, key)
                .map_err(|_| TlsError::TicketKeySize(key.len()))?;
            loaded.push((id, LessSafeKey::new(unbound)));
        }
        Ok(TicketKeys {
            keys: loaded,
            random: SystemRandom::new(),
        })
    }

    /// One random key of this worker's own (until the main process sends some).
    pub(crate) fn random() -> Self {
        let mut key = [0u8; TICKET_KEY_LEN];
        // Without randomness no ticket can be sealed: `encrypt` then refuses to issue any.
        let keys = if SystemRandom::new().fill(&mut key).is_ok() {
            vec![key.to_vec()]
        } else {
            Vec::new()
        };
        Self::new(&keys).unwrap_or(TicketKeys {
            keys: Vec::new(),
            random: SystemRandom::new(),
        })
    }
}

impl ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECONDS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (id, key) = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut ticket =
            Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        ticket.extend_from_slice(id);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id),
                &mut ticket[KEY_ID_LEN + NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < KEY_ID_LEN + NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (id, rest) = ticket.split_at(KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let (_, key) = self.keys.iter().find(|(key_id, _)| key_id == id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut plain = sealed.to_vec();
        let opened = key.open_in_place(nonce, Aad::from(id), &mut plain).ok()?;
        let len = opened.len();
        plain.truncate(len);
        Some(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_with_the_keys_that_sealed_it_even_once_rotated() {
        let old = TicketKeys::new(&[vec![1; 32]]).expect("keys");
        let ticket = old.encrypt(b"session state").expect("sealed");
        let rotated = TicketKeys::new(&[vec![2; 32], vec![1; 32]]).expect("keys");
        assert_eq!(
            rotated.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..])
        );
        let fresh = rotated.encrypt(b"again").expect("sealed");
        assert!(
            old.decrypt(&fresh).is_none(),
            "the old set lacks the new key"
        );
        let other = TicketKeys::new(&[vec![3; 32]]).expect("keys");
        assert!(other.decrypt(&ticket).is_none());
    }

    #[test]
    fn tampered_truncated_and_short_tickets_are_refused() {
        let keys = TicketKeys::new(&[vec![7; 32]]).expect("keys");
        let mut ticket = keys.encrypt(b"state").expect("sealed");
        for cut in 0..ticket.len() {
            assert!(keys.decrypt(&ticket[..cut]).is_none());
        }
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert!(keys.decrypt(&ticket).is_none());
        assert!(matches!(
            TicketKeys::new(&[vec![0; 16]]),
            Err(TlsError::TicketKeySize(16))
        ));
        assert!(TicketKeys::random().enabled());
    }
}
