//! `hookrun estimate`: for each backup hook, the files and bytes of each tree it takes, what it does with each of
//! the project's volumes and bind mounts, the archive size expected from a compressed sample, the free space in
//! storage, and the verdict its free-space preflight would reach. `plan` shows the same numbers.

use std::path::Path;

use hookrun_archive::size::human_bytes;

use crate::config::{self, Check};
use crate::estimates::{estimates, HookEstimate};
use crate::exit::Exit;
use crate::report::out;

/// Prints the estimate of every backup hook.
pub async fn estimate(config_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let config = config::load(config_path, Check::Full)?;
    let estimates = estimates(&config).await?;
    if json {
        out::document(&serde_json::json!({ "backups": estimates }));
        return Ok(Exit::Success);
    }
    for e in &estimates {
        crate::say!("backup hook {}:", e.hook);
        print_estimate(e, "  ");
    }
    Ok(Exit::Success)
}

/// The human lines of one estimate, each prefixed with `indent`.
pub fn print_estimate(e: &HookEstimate, indent: &str) {
    for s in &e.estimate.sources {
        crate::say!(
            "{indent}source {:<32} {:<9} {:>8} files {:>10}",
            s.source.archive_path,
            s.source.kind,
            s.stats.files,
            human_bytes(s.stats.bytes)
        );
    }
    for mount in &e.estimate.mounts {
        crate::say!("{indent}mount {}", mount.describe());
    }
    crate::say!(
        "{indent}archive ~{} ({:.0}% of {}, from a compressed sample); storage has {} free, the preflight needs {}: {}",
        human_bytes(e.estimate.estimated_archive_bytes),
        e.estimate.compression_ratio * 100.0,
        human_bytes(e.estimate.bytes),
        human_bytes(e.free_bytes),
        human_bytes(e.estimate.need_bytes),
        e.preflight
    );
}
