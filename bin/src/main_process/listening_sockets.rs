//! The listening sockets, owned by the main process.
//!
//! Main binds each listener's address once, makes it listen while the listener is active,
//! and hands the socket to every worker with the request that adds the listener (see
//! `sluice_command::listener_sockets`); workers never bind. All workers accept from the one
//! queue of each socket, so a worker that dies or is retired leaves no queue behind to be
//! reset, and an upgrade hands the same sockets to the new processes.
//!
//! The sockets follow main's state declaratively: [`ListeningSockets::open_for`] binds and
//! starts listening on what the state holds before the workers hear of a change;
//! [`ListeningSockets::close_beyond`] closes or stops what the state no longer holds (or no
//! longer holds active) once they applied it, or once a refused change was rolled back. A
//! listener whose settings change keeps its socket; one removed and added again in the same
//! change (another protocol) keeps it too.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use log::{info, warn};
use sluice_command::listener_sockets::added_listeners;
use sluice_command::proto::Request;
use sluice_command::state::ConfigState;
use sluice_lib::sys;
use socket2::Socket;

/// Why a listening socket could not be opened or handed over.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// The address could not be bound: another process (a second instance?) holds it,
    /// or it is not local.
    #[error("cannot bind {address}: {source}")]
    Bind {
        /// The listener's address.
        address: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The bound socket could not listen.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The listener's address.
        address: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// A request adds a listener main holds no socket for.
    #[error("no listening socket for {0}")]
    Missing(String),
    /// Duplicating a socket to send it failed.
    #[error("cannot duplicate the socket of {address}: {source}")]
    Duplicate {
        /// The listener's address.
        address: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// One socket and whether it listens.
#[derive(Debug)]
struct Held {
    socket: Socket,
    listening: bool,
}

/// Every listening socket, by address.
#[derive(Debug, Default)]
pub(crate) struct ListeningSockets {
    held: HashMap<SocketAddr, Held>,
}

impl ListeningSockets {
    /// Binds every listener of `state` that has no socket yet and makes the active ones
    /// listen. On an error, what this call opened is closed again.
    pub(crate) fn open_for(&mut self, state: &ConfigState) -> Result<(), SocketError> {
        let mut opened = Vec::new();
        let result = self.open_each(state, &mut opened);
        if result.is_err() {
            for address in opened {
                self.held.remove(&address);
            }
        }
        result
    }

    fn open_each(
        &mut self,
        state: &ConfigState,
        opened: &mut Vec<SocketAddr>,
    ) -> Result<(), SocketError> {
        for &address in state.listeners().keys() {
            let held = match self.held.entry(address) {
                Entry::Occupied(held) => held.into_mut(),
                Entry::Vacant(vacant) => {
                    let socket = sys::bind_socket(address)
                        .map_err(|source| SocketError::Bind { address, source })?;
                    opened.push(address);
                    vacant.insert(Held {
                        socket,
                        listening: false,
                    })
                }
            };
            if state.is_active(&address) && !held.listening {
                sys::listen(&held.socket)
                    .map_err(|source| SocketError::Listen { address, source })?;
                held.listening = true;
            }
        }
        Ok(())
    }

    /// Closes the sockets of listeners `state` no longer holds, and stops listening on
    /// those it holds inactive.
    pub(crate) fn close_beyond(&mut self, state: &ConfigState) {
        self.held.retain(|address, held| {
            if !state.listeners().contains_key(address) {
                info!("listening socket {address} closed");
                return false;
            }
            if held.listening && !state.is_active(address) {
                if let Err(error) = sys::stop_listening(&held.socket) {
                    warn!("cannot stop listening on {address}: {error}");
                }
                held.listening = false;
            }
            true
        });
    }

    /// Copies of the sockets `requests` hand over, one per listener they add, in order.
    pub(crate) fn handed_over_by(&self, requests: &[Request]) -> Result<Vec<OwnedFd>, SocketError> {
        self.handed_over_at(requests.iter().flat_map(added_listeners))
    }

    /// Copies of the sockets of the listeners at `addresses`, in order.
    pub(crate) fn handed_over_at<'a>(
        &self,
        addresses: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<OwnedFd>, SocketError> {
        addresses
            .into_iter()
            .map(|address| {
                let held = address
                    .parse()
                    .ok()
                    .and_then(|parsed: SocketAddr| self.held.get(&parsed))
                    .ok_or_else(|| SocketError::Missing(address.to_owned()))?;
                held.socket
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|source| SocketError::Duplicate {
                        address: address.to_owned(),
                        source,
                    })
            })
            .collect()
    }

    /// Every socket with its address and whether it listens (handed to a new main).
    pub(crate) fn all(&self) -> impl Iterator<Item = (SocketAddr, &Socket, bool)> + '_ {
        self.held
            .iter()
            .map(|(address, held)| (*address, &held.socket, held.listening))
    }

    /// Takes `socket`, handed over by the main process this one replaces, for `address`.
    pub(crate) fn adopt(&mut self, address: SocketAddr, socket: Socket, listening: bool) {
        self.held.insert(address, Held { socket, listening });
    }
}
