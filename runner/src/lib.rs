//! hookrun: runs an ordered chain of hooks before a Docker Compose upgrade (dump, stop, back up, record, start)
//! and manages the backups afterwards. This crate holds the configuration, the executor, the reporters and the CLI.

pub mod chain;
pub mod chain_run;
pub mod cli;
pub mod commands;
pub mod config;
pub mod deletion;
pub mod deployment;
pub mod estimates;
pub mod event;
pub mod executor;
pub mod exit;
pub mod interrupt;
pub mod journal;
pub mod lock;
pub mod metrics;
pub mod recovery;
pub mod remotes;
pub mod report;
pub mod restore_run;
pub mod restore_targets;
pub mod results;
pub mod retention;
pub mod session;
pub mod storage;
pub mod ui;
pub mod upgrade;
pub mod wasm;
