//! Operating-system specifics of the worker, behind one documented contract.
//!
//! This module must provide:
//! - [`bind_socket`] and [`start_listening`]: a non-blocking TCP socket with `SO_REUSEADDR`
//!   and `SO_REUSEPORT` set, so that every worker binds the same address and the kernel
//!   spreads new connections over the ones listening; binding holds the address (and reports
//!   it in use) before the worker accepts anything;
//! - [`configure_stream`]: per-connection options (`TCP_NODELAY`: a proxy forwards what it has
//!   at once, batching is the peers' business).
//!
//! Everything here is safe Rust over `socket2`; no `unsafe` is needed.

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of listening sockets: large enough for bursts of new connections.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds a non-blocking socket on `address` with `SO_REUSEADDR` and `SO_REUSEPORT`, not
/// yet listening: it holds the address without receiving connections.
pub fn bind_socket(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

/// Starts listening on a socket from [`bind_socket`]: from now on the kernel spreads new
/// connections to this address over every listening socket of the group.
pub fn start_listening(socket: Socket) -> io::Result<TcpListener> {
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds and listens on `address` in one step.
pub fn bind_listener(address: SocketAddr) -> io::Result<TcpListener> {
    start_listening(bind_socket(address)?)
}

/// Applies the options every proxied connection gets.
pub fn configure_stream(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_one_address() {
        let first = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = first.local_addr().unwrap();
        let second = bind_listener(address).unwrap();
        assert_eq!(second.local_addr().unwrap(), address);
    }
}
