//! Running a chain as a run of its own: journal it, execute it, close it in the catalog, report it. What
//! `hookrun pre-upgrade`/`backup` and `hookrun restore` both do.

use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use hookrun_archive::create_private_dir;
use hookrun_catalog::RunKind;
use hookrun_catalog::{BackupStatus, NewRun, RunStatus};
use hookrun_hooks::{ProgressSink, RunContext};
use tokio_util::sync::CancellationToken;

use crate::deployment;
use crate::event::{EventSink, Fanout};
use crate::executor;
use crate::executor::ChainHook;
use crate::exit::Exit;
use crate::interrupt::Interrupt;
use crate::journal::Journal;
use crate::lock::boot_id;
use crate::report::RunReport;
use crate::session::Session;

/// Journals a run of `chain`, executes it (its events go to the journal and to `events`) and closes the run; returns
/// what it did. The session holds the storage lock. `restore_of` is the backup a restore run puts back.
pub async fn run_chain(
    session: &Session,
    kind: RunKind,
    version: &str,
    chain: &[ChainHook],
    restore_of: Option<i64>,
    events: &dyn EventSink,
) -> anyhow::Result<(RunReport, Exit)> {
    let (config, catalog) = (&session.config, &session.catalog);
    let storage_dir = config.runner.storage_dir.clone();
    let version = version.to_string();
    let started_at = Utc::now();
    let clock = Instant::now();
    let staging_dir = storage_dir.join(".staging").join(format!(
        "{}-{}",
        started_at.format("%Y%m%dT%H%M%S%.3f"),
        std::process::id()
    ));
    let run_id = catalog.begin_run(&NewRun {
        kind,
        version: version.clone(),
        project: config.runner.project.clone(),
        started_at,
        pid: std::process::id(),
        boot_id: boot_id(),
        storage_dir: storage_dir.clone(),
        staging_dir: staging_dir.clone(),
    })?;
    let mut ctx = RunContext {
        run_id,
        kind,
        version: version.clone(),
        project: config.runner.project.clone(),
        work_dir: config.runner.work_dir.clone(),
        storage_dir,
        staging_dir: staging_dir.clone(),
        started_at,
        catalog: catalog.clone(),
        archive: None,
        outputs: Default::default(),
        failure: None,
        stopped: Vec::new(),
        snapshot: Vec::new(),
        mounts: Vec::new(),
        compose_files: None,
        archived_by_snapshot: None,
        cancel: CancellationToken::new(),
        progress: ProgressSink::discard(),
    };
    if let Err(e) = create_private_dir(&ctx.artifacts_root()) {
        let error = format!("cannot create staging dir {}: {e}", staging_dir.display());
        catalog.finish_run(
            run_id,
            RunStatus::Failed,
            Some(&error),
            Utc::now(),
            clock.elapsed().as_millis() as u64,
        )?;
        anyhow::bail!(error);
    }

    // A pre-upgrade run records what runs before anything is stopped: the containers and the Compose files, which
    // go into the archive under `compose/`.
    let captured = if kind == RunKind::PreUpgrade {
        match deployment::capture(config, &staging_dir).await {
            Ok(captured) => captured,
            Err(e) => {
                tracing::warn!("what runs in the project is not recorded with this backup (a rollback can put back only its data): {e:#}");
                None
            }
        }
    } else {
        None
    };
    ctx.compose_files = captured.as_ref().and_then(|c| c.staged.clone());

    let journal = Journal::new(catalog.clone(), run_id);
    let sinks: Vec<&dyn EventSink> = vec![&journal, events];
    let interrupt = Interrupt::listen().context("cannot listen for signals")?;
    let outcome = executor::execute(chain, &mut ctx, &Fanout(sinks), &interrupt).await;

    if let Err(e) = std::fs::remove_dir_all(&staging_dir) {
        tracing::warn!("cannot remove staging dir {}: {e}", staging_dir.display());
    }
    let error = outcome
        .failure
        .as_ref()
        .map(|f| format!("hook {}: {}", f.hook, f.message));
    let status = if error.is_none() {
        RunStatus::Completed
    } else {
        RunStatus::Failed
    };
    let duration_ms = clock.elapsed().as_millis() as u64;
    let exit = outcome
        .failure
        .as_ref()
        .map_or(Exit::Success, |f| Exit::for_class(f.class));
    if outcome.refused {
        // Refused before anything was touched: nothing is recorded.
        catalog.discard_run(run_id)?;
    } else {
        catalog.finish_run(run_id, status, error.as_deref(), Utc::now(), duration_ms)?;
        crate::metrics::refresh(config, catalog);
    }
    let recorded = (!outcome.refused).then_some(run_id);
    let backup = recorded.map(|id| catalog.backup_of_run(id)).transpose()?.flatten();
    let mut deployment = None;
    if let (Some(captured), Some(backup), Some(project)) = (captured, &backup, config.runner.project.as_deref()) {
        if backup.status == BackupStatus::Completed {
            match deployment::keep(catalog, project, backup.id, captured).await {
                Ok(kept) => deployment = Some(kept),
                Err(e) => tracing::warn!("backup {}: what ran is not recorded with it: {e:#}", backup.id),
            }
        }
    }

    let report = RunReport {
        run_id: recorded,
        kind: kind.as_str().to_string(),
        version,
        status: if outcome.refused {
            "refused".to_string()
        } else {
            status.as_str().to_string()
        },
        exit_code: exit.code(),
        error,
        interrupted: outcome.interrupted.map(str::to_string),
        duration_ms,
        backup,
        deployment,
        hooks: catalog.hook_results(run_id)?,
        services: catalog.services(run_id)?,
        recovered: session.recovered.iter().map(|r| r.run_id).collect(),
        restore_of,
        mounts: ctx.mounts.clone(),
    };
    Ok((report, exit))
}
