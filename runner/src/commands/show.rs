//! `hookrun show ID`: one backup, its run and the run's hook results.

use std::path::Path;

use hookrun_hooks::catalog::Catalog;

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
        if !value.is_null() {
            crate::say!(
                "{key:<12} {}",
                value.as_str().map_or_else(|| value.to_string(), str::to_string)
            );
        }
    }
    if let Some(run) = run {
        crate::say!(
            "run          {} ({}, {}, started {})",
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
        crate::say!(
            "  source {:<9} {:<32} from {}",
            source.kind,
            source.archive_path,
            source.host_path
        );
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
