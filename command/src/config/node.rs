//! A TOML document as an owned tree whose every key and value remembers where
//! it was written, so that any later check can point at the exact line and
//! column. Built once from the `toml` crate's span-preserving document parser
//! (`toml::de::DeTable`, which borrows from the text and keeps keys in file
//! order); the rest of the config module reads only this tree.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A byte range in the source text.
pub(crate) type Span = Range<usize>;

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) span: Span,
    pub(crate) kind: NodeKind,
}

/// The shape of a value.
#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    String(String),
    Integer(i64),
    Float,
    Boolean(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One `key = value` of a table, in document order.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_span: Span,
    pub(crate) value: Node,
}

impl NodeKind {
    /// The name of the shape, with its article, for "found …" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            NodeKind::String(_) => "a string",
            NodeKind::Integer(_) => "an integer",
            NodeKind::Float => "a float",
            NodeKind::Boolean(_) => "a boolean",
            NodeKind::Datetime => "a date-time",
            NodeKind::Array(_) => "an array",
            NodeKind::Table(_) => "a table",
        }
    }
}

/// Why a text is not TOML, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Where the parser stopped (the start of the text when it does not say).
    pub(crate) span: Span,
    /// What it expected, possibly over several lines.
    pub(crate) message: String,
}

/// Parses `text` into a tree. The root table spans the first byte.
pub(crate) fn parse_document(text: &str) -> Result<Node, SyntaxError> {
    let document = DeTable::parse(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        let mut message = error.message().to_owned();
        // The parser does not name the key it found twice; its span does.
        if message == "duplicate key" {
            if let Some(key) = text.get(span.clone()) {
                message = format!("duplicate key `{key}`");
            }
        }
        SyntaxError { span, message }
    })?;
    Ok(Node {
        span: 0..0,
        kind: NodeKind::Table(table_entries(document.get_ref())?),
    })
}

fn table_entries(table: &DeTable<'_>) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table.iter() {
        entries.push(Entry {
            key: key.get_ref().as_ref().to_owned(),
            key_span: key.span(),
            value: value_node(value)?,
        });
    }
    Ok(entries)
}

fn value_node(value: &Spanned<DeValue<'_>>) -> Result<Node, SyntaxError> {
    let span = value.span();
    let kind = match value.get_ref() {
        DeValue::String(s) => NodeKind::String(s.as_ref().to_owned()),
        DeValue::Integer(integer) => match i64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(value) => NodeKind::Integer(value),
            Err(_) => {
                return Err(SyntaxError {
                    span,
                    message: format!("integer {} does not fit in 64 bits", &integer.as_str()),
                })
            }
        },
        DeValue::Float(_) => NodeKind::Float,
        DeValue::Boolean(b) => NodeKind::Boolean(*b),
        DeValue::Datetime(_) => NodeKind::Datetime,
        DeValue::Array(array) => NodeKind::Array(
            array
                .iter()
                .map(value_node)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        DeValue::Table(table) => NodeKind::Table(table_entries(table)?),
    };
    Ok(Node { span, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(node: &'a Node, key: &str) -> &'a Entry {
        match &node.kind {
            NodeKind::Table(entries) => entries.iter().find(|e| e.key == key).expect(key),
            other => panic!("not a table: {other:?}"),
        }
    }

    #[test]
    fn keys_and_values_keep_their_spans() {
        let text = "a = 1\n[t.u]\nb = \"x\"\n[[l]]\nc = { d = true }\n";
        let root = parse_document(text).expect("valid TOML");
        let a = entry(&root, "a");
        assert_eq!(&text[a.key_span.clone()], "a");
        assert_eq!(&text[a.value.span.clone()], "1");
        let u = entry(&entry(&root, "t").value, "u");
        let b = entry(&u.value, "b");
        assert_eq!(&text[b.value.span.clone()], "\"x\"");
        let NodeKind::Array(items) = &entry(&root, "l").value.kind else {
            panic!("l is an array of tables");
        };
        let d = entry(&entry(&items[0], "c").value, "d");
        assert_eq!(&text[d.key_span.clone()], "d");
        assert_eq!(&text[d.value.span.clone()], "true");
    }
}
