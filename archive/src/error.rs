//! Why an archive could not be written, read, checked or extracted: every variant names the file concerned and
//! keeps the error that caused it.

use std::io;
use std::path::PathBuf;

use crate::size::human_bytes;

/// An archive operation's failure. `Display` is the one-line message an operator sees; `source()` is the cause.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A source file or folder could not be read.
    #[error("cannot read source {path}: {source}")]
    ReadSource { path: PathBuf, source: io::Error },

    /// A file changed size while it was being archived.
    #[error("source {path} changed while it was being archived (expected {expected} bytes)")]
    SourceChanged { path: PathBuf, expected: u64 },

    /// A configured source is missing or outside the work dir.
    #[error("source {path}: {reason}")]
    BadSource { path: PathBuf, reason: String },

    /// A configured source could not be looked at.
    #[error("source {path}: not found under the work dir {work_dir} ({source})")]
    MissingSource {
        path: PathBuf,
        work_dir: PathBuf,
        source: io::Error,
    },

    /// The archive could not be written.
    #[error("cannot write archive {path}: {source}")]
    WriteArchive { path: PathBuf, source: io::Error },

    /// The archive is not what it must be: damaged, hostile, or not the one the catalog recorded.
    #[error("archive {path} failed its check: {reason}")]
    ArchiveCheck { path: PathBuf, reason: String },

    /// The free-space preflight failed.
    #[error(
        "not enough free space in {dir}: need {} ({factor} × estimated {}), have {}",
        human_bytes(*need), human_bytes(*estimate), human_bytes(*available)
    )]
    NoSpace {
        dir: PathBuf,
        need: u64,
        estimate: u64,
        factor: f64,
        available: u64,
    },

    /// A folder or file of the operation (staging, storage, a copy) could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Prepare { path: PathBuf, source: io::Error },

    /// What was asked for cannot be done as configured (an extraction target that is not a folder, sources that
    /// overlap, …).
    #[error("{0}")]
    Misconfigured(String),

    /// The place archives live could not be read or written.
    #[error("cannot use archive storage {path}: {source}")]
    Storage { path: PathBuf, source: io::Error },

    /// A name given to archive storage is not a plain archive name (a path, `..`, or not named like an archive).
    #[error("`{name}` is not the name of an archive in storage")]
    BadArchiveName { name: String },

    /// The operation was cancelled (a timeout or a signal) before it finished.
    #[error("stopped before it finished")]
    Cancelled,
}

impl ArchiveError {
    /// True when the configuration, not the world, is at fault.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(self, ArchiveError::Misconfigured(_))
    }
}
