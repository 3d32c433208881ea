//! The subcommands, one file each.

pub mod check;
pub mod delete;
pub mod estimate;
pub mod init;
pub mod list;
pub mod migrate;
pub mod plan;
pub mod prune;
pub mod recover;
pub mod restore;
pub mod run;
pub mod show;
pub mod sync;
pub mod upgrade;
pub mod verify;
