//! Mock backends on several loopback addresses (127.0.0.N, all of them on Linux) and one
//! port, so that what a DNS name answers is all a test needs to change.

use std::net::{IpAddr, SocketAddr};

use sluice_e2e::{free_port, MockHttpServer};

/// The loopback address 127.0.0.`last`.
pub(crate) fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Mock backends named `dns-N` on 127.0.0.N for each N of `lasts`, all on one port.
pub(crate) fn loopback_mocks(lasts: &[u8]) -> (u16, Vec<MockHttpServer>) {
    for _ in 0..10 {
        let port = free_port();
        let started: Result<Vec<_>, _> = lasts
            .iter()
            .map(|last| {
                MockHttpServer::start(
                    SocketAddr::new(loopback(*last), port),
                    &format!("dns-{last}"),
                )
            })
            .collect();
        if let Ok(servers) = started {
            return (port, servers);
        }
    }
    panic!("no port free on every loopback address");
}
