//! A buffer pool that counts, so that the harness sees every buffer that is
//! not given back.

use crate::http::buffers::BufferSource;

/// Buffers of one size, counted out and in.
#[derive(Debug)]
pub(super) struct CountingPool {
    size: usize,
    in_use: usize,
    /// A buffer came back that was not out (given twice, or not the pool's).
    pub(super) foreign: bool,
}

impl CountingPool {
    pub(super) fn new(size: usize) -> Self {
        CountingPool {
            size,
            in_use: 0,
            foreign: false,
        }
    }

    pub(super) fn in_use(&self) -> usize {
        self.in_use
    }
}

impl BufferSource for CountingPool {
    fn take(&mut self) -> Vec<u8> {
        self.in_use += 1;
        vec![0; self.size]
    }

    fn give(&mut self, buffer: Vec<u8>) {
        if self.in_use == 0 || buffer.capacity() < self.size {
            self.foreign = true;
        }
        self.in_use = self.in_use.saturating_sub(1);
    }
}
