//! The free-space preflight: refuse to start an archive that cannot fit.

use std::path::Path;

use crate::ArchiveError;

/// Bytes available to an unprivileged writer on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Fails unless `dir` has at least `factor × estimate` bytes free. A factor of 0 turns the check off.
pub fn check_free_space(dir: &Path, estimate: u64, factor: f64) -> Result<(), ArchiveError> {
    if factor <= 0.0 {
        return Ok(());
    }
    let available = free_space(dir).map_err(|source| ArchiveError::Prepare {
        path: dir.to_path_buf(),
        source,
    })?;
    let need = (estimate as f64 * factor).ceil() as u64;
    if available < need {
        return Err(ArchiveError::NoSpace {
            dir: dir.to_path_buf(),
            need,
            estimate,
            factor,
            available,
        });
    }
    Ok(())
}
