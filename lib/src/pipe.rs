//! One direction of a byte stream through the proxy, sans-IO.
//!
//! A [`Direction`] holds the bytes read from one side and not yet written to the other, in
//! a pooled buffer taken on the first read and given back as soon as it is empty. It is the
//! whole byte pipe of TCP sessions and of HTTP connections after an upgrade (`101`), which
//! the loop takes over from the HTTP session with the bytes it had read.

use crate::pool::BufferPool;

/// Bytes flowing from one side to the other, with end-of-stream tracking.
#[derive(Debug, Default)]
pub struct Direction {
    buffer: Option<Vec<u8>>,
    start: usize,
    end: usize,
    /// The source side sent EOF: nothing more will be read.
    source_closed: bool,
    /// EOF was passed on to the destination (write shutdown).
    shutdown_sent: bool,
    /// Bytes that went through, for metrics and logs.
    transferred: u64,
}

impl Direction {
    /// A direction that starts with `buffer[start..end]` to write (bytes read before it
    /// existed, such as those after an HTTP upgrade), counted as transferred.
    pub(crate) fn holding(buffer: Vec<u8>, start: usize, end: usize) -> Self {
        let end = end.min(buffer.len());
        let start = start.min(end);
        Direction {
            buffer: Some(buffer),
            start,
            end,
            source_closed: false,
            shutdown_sent: false,
            transferred: (end - start) as u64,
        }
    }

    /// Space to read the source's next bytes into, or `None` when the buffer is full
    /// (backpressure) or the source already ended.
    pub fn read_space(&mut self, pool: &mut BufferPool) -> Option<&mut [u8]> {
        if self.source_closed {
            return None;
        }
        let buffer = self.buffer.get_or_insert_with(|| pool.take());
        if self.end == buffer.len() && self.start > 0 {
            buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == buffer.len() {
            return None;
        }
        Some(&mut buffer[self.end..])
    }

    /// Records that `n` bytes were read into [`read_space`](Self::read_space); 0 means EOF.
    pub fn received(&mut self, n: usize) {
        if n == 0 {
            self.source_closed = true;
        } else {
            self.end += n;
            self.transferred += n as u64;
        }
    }

    /// Bytes waiting to be written to the destination.
    pub fn pending(&self) -> &[u8] {
        match &self.buffer {
            Some(buffer) => &buffer[self.start..self.end],
            None => &[],
        }
    }

    /// Records that `n` pending bytes were written; an emptied buffer goes back to the pool.
    pub fn written(&mut self, n: usize, pool: &mut BufferPool) {
        self.start += n;
        debug_assert!(self.start <= self.end, "wrote more than was pending");
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if let Some(buffer) = self.buffer.take() {
                pool.give(buffer);
            }
        }
    }

    /// True when the source ended, everything was written, and the shutdown is due now.
    pub fn wants_shutdown(&self) -> bool {
        self.source_closed && !self.shutdown_sent && self.start == self.end
    }

    /// Records that the destination's write side was shut down.
    pub fn shutdown_done(&mut self) {
        self.shutdown_sent = true;
    }

    /// True once the source ended and its EOF reached the destination.
    pub fn is_finished(&self) -> bool {
        self.shutdown_sent
    }

    /// True when the source sent EOF.
    pub fn source_closed(&self) -> bool {
        self.source_closed
    }

    /// Bytes read from the source so far.
    pub fn transferred(&self) -> u64 {
        self.transferred
    }

    /// True while a pooled buffer is held.
    pub fn holds_buffer(&self) -> bool {
        self.buffer.is_some()
    }

    /// Gives any held buffer back (the session is ending).
    pub fn release(&mut self, pool: &mut BufferPool) {
        if let Some(buffer) = self.buffer.take() {
            pool.give(buffer);
        }
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(direction: &mut Direction, pool: &mut BufferPool, bytes: &[u8]) -> usize {
        let space = direction.read_space(pool).expect("space to read");
        let n = bytes.len().min(space.len());
        space[..n].copy_from_slice(&bytes[..n]);
        direction.received(n);
        n
    }

    #[test]
    fn bytes_pass_through_and_the_buffer_returns_when_empty() {
        let mut pool = BufferPool::new(8, 4);
        let mut direction = Direction::default();
        assert_eq!(feed(&mut direction, &mut pool, b"hello"), 5);
        assert_eq!(direction.pending(), b"hello");
        assert_eq!(pool.in_use(), 1);
        direction.written(2, &mut pool);
        assert_eq!(direction.pending(), b"llo");
        direction.written(3, &mut pool);
        assert!(!direction.holds_buffer());
        assert_eq!(pool.in_use(), 0);
        assert_eq!(direction.transferred(), 5);
    }

    #[test]
    fn a_full_buffer_applies_backpressure_until_written() {
        let mut pool = BufferPool::new(4, 4);
        let mut direction = Direction::default();
        assert_eq!(feed(&mut direction, &mut pool, b"abcdef"), 4);
        assert!(direction.read_space(&mut pool).is_none());
        direction.written(1, &mut pool);
        // the remaining bytes move to the front to make room
        assert_eq!(feed(&mut direction, &mut pool, b"e"), 1);
        assert_eq!(direction.pending(), b"bcde");
    }

    #[test]
    fn eof_is_passed_on_only_after_pending_bytes() {
        let mut pool = BufferPool::new(8, 4);
        let mut direction = Direction::default();
        feed(&mut direction, &mut pool, b"ab");
        direction.received(0);
        assert!(direction.read_space(&mut pool).is_none());
        assert!(!direction.wants_shutdown());
        direction.written(2, &mut pool);
        assert!(direction.wants_shutdown());
        direction.shutdown_done();
        assert!(direction.is_finished());
        assert!(!direction.wants_shutdown());
    }
}
