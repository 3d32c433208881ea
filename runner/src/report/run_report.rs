//! The result of one run, as `--json` prints it and the human reporter sums it up.

use hookrun_catalog::{BackupRow, Deployment, HookResultRow, ServiceRow};
use hookrun_hooks::MountFate;
use serde::Serialize;

/// Everything a pipeline needs to know about a finished run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Its id in the catalog; none when a preflight check refused it (nothing touched, nothing recorded).
    pub run_id: Option<i64>,
    pub kind: String,
    pub version: String,
    /// `completed`, `failed`, or `refused` (by a preflight check, before anything was touched).
    pub status: String,
    /// The process's exit code.
    pub exit_code: u8,
    /// The first failure, as `hook <name>: <error>`.
    pub error: Option<String>,
    /// The signal that interrupted the run.
    pub interrupted: Option<String>,
    pub duration_ms: u64,
    /// The backup the run recorded, if a `record` hook ran.
    pub backup: Option<BackupRow>,
    /// What ran when a pre-upgrade backup was taken, recorded with it (containers, images kept, Compose files).
    pub deployment: Option<Deployment>,
    /// Each hook's result, in chain order.
    pub hooks: Vec<HookResultRow>,
    /// The containers the run stopped, their state now and their downtime.
    pub services: Vec<ServiceRow>,
    /// Every volume and bind mount of the project, and what the backup did with it (archived where, or why not).
    pub mounts: Vec<MountFate>,
    /// The backup a restore run put back (or tried to).
    pub restore_of: Option<i64>,
    /// Runs that had died before this one and were recovered first (services started, files accounted for).
    pub recovered: Vec<i64>,
}
