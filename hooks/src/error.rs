//! Why a hook failed: one enum whose variants carry the file, hook or service concerned. The archive, catalog and
//! Docker crates' errors are wrapped as they are (their messages and sources kept), at the hook boundary only.

use std::io;
use std::path::PathBuf;

use hookrun_archive::ArchiveError;
use hookrun_catalog::CatalogError;
use hookrun_docker::DockerError;
use hookrun_remote::RemoteError;

/// A hook's failure. `Display` is the one-line message an operator sees.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// An archive could not be written, read, checked or extracted.
    #[error(transparent)]
    Archive(#[from] ArchiveError),

    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    /// The Docker engine could not be reached, or refused or failed a request.
    #[error(transparent)]
    Docker(#[from] DockerError),

    /// A remote refused or failed an upload or download (named in the message).
    #[error(transparent)]
    Remote(#[from] RemoteError),

    /// The archive could not be written.
    #[error("cannot write archive {path}: {source}")]
    WriteArchive { path: PathBuf, source: io::Error },

    /// A restore cannot put a tree in place: its target is not the kind of thing the archive holds for it, or the
    /// way to it goes through a symlink. Found before anything is stopped.
    #[error("cannot restore {target}: {reason}")]
    Unrestorable { target: PathBuf, reason: String },

    /// A folder of the run (staging, storage) could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Prepare { path: PathBuf, source: io::Error },

    /// A host command could not be started.
    #[error("command `{program}` could not start: {source}")]
    CommandStart { program: String, source: io::Error },

    /// A host command could not be waited for.
    #[error("command `{program}` could not be waited for: {source}")]
    CommandWait { program: String, source: io::Error },

    /// A host command failed.
    #[error("command `{program}` {reason}")]
    Command { program: String, reason: String },

    /// A WASM hook failed: it trapped, ran out of memory, was refused something, or exited non-zero.
    #[error("wasm hook {hook}: {reason}")]
    Wasm { hook: String, reason: String },

    /// The hook was stopped (timeout or signal) before it finished.
    #[error("stopped before it finished")]
    Cancelled,

    /// The Compose project has no containers: most likely a typo in its name.
    #[error(
        "no container has the label com.docker.compose.project={project}; check `[runner] project` \
         (set `allow_empty = true` on the hook if finding nothing is expected)"
    )]
    NoContainers { project: String },

    /// Something the chain needs is not configured.
    #[error("{0}")]
    Misconfigured(String),

    /// A hook set `artifacts = false` (it runs after the archive is written) wrote artifacts all the same.
    #[error(
        "it wrote files into its artifact folder, but it runs after the archive is written (`artifacts = false`): \
         they would never reach a backup"
    )]
    UnarchivedArtifacts,

    /// A container of the recorded deployment could not be re-created: it may be gone, so a person is needed.
    #[error("cannot re-create container {container} (service {service}): {source}")]
    Recreate {
        service: String,
        container: String,
        source: Box<DockerError>,
    },

    /// A notification could not be delivered (each target that failed, named by where its URL came from).
    #[error("notification not delivered: {0}")]
    Notify(String),

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
            HookError::Archive(e) if e.is_misconfiguration() => FailureClass::Config,
            HookError::Docker(e) if e.is_misconfiguration() => FailureClass::Config,
            HookError::ServicesDown(_) | HookError::Recreate { .. } => FailureClass::ServicesDown,
            _ => FailureClass::Failed,
        }
    }

    /// True when the hook was stopped (its timeout or a signal) rather than failing on its own.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            HookError::Cancelled
                | HookError::Archive(ArchiveError::Cancelled)
                | HookError::Remote(RemoteError::Cancelled { .. })
        )
    }
}
