//! The contract between HTTP sessions and the loop's buffer pool, and the byte
//! window a session keeps over a pooled buffer.
//!
//! Sessions take buffers only while they have bytes to hold and give them back
//! as soon as they are empty, so an idle keep-alive connection holds none.

/// Where sessions get their fixed-size buffers from (the loop's pool).
pub trait BufferSource {
    /// A buffer whose `len()` is the usable size (contents irrelevant).
    fn take(&mut self) -> Vec<u8>;
    /// Gives a buffer back; the session no longer uses it.
    fn give(&mut self, buffer: Vec<u8>);
    /// An empty buffer to append to, with room for at least a buffer's size.
    fn take_empty(&mut self) -> Vec<u8> {
        let mut buffer = self.take();
        buffer.clear();
        buffer
    }
}

/// A buffer with its unconsumed bytes at `start..end`.
#[derive(Debug)]
pub(crate) struct Window {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Window {
    pub(crate) fn new(data: Vec<u8>) -> Self {
        Window {
            data,
            start: 0,
            end: 0,
        }
    }

    /// The unconsumed bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// No room left even after moving the bytes to the front.
    pub(crate) fn is_full(&self) -> bool {
        self.end - self.start == self.data.len()
    }

    /// Free space after the bytes, moving them to the front first if that
    /// gives more room (offsets into `bytes()` stay valid: they are relative).
    pub(crate) fn free_space(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.data[self.end..]
    }

    /// `n` bytes were written into `free_space()`.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// Drops the first `n` unconsumed bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.data
    }

    /// The buffer with the range of its unconsumed bytes.
    pub(crate) fn into_parts(self) -> (Vec<u8>, usize, usize) {
        (self.data, self.start, self.end)
    }
}

/// An outgoing byte sequence with how much of it was written.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    data: Option<Vec<u8>>,
    written: usize,
    /// Keep the bytes once written, so that they can be sent again.
    keep: bool,
}

impl Outgoing {
    /// The bytes not written yet.
    pub(crate) fn pending(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], |d| &d[self.written..])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }

    /// A cleared buffer to append to (taken from `buffers` when none is held).
    pub(crate) fn fill(&mut self, buffers: &mut dyn BufferSource) -> &mut Vec<u8> {
        self.data.get_or_insert_with(|| buffers.take_empty())
    }

    /// Appends `bytes` if the buffer held has room for them without growing; says
    /// whether it did.
    pub(crate) fn append_in_place(&mut self, bytes: &[u8]) -> bool {
        match &mut self.data {
            Some(data) if data.capacity() - data.len() >= bytes.len() => {
                data.extend_from_slice(bytes);
                true
            }
            _ => false,
        }
    }

    /// `n` bytes were written; the buffer goes back once all are (unless kept).
    pub(crate) fn written(&mut self, n: usize, buffers: &mut dyn BufferSource) {
        self.written += n;
        if self.pending().is_empty() && !self.keep {
            self.release(buffers);
        }
    }

    /// Holds the bytes after they are written, until [`Outgoing::rewind`] or
    /// [`Outgoing::stop_keeping`].
    pub(crate) fn keep_after_write(&mut self) {
        self.keep = self.data.is_some();
    }

    /// Makes every kept byte pending again (to send them on another connection).
    pub(crate) fn rewind(&mut self) {
        self.written = 0;
        self.keep = false;
    }

    /// The bytes need not be kept any more: the buffer goes back once written.
    pub(crate) fn stop_keeping(&mut self, buffers: &mut dyn BufferSource) {
        if self.keep {
            self.keep = false;
            if self.pending().is_empty() {
                self.release(buffers);
            }
        }
    }

    pub(crate) fn release(&mut self, buffers: &mut dyn BufferSource) {
        if let Some(buffer) = self.data.take() {
            buffers.give(buffer);
        }
        self.written = 0;
        self.keep = false;
    }
}
