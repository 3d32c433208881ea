//! The `backup` built-in: archives the sources and the hooks' artifacts into a verified `.tar.gz` (or `.tar.zst`) in
//! storage.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;

use crate::blocking::blocking;
use crate::context::{ARTIFACTS_DIR, COMPOSE_DIR, NOTHING_TO_DO_OUTPUT};
use hookrun_archive::{
    archive_file_name, check_free_space, estimate, measure, overlapping, resolve_sources, temporary_path,
    write_archive, ArchiveError, Compression, LocalDir, SourceRoot, SourceStats, Storage,
};
use hookrun_catalog::{ArchiveInfo, ArchivedSource};
use hookrun_docker::{project_mounts, Engine, MountKind, ProjectMount};

use crate::{Hook, HookError, MountFate, Progress, RunContext};
use serde::Serialize;

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
    /// A backup that archives none of the project's data (no file in any of its trees) is fine; by default it
    /// fails before anything is stopped, since it almost always means a wrong path or an unexpected layout.
    pub allow_empty: bool,
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
            allow_empty: false,
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

    /// Everything this backup archives: the configured paths, the selected volumes and bind mounts, the Compose
    /// project's own files when the run copied them, and the hooks' artifacts when there are any.
    /// With them, what the backup does with each of the project's mounts (none listed after a snapshot, which
    /// listed them itself).
    async fn sources(&self, ctx: &RunContext) -> Result<(Vec<ArchivedSource>, Vec<MountFate>), HookError> {
        let (mut sources, mounts) = if ctx.snapshot.is_empty() {
            let plan = self.config.plan(&ctx.work_dir, ctx.project.as_deref()).await?;
            (plan.trees, plan.mounts)
        } else {
            (
                ctx.snapshot.iter().map(|tree| tree.source.clone()).collect(),
                Vec::new(),
            )
        };
        if let Some(compose) = &ctx.compose_files {
            sources.push(ArchivedSource {
                kind: "compose".into(),
                name: COMPOSE_DIR.into(),
                archive_path: COMPOSE_DIR.into(),
                host_path: compose.to_string_lossy().into_owned(),
            });
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
        Ok((sources, mounts))
    }
}

/// What a backup takes from the deployment, and what it does with each of the project's mounts.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    /// The configured paths and the selected volumes and bind mounts (the hooks' artifacts aside).
    pub trees: Vec<ArchivedSource>,
    /// Every volume and bind mount of the project, archived or not and why.
    pub mounts: Vec<MountFate>,
}

/// What `hookrun plan` and `hookrun estimate` show of a backup before it runs: the same numbers, from the same
/// sample the free-space preflight takes.
#[derive(Debug, Clone, Serialize)]
pub struct BackupEstimate {
    /// Each tree the backup takes and what it holds.
    pub sources: Vec<TreeStats>,
    /// Every volume and bind mount of the project, archived or not and why.
    pub mounts: Vec<MountFate>,
    /// Regular files and their bytes, in all trees.
    pub files: u64,
    pub bytes: u64,
    /// The archive size expected from a compressed sample of all the trees (what the preflight uses).
    pub estimated_archive_bytes: u64,
    /// Compressed ÷ uncompressed, as sampled.
    pub compression_ratio: f64,
    /// What the free-space preflight requires in storage (`min_free_factor` × the estimate; 0 when off).
    pub need_bytes: u64,
}

/// One tree of a backup, measured.
#[derive(Debug, Clone, Serialize)]
pub struct TreeStats {
    #[serde(flatten)]
    pub source: ArchivedSource,
    #[serde(flatten)]
    pub stats: SourceStats,
}

impl BackupEstimate {
    /// What the free-space preflight would say with `free` bytes in storage: `pass`, `fail`, or `off`.
    pub fn preflight(&self, free: u64) -> &'static str {
        match (self.need_bytes, free >= self.need_bytes) {
            (0, _) => "off",
            (_, true) => "pass",
            (_, false) => "fail",
        }
    }
}

impl BackupConfig {
    /// Measures the trees this backup would take now, and estimates its archive the way its preflight does.
    pub async fn estimate(&self, work_dir: &Path, project: Option<&str>) -> Result<BackupEstimate, HookError> {
        let plan = self.plan(work_dir, project).await?;
        let (compression, factor) = (self.compression, self.min_free_factor);
        let roots = roots(&plan.trees);
        let (expected, sources) = blocking(move || {
            let expected = estimate(&roots, compression)?;
            let sources = plan
                .trees
                .into_iter()
                .zip(&roots)
                .map(|(source, root)| {
                    Ok(TreeStats {
                        source,
                        stats: measure(std::slice::from_ref(root))?,
                    })
                })
                .collect::<Result<Vec<_>, HookError>>()?;
            Ok((expected, sources))
        })
        .await?;
        let need_bytes = if factor <= 0.0 {
            0
        } else {
            (expected.estimated_archive_bytes as f64 * factor).ceil() as u64
        };
        Ok(BackupEstimate {
            sources,
            mounts: plan.mounts,
            files: expected.files,
            bytes: expected.bytes,
            estimated_archive_bytes: expected.estimated_archive_bytes,
            compression_ratio: if expected.bytes == 0 {
                1.0
            } else {
                expected.estimated_archive_bytes as f64 / expected.bytes as f64
            },
            need_bytes,
        })
    }

    /// The trees this backup takes from the deployment: the configured paths, and the volumes and bind mounts that
    /// `volumes` selects (the hooks' artifacts aside).
    pub async fn trees(&self, work_dir: &Path, project: Option<&str>) -> Result<Vec<ArchivedSource>, HookError> {
        Ok(self.plan(work_dir, project).await?.trees)
    }

    /// The trees (which may not overlap in the archive) and the fate of every mount of the project.
    pub async fn plan(&self, work_dir: &Path, project: Option<&str>) -> Result<BackupPlan, HookError> {
        let mut sources: Vec<ArchivedSource> = resolve_sources(work_dir, &self.sources)?
            .into_iter()
            .map(|root| ArchivedSource {
                kind: "path".into(),
                name: root.archive_path.to_string_lossy().into_owned(),
                archive_path: root.archive_path.to_string_lossy().into_owned(),
                host_path: root.fs_path.to_string_lossy().into_owned(),
            })
            .collect();
        let mounts = self.mounts(work_dir, project).await?;
        for fate in &mounts {
            if let Some(archive_path) = fate.archived_as.clone() {
                sources.push(ArchivedSource {
                    kind: match fate.mount.kind {
                        MountKind::Volume => "volume".into(),
                        MountKind::Bind => "bind".into(),
                    },
                    name: fate.mount.name.clone(),
                    archive_path,
                    host_path: fate.mount.host_path.to_string_lossy().into_owned(),
                });
            }
        }
        // Trees that overlap would put entries in the archive twice, which no restore accepts: refused here, which
        // the preflight and the snapshot go through, so that such a chain stops nothing.
        let mut paths: Vec<&str> = sources.iter().map(|s| s.archive_path.as_str()).collect();
        if self.include_artifacts {
            paths.push(ARTIFACTS_DIR);
        }
        if let Some((a, b)) = overlapping(&paths) {
            let from = |i: usize| {
                sources
                    .get(i)
                    .map_or("the hooks' artifacts".to_string(), |s| s.host_path.clone())
            };
            return Err(HookError::Misconfigured(format!(
                "the archive would hold `{}` (from {}) and `{}` (from {}), one inside the other, and a restore refuses \
                 such a backup; rename or drop one of them",
                paths[a],
                from(a),
                paths[b],
                from(b)
            )));
        }
        Ok(BackupPlan { trees: sources, mounts })
    }

    /// Every volume and bind mount of the project, each with what this backup does with it. Without a project
    /// there are none; with `volumes` unset and no engine reachable, none are listed (none are wanted).
    ///
    /// `volumes = "auto"` takes every named volume (as `volumes/<name>`) and every bind mount under the work dir (as
    /// `binds/<path in the work dir>`). A list takes the volumes it names (full name, or the name in the compose
    /// file), the bind mounts whose host paths it names (absolute; outside the work dir they go in as
    /// `host/<absolute path>`), and everything `"auto"` takes when it holds `"auto"`.
    pub async fn mounts(&self, work_dir: &Path, project: Option<&str>) -> Result<Vec<MountFate>, HookError> {
        let Some(project) = project else {
            if self.volumes != Volumes::None {
                return Err(HookError::Misconfigured(
                    "`volumes` needs the Compose project: set `[runner] project`".into(),
                ));
            }
            return Ok(Vec::new());
        };
        let engine = match Engine::connect().await {
            Ok(engine) => engine,
            Err(_) if self.volumes == Volumes::None => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mounts = project_mounts(&engine.project_containers(project).await?);
        let work_dir = std::fs::canonicalize(work_dir).unwrap_or_else(|_| work_dir.to_path_buf());
        let named: &[String] = match &self.volumes {
            Volumes::Named(names) => names,
            _ => &[],
        };
        let auto = match &self.volumes {
            Volumes::None => false,
            Volumes::Auto => true,
            Volumes::Named(names) => names.iter().any(|n| n == "auto"),
        };
        let names_volume = |n: &str, mount: &ProjectMount| {
            mount.kind == MountKind::Volume && (mount.name == n || format!("{project}_{n}") == mount.name)
        };
        let names_bind = |n: &str, mount: &ProjectMount| {
            mount.kind == MountKind::Bind && Path::new(n).is_absolute() && same_path(Path::new(n), &mount.host_path)
        };
        if let Some(missing) = named
            .iter()
            .filter(|n| *n != "auto")
            .find(|n| !mounts.iter().any(|m| names_volume(n, m) || names_bind(n, m)))
        {
            let what = if Path::new(missing).is_absolute() {
                "no bind mount of"
            } else {
                "no volume"
            };
            return Err(HookError::Misconfigured(format!(
                "{what} `{missing}` is mounted in Compose project {project}"
            )));
        }
        let mut fates: Vec<MountFate> = mounts
            .into_iter()
            .map(|mount| {
                let inside = match mount.kind {
                    MountKind::Volume => None,
                    MountKind::Bind => {
                        let real = std::fs::canonicalize(&mount.host_path).unwrap_or_else(|_| mount.host_path.clone());
                        real.strip_prefix(&work_dir)
                            .ok()
                            .filter(|inside| !inside.as_os_str().is_empty())
                            .map(Path::to_path_buf)
                    }
                };
                let explicit = named.iter().any(|n| names_volume(n, &mount) || names_bind(n, &mount));
                let (archived_as, skipped) = match (mount.kind, &inside) {
                    (MountKind::Volume, _) if auto || explicit => (Some(format!("volumes/{}", mount.name)), None),
                    (MountKind::Bind, Some(inside)) if auto || explicit => {
                        (Some(format!("binds/{}", inside.display())), None)
                    }
                    (MountKind::Bind, None) if explicit => {
                        let absolute = mount.host_path.strip_prefix("/").unwrap_or(&mount.host_path);
                        (Some(format!("host/{}", absolute.display())), None)
                    }
                    _ if self.volumes == Volumes::None => (
                        None,
                        Some("the backup's `volumes` is not set (\"auto\" takes the volumes and the bind mounts under the work dir)".to_string()),
                    ),
                    (MountKind::Bind, None) if auto => (
                        None,
                        Some(format!(
                            "outside the work dir {}; add \"{}\" to `volumes` to archive it",
                            work_dir.display(),
                            mount.host_path.display()
                        )),
                    ),
                    _ => (None, Some("not named in `volumes`".to_string())),
                };
                MountFate {
                    mount,
                    archived_as,
                    skipped,
                }
            })
            .collect();
        // A bind mount inside another archived one is archived as part of it: twice would make the backup
        // unrestorable.
        let archived_binds: Vec<(PathBuf, String)> = fates
            .iter()
            .filter(|f| f.mount.kind == MountKind::Bind)
            .filter_map(|f| Some((f.mount.host_path.clone(), f.archived_as.clone()?)))
            .collect();
        for fate in fates
            .iter_mut()
            .filter(|f| f.mount.kind == MountKind::Bind && f.archived_as.is_some())
        {
            let outer = archived_binds
                .iter()
                .find(|(path, _)| *path != fate.mount.host_path && fate.mount.host_path.starts_with(path));
            if let Some((path, place)) = outer {
                fate.skipped = Some(format!(
                    "inside bind mount {}, archived with it as {place}",
                    path.display()
                ));
                fate.archived_as = None;
            }
        }
        Ok(fates)
    }
}

/// Whether two host paths name the same place (after resolving `.`, `..` and symlinks where they exist).
fn same_path(a: &Path, b: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || real(a) == real(b)
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
        let (sources, _) = self.sources(ctx).await?;
        // The Compose files (a few KiB) are not the project's data: a backup of them alone is an empty one.
        let sources: Vec<ArchivedSource> = sources.into_iter().filter(|s| s.kind != "compose").collect();
        let roots = roots(&sources);
        let (factor, compression) = (self.config.min_free_factor, self.config.compression);
        let expected = blocking(move || Ok(estimate(&roots, compression)?)).await?;
        // Before anything runs, the trees hold the project's data only (no hook has written artifacts yet).
        if expected.files == 0 && !self.config.allow_empty {
            let trees: Vec<&str> = sources.iter().map(|s| s.archive_path.as_str()).collect();
            let what = if trees.is_empty() {
                "it takes no tree at all (every mount of the project is left out: see `hookrun plan`)".to_string()
            } else {
                format!("{} hold no file", trees.join(", "))
            };
            return Err(HookError::Misconfigured(format!(
                "backup `{}` would archive none of the project's data: {what}; set `allow_empty = true` on it if \
                 that is intended",
                self.name
            )));
        }
        check_free_space(&ctx.storage_dir, expected.estimated_archive_bytes, factor)?;
        *self.preflight.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((expected.bytes, expected.estimated_archive_bytes));
        Ok(())
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        if ctx.archived_by_snapshot.as_deref() == Some(self.name.as_str()) {
            let outputs = ctx.outputs.entry(self.name.clone()).or_default();
            outputs.insert(
                NOTHING_TO_DO_OUTPUT.into(),
                "the snapshot already wrote the archive".into(),
            );
            return Ok(());
        }
        let (sources, mounts) = self.sources(ctx).await?;
        if ctx.snapshot.is_empty() {
            ctx.mounts = mounts;
        }
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

        let (catalog, run_id) = (ctx.catalog.clone(), ctx.run_id);
        ctx.archive = Some(
            blocking(move || {
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
                let mut info = ArchiveInfo {
                    backup_id: 0,
                    path: tmp.clone(),
                    size: summary.size,
                    sha256: summary.sha256,
                    file_count: summary.file_count,
                    entry_count: summary.entry_count,
                    bytes: summary.bytes,
                    compression: config.compression,
                    created_at: Utc::now(),
                    duration_ms: started.elapsed().as_millis() as u64,
                    sources,
                };
                let format = config.compression.format;
                let name_for = |attempt| archive_file_name(kind.as_str(), &version, named_at, attempt, format);
                // The catalog learns each name before the archive may appear under it.
                let mut registered: Option<i64> = None;
                let storage = LocalDir::new(&storage);
                let mut announce = |name: &str| {
                    info.path = storage.dir().join(name);
                    let name = info.path.clone();
                    let done = match registered {
                        None => catalog
                            .register_archive(run_id, kind, &version, &info)
                            .map(|id| registered = Some(id)),
                        Some(id) => catalog.move_backup(id, &name),
                    };
                    done.map_err(std::io::Error::other)
                };
                let placed = storage.put(&tmp, &name_for, &mut announce);
                match placed {
                    Ok(name) => Ok(ArchiveInfo {
                        backup_id: registered.expect("announced before placed"),
                        path: storage.dir().join(name),
                        ..info
                    }),
                    Err(error) => {
                        // Said as before: the archive could not be written (into its place).
                        let source = match error {
                            ArchiveError::Storage { source, .. } => source,
                            other => std::io::Error::other(other),
                        };
                        let _ = std::fs::remove_file(&tmp);
                        if let Some(id) = registered {
                            let _ = catalog.remove_backup(id);
                        }
                        Err(HookError::WriteArchive {
                            path: tmp.clone(),
                            source,
                        })
                    }
                }
            })
            .await?,
        );
        Ok(())
    }
}
