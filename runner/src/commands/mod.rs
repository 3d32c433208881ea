//! The subcommands, one file each.

pub mod check;
pub mod list;
pub mod plan;
pub mod recover;
pub mod run;
pub mod show;
