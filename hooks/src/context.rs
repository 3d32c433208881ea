//! The run context: what every hook of one run sees and hands on to the next.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::archive::Compression;
use crate::catalog::Catalog;
use crate::docker::{MountKind, ProjectMount};
use crate::error::FailureClass;
use crate::ProgressSink;

/// Why a run was started; it names the archive and is stored in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// `hookrun pre-upgrade`: before an upgrade, a rollback point.
    PreUpgrade,
    /// `hookrun backup`: asked for by an operator.
    Manual,
    /// `hookrun restore` / `hookrun rollback`: puts a backup's data back.
    Restore,
}

impl RunKind {
    /// The name used in archive names and the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::PreUpgrade => "pre-upgrade",
            RunKind::Manual => "manual",
            RunKind::Restore => "restore",
        }
    }

    /// Parses the catalog's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pre-upgrade" => Some(RunKind::PreUpgrade),
            "manual" => Some(RunKind::Manual),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// `path` (under the work dir), `volume` (a named volume), `bind` (a bind mount) or `artifacts`.
    pub kind: String,
    /// The configured path, the volume's name, the bind mount's host path, or `hooks`.
    pub name: String,
    /// Its path inside the archive.
    pub archive_path: String,
    /// Where it lives on the host.
    pub host_path: String,
}

/// What a backup does with one of the Compose project's volumes and bind mounts: archive it (where in the archive)
/// or leave it out (why). Shown by `plan`, `estimate` and the run's report, so that nothing is left out silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountFate {
    #[serde(flatten)]
    pub mount: ProjectMount,
    /// Its path in the archive, when it is archived.
    pub archived_as: Option<String>,
    /// Why it is left out, when it is.
    pub skipped: Option<String>,
}

impl MountFate {
    /// One line for people: `volume myapp_db → volumes/myapp_db`, or why it is left out.
    pub fn describe(&self) -> String {
        let what = match self.mount.kind {
            MountKind::Volume => format!("volume {}", self.mount.name),
            MountKind::Bind => format!("bind mount {}", self.mount.host_path.display()),
        };
        match (&self.archived_as, &self.skipped) {
            (Some(place), _) => format!("{what} (at {}) → archived as {place}", self.mount.destination),
            (None, Some(why)) => format!("{what} (at {}) → not archived: {why}", self.mount.destination),
            (None, None) => what,
        }
    }
}

/// A tree copied by `snapshot`: what it is (with its real place on the host, for restores) and where the copy is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotTree {
    pub source: ArchivedSource,
    /// The copy, without the small files.
    pub copy: PathBuf,
    /// The small files, in packs (plain tar files, named relative to the tree).
    pub packs: Vec<PathBuf>,
}

/// The first failure of a run: which hook and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The hook that failed.
    pub hook: String,
    /// Its one-line error.
    pub message: String,
    /// What it means for the run.
    pub class: FailureClass,
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

/// Everything one run's hooks share.
#[derive(Debug)]
pub struct RunContext {
    /// The run's id in the catalog.
    pub run_id: i64,
    /// Pre-upgrade or manual.
    pub kind: RunKind,
    /// The deployment's version this backup belongs to.
    pub version: String,
    /// The Compose project name, when configured.
    pub project: Option<String>,
    /// The deployment's folder; archive paths are relative to it.
    pub work_dir: PathBuf,
    /// Where archives are kept.
    pub storage_dir: PathBuf,
    /// This run's scratch folder; hooks drop artifacts under `hooks/<name>/`.
    pub staging_dir: PathBuf,
    /// When the run started (names the archive).
    pub started_at: DateTime<Utc>,
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// The archive produced, once `backup` has run.
    pub archive: Option<ArchiveInfo>,
    /// Named outputs of hooks: hook name → key → value.
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// The containers `stop` stopped, in the order it stopped them.
    pub stopped: Vec<StoppedService>,
    /// The copies `snapshot` took while the services were stopped, which `backup` then archives.
    pub snapshot: Vec<SnapshotTree>,
    /// What the backup did with each of the project's volumes and bind mounts (archived, or why not).
    pub mounts: Vec<MountFate>,
    /// The backup hook whose archive `snapshot` wrote itself, with the services stopped (storage could not clone
    /// the trees, or the copies did not fit); that hook has nothing left to do.
    pub archived_by_snapshot: Option<String>,
    /// Fires when the current hook must stop (its timeout, or a signal).
    pub cancel: CancellationToken,
    /// Where hooks report progress.
    pub progress: ProgressSink,
}

impl RunContext {
    /// The folder where hook `name` drops its artifacts; they go into the archive under `hooks/<name>/`.
    pub fn artifact_dir(&self, name: &str) -> PathBuf {
        self.staging_dir.join(ARTIFACTS_DIR).join(name)
    }

    /// The staging folder holding every hook's artifact folder.
    pub fn artifacts_root(&self) -> PathBuf {
        self.staging_dir.join(ARTIFACTS_DIR)
    }

    /// True while no hook has failed.
    pub fn succeeded_so_far(&self) -> bool {
        self.failure.is_none()
    }
}

/// The output a hook sets to a plain sentence that the run's human summary says once (e.g. why a snapshot archived
/// in place).
pub const SUMMARY_OUTPUT: &str = "summary";

/// The output a hook sets when it found nothing to do, saying why: reports show it as skipped, not as work done.
pub const NOTHING_TO_DO_OUTPUT: &str = "nothing_to_do";

/// The folder, in the staging dir and in the archive, that holds the hooks' artifacts.
pub const ARTIFACTS_DIR: &str = "hooks";
