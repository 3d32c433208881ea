//! hookrun's hooks: the `Hook` trait, the run context they share, and the built-in hooks with what they are made of
//! (archive writing, the SQLite catalog). No CLI and no printing here: hooks report through the context.

pub mod archive;
pub mod blocking;
pub mod builtin;
pub mod catalog;
pub mod context;
pub mod docker;
pub mod error;
pub mod escape;
pub mod exec;
pub mod hook;
pub mod progress;
pub mod restore;
pub mod size;
pub mod snapshot;

pub use context::{ArchiveInfo, ArchivedSource, Failure, MountFate, RunContext, RunKind, SnapshotTree, StoppedService};
pub use error::{FailureClass, HookError};
pub use hook::Hook;
pub use progress::{Progress, ProgressSink};
