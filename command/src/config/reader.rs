//! Typed reading of the spanned tree: every accessor knows the key path and
//! the position of what it reads, so that each refusal becomes a precise
//! [`ConfigError`] saying what would have been valid.

use std::{
    net::SocketAddr,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    rc::Rc,
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
    path: KeyPath<'a>,
    node: &'a Node,
}

/// How many steps a [`KeyPath`] keeps without writing itself out: deeper than
/// any key the configuration knows.
const INLINE_STEPS: usize = 8;

/// A key path such as `clusters.demo.backends[0].weight`, kept as its steps and
/// written out only when a message needs it: reading a file of 10 000 clusters
/// no longer formats the path of every value it reads.
#[derive(Clone)]
pub(crate) enum KeyPath<'a> {
    /// The steps from the root, the first `len` of `steps`.
    Steps {
        steps: [Step<'a>; INLINE_STEPS],
        len: usize,
    },
    /// A path deeper than that, written out.
    Written(Rc<str>),
}

/// One step of a key path.
#[derive(Clone, Copy)]
pub(crate) enum Step<'a> {
    /// A table's key.
    Key(&'a str),
    /// An array's element.
    Index(usize),
}

impl<'a> KeyPath<'a> {
    /// The root's (empty) path.
    fn root() -> Self {
        KeyPath::Steps {
            steps: [Step::Index(0); INLINE_STEPS],
            len: 0,
        }
    }

    /// This path, one step further.
    fn then(&self, step: Step<'a>) -> Self {
        match self {
            KeyPath::Steps { steps, len } if *len < INLINE_STEPS => {
                let mut steps = *steps;
                steps[*len] = step;
                KeyPath::Steps {
                    steps,
                    len: len + 1,
                }
            }
            _ => {
                let mut written = self.to_string();
                write_step(&mut written, step);
                KeyPath::Written(written.into())
            }
        }
    }
}

impl std::fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPath::Steps { steps, len } => {
                let mut written = String::new();
                for step in &steps[..*len] {
                    write_step(&mut written, *step);
                }
                f.write_str(&written)
            }
            KeyPath::Written(written) => f.write_str(written),
        }
    }
}

/// Appends `step` to the path written in `path`.
fn write_step(path: &mut String, step: Step<'_>) {
    match step {
        Step::Key(key) => path.push_str(&child_path(path, key)[path.len()..]),
        Step::Index(index) => {
            use std::fmt::Write;
            let _ = write!(path, "[{index}]");
        }
    }
}

impl<'a> Field<'a> {
    /// The root table of a document.
    pub(crate) fn root(src: &'a Source<'a>, node: &'a Node) -> Self {
        Field {
            src,
            path: KeyPath::root(),
            node,
        }
    }

    /// The key path, like `clusters.demo.backends[0].weight`.
    pub(crate) fn path(&self) -> String {
        self.path.to_string()
    }

    /// The key path, written out only when displayed.
    pub(crate) fn key_path(&self) -> KeyPath<'a> {
        self.path.clone()
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
            .invalid(&self.node.span, &self.path(), message.into())
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
                path: self.path.then(Step::Index(index)),
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
            let key = self.path.then(Step::Key(&entry.key)).to_string();
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
            path: self.field.path.then(Step::Key(&entry.key)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of<'a>(steps: &[Step<'a>]) -> KeyPath<'a> {
        steps
            .iter()
            .fold(KeyPath::root(), |path, step| path.then(*step))
    }

    #[test]
    fn a_key_path_is_written_as_toml_keys_and_indexes() {
        let path = path_of(&[
            Step::Key("clusters"),
            Step::Key("web"),
            Step::Key("backends"),
            Step::Index(1),
            Step::Key("weight"),
        ]);
        assert_eq!(path.to_string(), "clusters.web.backends[1].weight");
        let quoted = path_of(&[Step::Key("clusters"), Step::Key("a b"), Step::Key("")]);
        assert_eq!(quoted.to_string(), "clusters.\"a b\".\"\"");
        assert_eq!(KeyPath::root().to_string(), "");
    }

    #[test]
    fn a_path_deeper_than_its_inline_steps_is_written_the_same() {
        let keys: Vec<String> = (0..INLINE_STEPS + 4).map(|i| format!("k{i}")).collect();
        let mut steps: Vec<Step<'_>> = keys.iter().map(|key| Step::Key(key)).collect();
        steps.insert(3, Step::Index(7));
        let expected = "k0.k1.k2[7].k3.k4.k5.k6.k7.k8.k9.k10.k11";
        assert_eq!(path_of(&steps).to_string(), expected);
        assert!(matches!(path_of(&steps), KeyPath::Written(_)));
    }
}
