//! `hookrun pre-upgrade` and `hookrun backup`: journal a run, execute the chain, close the run, report.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use hookrun_hooks::catalog::{Catalog, NewRun, RunStatus};
use hookrun_hooks::{ProgressSink, RunContext, RunKind};
use tokio_util::sync::CancellationToken;

use crate::commands::recover;
use crate::config::{self, Check, Config};
use crate::event::{EventSink, Fanout};
use crate::executor::ChainHook;
use crate::exit::{Exit, UsageError};
use crate::interrupt::Interrupt;
use crate::journal::Journal;
use crate::lock::{boot_id, RunLock};
use crate::report::human::HumanReporter;
use crate::report::RunReport;
use crate::{chain, executor};

/// Runs the configured chain as a `kind` run of `version`.
pub async fn run(config_path: &Path, kind: RunKind, version: Option<String>, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Full)?;
    let version = version
        .or_else(|| config.runner.version.clone())
        .unwrap_or_else(|| "unknown".to_string());
    if version.trim().is_empty() {
        return Err(UsageError("--version must not be empty".to_string()).into());
    }
    let storage_dir = config.runner.storage_dir.clone();
    std::fs::create_dir_all(&storage_dir)
        .with_context(|| format!("cannot create storage dir {}", storage_dir.display()))?;
    let catalog = Arc::new(Catalog::open(&config.runner.catalog)?);
    let _lock = RunLock::acquire(&storage_dir, |pid| recover::describe_holder(&catalog, pid))?;
    recover::warn_about_interrupted_runs(&catalog)?;
    let chain = chain::build(&config)?;
    let (exit, _) = run_chain(&config, &catalog, kind, &version, &chain, json).await?;
    Ok(exit)
}

/// Journals a run of `chain`, executes it, closes the run and reports it. The caller holds the storage lock.
pub async fn run_chain(
    config: &Config,
    catalog: &Arc<Catalog>,
    kind: RunKind,
    version: &str,
    chain: &[ChainHook],
    json: bool,
) -> anyhow::Result<(Exit, RunReport)> {
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
        kind: kind.as_str().to_string(),
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
        archived_by_snapshot: None,
        cancel: CancellationToken::new(),
        progress: ProgressSink::discard(),
    };
    if let Err(e) = std::fs::create_dir_all(ctx.artifacts_root()) {
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

    let journal = Journal::new(catalog.clone(), run_id);
    let human = HumanReporter::default();
    let mut sinks: Vec<&dyn EventSink> = vec![&journal];
    if !json {
        sinks.push(&human);
    }
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
    catalog.finish_run(run_id, status, error.as_deref(), Utc::now(), duration_ms)?;
    let exit = outcome
        .failure
        .as_ref()
        .map_or(Exit::Success, |f| Exit::for_class(f.class));

    let report = RunReport {
        run_id,
        kind: kind.as_str().to_string(),
        version,
        status: status.as_str().to_string(),
        exit_code: exit.code(),
        error,
        interrupted: outcome.interrupted.map(str::to_string),
        duration_ms,
        backup: catalog.backup_of_run(run_id)?,
        hooks: catalog.hook_results(run_id)?,
        services: catalog.services(run_id)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        human.summary(&report);
    }
    Ok((exit, report))
}
