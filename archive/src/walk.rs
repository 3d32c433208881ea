//! The one walk of the sources that the writer, the size estimate and `measure` share: each root in turn, in the
//! writer's order (sorted by file name, never following symlinks), yielding every entry the writer archives with
//! its path on disk, its name in the archive, its metadata and its kind. Sockets, FIFOs and device nodes are
//! skipped here, for everyone alike. Depends only on `sources.rs` (for [`SourceRoot`]) and the error type.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::SourceRoot;
use crate::ArchiveError;

/// What an archived entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file: its content follows its header.
    File,
    /// A folder.
    Dir,
    /// A symlink, with its target (read, never followed).
    Symlink(PathBuf),
}

/// One entry the writer archives.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its name inside the archive.
    pub name: PathBuf,
    /// Its own metadata (a symlink's, not its target's).
    pub meta: Metadata,
    /// What it is.
    pub kind: Kind,
}

impl Entry {
    /// Bytes of content the entry holds in the archive (a regular file's length, else 0).
    pub fn content_len(&self) -> u64 {
        match self.kind {
            Kind::File => self.meta.len(),
            _ => 0,
        }
    }
}

/// The entries of `roots`, root after root. Each root's packs are not walked: the writer appends them itself.
pub(crate) fn walk(roots: &[SourceRoot]) -> Walk<'_> {
    Walk {
        roots: roots.iter(),
        current: None,
        on_skip: &|_| {},
        live: false,
    }
}

/// The walk in progress; see [`walk`].
pub(crate) struct Walk<'a> {
    roots: std::slice::Iter<'a, SourceRoot>,
    current: Option<(&'a SourceRoot, walkdir::IntoIter)>,
    on_skip: &'a dyn Fn(&Path),
    live: bool,
}

impl<'a> Walk<'a> {
    /// Calls `on_skip` with the path of each socket, FIFO or device node left out.
    pub fn on_skip(mut self, on_skip: &'a dyn Fn(&Path)) -> Self {
        self.on_skip = on_skip;
        self
    }

    /// Walks a tree its services may still change (the free-space estimate, before anything stops): an entry that
    /// vanishes between being listed and being looked at is passed over instead of failing the walk.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (root, entries) = match &mut self.current {
                Some((root, entries)) => (*root, entries),
                None => {
                    let root = self.roots.next()?;
                    let entries = WalkDir::new(&root.fs_path)
                        .follow_links(false)
                        .sort_by_file_name()
                        .into_iter();
                    let (root, entries) = self.current.insert((root, entries));
                    (*root, entries)
                }
            };
            let Some(entry) = entries.next() else {
                self.current = None;
                continue;
            };
            match classify(root, entry, self.on_skip) {
                Some(Err(ArchiveError::ReadSource { source, .. }))
                    if self.live && source.kind() == std::io::ErrorKind::NotFound => {}
                Some(entry) => return Some(entry),
                None => {}
            }
        }
    }
}

/// The entry `entry` of `root` as archived, or `None` when it is left out (after telling `on_skip`).
fn classify(
    root: &SourceRoot,
    entry: walkdir::Result<walkdir::DirEntry>,
    on_skip: &dyn Fn(&Path),
) -> Option<Result<Entry, ArchiveError>> {
    let entry = match entry {
        Ok(entry) => entry,
        Err(e) => {
            let path = e.path().unwrap_or(&root.fs_path).to_path_buf();
            return Some(Err(ArchiveError::ReadSource { path, source: e.into() }));
        }
    };
    let meta = match entry.metadata() {
        Ok(meta) => meta,
        Err(e) => {
            return Some(Err(ArchiveError::ReadSource {
                path: entry.path().to_path_buf(),
                source: e.into(),
            }))
        }
    };
    let path = entry.into_path();
    let relative = path.strip_prefix(&root.fs_path).expect("walkdir stays under its root");
    let name = if relative.as_os_str().is_empty() {
        root.archive_path.clone()
    } else {
        root.archive_path.join(relative)
    };
    let file_type = meta.file_type();
    let kind = if file_type.is_file() {
        Kind::File
    } else if file_type.is_symlink() {
        match std::fs::read_link(&path) {
            Ok(target) => Kind::Symlink(target),
            Err(source) => return Some(Err(ArchiveError::ReadSource { path, source })),
        }
    } else if file_type.is_dir() {
        Kind::Dir
    } else {
        // Sockets, FIFOs and device nodes are endpoints, not data, and a restore refuses them: they are left out,
        // so that every archive written can be restored.
        on_skip(&path);
        return None;
    };
    Some(Ok(Entry { path, name, meta, kind }))
}
