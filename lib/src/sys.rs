//! Operating-system specifics of the worker, behind one documented contract.
//!
//! This module must provide:
//! - [`bind_socket`] and [`start_listening`]: a non-blocking TCP socket with `SO_REUSEADDR`
//!   and `SO_REUSEPORT` set, so that every worker binds the same address and the kernel
//!   spreads new connections over the ones listening; binding holds the address (and reports
//!   it in use) before the worker accepts anything;
//! - [`raise_fd_limit`]: the soft limit of open files raised to the hard limit (a proxy
//!   needs one or two descriptors per connection);
//! - [`configure_stream`]: per-connection options (`TCP_NODELAY`: a proxy forwards what it has
//!   at once, batching is the peers' business);
//! - [`release_free_memory`]: hands the allocator's free memory back to the system after a
//!   large transient use (parsing a big configuration, applying a whole state), so that the
//!   resident size is what the process holds, not its peak.
//!
//! Sockets go through `socket2`; the file limit and the memory release are the `unsafe`
//! calls, each with its reason.

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

/// Raises the soft limit of open files (`RLIMIT_NOFILE`) to the hard limit; processes
/// spawned afterwards inherit it. Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit only reads the initialized struct passed by pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// Returns the free memory of the C allocator's heap to the system (glibc's `malloc_trim`),
/// where the allocator keeps it after a large transient use; elsewhere, does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer and only reorganizes the allocator's free
    // lists; it touches no memory that is allocated.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fd_limit_is_raised_to_the_hard_limit() {
        let soft = raise_fd_limit().unwrap();
        assert!(soft >= 1024, "{soft}");
        assert_eq!(raise_fd_limit().unwrap(), soft);
    }

    #[test]
    fn two_listeners_share_one_address() {
        let first = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = first.local_addr().unwrap();
        let second = bind_listener(address).unwrap();
        assert_eq!(second.local_addr().unwrap(), address);
    }
}
