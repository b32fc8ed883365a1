//! File descriptors carried next to the frames of a channel (`SCM_RIGHTS`).
//!
//! Contract, for both ends:
//! - a sender attaches the descriptors of one frame to that frame's first bytes, in one
//!   `sendmsg` call ([`Channel::write_message_with_fds`], blocking mode only), at most
//!   [`MAX_FDS_PER_FRAME`] of them;
//! - the kernel never merges the descriptors of two `sendmsg` calls into one `recvmsg`, so a
//!   receiver that opted in ([`Channel::accepting_fds`]) finds a frame's descriptors in its
//!   queue, in the order they were sent, by the time the frame is returned. Descriptors of
//!   the next frames may already be queued behind them: the receiver takes, for each frame,
//!   exactly as many as the protocol says the frame carries
//!   ([`Channel::take_received_fd`]);
//! - a channel that did not opt in closes every descriptor it receives at once, so that a
//!   peer cannot make it hold descriptors it never asked for;
//! - received descriptors are close-on-exec.
//!
//! `rustix` makes the `sendmsg`/`recvmsg` calls: it returns received descriptors as
//! `OwnedFd` and borrows sent ones, so this module holds no `unsafe` code.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;

use super::{Channel, ChannelError};

/// Most descriptors one frame may carry (the kernel's `SCM_MAX_FD` is 253).
pub const MAX_FDS_PER_FRAME: usize = 250;

/// Room for the control message of one `recvmsg`: one frame's descriptors at most.
const RECEIVE_SPACE: usize = rustix::cmsg_space!(ScmRights(MAX_FDS_PER_FRAME));

impl<Tx, Rx> Channel<Tx, Rx> {
    /// Keeps the descriptors that arrive with frames, for [`Channel::take_received_fd`].
    pub fn accepting_fds(mut self) -> Self {
        self.accept_fds = true;
        self
    }

    /// The oldest received descriptor not yet taken.
    pub fn take_received_fd(&mut self) -> Option<OwnedFd> {
        self.received_fds.pop_front()
    }

    /// How many received descriptors wait to be taken.
    pub fn received_fd_count(&self) -> usize {
        self.received_fds.len()
    }

    /// Sends the queued bytes' first part with `fds` attached; the rest follows as usual.
    pub(super) fn send_first_with_fds(&mut self, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut space =
            vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("no room for the descriptors"));
        }
        loop {
            let pending = &self.write_queue[self.write_position..];
            match rustix::net::sendmsg(
                &self.stream,
                &[IoSlice::new(pending)],
                &mut control,
                SendFlags::NOSIGNAL,
            ) {
                Ok(sent) => {
                    self.write_position += sent;
                    return Ok(());
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

impl<Tx: prost::Message, Rx> Channel<Tx, Rx> {
    /// Sends one message with `fds` attached (see the module docs). Blocking mode only,
    /// so that the descriptors go with this frame and no earlier one.
    pub fn write_message_with_fds(
        &mut self,
        message: &Tx,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ChannelError> {
        if fds.is_empty() {
            return self.write_message(message);
        }
        self.check_fds(fds)?;
        self.queue_frame(message)?;
        self.send_queued_with_fds(fds)
    }
}

impl<Tx, Rx> Channel<Tx, Rx> {
    /// Refuses `fds` when they cannot go with the next frame: too many, or a channel
    /// in non-blocking mode or with bytes still queued.
    pub(super) fn check_fds(&self, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        if fds.is_empty() {
            return Ok(());
        }
        if fds.len() > MAX_FDS_PER_FRAME {
            return Err(ChannelError::TooManyFds(fds.len()));
        }
        if self.nonblocking || self.has_pending_writes() {
            return Err(ChannelError::FdsNeedBlockingMode);
        }
        Ok(())
    }

    /// Sends the frame just queued, `fds` attached to its first bytes (none: a plain
    /// flush).
    pub(super) fn send_queued_with_fds(
        &mut self,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ChannelError> {
        if !fds.is_empty() {
            self.send_first_with_fds(fds)?;
        }
        self.flush()?;
        Ok(())
    }
}

/// Receives once from `stream` into `free`; the descriptors that come along go to `keep`,
/// or are closed at once when it is `None`.
pub(super) fn receive(
    stream: &UnixStream,
    keep: Option<&mut VecDeque<OwnedFd>>,
    free: &mut [u8],
) -> io::Result<usize> {
    let mut space = [MaybeUninit::<u8>::uninit(); RECEIVE_SPACE];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(free)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut keep = keep;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            match keep.as_deref_mut() {
                Some(queue) => queue.extend(fds),
                None => {
                    let closed = fds.count();
                    log::warn!("channel: closed {closed} descriptors a peer sent unasked");
                }
            }
        }
    }
    Ok(received.bytes)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;
    use crate::channel::channel_pair;
    use crate::proto::CustomAnswer;

    fn answer(status: u32) -> CustomAnswer {
        CustomAnswer {
            status,
            content: "x".repeat(100),
        }
    }

    /// A descriptor received is the same open socket as the one sent: bytes written
    /// through it come out of the other end.
    fn assert_same_socket(received: OwnedFd, peer: &mut UnixStream, text: &[u8]) {
        let mut received = UnixStream::from(received);
        received
            .write_all(text)
            .expect("write through the received fd");
        let mut read = vec![0; text.len()];
        peer.read_exact(&mut read).expect("read");
        assert_eq!(read, text);
    }

    #[test]
    fn descriptors_arrive_with_their_frame_in_order() {
        let (mut left, right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
        let mut right = right.accepting_fds();
        let (a, mut a_peer) = UnixStream::pair().expect("pair a");
        let (b, mut b_peer) = UnixStream::pair().expect("pair b");
        let (c, mut c_peer) = UnixStream::pair().expect("pair c");
        left.write_message_with_fds(&answer(1), &[a.as_fd(), b.as_fd()])
            .expect("first");
        left.write_message(&answer(2)).expect("second, no fds");
        left.write_message_with_fds(&answer(3), &[c.as_fd()])
            .expect("third");
        drop((a, b, c));
        assert_eq!(right.read_message().expect("read 1"), answer(1));
        assert!(right.received_fd_count() >= 2);
        assert_same_socket(right.take_received_fd().unwrap(), &mut a_peer, b"a");
        assert_same_socket(right.take_received_fd().unwrap(), &mut b_peer, b"b");
        assert_eq!(right.read_message().expect("read 2"), answer(2));
        assert_eq!(right.read_message().expect("read 3"), answer(3));
        assert_same_socket(right.take_received_fd().unwrap(), &mut c_peer, b"c");
        assert!(right.take_received_fd().is_none());
    }

    #[test]
    fn a_channel_that_did_not_opt_in_closes_what_it_receives() {
        let (mut left, mut right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
        let (a, mut a_peer) = UnixStream::pair().expect("pair a");
        left.write_message_with_fds(&answer(1), &[a.as_fd()])
            .expect("send");
        drop(a);
        assert_eq!(right.read_message().expect("read"), answer(1));
        assert!(right.take_received_fd().is_none());
        let mut byte = [0; 1];
        assert_eq!(a_peer.read(&mut byte).expect("end of stream"), 0);
    }

    #[test]
    fn descriptors_are_refused_in_non_blocking_mode() {
        let (mut left, _right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
        left.set_nonblocking(true).expect("non-blocking");
        let (a, _a_peer) = UnixStream::pair().expect("pair a");
        assert!(matches!(
            left.write_message_with_fds(&answer(1), &[a.as_fd()]),
            Err(ChannelError::FdsNeedBlockingMode)
        ));
    }
}
