//! A message encoded once and sent as it is on several channels: the state a start
//! replays to each of its workers is the same message, and encoding it is a large part
//! of sending it.

use std::io;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use prost::Message;

use super::{Channel, ChannelError, FRAME_PREFIX_SIZE};

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
        let size = message.encoded_len();
        let prefix = u32::try_from(size).map_err(|_| ChannelError::FrameTooLarge {
            size,
            max: u32::MAX as usize,
        })?;
        let mut bytes = Vec::with_capacity(FRAME_PREFIX_SIZE + size);
        bytes.extend_from_slice(&prefix.to_be_bytes());
        message
            .encode(&mut bytes)
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(EncodedFrame {
            bytes,
            _message: PhantomData,
        })
    }

    /// The message's size, prefix excluded.
    pub fn message_len(&self) -> usize {
        self.bytes.len() - FRAME_PREFIX_SIZE
    }
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
