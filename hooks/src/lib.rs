//! hookrun's hooks: the `Hook` trait, the run context they share, the built-in hooks and the restore, built on the
//! archive, catalog and Docker crates below. No CLI and no printing here: hooks report through the context, and
//! every failure is a [`HookError`] (which wraps the lower crates' errors with their sources).

pub mod blocking;
pub mod bring_back;
pub mod builtin;
pub mod context;
pub mod error;
pub mod hook;
pub mod progress;
pub mod restore;

pub use bring_back::bring_back;
pub use context::{Failure, MountFate, RunContext, SnapshotTree};
pub use error::{FailureClass, HookError};
pub use hook::Hook;
pub use progress::{Progress, ProgressSink};
