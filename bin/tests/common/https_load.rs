//! HTTPS clients (rustls, from the e2e crate) sending `GET /` until stopped, each request
//! recorded as served or failed. A client either opens a new TLS connection per request
//! (a full handshake, or a resumed one when it keeps tickets) or keeps one connection for
//! many requests; a kept connection that the proxy closed between two requests (closed or
//! reset before any byte of the answer) is reopened and the request sent again, as real
//! clients do, and counted apart.

use std::io::ErrorKind;
use std::net::SocketAddr;

use sluice_e2e::client::ClientError;
use sluice_e2e::tls_client::{client_config, client_config_without_resumption, TlsConn};
use sluice_e2e::HttpIoError;

use super::load_clients::{LoadClients, Tally};

/// How a client connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsStyle {
    /// A new connection and a full handshake per request.
    FullHandshakes,
    /// A new connection per request, resuming the session of an earlier one.
    Resumed,
    /// One connection for many requests.
    KeepAlive,
}

/// Clients sending `GET /` with one host until stopped.
pub(crate) struct HttpsLoad {
    clients: LoadClients<String>,
}

impl HttpsLoad {
    /// One client per entry of `styles` to `listener` with SNI and `Host: host`,
    /// expecting 200 answers whose body starts with `expected`.
    pub(crate) fn start(
        listener: SocketAddr,
        host: &str,
        expected: &str,
        styles: &[TlsStyle],
    ) -> HttpsLoad {
        let clients = styles
            .iter()
            .map(|&style| {
                let config = match style {
                    TlsStyle::FullHandshakes => client_config_without_resumption(false),
                    TlsStyle::Resumed | TlsStyle::KeepAlive => client_config(false),
                };
                let name = host.to_owned();
                Client {
                    style,
                    connect: Box::new(move || TlsConn::connect(listener, &name, &config)),
                    host: host.to_owned(),
                    expected: expected.to_owned(),
                }
            })
            .collect();
        HttpsLoad {
            clients: LoadClients::spawn(clients, Client::run),
        }
    }

    /// Requests served right so far.
    pub(crate) fn served(&self) -> u64 {
        self.clients.served()
    }

    /// Kept connections found closed between two requests and reopened so far.
    pub(crate) fn reconnects(&self) -> u64 {
        self.clients.reconnects()
    }

    /// Waits until at least `count` more requests were served (bounded).
    pub(crate) fn wait_for_more(&self, count: u64) {
        self.clients
            .wait_for_more("the HTTPS load to make progress", count);
    }

    /// Stops the clients; returns (served, failed requests with why).
    pub(crate) fn stop(self) -> (u64, Vec<String>) {
        self.clients.stop()
    }
}

struct Client {
    style: TlsStyle,
    /// A new connection, its handshake done.
    connect: Box<dyn Fn() -> std::io::Result<TlsConn> + Send>,
    host: String,
    expected: String,
}

impl Client {
    fn run(self, tally: Tally<String>) {
        let mut kept: Option<TlsConn> = None;
        while tally.running() {
            match self.one(&mut kept, &tally) {
                Ok(()) => tally.served(),
                Err(why) => tally.failed(format!("{:?} client: {why}", self.style)),
            }
        }
    }

    /// One request; a kept connection stays in `kept` while the proxy keeps it open.
    fn one(&self, kept: &mut Option<TlsConn>, tally: &Tally<String>) -> Result<(), String> {
        if let Some(mut connection) = kept.take() {
            match connection.get(&self.host, "/") {
                Err(error) if closed_before_answer(&error) => tally.reconnected(),
                answer => return self.judge(answer, connection, kept),
            }
        }
        let mut connection =
            (self.connect)().map_err(|error| format!("connect and handshake: {error}"))?;
        let answer = connection.get(&self.host, "/");
        self.judge(answer, connection, kept)
    }

    fn judge(
        &self,
        answer: Result<sluice_e2e::HttpResponse, ClientError>,
        connection: TlsConn,
        kept: &mut Option<TlsConn>,
    ) -> Result<(), String> {
        let response = answer.map_err(|error| format!("request: {error}"))?;
        let body = String::from_utf8_lossy(&response.body);
        if response.status != 200 || !body.starts_with(&self.expected) {
            return Err(format!("answer {} {body:?}", response.status));
        }
        let closing = response
            .header("Connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        if self.style == TlsStyle::KeepAlive && !closing {
            *kept = Some(connection);
        }
        Ok(())
    }
}

/// Whether a request on a reused connection failed before any byte of its answer came
/// because the proxy had closed the connection: nothing of it was processed.
fn closed_before_answer(error: &ClientError) -> bool {
    let closed = |kind: ErrorKind| {
        matches!(
            kind,
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        )
    };
    match error {
        ClientError::ClosedBeforeResponse => true,
        ClientError::Io(error) => closed(error.kind()),
        ClientError::Read(HttpIoError::Io(error)) => closed(error.kind()),
        _ => false,
    }
}
