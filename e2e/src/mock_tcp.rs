//! TCP mock backends: an echo server, and a named echo server that first
//! writes its name so a test can see which backend a proxy chose.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::mock_server::MockServer;

/// Read buffer of each echo connection: large, so that the benchmark
/// measures the proxy, not the mock.
const ECHO_BUFFER: usize = 256 * 1024;

/// A thread-per-connection echo server on 127.0.0.1. `stop()` closes its
/// listener and all its connections; `restart()` listens again on the same
/// port; `connections_accepted()` / `active_connections()` count.
pub struct TcpEchoServer {
    server: MockServer,
}

impl TcpEchoServer {
    /// Starts echoing on `addr`.
    pub fn start(addr: SocketAddr) -> io::Result<Self> {
        Self::start_with_greeting(addr, None)
    }

    fn start_with_greeting(addr: SocketAddr, greeting: Option<Vec<u8>>) -> io::Result<Self> {
        let handler = Arc::new(move |stream: TcpStream| {
            // The peer going away or the server stopping ends the echo; both
            // are normal for a mock.
            let _ = echo(stream, greeting.as_deref());
        });
        Ok(Self {
            server: MockServer::start(addr, handler)?,
        })
    }
}

impl Deref for TcpEchoServer {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl DerefMut for TcpEchoServer {
    fn deref_mut(&mut self) -> &mut MockServer {
        &mut self.server
    }
}

/// An echo server that writes its name (the bytes of `name`, nothing else)
/// as soon as a connection is accepted, then echoes.
pub struct TcpNamedServer {
    name: String,
    server: TcpEchoServer,
}

impl TcpNamedServer {
    /// Starts on `addr`, greeting each connection with `name`.
    pub fn start(addr: SocketAddr, name: &str) -> io::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            server: TcpEchoServer::start_with_greeting(addr, Some(name.as_bytes().to_vec()))?,
        })
    }

    /// The name it greets with.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Deref for TcpNamedServer {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl DerefMut for TcpNamedServer {
    fn deref_mut(&mut self) -> &mut MockServer {
        &mut self.server
    }
}

fn echo(mut stream: TcpStream, greeting: Option<&[u8]>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(greeting) = greeting {
        stream.write_all(greeting)?;
    }
    let mut buffer = vec![0; ECHO_BUFFER];
    loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            // Half-close: pass the client's FIN on so it sees the end.
            return stream.shutdown(std::net::Shutdown::Write);
        }
        stream.write_all(&buffer[..n])?;
    }
}
