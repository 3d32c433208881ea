//! What the catalog records of a run and its backup, as the hooks hand it over: why the run started, the archive
//! it produced with the trees in it, and the containers it stopped.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use hookrun_archive::Compression;
use serde::Serialize;

use crate::names::names;

names! {
    /// Why a run was started; it names the archive and is stored in the catalog.
    pub enum RunKind ("run kind") {
        /// `hookrun pre-upgrade`: before an upgrade, a rollback point.
        PreUpgrade = "pre-upgrade",
        /// `hookrun backup`: asked for by an operator.
        Manual = "manual",
        /// `hookrun restore` / `hookrun rollback`: puts a backup's data back.
        Restore = "restore",
    }
}

/// The archive a `backup` hook produced, complete and in its final place.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInfo {
    /// Its row in the catalog, registered before the archive took its final name (see `record`).
    pub backup_id: i64,
    /// Full path of the archive in the storage dir.
    pub path: PathBuf,
    /// Size of the archive file in bytes.
    pub size: u64,
    /// SHA-256 of the archive file, lowercase hex.
    pub sha256: String,
    /// Regular files in the archive.
    pub file_count: u64,
    /// Entries of every kind (files, directories, links, …).
    pub entry_count: u64,
    /// Bytes of file content archived (before compression).
    pub bytes: u64,
    /// Format and level used.
    pub compression: Compression,
    /// When the archive was renamed into place.
    pub created_at: DateTime<Utc>,
    /// The trees in the archive and where each came from, so a restore knows where each goes.
    pub sources: Vec<ArchivedSource>,
    /// How long writing took, in milliseconds.
    pub duration_ms: u64,
}

/// One tree in an archive: what it is, its path inside the archive, and where it lives on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedSource {
    /// `path` (under the work dir), `volume` (a named volume), `bind` (a bind mount), `artifacts` or `compose` (the
    /// Compose project's own files, put back by a rollback, not by a restore).
    pub kind: String,
    /// The configured path, the volume's name, the bind mount's host path, or `hooks`.
    pub name: String,
    /// Its path inside the archive.
    pub archive_path: String,
    /// Where it lives on the host.
    pub host_path: String,
}

/// A container the `stop` hook stopped, which `start` (or `hookrun recover`) must bring back.
#[derive(Debug, Clone, Serialize)]
pub struct StoppedService {
    /// The Compose service.
    pub service: String,
    /// The container's id.
    pub container_id: String,
    /// The container's name.
    pub container_name: String,
    /// Start in ascending layers: a service's dependencies are in lower layers.
    pub start_layer: usize,
    /// When it stopped.
    pub stopped_at: DateTime<Utc>,
}
