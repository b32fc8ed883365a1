//! An incremental scanner of chunked bodies (RFC 9112 §7.1).
//!
//! Sluice forwards chunked bodies unchanged; the scanner only follows them so the
//! session knows where the body ends (the bytes after it belong to the next
//! message) and refuses malformed framing before it reaches the other side. It
//! keeps its whole state between calls, so the input may be split anywhere.

use thiserror::Error;

/// Longest chunk extension accepted (bytes after the size, before CRLF).
pub const MAX_EXTENSION_LEN: usize = 4096;
/// Longest trailer section accepted.
pub const MAX_TRAILERS_LEN: usize = 16 * 1024;

/// Why a chunked body was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk size with no hex digit or a byte that is not hex.
    #[error("invalid chunk size")]
    InvalidSize,
    /// A chunk size over 64 bits.
    #[error("chunk size overflows")]
    SizeOverflow,
    /// Something other than CRLF where CRLF must be.
    #[error("missing CRLF in chunked body")]
    MissingCrlf,
    /// LF without CR.
    #[error("bare LF in chunked body")]
    BareLf,
    /// A control byte in an extension or trailer.
    #[error("control byte in chunk extension or trailer")]
    ControlByte,
    /// An extension over [`MAX_EXTENSION_LEN`].
    #[error("chunk extension too long")]
    ExtensionTooLong,
    /// Trailers over [`MAX_TRAILERS_LEN`].
    #[error("trailer section too long")]
    TrailersTooLong,
}

/// Outcome of one [`ChunkedScanner::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkProgress {
    /// How many of the fed bytes belong to the body.
    pub consumed: usize,
    /// The body ended within them (the final CRLF was consumed).
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a size.
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the digits, before `;` or CR.
    SizeSpace,
    /// Inside an extension, until CR.
    Extension,
    /// CR of the size line seen, LF expected.
    SizeLf,
    /// Chunk data, `remaining` bytes left.
    Data,
    /// After the data, CR expected.
    DataCr,
    /// After the data's CR, LF expected.
    DataLf,
    /// Start of a trailer line or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field line, until CR.
    TrailerLine,
    /// CR of a trailer line seen, LF expected.
    TrailerLf,
    /// CR of the final empty line seen, LF expected.
    FinalLf,
    /// The body ended.
    Done,
}

/// Follows one chunked body across arbitrary splits.
#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    state: State,
    /// Size being parsed, then bytes of data left.
    remaining: u64,
    /// Bytes in the current extension or trailer section.
    run: usize,
    /// Sum of the chunk sizes announced so far.
    data_len: u64,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedScanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        ChunkedScanner {
            state: State::SizeStart,
            remaining: 0,
            run: 0,
            data_len: 0,
        }
    }

    /// Whether the whole body was seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Sum of the chunk sizes announced so far (counted once a size line
    /// ends, before its data arrives), so a body limit can refuse a chunk that
    /// would cross it without waiting for its bytes.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Follows `input`; stops at the end of the body. After an error the scanner
    /// must not be fed again.
    pub fn feed(&mut self, input: &[u8]) -> Result<ChunkProgress, ChunkError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                i += take;
                // `take` never exceeds `remaining` (it is its minimum with the rest).
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(ChunkProgress {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::SizeStart => {
                self.remaining = u64::from(hex_value(b).ok_or(ChunkError::InvalidSize)?);
                State::Size
            }
            State::Size => match hex_value(b) {
                Some(digit) => {
                    self.remaining = self
                        .remaining
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(u64::from(digit)))
                        .ok_or(ChunkError::SizeOverflow)?;
                    State::Size
                }
                None => self.after_size(b)?,
            },
            State::SizeSpace => self.after_size(b)?,
            State::Extension => match b {
                b'\r' => State::SizeLf,
                b'\n' => return Err(ChunkError::BareLf),
                _ => {
                    check_text(b)?;
                    self.run += 1;
                    if self.run > MAX_EXTENSION_LEN {
                        return Err(ChunkError::ExtensionTooLong);
                    }
                    State::Extension
                }
            },
            State::SizeLf => {
                expect_lf(b)?;
                self.run = 0;
                self.data_len = self.data_len.saturating_add(self.remaining);
                if self.remaining == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                }
            }
            State::Data => State::Data,
            State::DataCr => match b {
                b'\r' => State::DataLf,
                b'\n' => return Err(ChunkError::BareLf),
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::DataLf => {
                expect_lf(b)?;
                State::SizeStart
            }
            State::TrailerStart => match b {
                b'\r' => State::FinalLf,
                _ => self.trailer_byte(b)?,
            },
            State::TrailerLine => match b {
                b'\r' => State::TrailerLf,
                _ => self.trailer_byte(b)?,
            },
            State::TrailerLf => {
                expect_lf(b)?;
                self.count_trailer()?;
                State::TrailerStart
            }
            State::FinalLf => {
                expect_lf(b)?;
                State::Done
            }
            State::Done => State::Done,
        };
        Ok(())
    }

    fn after_size(&mut self, b: u8) -> Result<State, ChunkError> {
        match b {
            b' ' | b'\t' => Ok(State::SizeSpace),
            b';' => {
                self.run = 0;
                Ok(State::Extension)
            }
            b'\r' => Ok(State::SizeLf),
            b'\n' => Err(ChunkError::BareLf),
            _ => Err(ChunkError::InvalidSize),
        }
    }

    fn trailer_byte(&mut self, b: u8) -> Result<State, ChunkError> {
        if b == b'\n' {
            return Err(ChunkError::BareLf);
        }
        check_text(b)?;
        self.count_trailer()?;
        Ok(State::TrailerLine)
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.run += 1;
        if self.run > MAX_TRAILERS_LEN {
            return Err(ChunkError::TrailersTooLong);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn expect_lf(b: u8) -> Result<(), ChunkError> {
    if b == b'\n' {
        Ok(())
    } else {
        Err(ChunkError::MissingCrlf)
    }
}

/// Field text: HTAB, visible ASCII, SP and obs-text; no other control byte.
fn check_text(b: u8) -> Result<(), ChunkError> {
    if b == b'\t' || (b >= 0x20 && b != 0x7f) {
        Ok(())
    } else {
        Err(ChunkError::ControlByte)
    }
}

#[cfg(test)]
mod tests;
