//! A pool of fixed-size buffers.
//!
//! Sessions take buffers when data flows and give them back when idle, so an idle
//! keep-alive connection holds no buffer and the worker's memory follows its traffic,
//! not its connection count.

/// Fixed-size byte buffers handed out and taken back by sessions.
#[derive(Debug)]
pub struct BufferPool {
    buffer_size: usize,
    /// Spare buffers whose length is `buffer_size`.
    free: Vec<Vec<u8>>,
    /// Spare empty buffers (appended to, so their length does not matter), kept apart
    /// so that neither kind is zeroed again or reallocated when reused.
    free_empty: Vec<Vec<u8>>,
    /// Buffers kept for reuse at most; more are freed when given back.
    max_free: usize,
    in_use: usize,
}

impl BufferPool {
    /// A pool of buffers of `buffer_size` bytes that keeps at most `max_free` spare ones.
    pub fn new(buffer_size: usize, max_free: usize) -> Self {
        BufferPool {
            buffer_size,
            free: Vec::new(),
            free_empty: Vec::new(),
            max_free,
            in_use: 0,
        }
    }

    /// Size of every buffer of this pool.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// Takes a buffer of `buffer_size` bytes (reused when one is free).
    pub fn take(&mut self) -> Vec<u8> {
        self.in_use += 1;
        self.free.pop().unwrap_or_else(|| vec![0; self.buffer_size])
    }

    /// Takes an empty buffer with room for `buffer_size` bytes, to append to.
    pub fn take_empty(&mut self) -> Vec<u8> {
        self.in_use += 1;
        self.free_empty
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.buffer_size))
    }

    /// Gives a buffer back: a full-size one for [`BufferPool::take`], a shorter one with
    /// room for `buffer_size` bytes for [`BufferPool::take_empty`]. Others are dropped.
    pub fn give(&mut self, mut buffer: Vec<u8>) {
        self.in_use = self.in_use.saturating_sub(1);
        if buffer.len() == self.buffer_size {
            if self.free.len() < self.max_free {
                self.free.push(buffer);
            }
        } else if buffer.capacity() >= self.buffer_size && self.free_empty.len() < self.max_free {
            buffer.clear();
            self.free_empty.push(buffer);
        }
    }

    /// Buffers currently taken and not given back.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Spare buffers kept for reuse.
    pub fn free_count(&self) -> usize {
        self.free.len() + self.free_empty.len()
    }
}

impl crate::http::buffers::BufferSource for BufferPool {
    fn take(&mut self) -> Vec<u8> {
        BufferPool::take(self)
    }

    fn give(&mut self, buffer: Vec<u8>) {
        BufferPool::give(self, buffer)
    }

    fn take_empty(&mut self) -> Vec<u8> {
        BufferPool::take_empty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_counted() {
        let mut pool = BufferPool::new(16, 4);
        let first = pool.take();
        assert_eq!(first.len(), 16);
        assert_eq!(pool.in_use(), 1);
        let pointer = first.as_ptr();
        pool.give(first);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.free_count(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), pointer);
    }

    #[test]
    fn appended_buffers_are_reused_without_zeroing() {
        let mut pool = BufferPool::new(16, 4);
        let mut head = pool.take_empty();
        assert!(head.is_empty() && head.capacity() >= 16);
        head.extend_from_slice(b"HTTP/1.1 200");
        let pointer = head.as_ptr();
        pool.give(head);
        assert_eq!((pool.in_use(), pool.free_count()), (0, 1));
        let again = pool.take_empty();
        assert_eq!(again.as_ptr(), pointer);
        assert!(again.is_empty());
        let full = pool.take();
        assert_eq!(full.len(), 16);
        assert_ne!(full.as_ptr(), pointer);
    }

    #[test]
    fn spare_buffers_are_bounded() {
        let mut pool = BufferPool::new(8, 1);
        let (a, b) = (pool.take(), pool.take());
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.free_count(), 1);
        assert_eq!(pool.in_use(), 0);
    }
}
