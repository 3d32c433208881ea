//! A serde [`Deserializer`] over a [`Located`] value, so that `#[derive(Deserialize)]` types (`deny_unknown_fields`,
//! `toml::Spanned` fields) can be read from a table whose shape is known only once the rest of the hook is read (a
//! built-in's `config`, a WASM hook's `permissions`). Every error keeps the place in the file and the path of keys
//! and indices down to the value concerned, for the caller to word.

use std::fmt;
use std::ops::Range;

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer, StringDeserializer, UsizeDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::located::{Located, Node};

/// The name and fields by which `toml::Spanned` asks a deserializer for a value's place.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
/// The key by which `toml` hands over a datetime (as a one-entry table).
const DATETIME: &str = "$__toml_private_datetime";

/// Deserializes `T` from `value`.
pub fn from_located<T: DeserializeOwned>(value: &Located) -> Result<T, DeError> {
    T::deserialize(LocatedDe(value))
}

/// A mistake found while deserializing, at its place (when known) and its path from the top.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub span: Option<Range<usize>>,
    /// Keys and indices from the value deserialized down to the one concerned.
    pub path: Vec<Segment>,
    pub kind: DeErrorKind,
}

/// One step of a [`DeError`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum DeErrorKind {
    /// A key the type does not take; `expected` are the keys it does.
    UnknownKey {
        key: String,
        expected: &'static [&'static str],
    },
    /// A key the type needs.
    Missing(&'static str),
    /// A value of the wrong type: `found` is its TOML type name, `message` serde's own wording.
    InvalidType {
        found: &'static str,
        expected: String,
        message: String,
    },
    /// Anything else, in serde's (or a `Deserialize` impl's) words.
    Custom(String),
}

impl DeError {
    fn new(kind: DeErrorKind) -> Self {
        DeError {
            span: None,
            path: Vec::new(),
            kind,
        }
    }

    /// Where nothing deeper said where, the error is at `value`, whose TOML type it names if it is a wrong type.
    fn at(mut self, value: &Located) -> Self {
        if self.span.is_none() {
            self.span = value.span.clone();
        }
        if let DeErrorKind::InvalidType { found, .. } = &mut self.kind {
            if found.is_empty() {
                *found = value.node.type_str();
            }
        }
        self
    }

    fn under(mut self, segment: Segment) -> Self {
        self.path.insert(0, segment);
        self
    }

    /// The path in TOML's dotted notation after `root`: `permissions.exec[0].programs`.
    pub fn dotted(&self, root: &str) -> String {
        let mut out = root.to_string();
        for segment in &self.path {
            match segment {
                Segment::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The message in serde's words (as `toml` itself would word it).
    pub fn serde_message(&self) -> String {
        match &self.kind {
            DeErrorKind::UnknownKey { key, expected } => {
                <de::value::Error as de::Error>::unknown_field(key, expected).to_string()
            }
            DeErrorKind::Missing(field) => format!("missing field `{field}`"),
            DeErrorKind::InvalidType { message, .. } => message.clone(),
            DeErrorKind::Custom(message) => message.clone(),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serde_message())
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(DeErrorKind::Custom(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(DeErrorKind::InvalidType {
            found: "",
            expected: exp.to_string(),
            message: format!("invalid type: {unexp}, expected {exp}"),
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(DeErrorKind::UnknownKey {
            key: field.to_string(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(DeErrorKind::Missing(field))
    }
}

/// The deserializer over one located value.
struct LocatedDe<'de>(&'de Located);

impl<'de> Deserializer<'de> for LocatedDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = self.0;
        match &value.node {
            Node::String(s) => visitor.visit_str(s),
            Node::Integer(n) => visitor.visit_i64(*n),
            Node::Float(x) => visitor.visit_f64(*x),
            Node::Boolean(b) => visitor.visit_bool(*b),
            Node::Datetime(d) => visitor.visit_map(DatetimeAccess(Some(d.to_string()))),
            Node::Array(items) => visitor.visit_seq(Items {
                items: items.iter(),
                index: 0,
            }),
            Node::Table(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
        .map_err(|e| e.at(value))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED && fields == [SPANNED_START, SPANNED_END, SPANNED_VALUE] {
            // A value that did not come from the file (`Located::from(&toml::Value)`) is at 0..0.
            let span = self.0.span.clone().unwrap_or(0..0);
            return visitor.visit_map(SpannedAccess {
                value: self.0,
                span,
                step: 0,
            });
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let value = self.0;
        match &value.node {
            Node::String(s) => visitor.visit_enum(StrDeserializer::<DeError>::new(s)),
            _ => self.deserialize_any(visitor),
        }
        .map_err(|e| e.at(value))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items<'de> {
    items: std::slice::Iter<'de, Located>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(LocatedDe(item))
            .map(Some)
            .map_err(|e| e.at(item).under(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'de> {
    entries: std::slice::Iter<'de, (super::located::LocatedKey, Located)>,
    value: Option<&'de (super::located::LocatedKey, Located)>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let (key, value) = entry;
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(&key.name))
            .map(Some)
            .map_err(|mut e| {
                // An unknown key is at the key (at its value when the key has no place).
                if e.span.is_none() {
                    e.span = key.span.clone().or_else(|| value.span.clone());
                }
                e
            })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self.value.take().expect("next_value_seed after next_key_seed");
        seed.deserialize(LocatedDe(value))
            .map_err(|e| e.at(value).under(Segment::Key(key.name.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// What `toml::Spanned` reads: the start, the end and the value.
struct SpannedAccess<'de> {
    value: &'de Located,
    span: Range<usize>,
    step: u8,
}

impl<'de> MapAccess<'de> for SpannedAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let key = match self.step {
            0 => SPANNED_START,
            1 => SPANNED_END,
            2 => SPANNED_VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(UsizeDeserializer::<DeError>::new(self.span.start)),
            2 => seed.deserialize(UsizeDeserializer::<DeError>::new(self.span.end)),
            _ => seed.deserialize(LocatedDe(self.value)),
        }
    }
}

/// A datetime as `toml` hands it over, so that `toml::Value` (and `toml::value::Datetime`) read it as one.
struct DatetimeAccess(Option<String>);

impl<'de> MapAccess<'de> for DatetimeAccess {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        if self.0.is_none() {
            return Ok(None);
        }
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(DATETIME))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let text: StringDeserializer<DeError> = self.0.take().unwrap_or_default().into_deserializer();
        seed.deserialize(text)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use toml::Spanned;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Table {
        name: Spanned<String>,
        items: Option<Vec<Spanned<u32>>>,
        any: Option<toml::Value>,
    }

    #[derive(Deserialize)]
    struct File {
        t: Located,
    }

    fn read(text: &str) -> (Result<Table, DeError>, String) {
        let file: File = toml::from_str(text).unwrap();
        (from_located(&file.t), text.to_string())
    }

    #[test]
    fn spans_reach_the_derived_fields() {
        let (table, text) = read("[t]\nname = \"x\"\nitems = [1, 22]\nany = 1979-05-27\n");
        let table = table.unwrap();
        assert_eq!(&text[table.name.span()], "\"x\"");
        assert_eq!(&text[table.items.as_ref().unwrap()[1].span()], "22");
        assert_eq!(table.any.unwrap().type_str(), "datetime");
    }

    #[test]
    fn errors_keep_their_place_path_and_kind() {
        let (e, text) = read("[t]\nname = \"x\"\nitems = [1, \"two\"]\n");
        let e = e.unwrap_err();
        assert_eq!(&text[e.span.clone().unwrap()], "\"two\"");
        assert_eq!(e.dotted("t"), "t.items[1]");
        assert!(
            matches!(e.kind, DeErrorKind::InvalidType { found: "string", .. }),
            "{e:?}"
        );
        let (e, text) = read("[t]\nname = \"x\"\nnmae = 1\n");
        let e = e.unwrap_err();
        assert_eq!(&text[e.span.clone().unwrap()], "nmae");
        assert_eq!(
            e.serde_message(),
            "unknown field `nmae`, expected one of `name`, `items`, `any`"
        );
        let (e, text) = read("t = { items = [] }\n");
        let e = e.unwrap_err();
        assert_eq!(&text[e.span.clone().unwrap()], "{ items = [] }");
        assert_eq!(e.kind, DeErrorKind::Missing("name"));
    }
}
