//! The bounded buffer a channel reads frames into.

use std::io;

use super::{ChannelError, FRAME_PREFIX_SIZE};

/// Smallest allocation of the buffer, and the size it shrinks back to.
const INITIAL_SIZE: usize = 4 * 1024;

/// Above this size, an emptied buffer is given back to the allocator so that
/// one large frame does not pin a large buffer for the channel's lifetime.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Bytes read from the socket, `buf[start..end]`, never more than `limit`
/// (largest frame plus its prefix). Grows on demand, zero-filled once.
#[derive(Debug)]
pub(super) struct ReadBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    limit: usize,
}

impl ReadBuffer {
    pub(super) fn new(limit: usize) -> Self {
        ReadBuffer {
            buf: Vec::new(),
            start: 0,
            end: 0,
            limit,
        }
    }

    pub(super) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Bytes received and not yet returned as frames.
    pub(super) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes the buffer holds in memory.
    #[cfg(test)]
    pub(super) fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// The next complete frame's message bytes, if one is buffered. The
    /// length prefix is checked against `max` as soon as it is complete, so
    /// an oversized frame is refused before any of it is buffered.
    pub(super) fn next_frame(&mut self, max: usize) -> Result<Option<&[u8]>, ChannelError> {
        let Some(size) = self.announced_size() else {
            return Ok(None);
        };
        if size > max {
            return Err(ChannelError::FrameTooLarge { size, max });
        }
        if self.buffered() < FRAME_PREFIX_SIZE + size {
            return Ok(None);
        }
        let body_start = self.start + FRAME_PREFIX_SIZE;
        self.start = body_start + size;
        Ok(Some(&self.buf[body_start..body_start + size]))
    }

    /// `(expected, received)` bytes of the frame cut short, if any.
    pub(super) fn incomplete_frame(&self) -> Option<(usize, usize)> {
        let received = self.buffered();
        if received == 0 {
            return None;
        }
        let expected = match self.announced_size() {
            Some(size) => FRAME_PREFIX_SIZE.saturating_add(size),
            None => FRAME_PREFIX_SIZE,
        };
        Some((expected, received))
    }

    fn announced_size(&self) -> Option<usize> {
        if self.buffered() < FRAME_PREFIX_SIZE {
            return None;
        }
        let prefix = self.buf.get(self.start..self.start + FRAME_PREFIX_SIZE)?;
        let prefix: [u8; FRAME_PREFIX_SIZE] = prefix.try_into().ok()?;
        usize::try_from(u32::from_be_bytes(prefix)).ok()
    }

    /// Lets `read` fill free space once and keeps the bytes it says it wrote;
    /// `Ok(0)` means end of stream. Complete frames must be taken with
    /// [`ReadBuffer::next_frame`] first: a full buffer always holds one, since
    /// no accepted frame exceeds the limit.
    pub(super) fn read_with(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.make_room()?;
        let read = read(&mut self.buf[self.end..])?;
        self.end += read;
        Ok(read)
    }

    fn make_room(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > SHRINK_ABOVE {
                self.buf = Vec::new();
            }
        }
        if self.end < self.buf.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return Ok(());
        }
        if self.buf.len() >= self.limit {
            // Reading into an empty slice would return 0 and look like EOF.
            return Err(io::Error::other(
                "channel read buffer is full without a complete frame",
            ));
        }
        // Straight to the size of the frame being read, when it is announced.
        let announced = self
            .announced_size()
            .map(|size| size.saturating_add(FRAME_PREFIX_SIZE))
            .filter(|size| *size <= self.limit)
            .unwrap_or(0);
        let grown = (self.buf.len() * 2)
            .max(announced)
            .max(INITIAL_SIZE)
            .min(self.limit);
        // Exact, so that the allocation never exceeds the limit.
        self.buf.reserve_exact(grown - self.buf.len());
        self.buf.resize(grown, 0);
        Ok(())
    }
}
