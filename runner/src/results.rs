//! What the commands return: one typed result per command (with the `Exit` it implies, beside it), which `report`
//! renders for people or as the command's `--json` document (each document is its result serialized, keys in
//! alphabetical order; fields marked `skip` are for people only). What a web UI would get from the same calls.

use std::path::PathBuf;

use hookrun_archive::Format;
use hookrun_catalog::{
    ArchivedSource, BackupRow, Deployment, HookResultRow, RecordedContainer, RunRow, ServiceRow, UpgradeRow,
};
use hookrun_hooks::restore::{RestoreTarget, KEPT, REMOVED};
use serde::Serialize;

use crate::config::{OnError, RunnerConfig, UpgradeConfig, When};
use crate::estimates::HookEstimate;
use crate::recovery::{Recovered, RemovedLeftover};
use crate::report::RunReport;
use crate::storage::UnknownArchive;
use crate::upgrade::RecoveredUpgrade;

// `hooks check` and `hooks new`

/// What `hooks check` found: every hook loads (WASM modules loaded and linked).
#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub ok: bool,
    pub hooks: Vec<CheckedHook>,
    /// The configuration file.
    #[serde(skip)]
    pub config: PathBuf,
}

/// One hook that passed the checks.
#[derive(Debug, Serialize)]
pub struct CheckedHook {
    pub name: String,
    pub kind: &'static str,
    pub when: When,
    pub on_error: OnError,
    /// Its line in the configuration file.
    #[serde(skip)]
    pub line: usize,
}

/// The hook crate `hooks new` wrote.
#[derive(Debug, Serialize)]
pub struct NewHookResult {
    /// Its folder, absolute.
    pub created: PathBuf,
    /// The command that builds it.
    pub build: String,
    /// Where the built module lands.
    pub module: PathBuf,
    /// Its folder as given.
    #[serde(skip)]
    pub dir: PathBuf,
}

// `delete`

/// The backup `delete` deleted.
#[derive(Debug, Serialize)]
pub struct DeleteResult {
    /// Its id (a list, like `prune`'s).
    pub deleted: Vec<i64>,
    /// Its row as it was.
    #[serde(skip)]
    pub backup: BackupRow,
}

// `estimate`

/// The estimate of every backup hook, in chain order.
#[derive(Serialize)]
pub struct EstimateResult {
    pub backups: Vec<HookEstimate>,
    /// What the `upload` hooks would move to each remote, and how long that would take.
    pub uploads: Vec<crate::estimates::PlannedUpload>,
}

// `list`

/// The backups, oldest first, and the archives in storage no backup points at.
#[derive(Debug, Serialize)]
pub struct ListResult {
    pub backups: Vec<BackupRow>,
    pub unknown_archives: Vec<UnknownArchive>,
}

// `migrate-storage`

/// What `migrate-storage` did.
#[derive(Debug, Serialize)]
pub struct MigrateResult {
    /// The backups whose archives it moved.
    pub moved: Vec<i64>,
    /// The new storage dir, absolute.
    pub storage_dir: PathBuf,
    /// What to change in the configuration now.
    pub next: String,
}

/// One archive moved, as it happens.
#[derive(Debug)]
pub struct Moved {
    pub id: i64,
    pub to: PathBuf,
}

// `plan`

/// The chain as it would run.
#[derive(Serialize)]
pub struct PlanResult {
    /// The configuration file.
    pub config: PathBuf,
    pub runner: RunnerConfig,
    pub hooks: Vec<PlannedHook>,
    /// How `hookrun upgrade` would go: its command, its timeout, how long its gate waits.
    pub upgrade: UpgradeConfig,
}

/// One hook of the chain.
#[derive(Serialize)]
pub struct PlannedHook {
    pub name: String,
    pub kind: &'static str,
    pub when: When,
    pub on_error: OnError,
    pub timeout_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PlannedBackup>,
    /// For an `upload` hook: what it would move to each remote, and how long that would take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploads: Option<Vec<crate::estimates::PlannedUpload>>,
}

/// What a backup hook would write.
#[derive(Serialize)]
pub struct PlannedBackup {
    /// `gzip` or `zstd`.
    pub compression: Format,
    pub compression_level: u32,
    pub include_artifacts: bool,
    #[serde(flatten)]
    pub estimate: HookEstimate,
}

// `prune`

/// What `prune` deleted (or, with `dry_run`, would delete) and why it kept the others.
#[derive(Debug, Serialize)]
pub struct PruneResult {
    pub dry_run: bool,
    /// The backups no location keeps: deleted entirely.
    pub deleted: Vec<i64>,
    /// The backups whose local archive was removed because only a remote keeps them.
    pub local_removed: Vec<i64>,
    /// The remote copies their remote's rules do not keep.
    pub copies_deleted: Vec<PrunedCopy>,
    /// The backups some rule keeps, by id, with the rules that keep each.
    pub kept: Vec<Kept>,
    /// Every backup considered, oldest first.
    #[serde(skip)]
    pub backups: Vec<BackupRow>,
}

// `sync`

/// What `sync` uploaded, skipped and could not upload.
#[derive(Debug, Default, Serialize)]
pub struct SyncResult {
    pub uploaded: Vec<Synced>,
    /// Backups that already had their copy on a remote (per remote).
    pub already: usize,
    pub failed: Vec<SyncFailure>,
}

/// One copy `sync` made (or adopted: an object an earlier upload completed but did not record).
#[derive(Debug, Serialize)]
pub struct Synced {
    pub backup: i64,
    pub remote: String,
    pub key: String,
    pub bytes: u64,
    pub encrypted: bool,
    pub already_there: bool,
    pub duration_ms: u64,
}

/// One upload that failed, with the one-line error naming the remote.
#[derive(Debug, Serialize)]
pub struct SyncFailure {
    pub backup: i64,
    pub remote: String,
    pub error: String,
}

/// A remote copy `prune` deleted.
#[derive(Debug, Serialize)]
pub struct PrunedCopy {
    pub backup: i64,
    pub remote: String,
    pub key: String,
}

/// A backup `prune` keeps, and why.
#[derive(Debug, Serialize)]
pub struct Kept {
    pub id: i64,
    pub because: Vec<String>,
}

impl PruneResult {
    /// The rows of the backups kept, oldest first, each with why.
    pub fn kept_backups(&self) -> impl Iterator<Item = (&BackupRow, &[String])> {
        self.backups.iter().filter_map(|row| {
            let kept = self.kept.iter().find(|k| k.id == row.id)?;
            Some((row, kept.because.as_slice()))
        })
    }
}

// `recover`

/// What `recover` did.
#[derive(Debug, Serialize)]
pub struct RecoverResult {
    /// Each interrupted run, recovered (or not).
    pub recovered: Vec<Recovered>,
    /// Each interrupted upgrade, finished: rolled back, or left as it was.
    pub upgrades: Vec<RecoveredUpgrade>,
    /// The copies finished restores had left beside their targets, removed.
    pub removed: Vec<RemovedLeftover>,
}

// `restore` and `rollback`

/// What a restore would do: the backup, the trees it puts back, the project it stops meanwhile. A dry run renders
/// it as it is; `restore_run::execute` carries it out.
#[derive(Debug, Serialize)]
pub struct RestorePlan {
    /// The backup's id.
    pub backup: i64,
    pub dry_run: bool,
    /// The Compose project stopped during the swap, if one is configured.
    pub stops_project: Option<String>,
    pub targets: Vec<PlannedTarget>,
    /// The backup's row.
    #[serde(skip)]
    pub row: BackupRow,
    /// The archive paths asked for (all of the backup when empty).
    #[serde(skip)]
    pub only: Vec<String>,
    #[serde(skip)]
    pub(crate) restore_targets: Vec<RestoreTarget>,
    /// The containers a rollback re-creates as they ran when the backup was taken (none for a restore, or a backup
    /// that recorded none).
    pub recreates: Vec<RecordedContainer>,
    /// What the backup recorded of its deployment, when a rollback puts it back.
    #[serde(skip)]
    pub(crate) deployment: Option<Deployment>,
    /// Decrypts a remote copy when the local archive is missing or damaged (`restore --identity`).
    #[serde(skip)]
    pub identity: Option<hookrun_remote::Identities>,
}

/// One tree a restore puts back.
#[derive(Debug, Serialize)]
pub struct PlannedTarget {
    /// Its path in the archive.
    pub from: PathBuf,
    /// Where it goes.
    pub to: PathBuf,
    /// Whether something is there now (replaced), or it is created.
    pub replaces: bool,
}

/// What a restore did: its run, and the exit code that run implies.
#[derive(Debug)]
pub struct RestoreResult {
    pub report: RunReport,
}

impl RestoreResult {
    /// The lines the clean-up left: the copies it kept beside the targets (after a failure: the data they held, the
    /// way back) and the ones earlier restores had left that it removed.
    pub fn leftovers(&self) -> Vec<&str> {
        let cleanup = self.report.hooks.iter().find(|h| h.hook_type == "cleanup");
        [KEPT, REMOVED]
            .into_iter()
            .flat_map(|key| cleanup.and_then(|h| h.outputs.get(key)).and_then(|v| v.as_str()))
            .flat_map(str::lines)
            .collect()
    }
}

// `upgrade`

/// What `hookrun upgrade` did: its record (phases, durations, downtime, the command's output), the pre-upgrade run,
/// each health gate, and the rollback's run when there was one.
#[derive(Debug, Serialize)]
pub struct UpgradeResult {
    /// The upgrade's record in the catalog.
    pub upgrade: Option<UpgradeRow>,
    /// The pre-upgrade chain's run (its backup is the rollback point, with what ran recorded).
    pub pre_upgrade: Option<RunReport>,
    /// The health gate on the new version (none when the command failed first).
    pub gate: Option<GateReport>,
    /// The rollback's restore run, when the upgrade was rolled back.
    pub rollback: Option<RunReport>,
    /// The health gate on the old version after the rollback.
    pub rollback_gate: Option<GateReport>,
    /// The process's exit code: 0 upgraded, 5 rolled back, 1 nothing upgraded, 3 rollback failed.
    pub exit_code: u8,
}

impl UpgradeResult {
    pub(crate) fn new(
        upgrade: Option<UpgradeRow>,
        pre_upgrade: Option<RunReport>,
        gate: Option<GateReport>,
        rollback: Option<RunReport>,
        rollback_gate: Option<GateReport>,
        exit: crate::exit::Exit,
    ) -> Self {
        Self {
            upgrade,
            pre_upgrade,
            gate,
            rollback,
            rollback_gate,
            exit_code: exit.code(),
        }
    }
}

/// How a health gate went.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    /// The services it waited for.
    pub expected: Vec<String>,
    /// How long they had to stay healthy.
    pub healthy_for_ms: u64,
    /// How long it took in all.
    pub waited_ms: u64,
    /// Why it failed (`service S …`); none when it passed.
    pub failure: Option<String>,
}

// `show`

/// One backup with everything the catalog records about it.
#[derive(Debug, Serialize)]
pub struct ShowResult {
    pub backup: BackupRow,
    /// The run that made it.
    pub run: Option<RunRow>,
    /// That run's hook results, in chain order.
    pub hooks: Vec<HookResultRow>,
    /// The containers that run stopped.
    pub services: Vec<ServiceRow>,
    /// The trees the archive holds.
    pub sources: Vec<ArchivedSource>,
    /// What ran when it was taken (a pre-upgrade backup's containers, their images and tags, its Compose files):
    /// what `rollback` puts back besides the data.
    pub deployment: Deployment,
}

// `verify`

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyResult {
    /// Each backup verified, in catalog order.
    pub verified: Vec<Verified>,
    /// With `--all`: the archives in storage the catalog does not know (each fails the check).
    pub unknown_archives: Vec<UnknownArchive>,
}

/// One backup verified.
#[derive(Debug, Serialize)]
pub struct Verified {
    pub id: i64,
    pub path: Option<String>,
    /// The remote whose copy was read back (`None`: the local archive).
    pub remote: Option<String>,
    pub ok: bool,
    pub error: Option<String>,
}

/// A duration as whole milliseconds (how every `--json` document gives durations).
pub fn millis<S: serde::Serializer>(duration: &std::time::Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

// `init`

/// What `init` wrote.
#[derive(Debug, Serialize)]
pub struct InitResult {
    /// The file written.
    pub path: PathBuf,
    pub project: String,
    /// The project's services, sorted.
    pub services: Vec<String>,
    /// Its named volumes and bind mounts (host paths), as the backup's `volumes = "auto"` will find them.
    pub volumes: Vec<String>,
    pub binds: Vec<String>,
    /// The services a dump hook is suggested for, each as `service: what`.
    pub suggestions: Vec<String>,
}
