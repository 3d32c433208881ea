//! What every command that changes storage opens first, in one place: the configuration, the storage folder
//! (created private), the catalog, the storage lock, and the runs that died before — recovered before anything else
//! is done, so that no command ever ends with the services in a worse state than an interrupted run's journal says
//! they should be, while reporting success.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hookrun_archive::create_private_dir;
use hookrun_catalog::Catalog;

use crate::config::{self, Check, Config};
use crate::exit::ServicesDown;
use crate::lock::RunLock;
use crate::recovery::{recover_interrupted, Recovered};
use crate::report::out;

/// A command's hold on its storage dir: released when dropped.
pub struct Session {
    pub config: Config,
    pub catalog: Arc<Catalog>,
    /// What recovering the runs that died before this command did.
    pub recovered: Vec<Recovered>,
    _lock: RunLock,
}

impl Session {
    /// Loads the configuration (`check` decides how much of it is checked against the disk), creates the storage
    /// folder (0700), opens the catalog and takes the storage lock; interrupted runs are left as they are.
    pub fn lock(config_path: &Path, check: Check) -> anyhow::Result<Self> {
        let config = config::load(config_path, check)?;
        let storage = &config.runner.storage_dir;
        create_private_dir(storage).with_context(|| format!("cannot create storage dir {}", storage.display()))?;
        let catalog = Arc::new(Catalog::open(&config.runner.catalog)?);
        let lock = RunLock::acquire(storage, |pid| describe_holder(&catalog, pid))?;
        Ok(Self {
            config,
            catalog,
            recovered: Vec::new(),
            _lock: lock,
        })
    }

    /// [`Session::lock`], then recovers every run that died without finishing, saying so (stdout, or stderr under
    /// `--json`). A run whose services cannot be brought back stops the command here: exit 3, nothing else done.
    pub async fn open(config_path: &Path, check: Check, json: bool) -> anyhow::Result<Self> {
        let mut session = Self::lock(config_path, check)?;
        session.recovered = recover_interrupted(&session.config, &session.catalog).await?;
        for recovered in &session.recovered {
            if json {
                tracing::warn!("{}", recovered.describe());
            } else {
                out::line(&recovered.describe());
            }
        }
        if let Some(failed) = session.recovered.iter().find(|r| r.error.is_some()) {
            return Err(ServicesDown(format!("{}; nothing else was done", failed.describe())).into());
        }
        Ok(session)
    }

    /// For a command that may only say what it would do: with `dry_run` it changes nothing, not even what an
    /// interrupted run left ([`Session::lock`], then a warning about such runs); otherwise [`Session::open`].
    pub async fn open_unless_dry_run(
        config_path: &Path,
        check: Check,
        json: bool,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        if !dry_run {
            return Self::open(config_path, check, json).await;
        }
        let session = Self::lock(config_path, check)?;
        warn_about_interrupted_runs(&session.catalog)?;
        Ok(session)
    }
}

/// Warns on stderr about runs that died without finishing (for the commands that only read).
pub fn warn_about_interrupted_runs(catalog: &Catalog) -> anyhow::Result<()> {
    for run in catalog.unfinished_runs()? {
        if crate::lock::process_is_gone(run.pid, run.boot_id.as_deref()) {
            tracing::warn!(
                "run {} ({} v{}, started {}) was interrupted during {} and may have left services stopped: \
                 run `hookrun recover` (the next backup, restore or prune does it first)",
                run.id,
                run.kind,
                run.version,
                run.started_at,
                run.phase
            );
        }
    }
    Ok(())
}

/// Words for the process holding the lock: its run, when the catalog knows it.
fn describe_holder(catalog: &Catalog, pid: u32) -> String {
    let run = catalog
        .unfinished_runs()
        .ok()
        .and_then(|runs| runs.into_iter().rev().find(|r| r.pid == pid as i64));
    match run {
        Some(run) => format!(
            "run {} ({} v{}, pid {pid}, started {}, now in {})",
            run.id, run.kind, run.version, run.started_at, run.phase
        ),
        None => format!("pid {pid}"),
    }
}
