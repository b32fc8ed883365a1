//! The one error type of the configuration: where the problem is (file, line,
//! column, key path) and what would have been valid.

use std::{io, path::PathBuf};

/// Why a configuration could not be loaded.
///
/// Every variant that points into the file displays as
/// `FILE:LINE:COLUMN: KEY.PATH: message`, the format compilers use, so that
/// editors and terminals can jump to the spot. Lines and columns start at 1;
/// columns count characters, not bytes.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file itself could not be read.
    #[error("{file}: cannot read the configuration file: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The text is not valid TOML.
    #[error("{file}:{line}:{column}: invalid TOML: {message}")]
    Syntax {
        /// File name as shown in messages.
        file: String,
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// A key or value is not valid for Sluice.
    #[error("{file}:{line}:{column}: {key}: {message}")]
    Invalid {
        /// File name as shown in messages.
        file: String,
        /// Line of the offending key or value, from 1.
        line: usize,
        /// Column of the offending key or value, from 1.
        column: usize,
        /// Path of the key, like `clusters.demo.backends[1].weight`.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A file named by the configuration (an answer) could not be read.
    #[error("{file}:{line}:{column}: {key}: cannot read {}: {source}", path.display())]
    ReadReferenced {
        /// File name as shown in messages.
        file: String,
        /// Line of the path value, from 1.
        line: usize,
        /// Column of the path value, from 1.
        column: usize,
        /// Path of the key that names the file.
        key: String,
        /// The file that could not be read, resolved against the config's folder.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl ConfigError {
    /// Line and column (from 1) of the problem, when it is inside the file.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, column, .. }
            | ConfigError::Invalid { line, column, .. }
            | ConfigError::ReadReferenced { line, column, .. } => Some((*line, *column)),
        }
    }

    /// The key path of the problem, like `listeners[0].address`.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } | ConfigError::ReadReferenced { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }
}

/// Line and column (both from 1, column in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
