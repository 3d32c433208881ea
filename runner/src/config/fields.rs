//! A spanned TOML table taken apart key by key, so that every error points at the key or value concerned.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;

/// An error at a byte range of the file.
#[derive(Debug)]
pub struct SpanError {
    pub span: Range<usize>,
    pub message: String,
}

impl SpanError {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
        }
    }
}

/// A `config` table as written: keys and values with their places in the file.
pub type RawTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The keys of a table not yet taken.
pub struct Fields {
    table_span: Range<usize>,
    entries: Vec<(Spanned<String>, Spanned<toml::Value>)>,
}

impl Fields {
    /// Takes apart `table` (at `table_span`); an absent table is empty.
    pub fn new(table: Option<Spanned<RawTable>>, fallback_span: Range<usize>) -> Self {
        match table {
            Some(table) => {
                let table_span = table.span();
                Self {
                    table_span,
                    entries: table.into_inner().into_iter().collect(),
                }
            }
            None => Self {
                table_span: fallback_span,
                entries: Vec::new(),
            },
        }
    }

    /// Removes `key` and deserializes its value; a wrong type is an error at the value.
    pub fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<Spanned<T>>, SpanError> {
        let Some(index) = self.entries.iter().position(|(k, _)| k.get_ref() == key) else {
            return Ok(None);
        };
        let (_, value) = self.entries.remove(index);
        let span = value.span();
        let parsed: T = value
            .into_inner()
            .try_into()
            .map_err(|e: toml::de::Error| SpanError::new(span.clone(), format!("`{key}`: {}", e.message())))?;
        Ok(Some(Spanned::new(span, parsed)))
    }

    /// Like `take`, but the key must be there.
    pub fn require<T: DeserializeOwned>(&mut self, key: &str, what: &str) -> Result<Spanned<T>, SpanError> {
        self.take(key)?.ok_or_else(|| self.missing(key, what))
    }

    /// The error for a required key that is not there, at the table.
    pub fn missing(&self, key: &str, what: &str) -> SpanError {
        SpanError::new(self.table_span.clone(), format!("missing `{key}` ({what})"))
    }

    /// The whole table as JSON, for a WASM hook (whose config the module itself reads).
    pub fn into_json(self) -> serde_json::Value {
        let table: toml::Table = self
            .entries
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v.into_inner()))
            .collect();
        serde_json::to_value(table).unwrap_or_default()
    }

    /// Fails on the first key nobody took, naming the keys that are allowed.
    pub fn finish(self, hook_kind: &str, allowed: &[&str]) -> Result<(), SpanError> {
        match self.entries.into_iter().next() {
            None => Ok(()),
            Some((key, _)) if allowed.is_empty() => Err(SpanError::new(
                key.span(),
                format!("unknown config key `{}`: `{hook_kind}` takes no config", key.get_ref()),
            )),
            Some((key, _)) => Err(SpanError::new(
                key.span(),
                format!(
                    "unknown config key `{}` for `{hook_kind}`, expected one of: {}",
                    key.get_ref(),
                    allowed.join(", ")
                ),
            )),
        }
    }
}
