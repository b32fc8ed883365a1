//! A TOML document as an owned tree whose every key and value remembers where
//! it was written, so that any later check can point at the exact line and
//! column. Built once from `toml_edit`'s span-preserving parser; the rest of
//! the config module reads only this tree.

use std::ops::Range;

use toml_edit::{ArrayOfTables, ImDocument, InlineTable, Item, Table, Value};

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

/// Parses `text` into a tree. The root table spans the first byte.
pub(crate) fn parse_document(text: &str) -> Result<Node, toml_edit::TomlError> {
    let document = ImDocument::parse(text)?;
    Ok(Node {
        span: 0..0,
        kind: NodeKind::Table(table_entries(document.as_table(), &(0..0))),
    })
}

fn table_entries(table: &Table, fallback: &Span) -> Vec<Entry> {
    table
        .iter()
        .filter_map(|(key, item)| {
            let key_span = table
                .key(key)
                .and_then(|k| k.span())
                .unwrap_or_else(|| fallback.clone());
            let value = item_node(item, &key_span)?;
            Some(Entry {
                key: key.to_owned(),
                key_span,
                value,
            })
        })
        .collect()
}

fn inline_entries(table: &InlineTable, fallback: &Span) -> Vec<Entry> {
    table
        .iter()
        .map(|(key, value)| {
            let key_span = table
                .key(key)
                .and_then(|k| k.span())
                .unwrap_or_else(|| fallback.clone());
            let value = value_node(value, &key_span);
            Entry {
                key: key.to_owned(),
                key_span,
                value,
            }
        })
        .collect()
}

/// Implicit tables (`clusters` in `[clusters.demo]`) have no span of their
/// own: they point at the key that created them instead.
fn item_node(item: &Item, fallback: &Span) -> Option<Node> {
    let span = item.span().unwrap_or_else(|| fallback.clone());
    let kind = match item {
        Item::None => return None,
        Item::Value(value) => return Some(value_node(value, fallback)),
        Item::Table(table) => NodeKind::Table(table_entries(table, &span)),
        Item::ArrayOfTables(tables) => NodeKind::Array(array_of_tables(tables, &span)),
    };
    Some(Node { span, kind })
}

fn array_of_tables(tables: &ArrayOfTables, fallback: &Span) -> Vec<Node> {
    tables
        .iter()
        .map(|table| {
            let span = table.span().unwrap_or_else(|| fallback.clone());
            let kind = NodeKind::Table(table_entries(table, &span));
            Node { span, kind }
        })
        .collect()
}

fn value_node(value: &Value, fallback: &Span) -> Node {
    let span = value.span().unwrap_or_else(|| fallback.clone());
    let kind = match value {
        Value::String(s) => NodeKind::String(s.value().clone()),
        Value::Integer(i) => NodeKind::Integer(*i.value()),
        Value::Float(_) => NodeKind::Float,
        Value::Boolean(b) => NodeKind::Boolean(*b.value()),
        Value::Datetime(_) => NodeKind::Datetime,
        Value::Array(array) => {
            NodeKind::Array(array.iter().map(|v| value_node(v, &span)).collect())
        }
        Value::InlineTable(table) => NodeKind::Table(inline_entries(table, &span)),
    };
    Node { span, kind }
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
