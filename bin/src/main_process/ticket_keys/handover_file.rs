//! The ticket keys an upgrading main process hands to the new one, in a private file.
//!
//! Keys are secrets: they do not travel in the environment (`/proc/PID/environ` is
//! readable by other tools of the same user). The old main writes them to a file of mode
//! 0600 next to the handed-over state file and names it in the handover variable
//! (`ticket_keys=PATH`, see `handover`); the new main opens it, deletes it at once and
//! reads it. The file is text, one `key=value` per line:
//!
//! ```text
//! # sluice TLS ticket keys
//! age_ms=3600000
//! current=<64 hex digits>
//! previous=<64 hex digits>
//! ```
//!
//! - `age_ms`: how old the current key is, in milliseconds, so that the new main rotates
//!   it when the old one would have ([`TicketKeys::next_rotation`] keeps its schedule);
//! - `current`: the key that encrypts new tickets;
//! - `previous`: the key before it, if any (it still decrypts).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{TicketKey, TicketKeys, KEY_LEN};

/// The first line of the file.
const HEADER: &str = "# sluice TLS ticket keys";

/// Why a ticket keys file cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeysFileError {
    /// The file cannot be opened, removed or read.
    #[error("cannot read the ticket keys file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not `key=value` with a known key and a valid value.
    #[error("invalid line in the ticket keys file: {0:?}")]
    Invalid(String),
    /// A required key is missing.
    #[error("no {0} in the ticket keys file")]
    Missing(&'static str),
}

impl TicketKeys {
    /// The file's text for these keys, their age counted at `now`.
    pub(crate) fn encode_for_handover(&self, now: Instant) -> String {
        let age = now.saturating_duration_since(self.made_at);
        let mut text = format!(
            "{HEADER}\nage_ms={}\ncurrent={}\n",
            age.as_millis(),
            hex(&self.current)
        );
        if let Some(previous) = &self.previous {
            text.push_str(&format!("previous={}\n", hex(previous)));
        }
        text
    }

    /// Reads the file's text; the current key is as old at `now` as it was when written.
    pub(crate) fn decode_from_handover(text: &str, now: Instant) -> Result<Self, KeysFileError> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(KeysFileError::Missing("header line"));
        }
        let (mut age, mut current, mut previous) = (None, None, None);
        for line in lines.filter(|line| !line.is_empty()) {
            let invalid = || KeysFileError::Invalid(redacted(line));
            let (key, value) = line.split_once('=').ok_or_else(invalid)?;
            match key {
                "age_ms" if age.is_none() => {
                    age = Some(Duration::from_millis(value.parse().map_err(|_| invalid())?));
                }
                "current" if current.is_none() => current = Some(unhex(value).ok_or_else(invalid)?),
                "previous" if previous.is_none() => {
                    previous = Some(unhex(value).ok_or_else(invalid)?);
                }
                _ => return Err(invalid()),
            }
        }
        let age = age.ok_or(KeysFileError::Missing("age_ms"))?;
        Ok(TicketKeys {
            current: current.ok_or(KeysFileError::Missing("current"))?,
            previous,
            // A monotonic clock older than the key cannot be: fall back to `now` rather
            // than fail.
            made_at: now.checked_sub(age).unwrap_or(now),
        })
    }
}

/// Writes `keys` to a new file at `path`, readable by this user only (mode 0600).
pub(crate) fn write(path: &Path, keys: &TicketKeys, now: Instant) -> std::io::Result<()> {
    let mut file = crate::main_process::handover::create_private(path)?;
    file.write_all(keys.encode_for_handover(now).as_bytes())
}

/// Opens the file at `path`, deletes it at once, and reads the keys from it.
pub(crate) fn take(path: &Path, now: Instant) -> Result<TicketKeys, KeysFileError> {
    let io = |source| KeysFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    std::fs::remove_file(path).map_err(io)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    TicketKeys::decode_from_handover(&text, now)
}

fn hex(key: &TicketKey) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<TicketKey> {
    if text.len() != 2 * KEY_LEN || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(key)
}

/// A line for an error message, without the secret it may hold.
fn redacted(line: &str) -> String {
    match line.split_once('=') {
        Some((key @ ("current" | "previous"), value)) => {
            format!("{key}=<{} characters>", value.len())
        }
        _ => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ROTATION_PERIOD;
    use super::*;

    fn keys_made(at: Instant, previous: Option<TicketKey>) -> TicketKeys {
        TicketKeys {
            current: [0xab; KEY_LEN],
            previous,
            made_at: at,
        }
    }

    #[test]
    fn keys_read_back_with_their_age() {
        let made = Instant::now();
        let written_at = made + Duration::from_secs(3600);
        let keys = keys_made(made, Some([0x01; KEY_LEN]));
        let text = keys.encode_for_handover(written_at);
        assert_eq!(
            text,
            format!(
                "{HEADER}\nage_ms=3600000\ncurrent={}\nprevious={}\n",
                "ab".repeat(KEY_LEN),
                "01".repeat(KEY_LEN)
            )
        );
        // Read a little later: the key is as old as it was, not newer.
        let read_at = written_at + Duration::from_millis(250);
        let read = TicketKeys::decode_from_handover(&text, read_at).expect("valid");
        assert_eq!(read.keys(), keys.keys());
        assert_eq!(read.made_at, made + Duration::from_millis(250));
        assert_eq!(
            read.next_rotation(),
            made + Duration::from_millis(250) + ROTATION_PERIOD
        );
    }

    #[test]
    fn a_single_key_reads_back_without_a_previous_one() {
        let now = Instant::now();
        let keys = keys_made(now, None);
        let read =
            TicketKeys::decode_from_handover(&keys.encode_for_handover(now), now).expect("valid");
        assert_eq!(read.keys(), vec![[0xab; KEY_LEN]]);
        assert_eq!(read.made_at, now);
    }

    #[test]
    fn broken_files_say_what_is_wrong_without_showing_a_key() {
        let now = Instant::now();
        let key = "ab".repeat(KEY_LEN);
        let cases = [
            (String::new(), "no header line"),
            (format!("{HEADER}\ncurrent={key}\n"), "no age_ms"),
            (format!("{HEADER}\nage_ms=5\n"), "no current"),
            (
                format!("{HEADER}\nage_ms=five\ncurrent={key}\n"),
                "\"age_ms=five\"",
            ),
            (
                format!("{HEADER}\nage_ms=5\ncurrent={}\n", &key[2..]),
                "\"current=<62 characters>\"",
            ),
            (
                format!("{HEADER}\nage_ms=5\ncurrent={}zz\n", &key[2..]),
                "\"current=<64 characters>\"",
            ),
            (
                format!("{HEADER}\nage_ms=5\ncurrent={key}\ncurrent={key}\n"),
                "\"current=<64 characters>\"",
            ),
            (format!("{HEADER}\nage_ms=5\nnext=1\n"), "\"next=1\""),
        ];
        for (text, expected) in cases {
            let error = TicketKeys::decode_from_handover(&text, now)
                .expect_err(&text)
                .to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains(&key[..16]), "{error}");
        }
    }

    #[test]
    fn the_file_is_private_and_gone_once_taken() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys");
        let now = Instant::now();
        let keys = keys_made(now, Some([0x02; KEY_LEN]));
        write(&path, &keys, now).expect("written");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let taken = take(&path, now).expect("taken");
        assert_eq!(taken.keys(), keys.keys());
        assert!(!path.exists());
        assert!(matches!(take(&path, now), Err(KeysFileError::Io { .. })));
    }
}
