//! What a backup hook would take and write: for each backup hook, the files and bytes of each tree, what it does
//! with each of the project's volumes and bind mounts, the archive size expected from a compressed sample, the free
//! space in storage and the verdict of its free-space preflight. `estimate` and `plan` show it.

use std::path::Path;

use hookrun_archive::free_space;
use hookrun_hooks::builtin::BackupEstimate;
use serde::Serialize;

use crate::config::{Builtin, Config, HookKind};

/// One backup hook's estimate, with the storage it would write to.
#[derive(Serialize)]
pub struct HookEstimate {
    pub hook: String,
    #[serde(flatten)]
    pub estimate: BackupEstimate,
    pub free_bytes: u64,
    /// `pass`, `fail` or `off`.
    pub preflight: &'static str,
}

/// The estimate of every backup hook of `config`.
pub async fn estimates(config: &Config) -> anyhow::Result<Vec<HookEstimate>> {
    let free = free_space(nearest_existing(&config.runner.storage_dir))?;
    let mut estimates = Vec::new();
    for hook in &config.hooks {
        let HookKind::Builtin(Builtin::Backup(backup)) = &hook.kind else {
            continue;
        };
        let estimate = backup
            .estimate(&config.runner.work_dir, config.runner.project.as_deref())
            .await?;
        estimates.push(HookEstimate {
            hook: hook.name.clone(),
            preflight: estimate.preflight(free),
            free_bytes: free,
            estimate,
        });
    }
    Ok(estimates)
}

/// `path` or its closest ancestor that exists (the storage dir may not exist before the first run).
pub fn nearest_existing(path: &Path) -> &Path {
    path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"))
}

/// What the next upload to one remote would move, and how long it would take at the last recorded upload's pace.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedUpload {
    pub remote: String,
    pub url: String,
    pub encrypted: bool,
    pub expected_bytes: u64,
    pub expected_ms: Option<u64>,
}

/// The uploads of `config`'s `upload` hooks: to each remote they name, the archive the backups' `estimates` expect,
/// timed from the catalog's last copy on that remote (when the catalog exists; it is not created for this).
pub fn uploads(config: &Config, estimates: &[HookEstimate]) -> anyhow::Result<Vec<PlannedUpload>> {
    let remotes: Vec<&String> = config
        .hooks
        .iter()
        .filter_map(|h| match &h.kind {
            HookKind::Builtin(Builtin::Upload { remotes }) => Some(remotes),
            _ => None,
        })
        .flatten()
        .collect();
    if remotes.is_empty() {
        return Ok(Vec::new());
    }
    let catalog = if config.runner.catalog.is_file() {
        Some(hookrun_catalog::Catalog::open(&config.runner.catalog)?)
    } else {
        None
    };
    let expected_bytes: u64 = estimates.iter().map(|e| e.estimate.estimated_archive_bytes).sum();
    let mut planned = Vec::new();
    for name in remotes {
        let Some(remote) = config.remote(name) else { continue };
        let last = match &catalog {
            Some(catalog) => catalog.last_copy_on(name)?,
            None => None,
        };
        let expected_ms = last
            .filter(|c| c.size > 0 && c.duration_ms > 0)
            .map(|c| (expected_bytes as f64 * c.duration_ms as f64 / c.size as f64).round() as u64);
        planned.push(PlannedUpload {
            remote: name.clone(),
            url: remote.spec.url(),
            encrypted: remote.spec.encrypt.is_some(),
            expected_bytes,
            expected_ms,
        });
    }
    Ok(planned)
}
