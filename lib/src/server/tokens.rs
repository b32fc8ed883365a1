//! How mio tokens map to what they stand for.
//!
//! Token 0 is the command channel; listeners have the range `1..PROBE_BASE`; health-check
//! probes `PROBE_BASE..BACKEND_BASE`; backend connections `BACKEND_BASE..SESSION_BASE`, one
//! token each for their whole life (in use by a session or idle in the pool: moving
//! between the two costs no system call); each session key `k` has the token
//! `SESSION_BASE + k` for its client connection. Unknown tokens are ignored.

use mio::Token;

/// The command channel's token.
pub(crate) const CHANNEL: Token = Token(0);
const LISTENER_BASE: usize = 1;
/// First token of health-check probes (see [`crate::health_check`]).
pub(crate) const PROBE_BASE: usize = crate::health_check::PROBE_BASE;
const BACKEND_BASE: usize = 1 << 20;
const SESSION_BASE: usize = 1 << 21;
/// Most backend connections one worker can hold (one token each).
pub(crate) const MAX_BACKEND_CONNECTIONS: usize = SESSION_BASE - BACKEND_BASE;

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
    /// A backend connection, by its key.
    Backend(usize),
    /// A session's client connection, by the session's key.
    Session(usize),
}

/// The token of listener `key`.
pub(crate) fn listener_token(key: usize) -> Token {
    Token(LISTENER_BASE + key)
}

/// The token of backend connection `key`.
pub(crate) fn backend_token(key: usize) -> Token {
    Token(BACKEND_BASE + key)
}

/// The token of session `key`'s client connection.
pub(crate) fn session_token(key: usize) -> Token {
    Token(SESSION_BASE + key)
}

/// Decodes a token.
pub(crate) fn target(token: Token) -> Target {
    match token.0 {
        0 => Target::Channel,
        n if n < PROBE_BASE => Target::Listener(n - LISTENER_BASE),
        n if n < BACKEND_BASE => Target::Probe(n - PROBE_BASE),
        n if n < SESSION_BASE => Target::Backend(n - BACKEND_BASE),
        n => Target::Session(n - SESSION_BASE),
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
        assert_eq!(target(backend_token(0)), Target::Backend(0));
        assert_eq!(
            target(backend_token(MAX_BACKEND_CONNECTIONS - 1)),
            Target::Backend(MAX_BACKEND_CONNECTIONS - 1)
        );
        for key in [0, 1, 7, 100_000] {
            assert_eq!(target(session_token(key)), Target::Session(key));
        }
    }
}
