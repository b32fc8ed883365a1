//! Saving a state as requests, one JSON object per line, and loading it back.
//!
//! The format is the list of [`ConfigState::generate_requests`], each
//! serialized with the protocol types' serde representation, so that a saved
//! state is replayed exactly as a worker is fed. Blank lines are ignored.

use std::io::{BufRead, Write};

use super::{ConfigState, StateError};
use crate::proto;

impl ConfigState {
    /// Writes the state as one JSON request per line.
    pub fn save(&self, mut writer: impl Write) -> Result<(), StateError> {
        for request in self.generate_requests() {
            serde_json::to_writer(&mut writer, &request).map_err(StateError::Save)?;
            writer.write_all(b"\n")?;
        }
        writer.flush()?;
        Ok(())
    }

    /// Reads a state written by [`ConfigState::save`]. Errors name the line.
    /// A file without any request (0 bytes, or blank lines only) is an
    /// error: a truncated file must never read as an empty state.
    pub fn load(reader: impl BufRead) -> Result<ConfigState, StateError> {
        let mut state = ConfigState::new();
        let mut requests = 0usize;
        for (index, line) in reader.lines().enumerate() {
            let line_number = index + 1;
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let request: proto::Request =
                serde_json::from_str(&line).map_err(|source| StateError::Parse {
                    line: line_number,
                    source,
                })?;
            state.apply(&request).map_err(|source| StateError::Replay {
                line: line_number,
                source: Box::new(source),
            })?;
            requests += 1;
        }
        if requests == 0 {
            return Err(StateError::EmptyStateFile);
        }
        Ok(state)
    }
}
