//! Reporters: how runs and catalog contents are shown, for people (`human`) and for pipelines (`--json`).

pub mod human;
mod run_report;

pub use run_report::RunReport;
