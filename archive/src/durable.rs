//! Durable placement: files created without replacing anything, readable by their owner only, a complete
//! temporary file becoming an archive under a name no other archive holds, and removal of whatever a path holds.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Creates `path` for writing, readable and writable by its owner only (0600); fails if anything is there already.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Creates the folder `path` and any missing parents, each readable by its owner only (0700, whatever the umask):
/// storage and staging hold the data of every backup. Folders that exist already are left as they are.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Flushes a directory's entries (a rename or unlink in it) to disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a file, a symlink or a whole folder (a target may be any of them); a missing path is not an error.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match path.symlink_metadata() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    }
}

/// Gives the complete, fsynced file `tmp` the first name `name_for(attempt)` (attempt 1, 2, …) that no file in
/// `dir` holds, atomically and without ever replacing an existing file, then fsyncs `dir`. Returns the final path.
/// `announce` is told each name before the file may appear under it (the catalog registers the archive there), so
/// that no archive ever exists under its final name unknown to the catalog; an error from it stops the placement.
///
/// The no-replace step is a hard link (fails with `AlreadyExists` instead of overwriting); on filesystems without
/// hard links it falls back to a checked rename, which the storage dir's run lock keeps safe. An error from
/// `name_for` (a name refused) stops the placement before that name is looked at or announced. Reached through
/// [`crate::Storage::put`].
pub(crate) fn place_without_replacing(
    tmp: &Path,
    dir: &Path,
    name_for: impl Fn(u32) -> io::Result<String>,
    mut announce: impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    for attempt in 1..=1000 {
        let candidate = dir.join(name_for(attempt)?);
        if candidate.symlink_metadata().is_ok() {
            continue;
        }
        announce(&candidate)?;
        match std::fs::hard_link(tmp, &candidate) {
            Ok(()) => {
                std::fs::remove_file(tmp)?;
                fsync_dir(dir)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if candidate.symlink_metadata().is_err() => {
                std::fs::rename(tmp, &candidate)?;
                fsync_dir(dir)?;
                return Ok(candidate);
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "1000 archives already share this name",
    ))
}

#[cfg(test)]
mod tests {
    use super::place_without_replacing;

    #[test]
    fn an_existing_archive_is_never_replaced_and_its_name_is_announced_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a_1"), b"old").unwrap();
        let tmp = dir.path().join(".tmp");
        std::fs::write(&tmp, b"new").unwrap();

        let mut announced = Vec::new();

        let placed = place_without_replacing(
            &tmp,
            dir.path(),
            |n| Ok(format!("a_{n}")),
            |name| {
                assert!(!name.exists(), "announced before it appears");
                announced.push(name.to_path_buf());
                Ok(())
            },
        )
        .unwrap();

        assert_eq!(placed, dir.path().join("a_2"));
        assert_eq!(
            announced,
            std::slice::from_ref(&placed),
            "only the name it takes is announced"
        );
        assert_eq!(std::fs::read(dir.path().join("a_1")).unwrap(), b"old");
        assert_eq!(std::fs::read(&placed).unwrap(), b"new");
        assert!(!tmp.exists(), "the temporary name is gone");
    }
}
