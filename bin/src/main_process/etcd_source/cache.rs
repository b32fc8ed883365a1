//! The local cache of the last applied etcd state: its revision and the document of every
//! applied key, as JSON. Written after each applied batch to a temporary file renamed over
//! the cache, so that a crash leaves the old cache or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    /// The file could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a cache this version wrote.
    #[error("{path}: not an etcd cache: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// What the cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cached {
    /// The etcd revision of these documents.
    pub(crate) revision: i64,
    /// Key → document.
    pub(crate) documents: BTreeMap<String, String>,
}

/// Writes `cached` to `path` atomically.
pub(crate) fn write(path: &Path, cached: &Cached) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let body = json!({ "revision": cached.revision, "documents": cached.documents });
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary).map_err(io)?;
    file.write_all(body.to_string().as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// Reads the cache at `path`; `Ok(None)` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Cached>, CacheError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let invalid = |reason: &str| CacheError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(&e.to_string()))?;
    let revision = value["revision"]
        .as_i64()
        .ok_or_else(|| invalid("no revision"))?;
    let documents = value["documents"]
        .as_object()
        .ok_or_else(|| invalid("no documents"))?
        .iter()
        .map(|(key, document)| {
            document
                .as_str()
                .map(|text| (key.clone(), text.to_owned()))
                .ok_or_else(|| invalid("a document is not a string"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(Cached {
        revision,
        documents,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_cache_reads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("etcd.cache");
        assert_eq!(read(&path).expect("no cache yet"), None);
        let mut cached = Cached {
            revision: 7,
            documents: BTreeMap::from([("/sluice/clusters/a".into(), "weight = 1\n".into())]),
        };
        write(&path, &cached).expect("written");
        cached.revision = 8;
        write(&path, &cached).expect("written again");
        assert_eq!(read(&path).expect("read"), Some(cached));
        assert!(!dir.path().join("etcd.cache.tmp").exists());
    }

    #[test]
    fn a_damaged_cache_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("etcd.cache");
        std::fs::write(&path, "{\"revision\": 3").expect("written");
        let error = read(&path).expect_err("truncated");
        assert!(error.to_string().contains("etcd.cache"), "{error}");
    }
}
