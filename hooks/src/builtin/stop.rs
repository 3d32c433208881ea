//! The `stop` built-in: stops the Compose project's running containers, dependents before their dependencies,
//! journalling each one in the catalog before it is stopped so that `start` or `hookrun recover` brings it back.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures_util::future::join_all;

use hookrun_catalog::StoppedService;
use hookrun_docker::{layers, project_dependencies, Engine, ProjectContainer, Selection};

use crate::{Hook, HookError, RunContext};

/// How `stop` is configured (`[hook.config]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StopConfig {
    /// Only these services (default: the whole project).
    pub services: Option<Vec<String>>,
    /// Grace before the engine kills a container (default: the container's own stop timeout, else 10 s).
    pub stop_timeout: Option<Duration>,
    /// Finding no container at all is fine (default: an error, since it usually means a wrong project name).
    pub allow_empty: bool,
    /// The compose file to read dependencies from when the containers do not carry them (`[runner] compose_file`).
    pub compose_file: Option<PathBuf>,
}

/// The `stop` hook.
#[derive(Debug)]
pub struct StopHook {
    name: String,
    config: StopConfig,
}

/// A stop plan: the containers to stop, by layer, highest (most dependent) first.
struct Plan {
    engine: Engine,
    /// (start layer, containers of that layer that are running).
    stop_layers: Vec<(usize, Vec<ProjectContainer>)>,
}

impl StopHook {
    /// A stop hook called `name`.
    pub fn new(name: impl Into<String>, config: StopConfig) -> Self {
        Self {
            name: name.into(),
            config,
        }
    }

    async fn plan(&self, ctx: &RunContext) -> Result<Plan, HookError> {
        let project = ctx.project.clone().ok_or_else(|| {
            HookError::Misconfigured("`stop` needs the Compose project: set `[runner] project`".into())
        })?;
        let engine = Engine::connect().await?;
        let all = engine.project_containers(&project).await?;
        if all.is_empty() && !self.config.allow_empty {
            return Err(HookError::NoContainers { project });
        }
        let deps = project_dependencies(&all, self.config.compose_file.as_deref())?;
        let services: BTreeSet<String> = all.iter().map(|c| c.service.clone()).collect();
        let order = layers(&services, &deps)?;
        let layer_of: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .flat_map(|(i, layer)| layer.iter().map(move |s| (s.as_str(), i)))
            .collect();
        let selected = Selection {
            project,
            services: self.config.services.clone(),
        }
        .apply(all.clone())?;
        let mut stop_layers: Vec<(usize, Vec<ProjectContainer>)> = (0..order.len()).map(|i| (i, Vec::new())).collect();
        for container in selected.into_iter().filter(|c| c.running) {
            stop_layers[layer_of[container.service.as_str()]].1.push(container);
        }
        stop_layers.retain(|(_, containers)| !containers.is_empty());
        stop_layers.reverse();
        Ok(Plan { engine, stop_layers })
    }

    fn grace_secs(&self, container: &ProjectContainer) -> i64 {
        self.config
            .stop_timeout
            .map(|t| t.as_secs() as i64)
            .or(container.stop_timeout)
            .unwrap_or(10)
    }
}

#[async_trait]
impl Hook for StopHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "stop"
    }

    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        self.plan(ctx).await.map(drop)
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let Plan { engine, stop_layers } = self.plan(ctx).await?;
        for (layer, containers) in stop_layers {
            if ctx.cancel.is_cancelled() {
                return Err(HookError::Cancelled);
            }
            let journalled: Vec<StoppedService> = containers
                .iter()
                .map(|c| StoppedService {
                    service: c.service.clone(),
                    container_id: c.id.clone(),
                    container_name: c.name.clone(),
                    start_layer: layer,
                    stopped_at: Utc::now(),
                })
                .collect();
            for service in &journalled {
                ctx.catalog.service_stopping(ctx.run_id, service)?;
            }
            let results = join_all(containers.iter().map(|c| engine.stop(c, self.grace_secs(c)))).await;
            let mut first_error = None;
            for (mut service, result) in journalled.into_iter().zip(results) {
                service.stopped_at = Utc::now();
                match result {
                    Ok(()) => ctx
                        .catalog
                        .service_stopped(ctx.run_id, &service.container_id, service.stopped_at)?,
                    Err(e) => first_error = first_error.or(Some(e)),
                }
                // Even a failed stop may have half-stopped it: `start` looks at every one of them.
                ctx.stopped.push(service);
            }
            if let Some(error) = first_error {
                return Err(error.into());
            }
        }
        Ok(())
    }
}
