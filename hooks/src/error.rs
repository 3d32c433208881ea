//! Why a hook failed: one enum whose variants carry the file, hook or service concerned.

use std::io;
use std::path::PathBuf;

use crate::catalog::CatalogError;
use crate::size::human_bytes;

/// A hook's failure. `Display` is the one-line message an operator sees.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A source file or folder could not be read.
    #[error("cannot read source {path}: {source}")]
    ReadSource { path: PathBuf, source: io::Error },

    /// A file changed size while it was being archived.
    #[error("source {path} changed while it was being archived (expected {expected} bytes)")]
    SourceChanged { path: PathBuf, expected: u64 },

    /// A configured source is missing or outside the work dir.
    #[error("source {path}: {reason}")]
    BadSource { path: PathBuf, reason: String },

    /// The archive could not be written.
    #[error("cannot write archive {path}: {source}")]
    WriteArchive { path: PathBuf, source: io::Error },

    /// The written archive did not pass its own check.
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

    /// A folder of the run (staging, storage) could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Prepare { path: PathBuf, source: io::Error },

    /// A host command failed.
    #[error("command `{program}` {reason}")]
    Command { program: String, reason: String },

    /// The hook was stopped (timeout or signal) before it finished.
    #[error("stopped before it finished")]
    Cancelled,

    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}
