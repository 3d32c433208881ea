//! hookrun's Docker side, driven through the engine's API (bollard), never the `docker` CLI: the Compose project's
//! containers, their dependency order, stopping and starting them, their volumes, and running programs inside them.
//! Every failure is a [`DockerError`] naming the engine, service or file.

mod compose_file;
mod engine;
mod error;
mod exec;
mod exec_kill;
mod lifecycle;
mod mounts;
mod order;
mod project;
mod service_exec;

pub use compose_file::dependencies_from_files;
pub use engine::Engine;
pub use error::DockerError;
pub use exec::ProjectExec;
pub use lifecycle::{Readiness, StartError, Started};
pub use mounts::{project_mounts, MountKind, ProjectMount};
pub use order::{layers, Dependencies};
pub use project::{project_dependencies, ProjectContainer, Selection};
pub use service_exec::{ExecOutcome, ServiceExec};
