//! A thread-per-connection TCP server that can be stopped (closing its
//! listener and every open connection) and restarted on the same address:
//! the common core of the TCP and HTTP mock backends, usable on its own with
//! a custom connection handler.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use socket2::{Domain, SockRef, Socket, Type};

/// Pending connections the kernel may queue: high enough for the
/// connection-rate benchmark's bursts.
const LISTEN_BACKLOG: i32 = 1024;

/// What serves one accepted connection, on its own thread, until the peer
/// closes or the server is stopped (its socket is then shut down, so blocking
/// reads return 0 and writes fail).
pub type ConnectionHandler = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// Locks a mutex, ignoring poisoning: a panicking handler thread must not
/// make every later assertion of the test panic too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct Shared {
    accepted: AtomicUsize,
    active: AtomicUsize,
    next_connection_id: AtomicU64,
    /// A clone of every open connection, to shut them down on stop.
    open: Mutex<HashMap<u64, TcpStream>>,
    handlers: Mutex<Vec<JoinHandle<()>>>,
}

/// The listener of a running server and its accept thread.
struct Running {
    listener: TcpListener,
    accept_thread: JoinHandle<()>,
}

/// A generic mock server; see the module documentation.
pub struct MockServer {
    addr: SocketAddr,
    handler: ConnectionHandler,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl MockServer {
    /// Binds `addr` (with `SO_REUSEADDR`, so a restart right after a stop
    /// works) and starts accepting.
    pub fn start(addr: SocketAddr, handler: ConnectionHandler) -> io::Result<Self> {
        let mut server = Self {
            addr,
            handler,
            shared: Arc::default(),
            running: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it is currently listening.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Connections accepted since the first start (restarts included).
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections whose handler is still running.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Starts listening again on the same address after [`MockServer::stop`];
    /// does nothing when already running.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = bind_reusable(self.addr)?;
        let accept_thread = {
            let listener = listener.try_clone()?;
            let shared = Arc::clone(&self.shared);
            let handler = Arc::clone(&self.handler);
            thread::Builder::new()
                .name(format!("mock-accept-{}", self.addr))
                .spawn(move || accept_loop(&listener, &shared, &handler))?
        };
        self.running = Some(Running {
            listener,
            accept_thread,
        });
        Ok(())
    }

    /// Closes the listener and every open connection, and waits for all the
    /// server's threads to end. Connecting to the address is then refused.
    pub fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        // Shutting a listening socket down wakes a thread blocked in accept
        // (EINVAL on Linux), which then leaves its loop.
        let _ = SockRef::from(&running.listener).shutdown(Shutdown::Both);
        let _ = running.accept_thread.join();
        drop(running.listener);
        for stream in lock(&self.shared.open).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let handlers = std::mem::take(&mut *lock(&self.shared.handlers));
        for handle in handlers {
            let _ = handle.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind_reusable(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, handler: &ConnectionHandler) {
    // Any error here is the shutdown done by `stop` (or a fatal listener
    // error): either way this listener is finished.
    while let Ok((stream, peer)) = listener.accept() {
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.active.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_connection_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).insert(id, clone);
        }
        let spawned = {
            let shared = Arc::clone(shared);
            let handler = Arc::clone(handler);
            thread::Builder::new()
                .name(format!("mock-conn-{peer}"))
                .spawn(move || {
                    handler(stream);
                    lock(&shared.open).remove(&id);
                    shared.active.fetch_sub(1, Ordering::SeqCst);
                })
        };
        let mut handlers = lock(&shared.handlers);
        handlers.retain(|handle| !handle.is_finished());
        match spawned {
            Ok(handle) => handlers.push(handle),
            Err(e) => {
                log::warn!("mock server cannot spawn a connection thread: {e}");
                lock(&shared.open).remove(&id);
                shared.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
