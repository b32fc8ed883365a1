//! The listening sockets a [`crate::worker::WorkerHarness`] hands to its worker, in the
//! main process's seat: bound when a request adds a listener, listening while active,
//! sent with the request (one per added listener, in order).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use sluice_command::listener_sockets::added_listeners;
use sluice_command::proto::{self, request::RequestType};
use socket2::Socket;

/// The sockets held for the worker, by address.
#[derive(Debug, Default)]
pub struct HarnessSockets {
    held: HashMap<SocketAddr, Socket>,
}

impl HarnessSockets {
    /// Opens what `request` needs and returns the sockets it hands over. An address that
    /// cannot be bound (another process holds it) is sent without a socket, which the
    /// worker refuses.
    pub fn prepare(&mut self, request: &proto::Request) -> Vec<OwnedFd> {
        let mut handed = Vec::new();
        for address in added_listeners(request) {
            let Ok(address) = address.parse::<SocketAddr>() else {
                continue;
            };
            let socket = match self.held.entry(address) {
                Entry::Occupied(held) => held.into_mut(),
                Entry::Vacant(vacant) => match sluice_lib::sys::bind_socket(address) {
                    Ok(socket) => vacant.insert(socket),
                    Err(error) => {
                        log::info!("harness: cannot bind {address}: {error}");
                        continue;
                    }
                },
            };
            let copy = socket
                .as_fd()
                .try_clone_to_owned()
                .expect("duplicate a listening socket");
            handed.push(copy);
        }
        self.follow_activation(request);
        handed
    }

    fn follow_activation(&mut self, request: &proto::Request) {
        match &request.request_type {
            Some(RequestType::Batch(batch)) => {
                for inner in &batch.requests {
                    self.follow_activation(inner);
                }
            }
            Some(RequestType::ActivateListener(activate)) => {
                if let Some(socket) = self.socket_at(&activate.address) {
                    sluice_lib::sys::listen(socket).expect("listen");
                }
            }
            Some(RequestType::DeactivateListener(deactivate)) => {
                if let Some(socket) = self.socket_at(&deactivate.address) {
                    let _ = sluice_lib::sys::stop_listening(socket);
                }
            }
            _ => {}
        }
    }

    fn socket_at(&self, address: &str) -> Option<&Socket> {
        self.held.get(&address.parse().ok()?)
    }
}
