//! The run context: what every hook of one run sees and hands on to the next.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::FailureClass;
use crate::ProgressSink;
use hookrun_catalog::{ArchiveInfo, ArchivedSource, Catalog, RunKind, StoppedService};
use hookrun_docker::{MountKind, ProjectMount};

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
    /// A copy of the Compose project's own files (config files, `.env`) taken before the chain ran, which `backup`
    /// archives under `compose/` (a pre-upgrade run's, unless turned off).
    pub compose_files: Option<PathBuf>,
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

/// The folder, in the staging dir and in the archive, that holds the Compose project's own files.
pub const COMPOSE_DIR: &str = "compose";

/// The folder, in the staging dir and in the archive, that holds the hooks' artifacts.
pub const ARTIFACTS_DIR: &str = "hooks";
