//! A typed, framed channel over a Unix stream socket.
//!
//! Every frame is a 4-byte big-endian length followed by that many bytes of
//! one protobuf message. The main process talks to each worker, and `sluice
//! ctl` to the main process, through a [`Channel`].
//!
//! A channel works in two modes:
//! - **blocking** (the default): [`Channel::write_message`] writes the whole
//!   frame and [`Channel::read_message`] waits for one message;
//! - **non-blocking**, for a poll loop: the owner registers the raw fd
//!   ([`AsRawFd`]) with its poller, [`Channel::write_message`] queues the frame
//!   and writes what the socket takes now, [`Channel::flush`] resumes on
//!   writable readiness, and [`Channel::read_available`] drains the socket on
//!   readable readiness and returns every complete message.
//!
//! The length prefix is checked against the maximum frame size before
//! anything is allocated for the frame, so a peer cannot make the reader
//! allocate more than `max_frame_size + 4` bytes.

mod encoded;
mod fds;
mod read_buffer;
#[cfg(test)]
mod tests;

pub use encoded::EncodedFrame;
pub use fds::MAX_FDS_PER_FRAME;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use log::trace;
use prost::Message;

use read_buffer::ReadBuffer;

/// Largest frame accepted by default (1 MiB), length prefix excluded.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 1 << 20;

/// Largest frame between `sluice ctl`, the main process and the workers (256 MiB): the
/// whole state of a large configuration travels as one batch, and listings of 10 000
/// clusters as one answer. Buffers grow to what a frame needs, not to this limit.
pub const CONTROL_MAX_FRAME_SIZE: usize = 256 << 20;

/// Size of the big-endian length prefix of every frame.
pub const FRAME_PREFIX_SIZE: usize = 4;

/// Queued bytes already written are dropped from the front of the write queue
/// once they exceed this, so a long-lived queue does not keep growing.
const WRITE_COMPACT_THRESHOLD: usize = 64 * 1024;

/// Above this capacity, an emptied write queue is given back to the allocator.
const WRITE_SHRINK_ABOVE: usize = 64 * 1024;

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket failed.
    #[error("channel I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection cleanly, between two frames.
    #[error("the peer closed the channel")]
    Eof,
    /// The peer closed the connection in the middle of a frame.
    #[error("the peer closed the channel in the middle of a frame: {received} of {expected} bytes received")]
    Truncated {
        /// Bytes of the frame expected, prefix included (or the prefix size
        /// when the prefix itself was cut).
        expected: usize,
        /// Bytes of the frame received before the end.
        received: usize,
    },
    /// A frame is larger than the maximum frame size, either announced by the
    /// peer's length prefix or about to be sent. On receipt the stream cannot
    /// be resynchronized: every later read fails the same way, so close it.
    #[error("frame of {size} bytes is larger than the maximum of {max} bytes")]
    FrameTooLarge {
        /// Size of the frame's message, prefix excluded.
        size: usize,
        /// The channel's maximum frame size.
        max: usize,
    },
    /// A complete frame does not hold a valid message.
    #[error("invalid message in frame: {0}")]
    Decode(#[from] prost::DecodeError),
    /// No message arrived before the deadline.
    #[error("no message arrived in time")]
    Timeout,
    /// Non-blocking mode only: no complete message is available yet.
    #[error("no complete message is available yet")]
    WouldBlock,
    /// More descriptors than one frame may carry.
    #[error("{0} descriptors in one frame, more than {max}", max = MAX_FDS_PER_FRAME)]
    TooManyFds(usize),
    /// Descriptors can only be sent in blocking mode with nothing queued before them.
    #[error("descriptors are sent in blocking mode only, with nothing queued before them")]
    FdsNeedBlockingMode,
}

/// Function pointers keep the channel `Send` and `Sync` whatever the
/// message types are: it holds bytes, never messages.
type MessageTypes<Tx, Rx> = (fn(Tx), fn() -> Rx);

/// A framed channel sending `Tx` messages and receiving `Rx` messages.
pub struct Channel<Tx, Rx> {
    stream: UnixStream,
    nonblocking: bool,
    max_frame_size: usize,
    read_buffer: ReadBuffer,
    write_queue: Vec<u8>,
    write_position: usize,
    /// A condition met while frames were being returned, reported on the next
    /// read so that the frames that came before it are not lost.
    deferred_error: Option<ChannelError>,
    /// The peer closed its side: nothing more will be read.
    peer_closed: bool,
    /// Whether descriptors that arrive with frames are kept (see [`fds`]).
    accept_fds: bool,
    /// Received descriptors not yet taken, oldest first.
    received_fds: VecDeque<OwnedFd>,
    _messages: PhantomData<MessageTypes<Tx, Rx>>,
}

/// Creates two connected channels, each sending what the other receives.
pub fn channel_pair<A, B>() -> io::Result<(Channel<A, B>, Channel<B, A>)> {
    let (left, right) = UnixStream::pair()?;
    Ok((Channel::new(left), Channel::new(right)))
}

impl<Tx, Rx> Channel<Tx, Rx> {
    /// Wraps a connected stream, in blocking mode, with the default maximum
    /// frame size. The stream is switched to blocking mode if it was not.
    pub fn new(stream: UnixStream) -> Self {
        // A stream handed over non-blocking would break blocking reads; if the
        // call fails, the first read or write reports the socket's error.
        if let Err(error) = stream.set_nonblocking(false) {
            log::warn!("channel: cannot set the stream to blocking mode: {error}");
        }
        Channel {
            stream,
            nonblocking: false,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            read_buffer: ReadBuffer::new(DEFAULT_MAX_FRAME_SIZE + FRAME_PREFIX_SIZE),
            write_queue: Vec::new(),
            write_position: 0,
            deferred_error: None,
            peer_closed: false,
            accept_fds: false,
            received_fds: VecDeque::new(),
            _messages: PhantomData,
        }
    }

    /// Sets the largest frame this channel sends or accepts (prefix excluded).
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self.read_buffer
            .set_limit(max.saturating_add(FRAME_PREFIX_SIZE));
        self
    }

    /// The largest frame this channel sends or accepts (prefix excluded).
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Switches between blocking and non-blocking mode.
    pub fn set_nonblocking(&mut self, nonblocking: bool) -> Result<(), ChannelError> {
        self.stream.set_nonblocking(nonblocking)?;
        self.nonblocking = nonblocking;
        Ok(())
    }

    /// Whether the channel is in non-blocking mode.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// Whether queued bytes still wait to be written (non-blocking mode).
    pub fn has_pending_writes(&self) -> bool {
        self.write_position < self.write_queue.len()
    }

    /// How many queued bytes still wait to be written.
    pub fn pending_write_bytes(&self) -> usize {
        self.write_queue.len() - self.write_position
    }

    /// The underlying stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Gives the stream back. Bytes read but not yet returned as messages and
    /// bytes queued but not yet written are dropped.
    pub fn into_inner(self) -> UnixStream {
        self.stream
    }

    /// Writes queued bytes until the socket would block. Returns `Ok(true)`
    /// when nothing is left queued. In blocking mode it writes everything.
    pub fn flush(&mut self) -> Result<bool, ChannelError> {
        while self.write_position < self.write_queue.len() {
            match self.stream.write(&self.write_queue[self.write_position..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(written) => self.write_position += written,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.compact_write_queue();
                    return Ok(false);
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.write_queue.clear();
        self.write_position = 0;
        if self.write_queue.capacity() > WRITE_SHRINK_ABOVE {
            // One large frame (a state's replay, a metrics snapshot) does not pin its
            // room for the channel's lifetime.
            self.write_queue = Vec::new();
        }
        Ok(true)
    }

    fn compact_write_queue(&mut self) {
        if self.write_position >= WRITE_COMPACT_THRESHOLD {
            self.write_queue.drain(..self.write_position);
            self.write_position = 0;
        }
    }

    /// Returns the deferred error, or `Eof`/`Truncated` once the peer closed
    /// and every complete frame was returned.
    fn take_terminal_condition(&mut self) -> Option<ChannelError> {
        if let Some(error) = self.deferred_error.take() {
            return Some(error);
        }
        if self.peer_closed {
            return Some(self.end_of_stream_error());
        }
        None
    }

    fn end_of_stream_error(&self) -> ChannelError {
        match self.read_buffer.incomplete_frame() {
            None => ChannelError::Eof,
            Some((expected, received)) => ChannelError::Truncated { expected, received },
        }
    }

    /// Reads once from the socket into the read buffer, retrying on EINTR.
    /// `Ok(false)` means the peer closed.
    fn fill_read_buffer(&mut self) -> io::Result<bool> {
        loop {
            let keep = self.accept_fds.then_some(&mut self.received_fds);
            let stream = &self.stream;
            match self
                .read_buffer
                .read_with(|free| fds::receive(stream, keep, free))
            {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(false);
                }
                Ok(read) => {
                    trace!("channel: read {read} bytes");
                    return Ok(true);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

impl<Tx: Message, Rx> Channel<Tx, Rx> {
    /// Sends one message. In blocking mode the whole frame is written before
    /// this returns; in non-blocking mode the frame is queued behind earlier
    /// ones and the socket takes what it can now ([`Channel::flush`] resumes).
    pub fn write_message(&mut self, message: &Tx) -> Result<(), ChannelError> {
        self.queue_frame(message)?;
        self.flush()?;
        Ok(())
    }

    /// Appends `message`'s frame to the write queue.
    fn queue_frame(&mut self, message: &Tx) -> Result<(), ChannelError> {
        let size = message.encoded_len();
        if size > self.max_frame_size {
            return Err(ChannelError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        let prefix = u32::try_from(size).map_err(|_| ChannelError::FrameTooLarge {
            size,
            max: self.max_frame_size,
        })?;
        self.write_queue.reserve(FRAME_PREFIX_SIZE + size);
        self.write_queue.extend_from_slice(&prefix.to_be_bytes());
        // Encoding into a Vec only fails when capacity is short, and it was
        // just reserved.
        message
            .encode(&mut self.write_queue)
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(())
    }
}

impl<Tx, Rx: Message + Default> Channel<Tx, Rx> {
    /// Returns the next message, waiting for it in blocking mode. In
    /// non-blocking mode, returns [`ChannelError::WouldBlock`] when no
    /// complete message is available yet. Bytes after the message are kept
    /// for the next call.
    pub fn read_message(&mut self) -> Result<Rx, ChannelError> {
        self.read_message_until(None)
    }

    /// Like [`Channel::read_message`] in blocking mode, but gives up with
    /// [`ChannelError::Timeout`] when no whole message arrived within
    /// `timeout`. Bytes of a partly received message are kept.
    pub fn read_message_timeout(&mut self, timeout: Duration) -> Result<Rx, ChannelError> {
        let deadline = Instant::now() + timeout;
        let result = self.read_message_until(Some(deadline));
        // Later plain reads must wait as long as needed again.
        self.stream.set_read_timeout(None)?;
        result
    }

    fn read_message_until(&mut self, deadline: Option<Instant>) -> Result<Rx, ChannelError> {
        if let Some(error) = self.deferred_error.take() {
            return Err(error);
        }
        loop {
            if let Some(frame) = self.read_buffer.next_frame(self.max_frame_size)? {
                return Ok(Rx::decode(frame)?);
            }
            if self.peer_closed {
                return Err(self.end_of_stream_error());
            }
            if let Some(deadline) = deadline {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(ChannelError::Timeout);
                }
                self.stream.set_read_timeout(Some(remaining))?;
            }
            match self.fill_read_buffer() {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Err(if self.nonblocking {
                        ChannelError::WouldBlock
                    } else {
                        ChannelError::Timeout
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                    return Err(ChannelError::Timeout)
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Non-blocking mode: reads until the socket would block and returns
    /// every complete message, in order; a partial frame is kept for the
    /// next readiness.
    ///
    /// When the peer closed, or a frame failed to decode, after some messages
    /// were read, those messages are returned first and the condition
    /// ([`ChannelError::Eof`], [`ChannelError::Truncated`],
    /// [`ChannelError::Decode`]) on the next call. An empty `Vec` means
    /// nothing complete was available.
    pub fn read_available(&mut self) -> Result<Vec<Rx>, ChannelError> {
        if let Some(error) = self.take_terminal_condition() {
            return Err(error);
        }
        let mut messages = Vec::new();
        loop {
            if let Err(error) = self.drain_frames(&mut messages) {
                return self.defer_if_any(messages, error);
            }
            if self.peer_closed {
                let error = self.end_of_stream_error();
                return self.defer_if_any(messages, error);
            }
            match self.fill_read_buffer() {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(messages),
                Err(error) => return self.defer_if_any(messages, error.into()),
            }
        }
    }

    fn drain_frames(&mut self, messages: &mut Vec<Rx>) -> Result<(), ChannelError> {
        while let Some(frame) = self.read_buffer.next_frame(self.max_frame_size)? {
            messages.push(Rx::decode(frame)?);
        }
        Ok(())
    }

    fn defer_if_any(
        &mut self,
        messages: Vec<Rx>,
        error: ChannelError,
    ) -> Result<Vec<Rx>, ChannelError> {
        if messages.is_empty() {
            return Err(error);
        }
        // End of stream is recomputed from `peer_closed` on the next call.
        if !matches!(error, ChannelError::Eof | ChannelError::Truncated { .. }) {
            self.deferred_error = Some(error);
        }
        Ok(messages)
    }
}

impl<Tx, Rx> AsRawFd for Channel<Tx, Rx> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl<Tx, Rx> AsFd for Channel<Tx, Rx> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl<Tx, Rx> std::fmt::Debug for Channel<Tx, Rx> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Channel")
            .field("fd", &self.stream.as_raw_fd())
            .field("nonblocking", &self.nonblocking)
            .field("max_frame_size", &self.max_frame_size)
            .field("buffered_read_bytes", &self.read_buffer.buffered())
            .field("pending_write_bytes", &self.pending_write_bytes())
            .field("peer_closed", &self.peer_closed)
            .field("received_fds", &self.received_fds.len())
            .finish()
    }
}
