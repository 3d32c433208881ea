//! The `start` built-in (`when = "always"` by default): brings back exactly what `stop` stopped, dependencies
//! first, waiting for each to run (or be healthy), and records each service's downtime.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;

use crate::catalog::Catalog;
use crate::docker::Engine;
use crate::{Hook, HookError, RunContext, StoppedService};

/// How long a service gets to run (or be healthy) when `start_timeout` is not set.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);

/// How `start` is configured (`[hook.config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StartConfig {
    /// How long each service gets to run (or be healthy).
    pub start_timeout: Duration,
}

impl Default for StartConfig {
    fn default() -> Self {
        Self {
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

/// The `start` hook.
#[derive(Debug)]
pub struct StartHook {
    name: String,
    config: StartConfig,
}

impl StartHook {
    /// A start hook called `name`.
    pub fn new(name: impl Into<String>, config: StartConfig) -> Self {
        Self {
            name: name.into(),
            config,
        }
    }
}

#[async_trait]
impl Hook for StartHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "start"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        bring_back(&ctx.stopped, &ctx.catalog, ctx.run_id, self.config.start_timeout).await
    }
}

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
