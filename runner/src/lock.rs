//! One run at a time per storage dir: an exclusive `flock` on the storage folder itself, which the kernel drops when
//! its holder dies (so a crashed run never holds it) and which no one can delete by accident while a run holds it
//! (removing `.hookrun.lock` used to let a second run in). The holder's pid and boot id are written to
//! `<storage>/.hookrun.lock` (0600), only to name the holder to whoever finds the lock taken. On a file system that
//! refuses locks on folders, the lock falls back to that file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hookrun_archive::create_private_dir;
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// Another live hookrun holds the storage dir.
#[derive(Debug, thiserror::Error)]
#[error("another hookrun holds the lock on {storage_dir}: {holder}; wait for it to finish")]
pub struct LockHeld {
    pub storage_dir: PathBuf,
    /// Who holds it, as well as it is known.
    pub holder: String,
}

/// The held lock; dropping it (or dying) releases it.
#[derive(Debug)]
pub struct RunLock {
    _locked: File,
    _holder: File,
}

impl RunLock {
    /// Takes the lock on `storage_dir` (created 0700 if missing) without waiting. `describe` turns the holder's pid
    /// into words (e.g. its run in the catalog).
    pub fn acquire(storage_dir: &Path, describe: impl FnOnce(u32) -> String) -> anyhow::Result<Self> {
        create_private_dir(storage_dir)?;
        let path = storage_dir.join(".hookrun.lock");
        let mut holder = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        let folder = File::open(storage_dir)?;
        let locked = match flock(&folder, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => folder,
            // NFS and some FUSE file systems lock only files opened for writing.
            Err(Errno::BADF | Errno::INVAL | Errno::NOLCK | Errno::NOTSUP) => {
                tracing::debug!(
                    "{} cannot lock a folder; locking {}",
                    storage_dir.display(),
                    path.display()
                );
                let file = holder.try_clone()?;
                match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => file,
                    Err(_) => return Err(held(storage_dir, &mut holder, describe)),
                }
            }
            Err(_) => return Err(held(storage_dir, &mut holder, describe)),
        };
        holder.set_len(0)?;
        holder.write_all(format!("{} {}\n", std::process::id(), boot_id().unwrap_or_default()).as_bytes())?;
        holder.sync_all()?;
        Ok(Self {
            _locked: locked,
            _holder: holder,
        })
    }
}

/// The error for a lock someone else holds, naming the holder from the pid it wrote.
fn held(storage_dir: &Path, holder: &mut File, describe: impl FnOnce(u32) -> String) -> anyhow::Error {
    let mut content = String::new();
    let _ = holder.read_to_string(&mut content);
    let pid = content.split_whitespace().next().and_then(|p| p.parse().ok());
    let holder = pid.map_or_else(|| "a process that wrote no pid".to_string(), describe);
    LockHeld {
        storage_dir: storage_dir.to_path_buf(),
        holder,
    }
    .into()
}

/// This boot's id: a pid means something only within the boot that recorded it.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether the process that recorded `pid` during boot `boot` is gone (a reused pid that is not a hookrun counts
/// as gone).
pub fn process_is_gone(pid: i64, boot: Option<&str>) -> bool {
    if boot.is_some() && boot != boot_id().as_deref() {
        return true;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Err(_) => true,
        Ok(cmdline) => !String::from_utf8_lossy(&cmdline).contains("hookrun"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_lock_file_does_not_let_a_second_holder_in() {
        let storage = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(storage.path(), |_| unreachable!("free")).unwrap();
        std::fs::remove_file(storage.path().join(".hookrun.lock")).unwrap();

        let second = RunLock::acquire(storage.path(), |pid| format!("pid {pid}"));

        let held = second.unwrap_err();
        let held = held.downcast_ref::<LockHeld>().expect("the lock is held");
        assert_eq!(held.holder, "a process that wrote no pid", "the new file names no one");
        drop(first);
        RunLock::acquire(storage.path(), |_| unreachable!("released")).unwrap();
    }
}
