//! Which listening sockets travel with a request.
//!
//! The main process owns every listening socket; a request that adds a listener
//! (`AddHttpListener`, `AddTcpListener`, TLS or not) carries that listener's socket next to
//! its frame (see [`crate::channel`]'s descriptor contract). A frame carries one descriptor
//! per listener it adds, in the order [`added_listeners`] lists them; both ends use that
//! function, so they always agree on how many descriptors a frame holds.

use crate::proto::{request::RequestType, Request};

/// The addresses of the listeners `request` adds, in order, batches walked depth-first.
pub fn added_listeners(request: &Request) -> Vec<&str> {
    let mut addresses = Vec::new();
    collect(request, &mut addresses);
    addresses
}

fn collect<'a>(request: &'a Request, addresses: &mut Vec<&'a str>) {
    match &request.request_type {
        Some(RequestType::AddHttpListener(listener)) => addresses.push(&listener.address),
        Some(RequestType::AddTcpListener(listener)) => addresses.push(&listener.address),
        Some(RequestType::Batch(batch)) => {
            for inner in &batch.requests {
                collect(inner, addresses);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{self, HttpListener, RequestBatch, TcpListener};

    fn http(address: &str) -> Request {
        Request {
            request_type: Some(RequestType::AddHttpListener(HttpListener {
                address: address.to_owned(),
                ..Default::default()
            })),
        }
    }

    fn tcp(address: &str) -> Request {
        Request {
            request_type: Some(RequestType::AddTcpListener(TcpListener {
                address: address.to_owned(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn nested_batches_list_their_listeners_in_order() {
        let other = Request {
            request_type: Some(RequestType::RemoveCluster("c".to_owned())),
        };
        let inner = Request {
            request_type: Some(RequestType::Batch(RequestBatch {
                requests: vec![tcp("127.0.0.1:2"), other.clone()],
            })),
        };
        let outer = Request {
            request_type: Some(RequestType::Batch(proto::RequestBatch {
                requests: vec![
                    http("127.0.0.1:1"),
                    other.clone(),
                    inner,
                    http("127.0.0.1:3"),
                ],
            })),
        };
        assert_eq!(
            added_listeners(&outer),
            ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        );
        assert!(added_listeners(&other).is_empty());
    }
}
