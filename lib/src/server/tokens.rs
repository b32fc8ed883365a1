//! How mio tokens map to what they stand for.
//!
//! Token 0 is the command channel; listeners have the range `1..PROBE_BASE`; health-check
//! probes `PROBE_BASE..POOL_BASE`; idle backend connections kept for reuse
//! `POOL_BASE..SESSION_BASE` (see [`super::idle_pool`]); each session key `k` has two
//! tokens from `SESSION_BASE`, one per side. Unknown tokens are ignored.

use mio::Token;

/// The command channel's token.
pub(crate) const CHANNEL: Token = Token(0);
const LISTENER_BASE: usize = 1;
/// First token of health-check probes (see [`crate::health_check`]).
pub(crate) const PROBE_BASE: usize = crate::health_check::PROBE_BASE;
const POOL_BASE: usize = 1 << 20;
const SESSION_BASE: usize = 1 << 21;
/// Most idle backend connections one worker can keep (one token each).
pub(crate) const MAX_POOLED: usize = SESSION_BASE - POOL_BASE;

/// Which socket of a session an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client's connection.
    Front,
    /// The connection to the backend.
    Back,
}

/// What a token designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Channel,
    Listener(usize),
    Probe(usize),
    /// An idle backend connection kept for reuse.
    Pooled(usize),
    Session(usize, Side),
}

/// The token of listener `key`.
pub(crate) fn listener_token(key: usize) -> Token {
    Token(LISTENER_BASE + key)
}

/// The token of kept idle connection `key`.
pub(crate) fn pooled_token(key: usize) -> Token {
    Token(POOL_BASE + key)
}

/// The token of one side of session `key`.
pub(crate) fn session_token(key: usize, side: Side) -> Token {
    let offset = match side {
        Side::Front => 0,
        Side::Back => 1,
    };
    Token(SESSION_BASE + key * 2 + offset)
}

/// Decodes a token.
pub(crate) fn target(token: Token) -> Target {
    match token.0 {
        0 => Target::Channel,
        n if n < PROBE_BASE => Target::Listener(n - LISTENER_BASE),
        n if n < POOL_BASE => Target::Probe(n - PROBE_BASE),
        n if n < SESSION_BASE => Target::Pooled(n - POOL_BASE),
        n => {
            let index = n - SESSION_BASE;
            let side = if index % 2 == 0 {
                Side::Front
            } else {
                Side::Back
            };
            Target::Session(index / 2, side)
        }
    }
}

/// Most listeners one worker can hold.
pub(crate) const MAX_LISTENERS: usize = PROBE_BASE - LISTENER_BASE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(target(CHANNEL), Target::Channel);
        assert_eq!(target(listener_token(0)), Target::Listener(0));
        assert_eq!(target(listener_token(41)), Target::Listener(41));
        assert_eq!(target(Token(PROBE_BASE + 3)), Target::Probe(3));
        assert_eq!(
            target(Token(PROBE_BASE + crate::health_check::MAX_PROBES - 1)),
            Target::Probe(crate::health_check::MAX_PROBES - 1)
        );
        assert_eq!(target(pooled_token(0)), Target::Pooled(0));
        assert_eq!(
            target(pooled_token(MAX_POOLED - 1)),
            Target::Pooled(MAX_POOLED - 1)
        );
        for key in [0, 1, 7, 100_000] {
            for side in [Side::Front, Side::Back] {
                assert_eq!(target(session_token(key, side)), Target::Session(key, side));
            }
        }
    }
}
