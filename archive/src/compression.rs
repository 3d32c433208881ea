//! How an archive's tar stream is compressed: gzip (the seed's `.tar.gz`, the default) or zstd (`.tar.zst`), and at
//! which level. Readers never trust a file's name for this: they look at its first bytes (see `Format::detect`).

use std::fmt;
use std::ops::RangeInclusive;

use serde::Serialize;

/// An archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One gzip member around the tar stream: `.tar.gz`.
    Gzip,
    /// One zstd frame, with its content checksum, around the tar stream: `.tar.zst`.
    Zstd,
}

/// What the first bytes of a file say about its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detected {
    /// It starts with this format's magic number.
    Format(Format),
    /// It is shorter than the magic numbers and could be the start of one: a file cut short.
    Truncated,
    /// It starts with neither magic number.
    Unknown,
}

impl Format {
    /// Every format, for whoever must find an archive or temporary file whatever its format.
    pub const ALL: [Format; 2] = [Format::Gzip, Format::Zstd];

    /// The name used in `hooks.toml` (`compression = "zstd"`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
        }
    }

    /// The format `name` stands for in `hooks.toml`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The archive's file extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Gzip => "tar.gz",
            Format::Zstd => "tar.zst",
        }
    }

    /// The levels `compression_level` may take: gzip 0 (stored) to 9, zstd 1 to 19 (20–22 need far more memory).
    pub fn levels(self) -> RangeInclusive<u32> {
        match self {
            Format::Gzip => 0..=9,
            Format::Zstd => 1..=19,
        }
    }

    /// The level used when `compression_level` is not given.
    pub fn default_level(self) -> u32 {
        match self {
            Format::Gzip => 6,
            Format::Zstd => 3,
        }
    }

    /// The bytes every file of this format starts with.
    pub fn magic(self) -> &'static [u8] {
        match self {
            Format::Gzip => &[0x1f, 0x8b],
            Format::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
        }
    }

    /// The format of a file that starts with `head` (its first 4 bytes, or all of it when it is shorter).
    pub(super) fn detect(head: &[u8]) -> Detected {
        for format in Format::ALL {
            if head.starts_with(format.magic()) {
                return Detected::Format(format);
            }
        }
        if Format::ALL
            .iter()
            .any(|f| head.len() < f.magic().len() && f.magic().starts_with(head))
        {
            return Detected::Truncated;
        }
        Detected::Unknown
    }
}

/// A format and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compression {
    pub format: Format,
    pub level: u32,
}

impl Compression {
    /// gzip at `level` (0–9).
    pub fn gzip(level: u32) -> Self {
        Self {
            format: Format::Gzip,
            level,
        }
    }

    /// zstd at `level` (1–19).
    pub fn zstd(level: u32) -> Self {
        Self {
            format: Format::Zstd,
            level,
        }
    }
}

/// gzip level 6, what every archive was before zstd.
impl Default for Compression {
    fn default() -> Self {
        Self::gzip(Format::Gzip.default_level())
    }
}

/// A bare level is gzip at that level, as it was before the format could be chosen.
impl From<u32> for Compression {
    fn from(level: u32) -> Self {
        Self::gzip(level)
    }
}

/// `gzip-6`, `zstd-3`: what the catalog's `compression` column holds.
impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.format.name(), self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_their_magic_numbers_alone() {
        assert_eq!(
            Format::detect(&[0x1f, 0x8b, 0x08, 0x00]),
            Detected::Format(Format::Gzip)
        );
        assert_eq!(
            Format::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Detected::Format(Format::Zstd)
        );
        assert_eq!(Format::detect(b"PK\x03\x04"), Detected::Unknown);
        assert_eq!(Format::detect(&[0x28, 0xb5, 0x2f, 0xfe]), Detected::Unknown);
        assert_eq!(Format::detect(&[0x1f]), Detected::Truncated);
        assert_eq!(Format::detect(&[0x28, 0xb5]), Detected::Truncated);
        assert_eq!(Format::detect(&[]), Detected::Truncated);
        assert_eq!(Format::detect(b"x"), Detected::Unknown);
    }

    #[test]
    fn names_extensions_and_levels() {
        assert_eq!(Format::from_name("zstd"), Some(Format::Zstd));
        assert_eq!(Format::from_name("gzip"), Some(Format::Gzip));
        assert_eq!(Format::from_name("xz"), None);
        assert_eq!(Compression::default(), Compression::gzip(6));
        assert_eq!(Compression::zstd(3).to_string(), "zstd-3");
        assert_eq!(Compression::from(9).to_string(), "gzip-9");
        assert!(Format::Zstd.levels().contains(&Format::Zstd.default_level()));
        assert!(!Format::Zstd.levels().contains(&0));
        assert!(Format::Gzip.levels().contains(&0));
    }
}
