//! The worker's listening sockets: the main process binds each one and hands it over with
//! the request that adds its listener (the worker never binds); registered with the poll
//! only while active, paused when the worker is full. Main starts and stops the listening
//! itself, so deactivating here only stops this worker's accepting.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use mio::net::TcpListener;
use mio::{Interest, Registry};
use slab::Slab;
use socket2::Socket;
use thiserror::Error;

use super::session::SessionTimeouts;
use super::tokens::{listener_token, MAX_LISTENERS};
use crate::sys;

/// Why a listener operation failed.
#[derive(Debug, Error)]
pub enum ListenerError {
    /// The request adding the listener came without its socket.
    #[error("no socket was handed over for the listener on {0}")]
    NoSocket(SocketAddr),
    /// Listening or registering with the poll failed.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// No listener has this address.
    #[error("no listener on {0}")]
    Unknown(SocketAddr),
    /// A listener already has this address.
    #[error("a listener already exists on {0}")]
    Duplicate(SocketAddr),
    /// The worker holds as many listeners as it can.
    #[error("too many listeners")]
    TooMany,
}

/// Which protocol a listener's sessions speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerKind {
    Http,
    Tcp,
}

/// One listening address.
#[derive(Debug)]
pub(crate) struct ListenerEntry {
    pub(crate) address: SocketAddr,
    pub(crate) kind: ListenerKind,
    pub(crate) timeouts: SessionTimeouts,
    /// Each connection starts with a PROXY protocol header (sent by a load balancer in
    /// front) that names the real client.
    pub(crate) expect_proxy: bool,
    /// The socket main handed over; `None` once closed for good (soft stop).
    pub(crate) listener: Option<TcpListener>,
    /// Accepting (activated and not deactivated since).
    active: bool,
    /// Registered with the poll (active and not paused).
    registered: bool,
}

/// Every listener of the worker.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    entries: Slab<ListenerEntry>,
    by_address: HashMap<SocketAddr, usize>,
    paused: bool,
    /// Sockets for listeners the current request adds: handed over with it, or released by
    /// a removal earlier in it (an undo adds them back). Emptied after each request.
    spare: HashMap<SocketAddr, Socket>,
}

impl Listeners {
    /// Keeps a socket handed over for the listener on `address`, for the next [`Listeners::add`].
    pub(crate) fn hand_over(&mut self, address: SocketAddr, socket: OwnedFd) {
        self.spare.insert(address, Socket::from(socket));
    }

    /// Closes the sockets the last request brought or released and no listener took.
    pub(crate) fn drop_spare_sockets(&mut self) {
        self.spare.clear();
    }

    /// Adopts the socket handed over for `address` (not yet accepting).
    pub(crate) fn add(
        &mut self,
        address: SocketAddr,
        kind: ListenerKind,
        timeouts: SessionTimeouts,
        expect_proxy: bool,
    ) -> Result<(), ListenerError> {
        if self.by_address.contains_key(&address) {
            return Err(ListenerError::Duplicate(address));
        }
        if self.entries.len() >= MAX_LISTENERS {
            return Err(ListenerError::TooMany);
        }
        let socket = self
            .spare
            .remove(&address)
            .ok_or(ListenerError::NoSocket(address))?;
        let listener = sys::adopt_listener(socket)
            .map_err(|source| ListenerError::Listen { address, source })?;
        let key = self.entries.insert(ListenerEntry {
            address,
            kind,
            timeouts,
            expect_proxy,
            listener: Some(listener),
            active: false,
            registered: false,
        });
        self.by_address.insert(address, key);
        Ok(())
    }

    /// Changes the settings of the listener on `address` in place: it keeps its socket
    /// (bound or listening), and sessions accepted from now on take the new settings.
    pub(crate) fn update(
        &mut self,
        address: SocketAddr,
        kind: ListenerKind,
        timeouts: SessionTimeouts,
        expect_proxy: bool,
    ) -> Result<(), ListenerError> {
        let key = *self
            .by_address
            .get(&address)
            .ok_or(ListenerError::Unknown(address))?;
        let entry = &mut self.entries[key];
        if entry.kind != kind {
            return Err(ListenerError::Unknown(address));
        }
        entry.timeouts = timeouts;
        entry.expect_proxy = expect_proxy;
        Ok(())
    }

    /// Forgets the listener on `address` (its sessions go on); its socket is closed after
    /// the current request, unless an undo adds the listener back.
    pub(crate) fn remove(
        &mut self,
        address: SocketAddr,
        registry: &Registry,
    ) -> Result<(), ListenerError> {
        let key = self
            .by_address
            .remove(&address)
            .ok_or(ListenerError::Unknown(address))?;
        let mut entry = self.entries.remove(key);
        deregister(&mut entry, registry);
        if let Some(listener) = entry.listener.take() {
            let socket = Socket::from(OwnedFd::from(listener));
            self.spare.insert(address, socket);
        }
        Ok(())
    }

    /// Starts accepting on `address` (main made the socket listen).
    pub(crate) fn activate(
        &mut self,
        address: SocketAddr,
        registry: &Registry,
    ) -> Result<(), ListenerError> {
        let key = *self
            .by_address
            .get(&address)
            .ok_or(ListenerError::Unknown(address))?;
        let entry = &mut self.entries[key];
        entry.active = true;
        if !self.paused {
            register(key, entry, registry)
                .map_err(|source| ListenerError::Listen { address, source })?;
        }
        Ok(())
    }

    /// Stops accepting on `address`; the socket stays, and main stops its listening.
    pub(crate) fn deactivate(
        &mut self,
        address: SocketAddr,
        registry: &Registry,
    ) -> Result<(), ListenerError> {
        let key = *self
            .by_address
            .get(&address)
            .ok_or(ListenerError::Unknown(address))?;
        let entry = &mut self.entries[key];
        entry.active = false;
        deregister(entry, registry);
        Ok(())
    }

    /// Stops accepting everywhere, for good (soft stop).
    pub(crate) fn close_all(&mut self, registry: &Registry) {
        for (_, entry) in self.entries.iter_mut() {
            deregister(entry, registry);
            entry.listener = None;
            entry.active = false;
        }
    }

    /// Pauses (the worker is full) or resumes accepting on every active listener.
    pub(crate) fn set_paused(&mut self, paused: bool, registry: &Registry) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        for (key, entry) in self.entries.iter_mut() {
            if paused {
                deregister(entry, registry);
            } else if let Err(error) = register(key, entry, registry) {
                log::error!("cannot resume accepting on {}: {error}", entry.address);
            }
        }
    }

    /// True while accepting is paused because the worker is full.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// The listener behind a token's key.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut ListenerEntry> {
        self.entries.get_mut(key)
    }
}

fn register(key: usize, entry: &mut ListenerEntry, registry: &Registry) -> io::Result<()> {
    if entry.registered || !entry.active {
        return Ok(());
    }
    if let Some(listener) = entry.listener.as_mut() {
        registry.register(listener, listener_token(key), Interest::READABLE)?;
        entry.registered = true;
    }
    Ok(())
}

fn deregister(entry: &mut ListenerEntry, registry: &Registry) {
    if !entry.registered {
        return;
    }
    if let Some(listener) = entry.listener.as_mut() {
        if let Err(error) = registry.deregister(listener) {
            log::warn!("cannot deregister listener {}: {error}", entry.address);
        }
    }
    entry.registered = false;
}
