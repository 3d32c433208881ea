//! What the storage dir holds that the catalog does not know: archives no backup row points at (copied in by hand,
//! or left by a hookrun older than the registration of archives before they are placed). `list` and `verify --all`
//! name them, so that no file in storage is silently outside every rule (prune, rollback, verify). Also the SHA-256
//! of a file in storage, as the catalog records it for an archive.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hookrun_archive::{LocalDir, Storage};
use hookrun_catalog::BackupRow;
use serde::Serialize;

/// An archive in storage that no backup in the catalog points at.
#[derive(Debug, Clone, Serialize)]
pub struct UnknownArchive {
    pub path: PathBuf,
    pub size: u64,
}

impl UnknownArchive {
    /// One line for people.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) is in storage but not in the catalog: hookrun neither verifies, prunes nor restores it; \
             delete it or move it away",
            self.path.display(),
            hookrun_archive::size::human_bytes(self.size)
        )
    }
}

/// The archives in `storage_dir` that none of the backup rows `known` points at, by name. A storage dir that does
/// not exist holds none.
pub fn unknown_archives(storage_dir: &Path, known: &[BackupRow]) -> anyhow::Result<Vec<UnknownArchive>> {
    if !storage_dir.exists() {
        return Ok(Vec::new());
    }
    let storage = LocalDir::new(storage_dir);
    let stored = storage.list()?;
    // Compared as real paths (the catalog may have recorded a storage dir written with `..` or through a link), but
    // only the rows of the same file name are resolved: a catalog of 100,000 backups costs one pass over them, not
    // a system call each.
    let mut by_name: HashMap<&OsStr, Vec<&Path>> = HashMap::new();
    for path in known.iter().filter_map(|b| b.path.as_deref()).map(Path::new) {
        if let Some(name) = path.file_name() {
            by_name.entry(name).or_default().push(path);
        }
    }
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut unknown = Vec::new();
    for archive in stored {
        let path = storage.dir().join(&archive.name);
        let here = real(&path);
        let recorded = by_name
            .get(OsStr::new(&archive.name))
            .is_some_and(|paths| paths.iter().any(|p| real(p) == here));
        if !recorded {
            unknown.push(UnknownArchive {
                size: archive.size,
                path,
            });
        }
    }
    unknown.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(unknown)
}

/// The SHA-256 of the file at `path`, lowercase hex (as the catalog records an archive's).
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finish()))
}
