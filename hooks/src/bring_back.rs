//! Bringing back what a run stopped: dependencies first, each layer in parallel, each service's downtime journalled.
//! The `start` hook and `hookrun recover` both end a run's downtime through here.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use hookrun_catalog::{Catalog, StoppedService};
use hookrun_docker::Engine;

use crate::HookError;

/// Starts `stopped` layer by layer (dependencies first; a layer in parallel), waiting for each container, and
/// journals each one's downtime. Every layer is attempted even when one fails: nothing is left down that could
/// come back. Fails with every service that did not come back, and the end of its log.
pub async fn bring_back(
    stopped: &[StoppedService],
    catalog: &Catalog,
    run_id: i64,
    timeout: Duration,
) -> Result<(), HookError> {
    if stopped.is_empty() {
        return Ok(());
    }
    let engine = Engine::connect()
        .await
        .map_err(|e| HookError::ServicesDown(format!("{} stay stopped: {e}", names(stopped))))?;
    let mut by_layer: BTreeMap<usize, Vec<&StoppedService>> = BTreeMap::new();
    for service in stopped {
        by_layer.entry(service.start_layer).or_default().push(service);
    }
    let mut failures = Vec::new();
    for layer in by_layer.values() {
        let results = join_all(layer.iter().map(|s| engine.start_and_wait(&s.container_id, timeout))).await;
        for (service, result) in layer.iter().zip(results) {
            let journal = match result {
                Ok(started) => {
                    let downtime = (started.at - service.stopped_at).num_milliseconds().max(0) as u64;
                    catalog.service_started(run_id, &service.container_id, started.at, downtime)
                }
                Err(e) => {
                    let logs = if e.logs.is_empty() {
                        String::new()
                    } else {
                        format!("; last log lines: {}", e.logs)
                    };
                    let error = format!("{}: {}{logs}", service.service, e.reason);
                    let journalled = catalog.service_failed(run_id, &service.container_id, &error);
                    failures.push(error);
                    journalled
                }
            };
            if let Err(e) = journal {
                tracing::error!("journal: {e}");
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(HookError::ServicesDown(failures.join("; ")))
    }
}

fn names(services: &[StoppedService]) -> String {
    services
        .iter()
        .map(|s| s.service.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
