//! Who or what ended an HTTP exchange, for the access log and passive checks.

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The backend's response was forwarded whole.
    Complete,
    /// The backend switched protocols (`101`): the connection became a byte pipe.
    Upgraded,
    /// The client closed (or reset) before the exchange was over.
    ClientAbort,
    /// The client was too slow: its request (`408`) or its reading timed out.
    ClientTimeout,
    /// The backend did not answer in time (`504`, or a response cut by the timeout).
    BackendTimeout,
    /// No connection to a backend could be made (`502`/`503` before any response).
    ConnectFailed,
    /// The backend connection broke (reset, error, or a response that could not be
    /// read).
    BackendError,
    /// Sluice answered the request itself (`400`, `403`, `404`, `413`, `503`…).
    Answered,
}

impl Termination {
    /// Its name in the access log: `complete`, `client_abort`…
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::Complete => "complete",
            Termination::Upgraded => "upgraded",
            Termination::ClientAbort => "client_abort",
            Termination::ClientTimeout => "client_timeout",
            Termination::BackendTimeout => "backend_timeout",
            Termination::ConnectFailed => "connect_failed",
            Termination::BackendError => "backend_error",
            Termination::Answered => "answered",
        }
    }

    /// The backend did its part: its response went through whole.
    pub fn is_normal(self) -> bool {
        matches!(self, Termination::Complete | Termination::Upgraded)
    }

    /// The termination of an answer Sluice sent itself with `status`; `connected`
    /// says whether a backend connection was made for the request.
    pub(crate) fn of_answer(status: u16, connected: bool) -> Termination {
        match status {
            408 => Termination::ClientTimeout,
            504 => Termination::BackendTimeout,
            502 if connected => Termination::BackendError,
            502 => Termination::ConnectFailed,
            _ => Termination::Answered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_say_whose_fault_it_was() {
        assert_eq!(
            Termination::of_answer(408, false),
            Termination::ClientTimeout
        );
        assert_eq!(
            Termination::of_answer(504, true),
            Termination::BackendTimeout
        );
        assert_eq!(Termination::of_answer(502, true), Termination::BackendError);
        assert_eq!(
            Termination::of_answer(502, false),
            Termination::ConnectFailed
        );
        assert_eq!(Termination::of_answer(404, false), Termination::Answered);
        assert!(Termination::Complete.is_normal() && !Termination::ClientAbort.is_normal());
        assert_eq!(Termination::ClientAbort.as_str(), "client_abort");
    }
}
