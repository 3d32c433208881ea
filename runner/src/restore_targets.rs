//! The trees a restore puts back: what `hookrun restore` restores and what recovering an interrupted restore (or
//! removing a finished one's leftovers) looks beside.

use std::path::Path;

use hookrun_catalog::{BackupRow, Catalog};
use hookrun_hooks::restore::RestoreTarget;

use crate::exit::UsageError;

/// The trees to put back: every recorded source but the hooks' artifacts and the Compose files (a rollback puts those
/// back, to where each came from), or the parts named in `only`.
pub fn targets(catalog: &Catalog, backup: &BackupRow, only: &[String]) -> anyhow::Result<Vec<RestoreTarget>> {
    let sources: Vec<_> = catalog
        .backup_sources(backup.id)?
        .into_iter()
        .filter(|s| s.kind != "artifacts" && s.kind != "compose")
        .collect();
    if sources.is_empty() {
        anyhow::bail!("backup {} records no sources to restore", backup.id);
    }
    if only.is_empty() {
        return Ok(sources
            .into_iter()
            .map(|s| RestoreTarget {
                archive_prefix: s.archive_path.into(),
                tree: s.host_path.clone().into(),
                host_path: s.host_path.into(),
            })
            .collect());
    }
    only.iter()
        .map(|wanted| {
            let wanted = wanted.trim_end_matches('/');
            sources
                .iter()
                .find_map(|s| {
                    let rest = Path::new(wanted).strip_prefix(&s.archive_path).ok()?;
                    if rest.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                        return None;
                    }
                    Some(RestoreTarget {
                        archive_prefix: wanted.into(),
                        host_path: Path::new(&s.host_path).join(rest),
                        tree: s.host_path.clone().into(),
                    })
                })
                .ok_or_else(|| {
                    let known: Vec<&str> = sources.iter().map(|s| s.archive_path.as_str()).collect();
                    UsageError(format!(
                        "`{wanted}` is not in backup {} (it holds: {})",
                        backup.id,
                        known.join(", ")
                    ))
                    .into()
                })
        })
        .collect()
}
