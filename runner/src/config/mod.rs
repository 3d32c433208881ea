//! `hooks.toml`: the resolved configuration of a chain, and the errors that point into the file.

mod builtin;
mod common;
mod de;
mod duration;
mod load;
mod located;
mod permissions;
#[cfg(test)]
mod proptests;
mod remote;

use std::path::PathBuf;
use std::time::Duration;

use hookrun_hooks::builtin::{BackupConfig, CommandConfig, Copies, StartConfig, StopConfig};
use serde::Serialize;

pub use common::Check;
pub use load::{load, parse};
pub use located::{Located, LocatedKey, Node};
pub(crate) use permissions::relative_name;
pub use permissions::{ExecGrant, GrantError, Permissions};
pub use remote::{CredentialFiles, RemoteConfig};

/// The default memory limit of a WASM hook: 256 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 256 * 1024 * 1024;

/// A `hooks.toml` that passed validation; every path is absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The `[runner]` table.
    pub runner: RunnerConfig,
    /// The `[[hook]]` tables, in order.
    pub hooks: Vec<HookSpec>,
    /// The `[upgrade]` table.
    pub upgrade: UpgradeConfig,
    /// The `[[remote]]` tables, in order.
    pub remotes: Vec<RemoteConfig>,
}

impl Config {
    /// The remote called `name`.
    pub fn remote(&self, name: &str) -> Option<&RemoteConfig> {
        self.remotes.iter().find(|r| r.spec.name == name)
    }
}

/// The `[upgrade]` table: how `hookrun upgrade` upgrades and when it rolls back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeConfig {
    /// The upgrade command (no shell unless named), when `hookrun upgrade` is not given one after `--`.
    pub command: Option<Vec<String>>,
    /// How long the command may run before it is killed and the upgrade rolled back.
    #[serde(serialize_with = "crate::results::millis")]
    pub timeout: Duration,
    /// How long the project must stay healthy after the command to pass the gate.
    #[serde(serialize_with = "crate::results::millis")]
    pub healthy_for: Duration,
    /// How long the project gets to become healthy in the first place.
    #[serde(serialize_with = "crate::results::millis")]
    pub gate_timeout: Duration,
    /// Run instead of re-creating the recorded containers when rolling back (for deployments made another way).
    pub rollback_command: Option<Vec<String>>,
}

impl Default for UpgradeConfig {
    fn default() -> Self {
        Self {
            command: None,
            timeout: Duration::from_secs(30 * 60),
            healthy_for: Duration::from_secs(30),
            gate_timeout: Duration::from_secs(5 * 60),
            rollback_command: None,
        }
    }
}

/// The `[runner]` table.
#[derive(Debug, Clone, Serialize)]
pub struct RunnerConfig {
    /// The Compose project name.
    pub project: Option<String>,
    /// The deployment's folder.
    pub work_dir: PathBuf,
    /// Where archives go.
    pub storage_dir: PathBuf,
    /// The SQLite catalog.
    pub catalog: PathBuf,
    /// The version `hookrun backup` records when none is given.
    pub version: Option<String>,
    /// The compose file, for dependencies when the containers do not carry them (default: the files Compose
    /// recorded on the containers).
    pub compose_file: Option<PathBuf>,
    /// Whether a pre-upgrade backup archives the Compose project's own files under `compose/` (default: yes).
    pub archive_compose_files: bool,
    /// Where the Prometheus metrics are written after every run (`metrics`), if anywhere.
    pub metrics_file: Option<PathBuf>,
}

/// When a hook runs, given how the chain has gone so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Only while nothing has failed.
    Success,
    /// Only once something has failed.
    Failure,
    /// Whatever happened.
    Always,
}

/// What a hook's failure does to the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The run fails: later `success` hooks are skipped.
    Abort,
    /// The failure is reported and the chain goes on as if it had succeeded.
    Continue,
}

/// One `[[hook]]` table, resolved.
#[derive(Debug, Clone)]
pub struct HookSpec {
    pub name: String,
    pub kind: HookKind,
    pub when: When,
    pub on_error: OnError,
    pub timeout: Duration,
    /// Whether it may write artifacts (`artifacts = false`: a WASM or `command` hook after the archive, which
    /// fails if it writes any).
    pub artifacts: bool,
    /// Line of its `[[hook]]` table in the file.
    pub line: usize,
    /// Line and column of its `name` value.
    pub name_at: (usize, usize),
}

/// A WASM hook as configured.
#[derive(Debug, Clone)]
pub struct WasmHookSpec {
    /// The hook's name in the chain.
    pub name: String,
    /// The `.wasm` file (absolute).
    pub module: PathBuf,
    /// The `config` table, handed to the module.
    pub config: serde_json::Value,
    /// What the sandbox is given.
    pub permissions: Permissions,
    /// Most bytes of linear memory the module may have.
    pub memory_limit: u64,
}

/// What a hook is.
#[derive(Debug, Clone)]
pub enum HookKind {
    Builtin(Builtin),
    Wasm(WasmHookSpec),
}

/// The built-in hooks and their typed configuration.
#[derive(Debug, Clone)]
pub enum Builtin {
    Stop(StopConfig),
    /// Copies what the named backup hook archives, while the services are stopped (its config, resolved).
    Snapshot {
        backup: String,
        config: BackupConfig,
        copies: Copies,
    },
    Backup(BackupConfig),
    Record,
    Start(StartConfig),
    Command(CommandConfig),
    /// Uploads the run's archive to these remotes (every `[[remote]]` when the config names none).
    Upload {
        remotes: Vec<String>,
    },
    /// Tells a webhook, ntfy or a health-check service how the run went.
    Notify(hookrun_hooks::builtin::NotifyConfig),
}

impl HookKind {
    /// The kind's short name, e.g. "backup".
    pub fn label(&self) -> &'static str {
        match self {
            HookKind::Wasm(_) => "wasm",
            HookKind::Builtin(Builtin::Stop(_)) => "stop",
            HookKind::Builtin(Builtin::Snapshot { .. }) => "snapshot",
            HookKind::Builtin(Builtin::Backup(_)) => "backup",
            HookKind::Builtin(Builtin::Start(_)) => "start",
            HookKind::Builtin(Builtin::Record) => "record",
            HookKind::Builtin(Builtin::Command(_)) => "command",
            HookKind::Builtin(Builtin::Upload { .. }) => "upload",
            HookKind::Builtin(Builtin::Notify(_)) => "notify",
        }
    }
}

/// A problem with the configuration: the file and, where it is known, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. The I/O error is part of the message (not a source, which would print it twice).
    #[error("{}: {error}{}", file.display(), read_hint(error))]
    Read { file: PathBuf, error: std::io::Error },
    /// Something in the file is wrong.
    #[error("{}:{line}:{column}: {message}", file.display())]
    At {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// What to do about a configuration file that is not there: hookrun was most likely started outside the project.
fn read_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::NotFound {
        "; run hookrun in the folder that holds it, or pass --config PATH (or set HOOKRUN_CONFIG)"
    } else {
        ""
    }
}
