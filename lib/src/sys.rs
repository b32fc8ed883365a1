//! Operating-system specifics of the worker, behind one documented contract.
//!
//! This module must provide:
//! - [`bind_socket`], [`listen`], [`stop_listening`]: the listening sockets, which the main
//!   process binds once and hands to every worker. `SO_REUSEADDR` is set (a restart binds
//!   while old connections are in `TIME_WAIT`); `SO_REUSEPORT` is not: one socket, one
//!   accept queue shared by every worker, so a worker that dies leaves no queue of its own
//!   behind to be reset, and a second instance on the same address fails to bind instead of
//!   silently taking part of the traffic. Binding holds the address (and reports it in use)
//!   before anything is accepted; [`stop_listening`] resets the queue and keeps the address;
//! - [`adopt_listener`]: a worker's view of a socket it was given;
//! - [`raise_fd_limit`]: the soft limit of open files raised to the hard limit (a proxy
//!   needs one or two descriptors per connection);
//! - [`configure_stream`]: per-connection options (`TCP_NODELAY`: a proxy forwards what it has
//!   at once, batching is the peers' business);
//! - [`outlive_parent`]: a draining worker outlives a main process that handed over to a
//!   new one;
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

/// Binds a non-blocking socket on `address` with `SO_REUSEADDR`, not yet listening: it
/// holds the address without receiving connections.
pub fn bind_socket(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

/// Starts (or resumes) listening on a socket from [`bind_socket`]; every process holding it
/// shares its one accept queue.
pub fn listen(socket: &Socket) -> io::Result<()> {
    socket.listen(LISTEN_BACKLOG)
}

/// Stops listening: connections waiting in the queue are reset, new ones refused; the
/// socket keeps its address (bound to an explicit port) and [`listen`] resumes (Linux
/// disconnects a listening socket shut down for reading).
pub fn stop_listening(socket: &Socket) -> io::Result<()> {
    socket.shutdown(std::net::Shutdown::Read)
}

/// A socket handed over by the main process, ready to be registered with a poll.
pub fn adopt_listener(socket: Socket) -> io::Result<TcpListener> {
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
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

/// Lets this process go on when its parent dies: clears the death signal the main process
/// asked for when it spawned the worker (Linux `PR_SET_PDEATHSIG`).
pub fn outlive_parent() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG and a plain integer argument only changes this
    // process's own death signal; no memory is passed.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Caps the C allocator's arenas at `arenas` (glibc's `M_ARENA_MAX`; elsewhere, does
/// nothing). Each thread that allocates otherwise may get an arena of its own, whose
/// free pages stay with it: in a process whose threads take turns (main's command,
/// reload and indexing threads), a few arenas hold as much as many.
pub fn limit_allocator_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two plain integers and only changes the allocator's settings.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Makes the C allocator give large blocks back to the system as soon as they are freed
/// (glibc's `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD`; elsewhere, does nothing): blocks
/// of `mmap_threshold` bytes or more get pages of their own, and free memory at the top
/// of a heap past `trim_threshold` bytes is returned on free. glibc otherwise raises both
/// thresholds after each large block it frees, up to tens of megabytes, and the free top
/// of a thread's heap stays resident: in main, a 10 000-cluster reload or metrics
/// collection left tens of megabytes behind that way.
pub fn release_large_allocations_promptly(mmap_threshold: i32, trim_threshold: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two plain integers and only changes the allocator's settings.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim_threshold);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (mmap_threshold, trim_threshold);
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
    fn a_second_bind_on_a_bound_address_fails() {
        let first = bind_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        listen(&first).unwrap();
        let address = first.local_addr().unwrap().as_socket().unwrap();
        let error = bind_socket(address).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
    }

    #[test]
    fn a_socket_stopped_refuses_then_listens_again_on_its_address() {
        // An explicit port, as listeners have: a socket bound to port 0 gives its port up
        // when it stops listening.
        let probe = bind_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = probe.local_addr().unwrap().as_socket().unwrap();
        drop(probe);
        let socket = bind_socket(address).unwrap();
        listen(&socket).unwrap();
        std::net::TcpStream::connect(address).expect("listening");
        stop_listening(&socket).unwrap();
        assert!(std::net::TcpStream::connect(address).is_err(), "stopped");
        listen(&socket).unwrap();
        std::net::TcpStream::connect(address).expect("listening again");
    }
}
