//! `hookrun show ID`: one backup, its run and the run's hook results.

use std::path::Path;

use hookrun_catalog::Catalog;

use crate::config::{self, Check};
use crate::exit::{Exit, UsageError};
use crate::report::out;

/// Shows backup `id`.
pub fn show(config_path: &Path, id: i64, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Shape)?;
    let missing = || UsageError(format!("no backup with id {id} in {}", config.runner.catalog.display()));
    if !config.runner.catalog.exists() {
        return Err(missing().into());
    }
    let catalog = Catalog::open(&config.runner.catalog)?;
    let backup = catalog.backup(id)?.ok_or_else(missing)?;
    let (run, hooks, services) = match backup.run_id {
        Some(run_id) => (
            catalog.run(run_id)?,
            catalog.hook_results(run_id)?,
            catalog.services(run_id)?,
        ),
        None => (None, Vec::new(), Vec::new()),
    };
    let sources = catalog.backup_sources(backup.id)?;
    if json {
        let doc = serde_json::json!({
            "backup": backup, "run": run, "hooks": hooks, "services": services, "sources": sources,
        });
        out::document(&doc);
        return Ok(Exit::Success);
    }
    let value = serde_json::to_value(&backup)?;
    for (key, value) in value.as_object().into_iter().flatten() {
        // The archive's writing time is said in words below, not as a bare `duration_ms` one would take for the run's.
        if !value.is_null() && key != "duration_ms" {
            crate::say!(
                "{key:<12} {}",
                value.as_str().map_or_else(|| value.to_string(), str::to_string)
            );
        }
    }
    if let Some(ms) = backup.duration_ms {
        crate::say!("written in   {:.2}s (the archive alone)", ms as f64 / 1000.0);
    }
    if let Some(run) = run {
        let took = run
            .duration_ms
            .map(|ms| format!(", took {:.2}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        crate::say!(
            "run          {} ({}, {}, started {}{took})",
            run.id,
            run.kind,
            run.status.as_str(),
            run.started_at
        );
        if let Some(error) = run.error {
            crate::say!("run error    {error}");
        }
    }
    for hook in hooks {
        let took = hook.duration_ms.map(|ms| format!(" {ms} ms")).unwrap_or_default();
        let error = hook.error.map(|e| format!(": {e}")).unwrap_or_default();
        crate::say!(
            "  {:>2} {:<16} {:<10} {}{took}{error}",
            hook.seq,
            hook.name,
            hook.hook_type,
            hook.status
        );
    }
    for source in sources {
        // The hooks' artifacts were staged for the run only: their folder is gone, the archive holds them.
        let from = if source.kind == "artifacts" {
            "the hooks' artifact folders (staged for the run, removed after it)".to_string()
        } else {
            source.host_path
        };
        crate::say!("  source {:<9} {:<32} from {from}", source.kind, source.archive_path);
    }
    for service in services {
        let downtime = service
            .downtime_ms
            .map(|ms| format!(", down {ms} ms"))
            .unwrap_or_default();
        crate::say!("  service {:<12} {}{downtime}", service.service, service.state);
    }
    Ok(Exit::Success)
}
