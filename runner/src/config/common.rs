//! What the loader and the built-ins' checks share: how much to check, what the built-ins need of `[runner]`, an
//! error at a place in the file, and the path and position helpers.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

/// How much of the file to check against the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Everything, sources and modules included: for commands that run or plan the chain.
    Full,
    /// The shape of the file, not whether the chain's files exist: for commands that only use the catalog and
    /// storage (a restore must work when the data is gone).
    Shape,
}

/// What the built-ins need to know of the `[runner]` table.
pub struct RunnerFacts<'a> {
    pub work_dir: &'a Path,
    pub project: Option<&'a str>,
    pub compose_file: Option<&'a Path>,
    pub check: Check,
    /// The names of the `[[remote]]` tables.
    pub remotes: &'a [String],
}

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

/// `path` with `.` and `..` resolved lexically (the folder need not exist yet; symlinks are not followed).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
