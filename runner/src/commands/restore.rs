//! `hookrun restore ID` and `hookrun rollback`: put a backup's data back. A restore is a run of its own, journalled
//! like any other (so `hookrun recover` can finish one that died): extract beside each target while verifying the
//! archive (before anything stops), stop the project, swap, start the project, and only then delete the old copies.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use chrono::Utc;
use hookrun_catalog::RunKind;
use hookrun_catalog::{BackupRow, BackupStatus, Catalog};
use hookrun_hooks::builtin::{StartHook, StopConfig, StopHook};
use hookrun_hooks::restore::{CleanupHook, RestoreHook, RestoreTarget, SharedLeftovers, KEPT, REMOVED};
use hookrun_hooks::Hook;

use crate::chain_run::run_chain;
use crate::config::{Builtin, Check, Config, HookKind, OnError, When};
use crate::executor::ChainHook;
use crate::exit::{Exit, UsageError};
use crate::report::{out, RunReport};
use crate::restore_targets::targets;
use crate::session::Session;

/// What to restore.
pub enum Pick {
    /// This backup.
    Id(i64),
    /// The newest verified, completed pre-upgrade backup.
    NewestPreUpgrade,
}

/// Whether a restore asks before it changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// `--yes`: never.
    No,
    /// `restore ID`: on a terminal; elsewhere (a script named the backup) it goes on.
    OnTerminal,
    /// `rollback` (which picks the backup itself): on a terminal; elsewhere it refuses without `--yes`.
    Required,
}

/// Restores a backup (all of it, or the archive paths in `only`).
pub async fn restore(
    config_path: &Path,
    pick: Pick,
    only: Vec<String>,
    dry_run: bool,
    confirm: Confirm,
    json: bool,
) -> anyhow::Result<Exit> {
    let session = Session::open_unless_dry_run(config_path, Check::Shape, json, dry_run).await?;
    let (config, catalog) = (&session.config, &session.catalog);
    let backup = match pick {
        Pick::Id(id) => catalog
            .backup(id)?
            .ok_or_else(|| UsageError(format!("no backup with id {id}")))?,
        Pick::NewestPreUpgrade => newest_rollback_point(catalog)?,
    };
    if backup.status != BackupStatus::Completed.as_str() || backup.deleting {
        let why = backup.error.as_deref().unwrap_or("being deleted");
        anyhow::bail!("backup {} is not usable ({}): {why}", backup.id, backup.status);
    }
    let targets = targets(catalog, &backup, &only)?;

    let project = config.runner.project.as_deref();
    if dry_run {
        print_plan(&backup, &targets, project, json);
        return Ok(Exit::Success);
    }
    let on_terminal = std::io::stdin().is_terminal();
    match (confirm, on_terminal) {
        (Confirm::No, _) | (Confirm::OnTerminal, false) => {}
        (Confirm::Required, false) => {
            return Err(UsageError("not on a terminal: pass --yes to roll back without asking".into()).into());
        }
        (Confirm::OnTerminal | Confirm::Required, true) => {
            if !ask(&backup, &targets, project)? {
                return Err(UsageError("not confirmed: nothing was changed".into()).into());
            }
        }
    }
    if !json {
        crate::say!("restoring backup {}", describe(&backup));
    }
    let restore_id = catalog.begin_restore(backup.id, &only, Utc::now())?;
    let chain = chain(config, backup.clone(), targets);
    let outcome = run_chain(
        &session,
        RunKind::Restore,
        &backup.version,
        &chain,
        Some(backup.id),
        json,
    )
    .await;
    let (run_id, error) = match &outcome {
        Ok((_, report)) => (report.run_id, report.error.clone()),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    catalog.finish_restore(restore_id, run_id, error.as_deref(), Utc::now())?;
    if let (Ok((_, report)), false) = (&outcome, json) {
        print_leftovers(report);
    }
    outcome.map(|(exit, _)| exit)
}

/// Names the copies the clean-up kept beside the targets (after a failure: the data they held, the way back) and
/// the ones earlier restores had left that it removed, one line each.
fn print_leftovers(report: &RunReport) {
    let cleanup = report.hooks.iter().find(|h| h.hook_type == "cleanup");
    for key in [KEPT, REMOVED] {
        let lines = cleanup.and_then(|h| h.outputs.get(key)).and_then(|v| v.as_str());
        for line in lines.into_iter().flat_map(str::lines) {
            out::line(line);
        }
    }
}

/// The newest completed pre-upgrade backup whose archive is there and whose last verification (if any) passed.
fn newest_rollback_point(catalog: &Catalog) -> anyhow::Result<BackupRow> {
    let filter = hookrun_catalog::BackupFilter {
        kind: Some("pre-upgrade".into()),
        status: Some(BackupStatus::Completed),
    };
    catalog
        .list_backups(&filter)?
        .into_iter()
        .rev()
        .find(|b| {
            !b.deleting && b.verify_ok != Some(false) && b.path.as_deref().is_some_and(|p| Path::new(p).is_file())
        })
        .ok_or_else(|| anyhow::anyhow!("no completed pre-upgrade backup with its archive in place to roll back to"))
}

/// stop → restore → start → remove the old copies (the restore's extraction is its preflight, before the stop).
/// Stop and start use the chain's own settings when it has them, and are left out when no Compose project is
/// configured. The clean-up always runs: a staged copy never swapped in goes even when the run failed.
fn chain(config: &Config, backup: BackupRow, targets: Vec<RestoreTarget>) -> Vec<ChainHook> {
    let leftovers = SharedLeftovers::default();
    let step = |hook: Box<dyn Hook>, when: When| ChainHook {
        hook,
        when,
        artifacts: true,
        on_error: OnError::Abort,
        timeout: std::time::Duration::from_secs(24 * 3600),
    };
    let mut chain = Vec::new();
    let has_project = config.runner.project.is_some();
    if has_project {
        let stop = config.hooks.iter().find_map(|h| match &h.kind {
            HookKind::Builtin(Builtin::Stop(stop)) => Some(stop.clone()),
            _ => None,
        });
        let stop = stop.unwrap_or(StopConfig {
            compose_file: config.runner.compose_file.clone(),
            ..Default::default()
        });
        chain.push(step(Box::new(StopHook::new("stop", stop)), When::Success));
    }
    chain.push(step(
        Box::new(RestoreHook::new(backup, targets, leftovers.clone())),
        When::Success,
    ));
    if has_project {
        let start = config
            .hooks
            .iter()
            .find_map(|h| match &h.kind {
                HookKind::Builtin(Builtin::Start(start)) => Some(start.clone()),
                _ => None,
            })
            .unwrap_or_default();
        chain.push(step(Box::new(StartHook::new("start", start)), When::Always));
    }
    chain.push(step(Box::new(CleanupHook::new(leftovers)), When::Always));
    chain
}

/// A backup in words: `3 (pre-upgrade v1.2.3, created 2026-12-02T03:25:58.123Z)`.
fn describe(backup: &BackupRow) -> String {
    format!(
        "{} ({} v{}, created {})",
        backup.id, backup.kind, backup.version, backup.created_at
    )
}

/// What a restore would do, step by step, the stop and start of the project included.
fn print_plan(backup: &BackupRow, targets: &[RestoreTarget], project: Option<&str>, json: bool) {
    if json {
        let targets: Vec<_> = targets
            .iter()
            .map(|t| serde_json::json!({ "from": t.archive_prefix, "to": t.host_path, "replaces": t.host_path.exists() }))
            .collect();
        out::document(&serde_json::json!({
            "backup": backup.id,
            "dry_run": true,
            "stops_project": project,
            "targets": targets,
        }));
        return;
    }
    crate::say!("restore of backup {} would:", describe(backup));
    crate::say!("  check the archive and extract every tree beside its target, with the services still running");
    if let Some(project) = project {
        crate::say!("  stop the running services of Compose project {project}, dependents first");
    }
    for t in targets {
        let verb = if t.host_path.exists() { "replace" } else { "create" };
        crate::say!(
            "  {verb} {} with {} from the archive",
            t.host_path.display(),
            t.archive_prefix.display()
        );
    }
    if let Some(project) = project {
        crate::say!("  start the services of {project} again, dependencies first");
    }
    crate::say!("nothing was changed (dry run)");
}

/// Asks on the terminal whether to go on.
fn ask(backup: &BackupRow, targets: &[RestoreTarget], project: Option<&str>) -> anyhow::Result<bool> {
    let places: Vec<String> = targets.iter().map(|t| t.host_path.display().to_string()).collect();
    let services = project.map_or(String::new(), |p| {
        format!(", stopping the services of Compose project {p} meanwhile")
    });
    out::prompt(&format!(
        "Restore backup {}? This replaces {}{services}. [y/N] ",
        describe(backup),
        places.join(", ")
    ));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
