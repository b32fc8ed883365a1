//! `sluice-e2e` holds the end-to-end test infrastructure of Sluice: tests
//! that start the real `sluice` binary and talk to it over real sockets on
//! 127.0.0.1, and the load benchmark (`src/bin/bench.rs`).
//!
//! It gives tests:
//! - a port registry ([`ports`]) and deadline-bounded waits ([`wait`]);
//! - child processes that are killed on drop and keep their logs
//!   ([`process`]), and the path of the built binary ([`binary`]);
//! - mock backends: TCP echo / named ([`mock_tcp`]), a scriptable HTTP/1.1
//!   server ([`mock_http`]), both stoppable and restartable on their port,
//!   on a shared thread-per-connection core ([`mock_server`]);
//! - a test DNS server answering the names a test sets ([`dns_server`]);
//! - raw HTTP clients ([`client`]) and blocking TCP clients ([`tcp_client`]);
//! - configurations of thousands of clusters ([`scale`]);
//! - a real etcd server on free ports ([`etcd`]).
//!
//! Everything here may panic on setup failures: it runs inside tests, where
//! a panic with a clear message is the failure report.
#![deny(unsafe_code)]

pub mod binary;
pub mod client;
pub mod dns_server;
pub mod etcd;
mod http_io;
pub mod listening;
pub mod mock_http;
pub mod mock_server;
pub mod mock_tcp;
pub mod ports;
pub mod process;
pub mod relay;
pub mod requests;
pub mod scale;
mod sys;
pub mod tcp_client;
pub mod tls;
pub mod tls_client;
pub mod wait;
pub mod worker;

pub use binary::{fastest_sluice_binary, sluice_binary};
pub use client::{http_get, parse_responses, raw_exchange, HttpConn, HttpResponse};
pub use dns_server::TestDnsServer;
pub use etcd::Etcd;
pub use http_io::HttpIoError;
pub use mock_http::{MockHttpServer, MockRequest, MockResponse};
pub use mock_server::MockServer;
pub use mock_tcp::{TcpEchoServer, TcpNamedServer};
pub use ports::{free_addr, free_port};
pub use process::ChildGuard;
pub use relay::TcpRelay;
pub use sluice_lib::sys::raise_fd_limit;
pub use sys::clock_ticks_per_second;
pub use wait::{wait_for_port, wait_for_port_closed, wait_until};
pub use worker::WorkerHarness;
