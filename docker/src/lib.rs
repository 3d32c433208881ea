//! hookrun's Docker side, driven through the engine's API (bollard), never the `docker` CLI: the Compose project's
//! containers, their dependency order, stopping and starting them, their volumes, running programs inside them,
//! recording what runs and re-creating it, and the health gate of an upgrade.
//! Every failure is a [`DockerError`] naming the engine, service or file.

mod compose_file;
mod deployment;
mod engine;
mod error;
mod exec;
mod exec_kill;
mod gate;
mod lifecycle;
mod mounts;
mod order;
mod project;
mod service_exec;

pub use compose_file::dependencies_from_files;
pub use deployment::{rollback_tag, ContainerRecord};
pub use engine::Engine;
pub use error::DockerError;
pub use exec::ProjectExec;
pub use gate::{Gate, GateFailed, GatePassed};
pub use lifecycle::{Readiness, StartError, Started};
pub use mounts::{project_mounts, MountKind, ProjectMount};
pub use order::{layers, Dependencies};
pub use project::{project_dependencies, project_files, ProjectContainer, Selection};
pub use service_exec::{ExecOutcome, ServiceExec};
