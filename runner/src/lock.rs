//! One run at a time per storage dir: an exclusive `flock` on `<storage>/.hookrun.lock`, which the kernel drops
//! when its holder dies (so a crashed run never holds it), with the holder's pid and boot id written inside.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

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
    _file: File,
}

impl RunLock {
    /// Takes the lock on `storage_dir` without waiting. `describe` turns the holder's pid into words (e.g. its run
    /// in the catalog).
    pub fn acquire(storage_dir: &Path, describe: impl FnOnce(u32) -> String) -> anyhow::Result<Self> {
        std::fs::create_dir_all(storage_dir)?;
        let path = storage_dir.join(".hookrun.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut content = String::new();
            let _ = file.read_to_string(&mut content);
            let pid = content.split_whitespace().next().and_then(|p| p.parse().ok());
            let holder = pid.map_or_else(|| "a process that wrote no pid".to_string(), describe);
            return Err(LockHeld {
                storage_dir: storage_dir.to_path_buf(),
                holder,
            }
            .into());
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{} {}", std::process::id(), boot_id().unwrap_or_default())?;
        file.sync_all()?;
        Ok(Self { _file: file })
    }
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
