//! What ran, kept with every pre-upgrade backup: before the chain, each container of the Compose project as Docker
//! reports it and a copy of the project's own files (its config files and `.env`, archived under `compose/`); once
//! the backup is recorded, the containers go into the catalog with it and each image is kept by a tag of hookrun's
//! own (`hookrun-rollback/<project>-<service>:<backup id>`) until the backup is deleted or pruned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use hookrun_archive::create_private_dir;
use hookrun_catalog::{Catalog, ComposeFile, Deployment, RecordedContainer};
use hookrun_docker::{layers, project_dependencies, project_files, rollback_tag, Engine};
use hookrun_hooks::context::COMPOSE_DIR;

use crate::config::Config;

/// What a run found running before its chain, not yet tied to a backup.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The containers, without their rollback tags yet.
    pub containers: Vec<RecordedContainer>,
    /// The Compose files copied into the run's staging folder (`staged`), and where each came from.
    pub compose_files: Vec<ComposeFile>,
    pub staged: Option<PathBuf>,
}

/// Records what runs in the configured project now, and copies its Compose files into `staging_dir/compose/`
/// (unless `[runner] archive_compose_files = false`). `None` without a project.
pub async fn capture(config: &Config, staging_dir: &Path) -> anyhow::Result<Option<Captured>> {
    let Some(project) = config.runner.project.as_deref() else {
        return Ok(None);
    };
    let engine = Engine::connect().await?;
    let containers = engine.project_containers(project).await?;
    let records = engine.record(&containers).await?;
    let deps = project_dependencies(&containers, config.runner.compose_file.as_deref())?;
    let services: BTreeSet<String> = records.iter().map(|r| r.service.clone()).collect();
    let layer_of: BTreeMap<String, usize> = layers(&services, &deps)?
        .into_iter()
        .enumerate()
        .flat_map(|(layer, services)| services.into_iter().map(move |s| (s, layer)))
        .collect();
    let recorded = records
        .into_iter()
        .map(|r| RecordedContainer {
            start_layer: layer_of.get(&r.service).copied().unwrap_or(0),
            name: r.name,
            service: r.service,
            container_id: r.id,
            image: r.image,
            image_id: r.image_id,
            repo_digests: r.repo_digests,
            running: r.running,
            rollback_tag: None,
            inspect: r.inspect,
        })
        .collect();

    let mut compose_files = Vec::new();
    let mut staged = None;
    let files = if config.runner.archive_compose_files {
        project_files(&containers)
    } else {
        Vec::new()
    };
    if !files.is_empty() {
        let dir = staging_dir.join(COMPOSE_DIR);
        create_private_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut taken = BTreeSet::new();
        for (index, file) in files.iter().enumerate() {
            let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
            // Two files of one name (an override in another folder) each keep theirs.
            let name = if taken.insert(name.clone()) {
                name
            } else {
                format!("{index}-{name}")
            };
            std::fs::copy(file, dir.join(&name))
                .with_context(|| format!("cannot copy compose file {}", file.display()))?;
            compose_files.push(ComposeFile {
                archive_path: format!("{COMPOSE_DIR}/{name}"),
                host_path: std::path::absolute(file)
                    .unwrap_or_else(|_| file.clone())
                    .to_string_lossy()
                    .into_owned(),
            });
        }
        staged = Some(dir);
    }
    Ok(Some(Captured {
        containers: recorded,
        compose_files,
        staged,
    }))
}

/// Ties what was captured to backup `backup_id`: each image is tagged to keep it, and the containers and Compose
/// files go into the catalog. An image that cannot be tagged is recorded without a tag, and said (it may be deleted
/// by someone else before a rollback needs it).
pub async fn keep(catalog: &Catalog, project: &str, backup_id: i64, captured: Captured) -> anyhow::Result<Deployment> {
    let engine = Engine::connect().await?;
    let mut containers = captured.containers;
    for container in &mut containers {
        let tag = rollback_tag(project, &container.service, backup_id);
        match engine.tag_image(&container.image_id, &tag).await {
            Ok(()) => container.rollback_tag = Some(tag),
            Err(e) => tracing::warn!(
                "the image of service {} ({}) is not kept for a rollback: {e}",
                container.service,
                container.image_id
            ),
        }
    }
    let deployment = Deployment {
        containers,
        compose_files: captured.compose_files,
    };
    catalog.record_deployment(backup_id, &deployment)?;
    Ok(deployment)
}

/// Removes the image tags backup `backup_id` kept (its images go with them when nothing else names or uses
/// them). Nothing to do when it kept none; the engine is reached only when it did.
pub async fn release(catalog: &Catalog, backup_id: i64) -> anyhow::Result<Vec<String>> {
    let tagged: Vec<RecordedContainer> = catalog
        .deployment(backup_id)?
        .containers
        .into_iter()
        .filter(|c| c.rollback_tag.is_some())
        .collect();
    if tagged.is_empty() {
        return Ok(Vec::new());
    }
    let engine = Engine::connect().await?;
    let mut removed = Vec::new();
    for container in tagged {
        let tag = container.rollback_tag.unwrap_or_default();
        engine.remove_tag(&tag).await?;
        catalog.forget_rollback_tag(backup_id, &container.name)?;
        if !removed.contains(&tag) {
            removed.push(tag);
        }
    }
    Ok(removed)
}
