//! The last step of a restore run: copies extracted but never swapped in always go; the old copies go only once the
//! services are back on the restored data (after a failure they stay, as the way back).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::swap::remove_any;
use crate::{Hook, HookError, RunContext};

/// What a restore leaves beside its targets, handed from `RestoreHook` to `CleanupHook`.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Staging folders extracted (and verified) before the services stopped, not yet swapped in.
    pub staged: Vec<PathBuf>,
    /// The live data the swap set aside.
    pub old: Vec<PathBuf>,
}

/// Shared between the restore and the clean-up of one run.
pub type SharedLeftovers = Arc<Mutex<Leftovers>>;

/// Removes what the restore left beside its targets.
#[derive(Debug)]
pub struct CleanupHook {
    leftovers: SharedLeftovers,
}

impl CleanupHook {
    /// Removes what `RestoreHook` lists in `leftovers`. Run it whether or not the run failed.
    pub fn new(leftovers: SharedLeftovers) -> Self {
        Self { leftovers }
    }
}

#[async_trait]
impl Hook for CleanupHook {
    fn name(&self) -> &str {
        "remove-old-copies"
    }

    fn kind(&self) -> &str {
        "cleanup"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let mut leftovers = self.leftovers.lock().unwrap_or_else(|p| p.into_inner());
        leftovers.remove(ctx.succeeded_so_far())
    }
}

impl Leftovers {
    /// Removes the staged copies, and the old copies too when the run succeeded (after a failure they are the way
    /// back).
    fn remove(&mut self, run_succeeded: bool) -> Result<(), HookError> {
        let staged = std::mem::take(&mut self.staged);
        let old = if run_succeeded {
            std::mem::take(&mut self.old)
        } else {
            Vec::new()
        };
        for path in staged.into_iter().chain(old) {
            remove_any(&path).map_err(|source| HookError::Prepare { path, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A staged copy and a set-aside old copy, as a restore leaves them.
    fn leftovers(dir: &Path) -> Leftovers {
        for name in ["staged", "old"] {
            std::fs::create_dir_all(dir.join(name).join("sub")).unwrap();
            std::fs::write(dir.join(name).join("sub/file"), name).unwrap();
        }
        Leftovers {
            staged: vec![dir.join("staged")],
            old: vec![dir.join("old")],
        }
    }

    #[test]
    fn after_a_successful_restore_both_the_staged_and_the_old_copies_go() {
        let dir = tempfile::tempdir().unwrap();

        leftovers(dir.path()).remove(true).unwrap();

        assert!(!dir.path().join("staged").exists() && !dir.path().join("old").exists());
    }

    #[test]
    fn after_a_failure_the_staged_copy_goes_and_the_old_copy_stays_as_the_way_back() {
        let dir = tempfile::tempdir().unwrap();

        leftovers(dir.path()).remove(false).unwrap();

        assert!(!dir.path().join("staged").exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("old/sub/file")).unwrap(), "old");
    }
}
