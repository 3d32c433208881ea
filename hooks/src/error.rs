//! Why a hook failed: one enum whose variants carry the file, hook or service concerned.

use std::io;
use std::path::PathBuf;

use crate::catalog::CatalogError;
use crate::size::human_bytes;

/// A hook's failure. `Display` is the one-line message an operator sees.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A source file or folder could not be read.
    #[error("cannot read source {path}: {source}")]
    ReadSource { path: PathBuf, source: io::Error },

    /// A file changed size while it was being archived.
    #[error("source {path} changed while it was being archived (expected {expected} bytes)")]
    SourceChanged { path: PathBuf, expected: u64 },

    /// A configured source is missing or outside the work dir.
    #[error("source {path}: {reason}")]
    BadSource { path: PathBuf, reason: String },

    /// The archive could not be written.
    #[error("cannot write archive {path}: {source}")]
    WriteArchive { path: PathBuf, source: io::Error },

    /// The written archive did not pass its own check.
    #[error("archive {path} failed its check: {reason}")]
    ArchiveCheck { path: PathBuf, reason: String },

    /// The free-space preflight failed.
    #[error(
        "not enough free space in {dir}: need {} ({factor} × estimated {}), have {}",
        human_bytes(*need), human_bytes(*estimate), human_bytes(*available)
    )]
    NoSpace {
        dir: PathBuf,
        need: u64,
        estimate: u64,
        factor: f64,
        available: u64,
    },

    /// A restore cannot put a tree in place: its target is not the kind of thing the archive holds for it, or the
    /// way to it goes through a symlink. Found before anything is stopped.
    #[error("cannot restore {target}: {reason}")]
    Unrestorable { target: PathBuf, reason: String },

    /// A folder of the run (staging, storage) could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Prepare { path: PathBuf, source: io::Error },

    /// A host command failed.
    #[error("command `{program}` {reason}")]
    Command { program: String, reason: String },

    /// A WASM hook failed: it trapped, ran out of memory, was refused something, or exited non-zero.
    #[error("wasm hook {hook}: {reason}")]
    Wasm { hook: String, reason: String },

    /// The hook was stopped (timeout or signal) before it finished.
    #[error("stopped before it finished")]
    Cancelled,

    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    /// The Docker engine could not be reached.
    #[error("cannot reach the Docker engine at {address}: {reason}")]
    EngineUnreachable { address: String, reason: String },

    /// The Docker engine refused or failed a request.
    #[error("Docker engine: {action}: {reason}")]
    Docker { action: String, reason: String },

    /// The Compose project has no containers: most likely a typo in its name.
    #[error(
        "no container has the label com.docker.compose.project={project}; check `[runner] project` \
         (set `allow_empty = true` on the hook if finding nothing is expected)"
    )]
    NoContainers { project: String },

    /// Something the chain needs is not configured.
    #[error("{0}")]
    Misconfigured(String),

    /// A service could not be stopped.
    #[error("cannot stop service {service} (container {container}): {reason}")]
    StopService {
        service: String,
        container: String,
        reason: String,
    },

    /// A hook set `artifacts = false` (it runs after the archive is written) wrote artifacts all the same.
    #[error(
        "it wrote files into its artifact folder, but it runs after the archive is written (`artifacts = false`): \
         they would never reach a backup"
    )]
    UnarchivedArtifacts,

    /// Services that were running before the run could not be brought back.
    #[error("services not restored: {0}")]
    ServicesDown(String),
}

/// What a failure means for the run as a whole (and so for the exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// Something failed; services were brought back (exit 1).
    Failed,
    /// The configuration does not match the world (exit 2).
    Config,
    /// Services could not be brought back: a person is needed (exit 3).
    ServicesDown,
}

impl HookError {
    /// What this failure means for the run.
    pub fn class(&self) -> FailureClass {
        match self {
            HookError::NoContainers { .. } | HookError::Misconfigured(_) => FailureClass::Config,
            HookError::ServicesDown(_) => FailureClass::ServicesDown,
            _ => FailureClass::Failed,
        }
    }
}
