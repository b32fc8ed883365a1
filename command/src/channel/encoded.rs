//! A message encoded once and sent as it is on several channels: the state a start
//! replays to each of its workers is the same message, and encoding it is a large part
//! of sending it.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, message, WireType};
use prost::Message;

use super::{Channel, ChannelError, FRAME_PREFIX_SIZE};
use crate::proto;

/// One `Tx` message, encoded with its length prefix, ready to be queued on any
/// `Channel<Tx, _>` whose maximum frame size it fits.
#[derive(Debug, Clone)]
pub struct EncodedFrame<Tx> {
    /// The length prefix then the message's bytes.
    bytes: Vec<u8>,
    _message: PhantomData<fn(Tx)>,
}

impl<Tx: Message> EncodedFrame<Tx> {
    /// Encodes `message`; refused when its size does not fit a frame's prefix at all.
    pub fn new(message: &Tx) -> Result<Self, ChannelError> {
        // A `Vec` grows as needed: encoding into one cannot fail.
        Self::encoded_by(message.encoded_len(), |bytes| message.encode_raw(bytes))
    }

    /// The message's size, prefix excluded.
    pub fn message_len(&self) -> usize {
        self.bytes.len() - FRAME_PREFIX_SIZE
    }

    /// A frame of `size` bytes of message that `encode` writes.
    fn encoded_by(size: usize, encode: impl FnOnce(&mut Vec<u8>)) -> Result<Self, ChannelError> {
        let prefix = u32::try_from(size).map_err(|_| ChannelError::FrameTooLarge {
            size,
            max: u32::MAX as usize,
        })?;
        let mut bytes = Vec::with_capacity(FRAME_PREFIX_SIZE + size);
        bytes.extend_from_slice(&prefix.to_be_bytes());
        encode(&mut bytes);
        debug_assert_eq!(bytes.len(), FRAME_PREFIX_SIZE + size);
        Ok(EncodedFrame {
            bytes,
            _message: PhantomData,
        })
    }
}

/// `WorkerRequest.id`, `WorkerRequest.content`, `RequestBatch.requests` (`command.proto`).
const WORKER_REQUEST_ID: u32 = 1;
const WORKER_REQUEST_CONTENT: u32 = 2;
const BATCH_REQUESTS: u32 = 1;
/// The `batch` case of `Request.request_type`.
const REQUEST_BATCH: u32 = 34;

impl EncodedFrame<proto::WorkerRequest> {
    /// The frame of `WorkerRequest { id, content }`, as [`EncodedFrame::new`] encodes it,
    /// from borrowed parts: a large `content` is not copied to be sent.
    pub fn worker_request(id: &str, content: &proto::Request) -> Result<Self, ChannelError> {
        let size =
            str_len(WORKER_REQUEST_ID, id) + message::encoded_len(WORKER_REQUEST_CONTENT, content);
        Self::encoded_by(size, |bytes| {
            encode_str(WORKER_REQUEST_ID, id, bytes);
            message::encode(WORKER_REQUEST_CONTENT, content, bytes);
        })
    }

    /// The frame of a `WorkerRequest` whose content is the batch of `requests`, as
    /// [`EncodedFrame::new`] encodes it, without copying the requests into a batch.
    pub fn worker_batch(id: &str, requests: &[proto::Request]) -> Result<Self, ChannelError> {
        let batch_len = message::encoded_len_repeated(BATCH_REQUESTS, requests);
        let content_len = key_len(REQUEST_BATCH) + encoded_len_varint(batch_len as u64) + batch_len;
        let size = str_len(WORKER_REQUEST_ID, id)
            + key_len(WORKER_REQUEST_CONTENT)
            + encoded_len_varint(content_len as u64)
            + content_len;
        Self::encoded_by(size, |bytes| {
            encode_str(WORKER_REQUEST_ID, id, bytes);
            encode_key(WORKER_REQUEST_CONTENT, WireType::LengthDelimited, bytes);
            encode_varint(content_len as u64, bytes);
            encode_key(REQUEST_BATCH, WireType::LengthDelimited, bytes);
            encode_varint(batch_len as u64, bytes);
            for request in requests {
                message::encode(BATCH_REQUESTS, request, bytes);
            }
        })
    }
}

/// The encoded size of a string field.
fn str_len(tag: u32, value: &str) -> usize {
    key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
}

/// A string field, as prost encodes a `String`.
fn encode_str(tag: u32, value: &str, bytes: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, bytes);
    encode_varint(value.len() as u64, bytes);
    bytes.extend_from_slice(value.as_bytes());
}

impl<Tx: Message, Rx> Channel<Tx, Rx> {
    /// Sends a message encoded beforehand, with `fds` attached as
    /// [`Channel::write_message_with_fds`] does; in blocking mode only when `fds` is
    /// not empty.
    pub fn write_encoded_with_fds(
        &mut self,
        frame: &EncodedFrame<Tx>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ChannelError> {
        self.check_fds(fds)?;
        if frame.message_len() > self.max_frame_size {
            return Err(ChannelError::FrameTooLarge {
                size: frame.message_len(),
                max: self.max_frame_size,
            });
        }
        self.write_queue.extend_from_slice(&frame.bytes);
        self.send_queued_with_fds(fds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::request::RequestType;
    use proptest::prelude::*;

    fn removal(cluster_id: &str) -> proto::Request {
        proto::Request {
            request_type: Some(RequestType::RemoveCluster(cluster_id.to_owned())),
        }
    }

    fn owned(id: &str, content: proto::Request) -> Vec<u8> {
        EncodedFrame::new(&proto::WorkerRequest {
            id: id.to_owned(),
            content,
        })
        .expect("encode")
        .bytes
    }

    proptest! {
        #[test]
        fn a_request_encoded_from_borrowed_parts_is_the_owned_encoding(
            id in ".{0,200}",
            names in prop::collection::vec("[a-z0-9-]{0,150}", 0..40),
        ) {
            let requests: Vec<proto::Request> = names.iter().map(|name| removal(name)).collect();
            let batch = proto::Request {
                request_type: Some(RequestType::Batch(proto::RequestBatch {
                    requests: requests.clone(),
                })),
            };
            let borrowed = EncodedFrame::worker_batch(&id, &requests).expect("encode");
            prop_assert_eq!(&borrowed.bytes, &owned(&id, batch));
            let one = removal(names.first().map_or("", String::as_str));
            let borrowed = EncodedFrame::worker_request(&id, &one).expect("encode");
            prop_assert_eq!(&borrowed.bytes, &owned(&id, one));
        }
    }

    #[test]
    fn a_batch_frame_decodes_to_its_requests() {
        let requests = vec![removal("a"), removal("b")];
        let frame = EncodedFrame::worker_batch("7", &requests).expect("encode");
        let decoded =
            proto::WorkerRequest::decode(&frame.bytes[FRAME_PREFIX_SIZE..]).expect("decode");
        assert_eq!(decoded.id, "7");
        match decoded.content.request_type {
            Some(RequestType::Batch(batch)) => assert_eq!(batch.requests, requests),
            other => panic!("not a batch: {other:?}"),
        }
    }
}
