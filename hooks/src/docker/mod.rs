//! The Docker engine, driven through its API (bollard): the Compose project's containers, their dependency
//! order, stopping and starting them, their volumes, and running programs inside them.

mod compose_file;
mod engine;
mod exec;
mod exec_kill;
mod lifecycle;
mod mounts;
mod order;
mod project;

pub use compose_file::dependencies_from_files;
pub use engine::Engine;
pub use exec::ProjectExec;
pub use lifecycle::{Readiness, StartError, Started};
pub use mounts::{project_mounts, MountKind, ProjectMount};
pub use order::{layers, Dependencies};
pub use project::{project_dependencies, ProjectContainer, Selection};
