//! hookrun end to end, one test binary with a module per concept. Each test drives the built `hookrun` binary (or,
//! for WASM hooks, the runner's library) against real parts: a real Docker Engine and Compose project, real SQLite
//! catalogs, real WASM modules, real file systems. The shared fixtures are the `hookrun_e2e` library
//! (`tests/fixtures/`).

// Tests say on stderr why they skip, and print what they measured.
#![allow(clippy::print_stderr, clippy::print_stdout)]

mod chain_rules;
mod ci_recipe;
mod cli_conventions;
mod config_errors;
mod crash_recovery;
mod docker_order;
mod examples;
mod failures;
mod init;
mod json_output;
mod json_schemas;
mod lifecycle;
mod metrics;
mod mounts;
mod notify;
mod output;
mod pre_upgrade;
mod remote;
mod restore;
mod run_safety;
mod snapshot;
mod ui;
mod upgrade;
mod wasm;
mod zstd;
