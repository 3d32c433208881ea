//! `hookrun plan`: the resolved chain, and for each backup the trees it takes with their sizes, what it does with
//! each of the project's volumes and bind mounts, the archive size expected and the free-space verdict — the same
//! numbers `hookrun estimate` shows, and what each `upload` hook would move and how long that would take (from the
//! catalog's last upload, when there is a catalog). Reads only: no storage dir is made, no hook is run.

use crate::config::{Builtin, HookKind};
use crate::estimates::{estimates, uploads};
use crate::exit::Exit;
use crate::results::{PlanResult, PlannedBackup, PlannedHook};
use crate::session::ReadSession;

/// The plan of a session opened with [`ReadSession::validated`] (`CacheMode::ReadOnly`: what `hooks check` checks
/// first, so that the two accept and refuse the same files with the same message).
pub async fn plan(session: &ReadSession) -> anyhow::Result<(PlanResult, Exit)> {
    let config = &session.config;
    let all = estimates(config).await?;
    let planned_uploads = uploads(config, &all)?;
    let mut estimates = all.into_iter();
    let mut hooks = Vec::new();
    for spec in &config.hooks {
        let backup = match &spec.kind {
            HookKind::Builtin(Builtin::Backup(backup)) => Some(PlannedBackup {
                compression: backup.compression.format,
                compression_level: backup.compression.level,
                include_artifacts: backup.include_artifacts,
                estimate: estimates.next().expect("one estimate per backup hook, in order"),
            }),
            _ => None,
        };
        hooks.push(PlannedHook {
            name: spec.name.clone(),
            kind: spec.kind.label(),
            when: spec.when,
            on_error: spec.on_error,
            timeout_secs: spec.timeout.as_secs(),
            backup,
            uploads: match &spec.kind {
                HookKind::Builtin(Builtin::Upload { remotes }) => Some(
                    planned_uploads
                        .iter()
                        .filter(|u| remotes.contains(&u.remote))
                        .cloned()
                        .collect(),
                ),
                _ => None,
            },
        });
    }
    let result = PlanResult {
        config: config.path.clone(),
        runner: config.runner.clone(),
        hooks,
        upgrade: config.upgrade.clone(),
    };
    Ok((result, Exit::Success))
}
