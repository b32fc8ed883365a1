//! A TCP relay that can cut one client off its server: everything accepted on
//! its own port is copied to and from a target; [`TcpRelay::cut`] closes every
//! relayed connection and turns new ones away until [`TcpRelay::restore`].
//! Tests use it to take one Sluice instance away from etcd while the others
//! keep talking to it.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::ports::free_addr;

/// How often the accepting thread looks for a stop.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    stop: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
}

/// A running relay; stopped on drop.
pub struct TcpRelay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: Option<thread::JoinHandle<()>>,
}

impl TcpRelay {
    /// Relays a free port of 127.0.0.1 to `target`.
    pub fn start(target: SocketAddr) -> io::Result<TcpRelay> {
        let listener = TcpListener::bind(free_addr())?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(&listener, target, &shared))
        };
        Ok(TcpRelay {
            addr,
            shared,
            accepting: Some(accepting),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        let mut connections = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for stream in connections.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, target: SocketAddr, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(_) => continue,
        };
        if shared.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(target) else {
            continue;
        };
        if relay(client, server, shared).is_err() {
            continue;
        }
    }
}

/// Copies both ways on two threads; both sockets are remembered so `cut` can close them.
fn relay(client: TcpStream, server: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut connections = shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.push(client.try_clone()?);
        connections.push(server.try_clone()?);
    }
    let (mut client_read, mut server_write) = (client.try_clone()?, server.try_clone()?);
    let (mut server_read, mut client_write) = (server, client);
    thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    thread::spawn(move || {
        let _ = io::copy(&mut server_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    });
    Ok(())
}
