//! Typed reading of the spanned tree: every accessor knows the key path and
//! the position of what it reads, so that each refusal becomes a precise
//! [`ConfigError`] saying what would have been valid.

use std::{
    net::SocketAddr,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    duration::parse_duration,
    error::{line_column, ConfigError},
    node::{Entry, Node, NodeKind, Span},
    size::parse_size,
};

/// The text being read, its name in messages and the folder relative paths
/// start from.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) base_dir: &'a Path,
}

impl Source<'_> {
    /// An error at `span`, about the key at `key`.
    pub(crate) fn invalid(&self, span: &Span, key: &str, message: String) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message,
        }
    }

    /// A path from the file, made absolute against the config's folder.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// One value of the file and its key path.
#[derive(Clone)]
pub(crate) struct Field<'a> {
    src: &'a Source<'a>,
    path: String,
    node: &'a Node,
}

impl<'a> Field<'a> {
    /// The root table of a document.
    pub(crate) fn root(src: &'a Source<'a>, node: &'a Node) -> Self {
        Field {
            src,
            path: String::new(),
            node,
        }
    }

    /// The key path, like `clusters.demo.backends[0].weight`.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Where the value was written.
    pub(crate) fn span(&self) -> &'a Span {
        &self.node.span
    }

    /// The source this value was read from.
    pub(crate) fn source(&self) -> &'a Source<'a> {
        self.src
    }

    /// `FILE:LINE:COLUMN: KEY.PATH`, where the value was written, for messages
    /// about it given after the file was read.
    pub(crate) fn location(&self) -> String {
        let (line, column) = super::error::line_column(self.src.text, self.node.span.start);
        format!("{}:{line}:{column}: {}", self.src.file, self.path)
    }

    /// An error pointing at this value.
    pub(crate) fn error(&self, message: impl Into<String>) -> ConfigError {
        self.src
            .invalid(&self.node.span, &self.path, message.into())
    }

    fn wrong_type(&self, expected: &str) -> ConfigError {
        self.error(format!(
            "found {}, expected {expected}",
            self.node.kind.describe()
        ))
    }

    /// A string.
    pub(crate) fn str(&self) -> Result<&'a str, ConfigError> {
        match &self.node.kind {
            NodeKind::String(s) => Ok(s),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// A string checked and normalised by `check`, whose error message is
    /// reported at this value.
    pub(crate) fn str_with<T>(
        &self,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        check(self.str()?).map_err(|message| self.error(message))
    }

    /// A boolean.
    pub(crate) fn bool(&self) -> Result<bool, ConfigError> {
        match &self.node.kind {
            NodeKind::Boolean(b) => Ok(*b),
            _ => Err(self.wrong_type("true or false")),
        }
    }

    /// A whole number within `range`.
    pub(crate) fn uint_in(&self, range: RangeInclusive<u64>) -> Result<u64, ConfigError> {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        let NodeKind::Integer(value) = self.node.kind else {
            return Err(self.wrong_type(&expected));
        };
        super::validate::number_in(i128::from(value), range).map_err(|message| self.error(message))
    }

    /// A `u32` within `range`.
    pub(crate) fn u32_in(&self, range: RangeInclusive<u32>) -> Result<u32, ConfigError> {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        let value = self.uint_in(wide)?;
        // In range, hence it fits.
        Ok(u32::try_from(value).unwrap_or(u32::MAX))
    }

    /// A `usize` within `range`.
    pub(crate) fn usize_in(&self, range: RangeInclusive<usize>) -> Result<usize, ConfigError> {
        let wide = *range.start() as u64..=*range.end() as u64;
        let value = self.uint_in(wide)?;
        // In range, hence it fits.
        Ok(usize::try_from(value).unwrap_or(usize::MAX))
    }

    /// One of a fixed set of names.
    pub(crate) fn choice<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, ConfigError> {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let expected = format!("one of {}", names.join(", "));
        let value = self.str().map_err(|_| self.wrong_type(&expected))?;
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| self.error(format!("unknown value {value:?}, expected {expected}")))
    }

    /// A duration string within `range`.
    pub(crate) fn duration_in(
        &self,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, ConfigError> {
        let text = self
            .str()
            .map_err(|_| self.wrong_type("a duration string like \"5s\""))?;
        let duration = parse_duration(text).map_err(|e| self.error(e.to_string()))?;
        // Written back in its canonical form, as a duration from ctl or a state file is, so
        // that every source refuses it with the same words.
        let canonical = super::duration::format_duration(duration);
        super::validate::duration_in(&canonical, duration, &range)
            .map_err(|message| self.error(message))
    }

    /// A size in bytes: a whole number, or a string like `"10m"`.
    pub(crate) fn size(&self) -> Result<u64, ConfigError> {
        const EXPECTED: &str = "a size like \"10m\" or a whole number of bytes";
        match &self.node.kind {
            NodeKind::Integer(value) => u64::try_from(*value)
                .map_err(|_| self.error(format!("{value} is out of range, expected {EXPECTED}"))),
            NodeKind::String(text) => parse_size(text).map_err(|e| self.error(e.to_string())),
            _ => Err(self.wrong_type(EXPECTED)),
        }
    }

    /// An `IP:PORT` socket address with a fixed (non-zero) port.
    pub(crate) fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        let text = self.str()?;
        let address: SocketAddr = text.parse().map_err(|_| {
            self.error(format!(
                "invalid socket address {text:?}, expected IP:PORT like 127.0.0.1:8080 or [::1]:8080"
            ))
        })?;
        if address.port() == 0 {
            return Err(self.error(format!(
                "port 0 in {text:?} is not allowed, expected a fixed port like 127.0.0.1:8080"
            )));
        }
        Ok(address)
    }

    /// The elements of an array, each with its indexed key path.
    pub(crate) fn array(&self) -> Result<Vec<Field<'a>>, ConfigError> {
        let NodeKind::Array(items) = &self.node.kind else {
            return Err(self.wrong_type("an array"));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(index, node)| Field {
                src: self.src,
                path: format!("{}[{index}]", self.path),
                node,
            })
            .collect())
    }

    /// A table with named keys: any key outside `known` is refused.
    pub(crate) fn table(&self, known: &'static [&'static str]) -> Result<Table<'a>, ConfigError> {
        let table = self.map()?;
        if let Some(entry) = table
            .entries
            .iter()
            .find(|e| !known.contains(&e.key.as_str()))
        {
            let key = child_path(&self.path, &entry.key);
            let message = format!("unknown key, expected one of {}", known.join(", "));
            return Err(self.src.invalid(&entry.key_span, &key, message));
        }
        Ok(table)
    }

    /// A table whose keys are names chosen by the user (clusters, answers).
    pub(crate) fn map(&self) -> Result<Table<'a>, ConfigError> {
        match &self.node.kind {
            NodeKind::Table(entries) => Ok(Table {
                field: self.clone(),
                entries,
            }),
            _ => Err(self.wrong_type("a table")),
        }
    }
}

/// A table being read.
pub(crate) struct Table<'a> {
    field: Field<'a>,
    entries: &'a [Entry],
}

impl<'a> Table<'a> {
    /// The value at `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<Field<'a>> {
        let entry = self.entries.iter().find(|e| e.key == key)?;
        Some(self.child(entry))
    }

    /// The value at `key`, which must be present.
    pub(crate) fn require(&self, key: &str) -> Result<Field<'a>, ConfigError> {
        self.get(key)
            .ok_or_else(|| self.field.error(format!("missing key \"{key}\"")))
    }

    /// Every entry as (key, where the key was written, value).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, &'a Span, Field<'a>)> + '_ {
        self.entries
            .iter()
            .map(|entry| (entry.key.as_str(), &entry.key_span, self.child(entry)))
    }

    /// The table itself as a field.
    pub(crate) fn field(&self) -> &Field<'a> {
        &self.field
    }

    fn child(&self, entry: &'a Entry) -> Field<'a> {
        Field {
            src: self.field.src,
            path: child_path(&self.field.path, &entry.key),
            node: &entry.value,
        }
    }
}

/// `parent.key`, quoting keys that TOML would need quoted.
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}
