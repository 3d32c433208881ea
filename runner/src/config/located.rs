//! [`Located`]: a TOML value as written in `hooks.toml`, with the byte range of every part of it (table keys
//! included), for tables whose type is known only once the hook is read (a built-in's `config`, a WASM hook's
//! `permissions`): `config::de` deserializes derived types from it, errors pointing at the key or value concerned.
//! Made by deserializing from the file, or from a [`toml::Value`], which has no places.

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A value and where it is in the file (`None` when it did not come from one).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub span: Option<Range<usize>>,
    pub node: Node,
}

/// A located value's shape and contents.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(toml::value::Datetime),
    Array(Vec<Located>),
    /// Keys in the order written, each with its place.
    Table(Vec<(LocatedKey, Located)>),
}

/// A table key and where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedKey {
    pub name: String,
    pub span: Option<Range<usize>>,
}

impl Node {
    /// The TOML type name, for "expected …, found …".
    pub fn type_str(&self) -> &'static str {
        match self {
            Node::String(_) => "string",
            Node::Integer(_) => "integer",
            Node::Float(_) => "float",
            Node::Boolean(_) => "boolean",
            Node::Datetime(_) => "datetime",
            Node::Array(_) => "array",
            Node::Table(_) => "table",
        }
    }
}

impl Located {
    /// An empty table at `span`: what an absent table reads as.
    pub fn empty_table(span: Range<usize>) -> Self {
        Located {
            span: Some(span),
            node: Node::Table(Vec::new()),
        }
    }

    /// The value without its places.
    pub fn to_toml(&self) -> toml::Value {
        match &self.node {
            Node::String(s) => toml::Value::String(s.clone()),
            Node::Integer(n) => toml::Value::Integer(*n),
            Node::Float(x) => toml::Value::Float(*x),
            Node::Boolean(b) => toml::Value::Boolean(*b),
            Node::Datetime(d) => toml::Value::Datetime(*d),
            Node::Array(items) => toml::Value::Array(items.iter().map(Located::to_toml).collect()),
            Node::Table(entries) => toml::Value::Table(
                entries
                    .iter()
                    .map(|(key, value)| (key.name.clone(), value.to_toml()))
                    .collect(),
            ),
        }
    }
}

impl From<&toml::Value> for Located {
    fn from(value: &toml::Value) -> Self {
        let node = match value {
            toml::Value::String(s) => Node::String(s.clone()),
            toml::Value::Array(items) => Node::Array(items.iter().map(Located::from).collect()),
            toml::Value::Table(table) => Node::Table(
                table
                    .iter()
                    .map(|(k, v)| {
                        (
                            LocatedKey {
                                name: k.clone(),
                                span: None,
                            },
                            Located::from(v),
                        )
                    })
                    .collect(),
            ),
            toml::Value::Integer(n) => Node::Integer(*n),
            toml::Value::Float(x) => Node::Float(*x),
            toml::Value::Boolean(b) => Node::Boolean(*b),
            toml::Value::Datetime(d) => Node::Datetime(*d),
        };
        Located { span: None, node }
    }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Node>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Located {
            span: Some(span),
            node: spanned.into_inner(),
        })
    }
}

/// A [`Located`] that must be a table (a hook's `config`): anything else is refused as `toml` refuses a map
/// field's wrong type.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedTable(pub Located);

impl<'de> Deserialize<'de> for LocatedTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableNode(Node);
        impl<'de> Deserialize<'de> for TableNode {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(TableVisitor).map(TableNode)
            }
        }
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
                // A datetime comes as a map too.
                match NodeVisitor.visit_map(map)? {
                    Node::Table(entries) => Ok(Node::Table(entries)),
                    other => Err(serde::de::Error::invalid_type(
                        serde::de::Unexpected::Other(other.type_str()),
                        &self,
                    )),
                }
            }
        }
        let spanned = Spanned::<TableNode>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(LocatedTable(Located {
            span: Some(span),
            node: spanned.into_inner().0,
        }))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Boolean(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Integer(n))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Node, E> {
        i64::try_from(n)
            .map(Node::Integer)
            .map_err(|_| E::custom(format!("integer {n} is out of range")))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Node, E> {
        Ok(Node::Float(x))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Located>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // toml hands a datetime over as a one-entry map whose key carries no place: that is how it is told
            // apart from a table (whose keys always have one).
            let Some(key) = key else {
                let text = map.next_value::<String>()?;
                return text
                    .parse()
                    .map(Node::Datetime)
                    .map_err(|e| serde::de::Error::custom(format!("invalid datetime {text}: {e}")));
            };
            let value = map.next_value::<Located>()?;
            entries.push((key, value));
        }
        Ok(Node::Table(entries))
    }
}

/// A table key with its place, or `None` for a key that has none (toml's datetime marker).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<LocatedKey>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Ok(Spanned::<String>::deserialize(deserializer).ok().map(|key| LocatedKey {
            span: Some(key.span()),
            name: key.into_inner(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        permissions: Located,
    }

    fn parse(text: &str) -> (Located, String) {
        let file: File = toml::from_str(text).unwrap();
        (file.permissions, text.to_string())
    }

    fn at(text: &str, span: &Option<Range<usize>>) -> String {
        text[span.clone().expect("a place")].to_string()
    }

    #[test]
    fn every_key_and_value_keeps_its_place() {
        let (value, text) =
            parse("[permissions]\nread = [\"data\", 7]\nexec = [{ service = \"db\", programs = [\"pg_dump\"] }]\n");
        let Node::Table(entries) = &value.node else {
            panic!("{value:?}")
        };
        assert_eq!(at(&text, &entries[0].0.span), "read");
        let Node::Array(items) = &entries[0].1.node else {
            panic!()
        };
        assert_eq!(at(&text, &items[0].span), "\"data\"");
        assert_eq!(items[1].node, Node::Integer(7));
        assert_eq!(at(&text, &items[1].span), "7");
        let Node::Array(grants) = &entries[1].1.node else {
            panic!()
        };
        let Node::Table(grant) = &grants[0].node else { panic!() };
        assert_eq!(at(&text, &grant[1].0.span), "programs");
        assert_eq!(
            at(&text, &grants[0].span),
            "{ service = \"db\", programs = [\"pg_dump\"] }"
        );
    }

    #[test]
    fn a_datetime_is_a_value_not_a_table() {
        let (value, text) = parse("permissions = { read = [1979-05-27] }\n");
        let Node::Table(entries) = &value.node else { panic!() };
        let Node::Array(items) = &entries[0].1.node else {
            panic!()
        };
        assert_eq!(items[0].node, Node::Datetime("1979-05-27".parse().unwrap()));
        assert_eq!(items[0].node.type_str(), "datetime");
        assert_eq!(at(&text, &items[0].span), "1979-05-27");
    }

    #[test]
    fn a_plain_value_converts_without_places() {
        let value: toml::Value = toml::from_str("read = [\"a\"]\nn = 1").unwrap();
        let located = Located::from(&value);
        let Node::Table(entries) = located.node else { panic!() };
        assert_eq!(entries[0].0.name, "n");
        assert_eq!(entries[0].1.node, Node::Integer(1));
        assert!(entries[1].1.span.is_none());
    }
}
