//! The place archives live: the [`Storage`] trait (put a complete archive under a name no other archive holds, open
//! one, list them, remove one) and [`LocalDir`], a folder on disk, its one implementation today.
//!
//! Callers hold a `&dyn Storage` (or an `Arc<dyn Storage>`) and speak only in archive *names* (`backup_….tar.gz`),
//! never in paths: a later backend (S3: `put` as an upload then a conditional copy that never overwrites, `open` as a
//! streamed GET, `list` as a prefix listing, `remove` as a DELETE) is one more implementation of the trait, and no
//! caller changes. Everything a backend needs from a caller is in the trait's arguments: the complete local file,
//! how to name attempt 1, 2, …, and whom to tell each name before the archive may appear under it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::durable::{fsync_dir, place_without_replacing};
use super::naming::is_archive_name;
use crate::ArchiveError;

/// An archive in storage, as [`Storage::list`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchive {
    /// Its name in storage (an [`is_archive_name`] name).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

/// Where archives live. Every method takes or gives archive names, never paths; a name that is not a plain archive
/// name (one path component, no `..`, see [`is_archive_name`]) is refused with [`ArchiveError::BadArchiveName`].
pub trait Storage: Send + Sync {
    /// Stores the complete, fsynced local file `complete_tmp_file` under the first name `name_for(attempt)`
    /// (attempt 1, 2, …) that no archive in storage holds, never replacing one, durably (on disk: the folder is
    /// fsynced). `announce` is told each name before the archive may appear under it; an error from it stops the
    /// placement. Returns the name taken. The local file is gone afterwards.
    fn put(
        &self,
        complete_tmp_file: &Path,
        name_for: &dyn Fn(u32) -> String,
        announce: &mut dyn FnMut(&str) -> io::Result<()>,
    ) -> Result<String, ArchiveError>;

    /// The content of the archive `name`, to read from its start.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, ArchiveError>;

    /// The archives in storage (temporary files and anything not named like an archive left out), by name.
    fn list(&self) -> Result<Vec<StoredArchive>, ArchiveError>;

    /// Removes the archive `name`, durably. A name storage does not hold is not an error (as S3's DELETE).
    fn remove(&self, name: &str) -> Result<(), ArchiveError>;
}

/// A folder of archives on a local filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    /// The archives in the folder `dir` (which need not exist until something is put there).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the archive `name` is (or would be) on disk; refuses names that are not plain archive names.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }

    fn storage_err(&self, path: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Storage {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Refuses anything but one plain path component named like an archive.
fn check_name(name: &str) -> Result<(), ArchiveError> {
    let plain = !name.is_empty() && !name.contains(['/', '\0']) && name != "." && name != "..";
    if plain && is_archive_name(name) {
        Ok(())
    } else {
        Err(ArchiveError::BadArchiveName { name: name.to_string() })
    }
}

impl Storage for LocalDir {
    fn put(
        &self,
        complete_tmp_file: &Path,
        name_for: &dyn Fn(u32) -> String,
        announce: &mut dyn FnMut(&str) -> io::Result<()>,
    ) -> Result<String, ArchiveError> {
        // A hostile name is refused before anything is looked at, announced or linked.
        let checked = std::cell::Cell::new(Ok(()));
        let placed = place_without_replacing(
            complete_tmp_file,
            &self.dir,
            |attempt| {
                let name = name_for(attempt);
                check_name(&name).map_err(|e| {
                    checked.set(Err(e));
                    io::Error::new(io::ErrorKind::InvalidInput, "not an archive name")
                })?;
                Ok(name)
            },
            |candidate| announce(candidate.file_name().and_then(|n| n.to_str()).expect("checked")),
        );
        checked.into_inner()?;
        let placed = placed.map_err(|e| self.storage_err(&self.dir, e))?;
        Ok(placed
            .file_name()
            .and_then(|n| n.to_str())
            .expect("checked above")
            .to_string())
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, ArchiveError> {
        let path = self.path_of(name)?;
        let file = File::open(&path).map_err(|e| self.storage_err(&path, e))?;
        Ok(Box::new(file))
    }

    fn list(&self) -> Result<Vec<StoredArchive>, ArchiveError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.storage_err(&self.dir, e)),
        };
        let mut archives = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.storage_err(&self.dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_archive_name(&name) {
                continue;
            }
            let meta = entry.metadata().map_err(|e| self.storage_err(&entry.path(), e))?;
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().map_err(|e| self.storage_err(&entry.path(), e))?;
            archives.push(StoredArchive {
                name,
                size: meta.len(),
                modified,
            });
        }
        archives.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(archives)
    }

    fn remove(&self, name: &str) -> Result<(), ArchiveError> {
        let path = self.path_of(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.storage_err(&path, e)),
        }
        fsync_dir(&self.dir).map_err(|e| self.storage_err(&self.dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "backup_manual_v1_2026-12-02_14-00-00.tar.gz";
    const A2: &str = "backup_manual_v1_2026-12-02_14-00-00_2.tar.gz";

    fn name_for(attempt: u32) -> String {
        if attempt <= 1 {
            A.to_string()
        } else {
            format!("backup_manual_v1_2026-12-02_14-00-00_{attempt}.tar.gz")
        }
    }

    fn tmp_file(dir: &Path, content: &[u8]) -> PathBuf {
        let tmp = dir.join(".backup-run1.tar.gz.partial");
        std::fs::write(&tmp, content).unwrap();
        tmp
    }

    #[test]
    fn put_never_replaces_an_archive_and_announces_the_name_it_takes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalDir::new(dir.path());
        std::fs::write(dir.path().join(A), b"old").unwrap();
        let tmp = tmp_file(dir.path(), b"new");
        let mut announced = Vec::new();

        let name = storage
            .put(&tmp, &name_for, &mut |name| {
                assert!(!dir.path().join(name).exists(), "announced before it appears");
                announced.push(name.to_string());
                Ok(())
            })
            .unwrap();

        assert_eq!(name, A2);
        assert_eq!(announced, [A2]);
        assert_eq!(std::fs::read(dir.path().join(A)).unwrap(), b"old");
        let mut content = Vec::new();
        storage.open(&name).unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, b"new");
        assert!(!tmp.exists(), "the temporary file is gone");
    }

    #[test]
    fn a_failed_announcement_stops_the_put() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalDir::new(dir.path());
        let tmp = tmp_file(dir.path(), b"new");

        let error = storage
            .put(&tmp, &name_for, &mut |_| Err(io::Error::other("catalog is down")))
            .unwrap_err();

        assert!(error.to_string().contains("catalog is down"), "{error}");
        assert!(!dir.path().join(A).exists());
        assert!(tmp.exists(), "the complete file is kept");
    }

    #[test]
    fn list_sees_only_archives() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalDir::new(dir.path());
        std::fs::write(dir.path().join(A2), b"22").unwrap();
        std::fs::write(dir.path().join(A), b"1").unwrap();
        std::fs::write(dir.path().join("catalog.db"), b"x").unwrap();
        std::fs::write(dir.path().join(".backup-run7.tar.gz.partial"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("backup_dir_v1_2026-12-02_14-00-00.tar.zst")).unwrap();

        let listed = storage.list().unwrap();

        let seen: Vec<(&str, u64)> = listed.iter().map(|a| (a.name.as_str(), a.size)).collect();
        assert_eq!(seen, [(A, 1), (A2, 2)]);
        assert!(LocalDir::new(dir.path().join("missing")).list().unwrap().is_empty());
    }

    #[test]
    fn remove_unlinks_and_a_missing_name_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalDir::new(dir.path());
        std::fs::write(dir.path().join(A), b"1").unwrap();

        storage.remove(A).unwrap();
        assert!(!dir.path().join(A).exists());
        storage.remove(A).unwrap();
        storage.remove(A2).unwrap();
        assert!(storage.list().unwrap().is_empty());
    }

    #[test]
    fn hostile_names_are_refused_by_every_method() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("storage");
        std::fs::create_dir(&dir).unwrap();
        let victim = outer.path().join(A);
        std::fs::write(&victim, b"outside").unwrap();
        let storage = LocalDir::new(&dir);
        let hostile = [
            format!("../{A}"),
            format!("sub/{A}"),
            format!("/{A}"),
            "..".to_string(),
            ".".to_string(),
            String::new(),
            "catalog.db".to_string(),
            format!("{A}\0"),
        ];
        for name in &hostile {
            let refused = |e: ArchiveError| matches!(e, ArchiveError::BadArchiveName { .. });
            assert!(refused(storage.open(name).err().unwrap()), "open {name:?}");
            assert!(refused(storage.remove(name).unwrap_err()), "remove {name:?}");
            let tmp = tmp_file(&dir, b"new");
            let named = name.clone();
            let error = storage
                .put(&tmp, &move |_| named.clone(), &mut |_| {
                    panic!("announced a hostile name")
                })
                .unwrap_err();
            assert!(refused(error), "put {name:?}");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"outside");
        assert_eq!(std::fs::read_dir(outer.path()).unwrap().count(), 2);
    }
}
