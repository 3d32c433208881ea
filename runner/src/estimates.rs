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
