//! Closed sets of names stored in text columns (statuses, kinds): one macro gives each enum its spelling, parsing,
//! `Display`, `Serialize` and SQLite conversion, so a row holds the enum and no code compares strings.

/// A stored name SQLite held that this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{value}` in the catalog")]
pub struct UnknownName {
    /// What the column holds (e.g. `backup status`).
    pub what: &'static str,
    /// What it held.
    pub value: String,
}

/// Declares an enum of stored names: `names! { /// doc  pub enum BackupStatus ("backup status") { Completed = "completed", … } }`.
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// The catalog's (and the CLI's) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            /// Parses the catalog's (and the CLI's) spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(Box::new($crate::names::UnknownName {
                        what: $what,
                        value: text.to_string(),
                    }))
                })
            }
        }
    };
}

pub(crate) use names;
