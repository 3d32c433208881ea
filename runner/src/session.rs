//! What every command opens first, in one place. A [`Session`] (the commands that change storage): the
//! configuration, the storage folder (created private), the catalog, the storage lock, and the runs that died
//! before — recovered before anything else is done, so that no command ever ends with the services in a worse state
//! than an interrupted run's journal says they should be, while reporting success. A [`ReadSession`] (the commands
//! that only read): the configuration, checked as far as the command needs, and the catalog when it is asked for;
//! no lock. Neither prints: what recovery did and which runs were interrupted are returned, for the caller to render.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hookrun_archive::create_private_dir;
use hookrun_catalog::{Catalog, RunRow, UpgradeStatus};

use crate::config::{self, Check, Config, HookKind};
use crate::event::Fanout;
use crate::exit::{ServicesDown, UsageError};
use crate::lock::RunLock;
use crate::recovery::{recover_interrupted, Recovered};
use crate::upgrade::{finish_interrupted, RecoveredUpgrade};
use crate::wasm::CacheMode;
use crate::{chain, wasm};

/// A command's hold on its storage dir: released when dropped.
pub struct Session {
    pub config: Config,
    pub catalog: Arc<Catalog>,
    /// What recovering the runs that died before this command did.
    pub recovered: Vec<Recovered>,
    /// Runs that died without finishing and were left as they are (a dry run changes nothing): to be warned about.
    pub interrupted: Vec<RunRow>,
    /// What finishing the upgrades that died before this command did (rolled back, or left upgraded).
    pub recovered_upgrades: Vec<RecoveredUpgrade>,
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
            interrupted: Vec::new(),
            recovered_upgrades: Vec::new(),
            _lock: lock,
        })
    }

    /// [`Session::lock`], then recovers every run that died without finishing ([`Session::recovered`]). The caller
    /// says so, then calls [`Session::ensure_recovered`]: a run whose services could not be brought back stops the
    /// command there.
    pub async fn open(config_path: &Path, check: Check) -> anyhow::Result<Self> {
        let mut session = Self::lock(config_path, check)?;
        session.recover().await?;
        Ok(session)
    }

    /// Recovers every run that died, then finishes every upgrade that died (rolling back one that died during its
    /// command, gate or rollback).
    pub async fn recover(&mut self) -> anyhow::Result<()> {
        self.recovered = recover_interrupted(&self.config, &self.catalog).await?;
        if self.recovered.iter().all(|r| r.error.is_none()) {
            self.recovered_upgrades = finish_interrupted(self, &Fanout(Vec::new())).await?;
        }
        Ok(())
    }

    /// For a command that may only say what it would do: with `dry_run` it changes nothing, not even what an
    /// interrupted run left ([`Session::lock`], the runs it left in [`Session::interrupted`]); otherwise
    /// [`Session::open`].
    pub async fn open_unless_dry_run(config_path: &Path, check: Check, dry_run: bool) -> anyhow::Result<Self> {
        if !dry_run {
            return Self::open(config_path, check).await;
        }
        let mut session = Self::lock(config_path, check)?;
        session.interrupted = interrupted_runs(&session.catalog)?;
        Ok(session)
    }

    /// Exit 3 when a run that died could not be recovered (its services are still down), or an upgrade that died
    /// could not be rolled back: nothing else is done.
    pub fn ensure_recovered(&self) -> anyhow::Result<()> {
        if let Some(failed) = self.recovered.iter().find(|r| r.error.is_some()) {
            return Err(ServicesDown(format!("{}; nothing else was done", failed.describe())).into());
        }
        match self
            .recovered_upgrades
            .iter()
            .find(|u| u.status == UpgradeStatus::RollbackFailed)
        {
            Some(failed) => Err(ServicesDown(format!(
                "upgrade {}: {}; nothing else was done",
                failed.upgrade_id, failed.done
            ))
            .into()),
            None => Ok(()),
        }
    }
}

/// Whether a [`ReadSession`] opens the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenCatalog {
    /// Not at all (the command reads only the configuration and the disk).
    No,
    /// When the file exists (a catalog that does not exist yet holds no backups).
    IfExists,
    /// Always (opening creates it).
    Always,
}

/// What a command that only reads opens: the configuration and, when asked for, the catalog. No lock is taken and
/// interrupted runs are left as they are.
pub struct ReadSession {
    pub config: Config,
    pub catalog: Option<Arc<Catalog>>,
}

impl ReadSession {
    /// Loads the configuration (`check` decides how much of it is checked against the disk) and opens the catalog as
    /// `catalog` says.
    pub fn open(config_path: &Path, check: Check, catalog: OpenCatalog) -> anyhow::Result<Self> {
        let config = config::load(config_path, check)?;
        let catalog = match catalog {
            OpenCatalog::No => None,
            OpenCatalog::IfExists if !config.runner.catalog.exists() => None,
            OpenCatalog::IfExists | OpenCatalog::Always => Some(Arc::new(Catalog::open(&config.runner.catalog)?)),
        };
        Ok(Self { config, catalog })
    }

    /// The checks of `hooks check`, which `plan` runs first too: the file loads in full (sources, modules and
    /// granted folders exist), and every WASM hook loads, imports only what this host provides at its ABI version,
    /// links, is a WASI command and fits its memory limit. A failure is a usage error (exit 2) naming the hook and its
    /// module. `cache` says whether modules compiled now are cached in the storage dir (`plan` touches nothing: it
    /// does not). No catalog is opened.
    pub fn validated(config_path: &Path, cache: CacheMode) -> anyhow::Result<Self> {
        let config = config::load(config_path, Check::Full)?;
        if let Some(engine) = chain::wasm_engine(&config, cache)? {
            for hook in &config.hooks {
                if let HookKind::Wasm(spec) = &hook.kind {
                    wasm::check(&engine, spec)
                        .map_err(|e| UsageError(format!("hook {} ({}): {e}", hook.name, spec.module.display())))?;
                }
            }
        }
        Ok(Self { config, catalog: None })
    }

    /// The runs that died without finishing (for the commands that only read to warn about); none without a catalog.
    pub fn interrupted_runs(&self) -> anyhow::Result<Vec<RunRow>> {
        match &self.catalog {
            Some(catalog) => interrupted_runs(catalog),
            None => Ok(Vec::new()),
        }
    }
}

/// The runs of `catalog` that died without finishing: marked running, their process gone.
fn interrupted_runs(catalog: &Catalog) -> anyhow::Result<Vec<RunRow>> {
    Ok(catalog
        .unfinished_runs()?
        .into_iter()
        .filter(|run| crate::lock::process_is_gone(run.pid, run.boot_id.as_deref()))
        .collect())
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
