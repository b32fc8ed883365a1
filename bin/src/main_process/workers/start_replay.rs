//! The state a start replays to each of its workers, generated and encoded once: at
//! 10 000 clusters, generating the requests and encoding them is tens of milliseconds
//! that every worker of a start would otherwise spend again, one after the other.

use std::sync::Arc;

use sluice_command::channel::{ChannelError, EncodedFrame};
use sluice_command::listener_sockets::added_listeners;
use sluice_command::proto::{self, request::RequestType, Request, WorkerRequest};

/// The id of the replay request; each worker answers on its own channel.
pub(super) const REPLAY_REQUEST_ID: &str = "replay";

/// A start's state as one encoded batch, valid while the state has seen no other write.
#[derive(Debug)]
pub(crate) struct StartReplay {
    /// The state's write count when it was generated.
    writes: u64,
    /// The replay request, encoded; `None` for an empty state (nothing to send).
    frame: Option<EncodedFrame<WorkerRequest>>,
    /// The listeners it adds, whose sockets go with it, in order.
    listeners: Vec<String>,
}

impl StartReplay {
    /// Encodes `requests`, the requests of a state that has seen `writes` writes, and
    /// gives them back (the file's index is built from them too).
    pub(crate) fn prepare(
        writes: u64,
        requests: Vec<Request>,
    ) -> Result<(Arc<StartReplay>, Vec<Request>), ChannelError> {
        if requests.is_empty() {
            let replay = StartReplay {
                writes,
                frame: None,
                listeners: Vec::new(),
            };
            return Ok((Arc::new(replay), requests));
        }
        let message = replay_request(requests);
        let frame = EncodedFrame::new(&message)?;
        let listeners = added_listeners(&message.content)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let requests = match message.content.request_type {
            Some(RequestType::Batch(batch)) => batch.requests,
            _ => Vec::new(),
        };
        let replay = StartReplay {
            writes,
            frame: Some(frame),
            listeners,
        };
        Ok((Arc::new(replay), requests))
    }

    /// Whether it still describes a state that has seen `writes` writes.
    pub(super) fn is_current(&self, writes: u64) -> bool {
        self.writes == writes
    }

    /// The encoded request, if the state is not empty.
    pub(super) fn frame(&self) -> Option<&EncodedFrame<WorkerRequest>> {
        self.frame.as_ref()
    }

    /// The listeners whose sockets go with it.
    pub(super) fn listeners(&self) -> impl Iterator<Item = &str> + '_ {
        self.listeners.iter().map(String::as_str)
    }
}

/// The request replaying `requests` as one batch.
pub(super) fn replay_request(requests: Vec<Request>) -> WorkerRequest {
    WorkerRequest {
        id: REPLAY_REQUEST_ID.to_owned(),
        content: Request {
            request_type: Some(RequestType::Batch(proto::RequestBatch { requests })),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn listener(address: &str) -> Request {
        Request {
            request_type: Some(RequestType::AddHttpListener(proto::HttpListener {
                address: address.to_owned(),
                ..Default::default()
            })),
        }
    }

    fn cluster(id: &str) -> Request {
        Request {
            request_type: Some(RequestType::AddCluster(proto::Cluster {
                cluster_id: id.to_owned(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn the_encoded_replay_is_the_batch_of_the_requests_and_gives_them_back() {
        let requests = vec![listener("127.0.0.1:8080"), cluster("a"), cluster("b")];
        let (replay, back) = StartReplay::prepare(7, requests.clone()).expect("prepare");
        assert_eq!(back, requests);
        let frame = replay.frame().expect("a frame");
        assert_eq!(frame.message_len(), replay_request(requests).encoded_len());
        assert_eq!(replay.listeners().collect::<Vec<_>>(), ["127.0.0.1:8080"]);
        assert!(replay.is_current(7));
        assert!(!replay.is_current(8));
    }

    #[test]
    fn an_empty_state_has_nothing_to_send() {
        let (replay, back) = StartReplay::prepare(0, Vec::new()).expect("prepare");
        assert!(back.is_empty());
        assert!(replay.frame().is_none());
    }
}
