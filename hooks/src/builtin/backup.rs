//! The `backup` built-in: archives the sources and the hooks' artifacts into a verified `.tar.gz` (or `.tar.zst`) in
//! storage.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;

use crate::archive::{
    archive_file_name, check_free_space, estimate, measure, overlapping, place_without_replacing, resolve_sources,
    temporary_path, write_archive, Compression, SourceRoot,
};
use crate::blocking::blocking;
use crate::context::ARTIFACTS_DIR;
use crate::docker::{project_mounts, Engine, MountKind, ProjectMount};
use crate::{ArchiveInfo, ArchivedSource, Hook, HookError, Progress, RunContext};

/// How `backup` is configured (`[hook.config]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    /// Files and folders to archive, relative to the work dir.
    pub sources: Vec<PathBuf>,
    /// gzip (level 0–9, 6 by default) or zstd (level 1–19, 3 by default).
    pub compression: Compression,
    /// Free space required before starting, as a multiple of the sources' size (0 turns the check off).
    pub min_free_factor: f64,
    /// Whether the hooks' artifacts (staging `hooks/<name>/`) go into the archive.
    pub include_artifacts: bool,
    /// Which of the Compose project's named volumes and bind mounts go in.
    pub volumes: Volumes,
}

/// The `volumes` setting of `backup`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Volumes {
    /// None (the default).
    #[default]
    None,
    /// Every named volume of the project, and every bind mount under the work dir.
    Auto,
    /// These named volumes (full name, or the name in the compose file).
    Named(Vec<String>),
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            compression: Compression::default(),
            min_free_factor: 2.0,
            include_artifacts: true,
            volumes: Volumes::None,
        }
    }
}

/// The `backup` hook.
#[derive(Debug)]
pub struct BackupHook {
    name: String,
    config: BackupConfig,
    /// The preflight's estimate (source bytes, archive bytes), so that `run` does not sample the trees again.
    preflight: Mutex<Option<(u64, u64)>>,
}

impl BackupHook {
    /// A backup hook called `name`.
    pub fn new(name: impl Into<String>, config: BackupConfig) -> Self {
        Self {
            name: name.into(),
            config,
            preflight: Mutex::new(None),
        }
    }

    /// What this backup archives and how.
    pub(super) fn config(&self) -> &BackupConfig {
        &self.config
    }

    /// Everything this backup archives: the configured paths, the selected volumes and bind mounts, and the hooks'
    /// artifacts when there are any.
    async fn sources(&self, ctx: &RunContext) -> Result<Vec<ArchivedSource>, HookError> {
        let mut sources = if ctx.snapshot.is_empty() {
            self.config.trees(&ctx.work_dir, ctx.project.as_deref()).await?
        } else {
            ctx.snapshot.iter().map(|tree| tree.source.clone()).collect()
        };
        // Trees that overlap would put entries in the archive twice, which no restore accepts; checked here, in the
        // preflight too, so that such a chain stops nothing.
        let mut paths: Vec<&str> = sources.iter().map(|s| s.archive_path.as_str()).collect();
        if self.config.include_artifacts {
            paths.push(ARTIFACTS_DIR);
        }
        if let Some((a, b)) = overlapping(&paths) {
            return Err(HookError::Misconfigured(format!(
                "backup `{}`: the archive would hold `{}` and `{}`, one inside the other, and a restore refuses such \
                 a backup; rename or drop one of them",
                self.name, paths[a], paths[b]
            )));
        }
        let artifacts = ctx.artifacts_root();
        let has_artifacts = std::fs::read_dir(&artifacts).is_ok_and(|mut entries| entries.next().is_some());
        if self.config.include_artifacts && has_artifacts {
            sources.push(ArchivedSource {
                kind: "artifacts".into(),
                name: ARTIFACTS_DIR.into(),
                archive_path: ARTIFACTS_DIR.into(),
                host_path: artifacts.to_string_lossy().into_owned(),
            });
        }
        Ok(sources)
    }
}

impl BackupConfig {
    /// The trees this backup takes from the deployment: the configured paths, and the volumes and bind mounts that
    /// `volumes` selects (the hooks' artifacts aside).
    pub async fn trees(&self, work_dir: &Path, project: Option<&str>) -> Result<Vec<ArchivedSource>, HookError> {
        let mut sources: Vec<ArchivedSource> = resolve_sources(work_dir, &self.sources)?
            .into_iter()
            .map(|root| ArchivedSource {
                kind: "path".into(),
                name: root.archive_path.to_string_lossy().into_owned(),
                archive_path: root.archive_path.to_string_lossy().into_owned(),
                host_path: root.fs_path.to_string_lossy().into_owned(),
            })
            .collect();
        if self.volumes != Volumes::None {
            sources.extend(self.mounts(work_dir, project).await?);
        }
        Ok(sources)
    }

    /// The project's volumes (under `volumes/<name>`) and bind mounts under the work dir (under
    /// `binds/<path in the work dir>`), as `volumes` selects them; a bind mount inside another is part of that one.
    async fn mounts(&self, work_dir: &Path, project: Option<&str>) -> Result<Vec<ArchivedSource>, HookError> {
        let project = project.ok_or_else(|| {
            HookError::Misconfigured("`volumes` needs the Compose project: set `[runner] project`".into())
        })?;
        let engine = Engine::connect().await?;
        let mounts = project_mounts(&engine.project_containers(project).await?);
        let wanted = |mount: &ProjectMount| match &self.volumes {
            Volumes::None => false,
            Volumes::Auto => true,
            Volumes::Named(names) => {
                mount.kind == MountKind::Volume
                    && names
                        .iter()
                        .any(|n| *n == mount.name || format!("{project}_{n}") == mount.name)
            }
        };
        if let Volumes::Named(names) = &self.volumes {
            let missing = names.iter().find(|n| {
                !mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && (m.name == **n || m.name == format!("{project}_{n}")))
            });
            if let Some(missing) = missing {
                return Err(HookError::Misconfigured(format!(
                    "no volume `{missing}` is mounted in Compose project {project}"
                )));
            }
        }
        // The bind mounts archived: those under the work dir.
        let binds: Vec<&Path> = mounts
            .iter()
            .filter(|m| m.kind == MountKind::Bind && wanted(m))
            .map(|m| m.host_path.as_path())
            .filter(|p| {
                p.strip_prefix(work_dir)
                    .is_ok_and(|inside| !inside.as_os_str().is_empty())
            })
            .collect();
        let mut sources = Vec::new();
        for mount in mounts.iter().filter(|m| wanted(m)) {
            // A bind mount inside another one is archived as part of it (twice would make the backup unrestorable).
            if mount.kind == MountKind::Bind
                && binds
                    .iter()
                    .any(|outer| *outer != mount.host_path && mount.host_path.starts_with(outer))
            {
                continue;
            }
            let archive_path = match mount.kind {
                MountKind::Volume => format!("volumes/{}", mount.name),
                MountKind::Bind => match mount.host_path.strip_prefix(work_dir) {
                    Ok(inside) if !inside.as_os_str().is_empty() => format!("binds/{}", inside.display()),
                    // Outside the work dir (a socket, /etc/localtime, another app's data): not ours to archive.
                    _ => continue,
                },
            };
            let kind = match mount.kind {
                MountKind::Volume => "volume",
                MountKind::Bind => "bind",
            };
            sources.push(ArchivedSource {
                kind: kind.into(),
                name: mount.name.clone(),
                archive_path,
                host_path: mount.host_path.to_string_lossy().into_owned(),
            });
        }
        Ok(sources)
    }
}

fn roots(sources: &[ArchivedSource]) -> Vec<SourceRoot> {
    sources
        .iter()
        .map(|s| SourceRoot::new(&s.host_path, &s.archive_path))
        .collect()
}

#[async_trait]
impl Hook for BackupHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "backup"
    }

    async fn preflight(&self, ctx: &RunContext) -> Result<(), HookError> {
        let roots = roots(&self.sources(ctx).await?);
        let storage = ctx.storage_dir.clone();
        let (factor, compression) = (self.config.min_free_factor, self.config.compression);
        let expected = blocking(move || {
            let expected = estimate(&roots, compression)?;
            check_free_space(&storage, expected.estimated_archive_bytes, factor).map(|()| expected)
        })
        .await?;
        *self.preflight.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((expected.bytes, expected.estimated_archive_bytes));
        Ok(())
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        if ctx.archived_by_snapshot.as_deref() == Some(self.name.as_str()) {
            let outputs = ctx.outputs.entry(self.name.clone()).or_default();
            outputs.insert("archived_by".into(), "snapshot, with the services stopped".into());
            return Ok(());
        }
        let sources = self.sources(ctx).await?;
        // A snapshot's copies are read in place of the live trees (the catalog keeps the live places, for restores).
        let trees: Vec<SourceRoot> = sources
            .iter()
            .map(
                |s| match ctx.snapshot.iter().find(|t| t.source.archive_path == s.archive_path) {
                    Some(tree) => SourceRoot::new(&tree.copy, &s.archive_path).with_packs(tree.packs.clone()),
                    None => SourceRoot::new(&s.host_path, &s.archive_path),
                },
            )
            .collect();
        let storage = ctx.storage_dir.clone();
        std::fs::create_dir_all(&storage).map_err(|source| HookError::Prepare {
            path: storage.clone(),
            source,
        })?;
        let tmp = temporary_path(&storage, ctx.run_id, self.config.compression.format);
        let (kind, version, named_at) = (ctx.kind, ctx.version.clone(), ctx.started_at);
        let (cancel, sink, hook) = (ctx.cancel.clone(), ctx.progress.clone(), self.name.clone());
        let config = self.config.clone();
        let started = Instant::now();
        let sampled = self.preflight.lock().unwrap_or_else(|p| p.into_inner()).take();
        let artifacts: Vec<SourceRoot> = roots(
            &sources
                .iter()
                .filter(|s| s.kind == "artifacts")
                .cloned()
                .collect::<Vec<_>>(),
        );

        let (summary, path) = blocking(move || {
            // The trees were sampled by the preflight; what hooks have added since (their artifacts) counts as is.
            let (total, expected) = match sampled {
                Some((bytes, archive)) => {
                    let added = measure(&artifacts)?.bytes;
                    (bytes + added, archive + added)
                }
                None => {
                    let expected = estimate(&trees, config.compression)?;
                    (expected.bytes, expected.estimated_archive_bytes)
                }
            };
            check_free_space(&storage, expected, config.min_free_factor)?;
            let report = |done| {
                sink.report(Progress {
                    hook: hook.clone(),
                    done,
                    total,
                    unit: "bytes",
                })
            };
            let summary = write_archive(&trees, &tmp, config.compression, &cancel, &report)?;
            let format = config.compression.format;
            let name_for = |attempt| archive_file_name(kind.as_str(), &version, named_at, attempt, format);
            let path = place_without_replacing(&tmp, &storage, name_for).map_err(|source| {
                let _ = std::fs::remove_file(&tmp);
                HookError::WriteArchive {
                    path: tmp.clone(),
                    source,
                }
            })?;
            Ok((summary, path))
        })
        .await?;

        ctx.archive = Some(ArchiveInfo {
            path,
            size: summary.size,
            sha256: summary.sha256,
            file_count: summary.file_count,
            entry_count: summary.entry_count,
            bytes: summary.bytes,
            compression: self.config.compression,
            created_at: Utc::now(),
            duration_ms: started.elapsed().as_millis() as u64,
            sources,
        });
        Ok(())
    }
}
