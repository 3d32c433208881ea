//! What the storage dir holds that the catalog does not know: archives no backup row points at (copied in by hand,
//! or left by a hookrun older than the registration of archives before they are placed). `list` and `verify --all`
//! name them, so that no file in storage is silently outside every rule (prune, rollback, verify). Also the SHA-256
//! of a file in storage, as the catalog records it for an archive.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hookrun_archive::{LocalDir, Storage};
use hookrun_catalog::Catalog;
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

/// The archives in `storage_dir` that no backup row of `catalog` points at, by name. A storage dir that does not
/// exist holds none.
pub fn unknown_archives(storage_dir: &Path, catalog: &Catalog) -> anyhow::Result<Vec<UnknownArchive>> {
    if !storage_dir.exists() {
        return Ok(Vec::new());
    }
    let storage = LocalDir::new(storage_dir);
    let stored = storage.list()?;
    // Compared as real paths: the catalog may have recorded a storage dir written with `..` or through a link.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let known: Vec<PathBuf> = catalog
        .list_backups(&Default::default())?
        .into_iter()
        .filter_map(|b| b.path.map(|p| real(Path::new(&p))))
        .collect();
    let mut unknown = Vec::new();
    for archive in stored {
        let path = storage.dir().join(&archive.name);
        if !known.contains(&real(&path)) {
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
