//! hookrun's catalog: one SQLite file (WAL, versioned schema) holding runs, their hook results, the services they
//! stopped, their backups with what ran when each was taken and where their copies are, and upgrades. It knows archives only as the records the hooks hand it (`ArchiveInfo`).

mod backups;
mod copies;
mod deployments;
mod hook_results;
mod migrations;
mod names;
mod records;
mod runs;
mod services;
mod upgrades;

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;

use hookrun_archive::create_private_dir;

pub use backups::{BackupFilter, BackupRow, BackupStatus, NewBackup, NOT_YET_RECORDED};
pub use copies::{CopyRow, NewCopy};
pub use deployments::{ComposeFile, Deployment, RecordedContainer};
pub use hook_results::{HookResultRow, HookStatus};
pub use names::UnknownName;
pub use records::{ArchiveInfo, ArchivedSource, RunKind, StoppedService};
pub use runs::{NewRun, RunRow, RunStatus};
pub use services::ServiceRow;
pub use upgrades::{NewUpgrade, UpgradePhase, UpgradeRow, UpgradeStatus};

/// Why the catalog could not be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// SQLite refused an operation.
    #[error("catalog {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },

    /// Its folder could not be created.
    #[error("catalog {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A newer hookrun wrote it.
    #[error("catalog {path} has schema version {found}, newer than this hookrun knows ({known}); upgrade hookrun")]
    TooNew { path: PathBuf, found: i64, known: i64 },
}

/// How long a catalog call waits for another process's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open catalog. Shared between hooks behind an `Arc`; calls are serialized.
#[derive(Debug)]
pub struct Catalog {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and brings its schema up to date. The file is its owner's
    /// alone (0600, tightened if it was wider; SQLite gives its `-wal` and `-shm` files the same mode): it names
    /// every file backed up. Safe when several processes open a new catalog at once.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let io = |source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(io)?;
        }
        // Never an open-and-close of the file itself once it exists: closing any descriptor of a file drops every
        // POSIX lock this process holds on it, so in a process with other connections open (the web UI) SQLite's
        // locks would vanish, and another process closing its connection would take itself for the last one and
        // delete the WAL under them. A stat and a chmod by path take no descriptor.
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7700)).map_err(io)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        }
        let sqlite = |source| CatalogError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        // Switching a new file to WAL and migrating it take locks SQLite may refuse at once rather than wait for
        // (another process doing the same): such a refusal is waited out, up to the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            let set_up = conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(sqlite)
                .and_then(|()| migrations::migrate(&mut conn, path));
            match set_up {
                Err(CatalogError::Sqlite { source, .. })
                    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other?,
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Where the catalog lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each write is one statement or transaction).
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn err(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// Formats a time the way the catalog stores it: UTC, RFC 3339, milliseconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
