//! The rollback's step after the data: put the Compose project's own files back where they were, and the project's
//! containers back as they ran when the backup was taken — every container the project has now (the upgrade's) is
//! removed, every recorded one re-created from its recorded configuration on its recorded image ID — and hand the
//! ones that were running to `start`, which brings them up in dependency order.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::Utc;
use hookrun_archive::{create_private, fsync_dir, remove_any};
use hookrun_catalog::{Deployment, StoppedService};
use hookrun_docker::Engine;

use crate::context::COMPOSE_DIR;
use crate::{Hook, HookError, RunContext};

/// Puts back the recorded deployment of a backup.
#[derive(Debug)]
pub struct RedeployHook {
    project: String,
    deployment: Deployment,
    /// Where the restore put the archive's `compose/` folder (it is removed once the files are back).
    compose_staged: Option<PathBuf>,
    /// Whether it re-creates the containers; without, it only puts the Compose files back and leaves deploying to
    /// the next hook (`[upgrade] rollback_command`).
    recreate: bool,
}

impl RedeployHook {
    /// Puts back `deployment` in `project` (its containers only with `recreate`); its Compose files come from
    /// `compose_staged`, where the restore step put the archive's `compose/` folder.
    pub fn new(project: String, deployment: Deployment, compose_staged: Option<PathBuf>, recreate: bool) -> Self {
        Self {
            project,
            deployment,
            compose_staged,
            recreate,
        }
    }
}

#[async_trait]
impl Hook for RedeployHook {
    fn name(&self) -> &str {
        "redeploy"
    }

    fn kind(&self) -> &str {
        "redeploy"
    }

    /// Every recorded image must still be there (its rollback tag keeps it), or nothing is stopped.
    async fn preflight(&self, _ctx: &RunContext) -> Result<(), HookError> {
        if !self.recreate {
            return Ok(());
        }
        let engine = Engine::connect().await?;
        for container in &self.deployment.containers {
            if !engine.has_image(&container.image_id).await? {
                return Err(HookError::Misconfigured(format!(
                    "the image service {} ran ({}, {}) is gone, so its container cannot be re-created; nothing was \
                     changed",
                    container.service, container.image, container.image_id
                )));
            }
        }
        Ok(())
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        if let Some(staged) = &self.compose_staged {
            for file in &self.deployment.compose_files {
                let inside = Path::new(&file.archive_path)
                    .strip_prefix(COMPOSE_DIR)
                    .unwrap_or(Path::new(&file.archive_path));
                put_back(&staged.join(inside), Path::new(&file.host_path))?;
            }
            let _ = remove_any(staged);
        }
        if !self.recreate {
            // The command that deploys instead brings the project up: nothing is the run's to start.
            for gone in &ctx.stopped {
                ctx.catalog.forget_service(ctx.run_id, &gone.container_id)?;
            }
            ctx.stopped.clear();
            return Ok(());
        }

        let engine = Engine::connect().await?;
        for container in engine.project_containers(&self.project).await? {
            engine
                .remove_container(&container.id, &container.name)
                .await
                .map_err(|source| HookError::Recreate {
                    service: container.service.clone(),
                    container: container.name.clone(),
                    source: Box::new(source),
                })?;
        }
        let mut to_start = Vec::new();
        for recorded in &self.deployment.containers {
            let id = engine
                .recreate(&recorded.inspect, &recorded.image_id)
                .await
                .map_err(|source| HookError::Recreate {
                    service: recorded.service.clone(),
                    container: recorded.name.clone(),
                    source: Box::new(source),
                })?;
            if !recorded.running {
                continue;
            }
            // Its downtime runs from when the run stopped the container it replaces (or from now, if the upgrade had
            // left none running).
            let previous = ctx.stopped.iter().find(|s| s.container_name == recorded.name);
            let service = StoppedService {
                service: recorded.service.clone(),
                container_id: id,
                container_name: recorded.name.clone(),
                start_layer: recorded.start_layer,
                stopped_at: previous.map_or_else(Utc::now, |p| p.stopped_at),
            };
            match previous {
                Some(previous) => ctx
                    .catalog
                    .replace_service(ctx.run_id, &previous.container_id, &service)?,
                None => {
                    ctx.catalog.service_stopping(ctx.run_id, &service)?;
                    ctx.catalog
                        .service_stopped(ctx.run_id, &service.container_id, service.stopped_at)?;
                }
            }
            to_start.push(service);
        }
        // What the upgrade ran and no longer exists is no longer the run's to start.
        for gone in ctx
            .stopped
            .iter()
            .filter(|s| !to_start.iter().any(|n| n.container_name == s.container_name))
        {
            ctx.catalog.forget_service(ctx.run_id, &gone.container_id)?;
        }
        ctx.stopped = to_start;
        Ok(())
    }
}

/// Writes `from`'s content to `to` whole or not at all (a temporary file beside it, fsynced, renamed over it).
fn put_back(from: &Path, to: &Path) -> Result<(), HookError> {
    let prepare = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HookError::Prepare { path, source }
    };
    let content = std::fs::read(from).map_err(prepare(from))?;
    let dir = to.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(prepare(dir))?;
    let temporary = dir.join(format!(
        ".{}.hookrun-{}",
        to.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = create_private(&temporary)?;
        file.write_all(&content)?;
        let mode = std::fs::metadata(from)?.permissions();
        file.set_permissions(mode)?;
        file.sync_all()?;
        std::fs::rename(&temporary, to)?;
        fsync_dir(dir)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        HookError::Prepare {
            path: to.to_path_buf(),
            source,
        }
    })
}
