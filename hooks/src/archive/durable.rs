//! Durable placement: files created without replacing anything, readable by their owner only, and a complete
//! temporary file becoming an archive under a name no other archive holds.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Creates `path` for writing, readable and writable by its owner only (0600); fails if anything is there already.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Flushes a directory's entries (a rename or unlink in it) to disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Gives the complete, fsynced file `tmp` the first name `name_for(attempt)` (attempt 1, 2, …) that no file in
/// `dir` holds, atomically and without ever replacing an existing file, then fsyncs `dir`. Returns the final path.
///
/// The no-replace step is a hard link (fails with `AlreadyExists` instead of overwriting); on filesystems without
/// hard links it falls back to a checked rename, which the storage dir's run lock keeps safe.
pub fn place_without_replacing(tmp: &Path, dir: &Path, name_for: impl Fn(u32) -> String) -> io::Result<PathBuf> {
    for attempt in 1..=1000 {
        let candidate = dir.join(name_for(attempt));
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
    fn an_existing_archive_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a_1"), b"old").unwrap();
        let tmp = dir.path().join(".tmp");
        std::fs::write(&tmp, b"new").unwrap();

        let placed = place_without_replacing(&tmp, dir.path(), |n| format!("a_{n}")).unwrap();

        assert_eq!(placed, dir.path().join("a_2"));
        assert_eq!(std::fs::read(dir.path().join("a_1")).unwrap(), b"old");
        assert_eq!(std::fs::read(&placed).unwrap(), b"new");
        assert!(!tmp.exists(), "the temporary name is gone");
    }
}
