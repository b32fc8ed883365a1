//! The byte buffers of TLS connections: one for the records read, one for the records
//! to send. A connection holds them only while it has bytes in them, and lends them
//! back to its thread's spares as soon as they are empty, so an idle connection holds
//! none and a busy one takes them without allocating.

use std::cell::RefCell;

/// Size of a lent buffer: one record of the largest size TLS allows (5 bytes of header,
/// 16 KiB of plaintext and up to 256 bytes of expansion) with room to spare.
pub(super) const RECORD_BUFFER: usize = 17 * 1024;

/// Empty buffers a thread keeps for its next connections.
const SPARES: usize = 64;

thread_local! {
    /// The buffers connections of this thread gave back (a worker is one thread).
    static SPARE_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of bytes between `start` and `end`, lent from the thread's spares while
/// it holds any.
#[derive(Debug, Default)]
pub(super) struct RecordBuffer {
    /// Empty while nothing is lent.
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecordBuffer {
    /// Whether no byte waits in the buffer.
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether a buffer is lent to this one.
    #[cfg(test)]
    pub(super) fn is_lent(&self) -> bool {
        !self.bytes.is_empty()
    }

    /// Where the bytes waiting start (an index into [`RecordBuffer::all`]).
    pub(super) fn start(&self) -> usize {
        self.start
    }

    /// The bytes waiting.
    pub(super) fn filled(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.end]
    }

    /// The whole buffer (what is lent), for work in place at given indices.
    pub(super) fn all(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Drops `n` bytes from the front of those waiting.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Counts `n` bytes written into [`RecordBuffer::space`] as waiting.
    pub(super) fn filled_by(&mut self, n: usize) {
        self.end = (self.end + n).min(self.bytes.len());
    }

    /// The free room after the bytes waiting, moved to the front first when they do
    /// not start there; the buffer is lent first if it was not.
    pub(super) fn space(&mut self) -> &mut [u8] {
        if self.bytes.is_empty() {
            self.bytes = take_spare();
        }
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.bytes[self.end..]
    }

    /// Room for `more` bytes after those waiting (the handshake's large flights and
    /// fragmented messages), up to `limit` bytes in all; false if more is needed.
    pub(super) fn reserve(&mut self, more: usize, limit: usize) -> bool {
        let _ = self.space();
        let needed = self.end + more;
        if needed > limit {
            return false;
        }
        if needed > self.bytes.len() {
            self.bytes.resize(needed, 0);
        }
        true
    }

    /// Gives the buffer back to the thread's spares if no byte waits in it.
    pub(super) fn release_if_empty(&mut self) {
        if self.is_empty() && !self.bytes.is_empty() {
            give_back(std::mem::take(&mut self.bytes));
            self.start = 0;
            self.end = 0;
        }
    }
}

impl Drop for RecordBuffer {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            give_back(std::mem::take(&mut self.bytes));
        }
    }
}

/// A buffer of [`RECORD_BUFFER`] bytes: a spare one, or a new one when none is left.
fn take_spare() -> Vec<u8> {
    SPARE_BUFFERS
        .try_with(|spares| spares.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0; RECORD_BUFFER])
}

/// Keeps `bytes` for the next connection, unless enough are kept or it grew.
fn give_back(bytes: Vec<u8>) {
    if bytes.len() != RECORD_BUFFER {
        return;
    }
    let _ = SPARE_BUFFERS.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < SPARES {
            spares.push(bytes);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_buffer_goes_back_and_is_lent_again() {
        let mut buffer = RecordBuffer::default();
        buffer.space()[..3].copy_from_slice(b"abc");
        buffer.filled_by(3);
        buffer.consume(1);
        assert_eq!(buffer.filled(), b"bc");
        let first = buffer.all().as_ptr();
        buffer.consume(2);
        buffer.release_if_empty();
        assert!(buffer.all().is_empty(), "an empty buffer is given back");
        let mut other = RecordBuffer::default();
        assert_eq!(other.space().len(), RECORD_BUFFER);
        assert_eq!(other.all().as_ptr(), first, "the spare is lent again");
    }

    #[test]
    fn waiting_bytes_move_to_the_front_and_growth_is_bounded() {
        let mut buffer = RecordBuffer::default();
        buffer.space()[..4].copy_from_slice(b"abcd");
        buffer.filled_by(4);
        buffer.consume(2);
        assert_eq!(buffer.space().len(), RECORD_BUFFER - 2);
        assert_eq!(buffer.filled(), b"cd");
        assert!(buffer.reserve(RECORD_BUFFER, 2 * RECORD_BUFFER));
        assert_eq!(buffer.space().len(), RECORD_BUFFER);
        assert!(!buffer.reserve(2 * RECORD_BUFFER, 2 * RECORD_BUFFER));
    }
}
