//! The swap: each target is replaced by its staged copy with two renames on one filesystem; if any rename fails,
//! every swap already made is undone, so the live data is exactly as it was.

use std::io;
use std::path::{Path, PathBuf};

use crate::HookError;
use hookrun_archive::{fsync_dir, remove_any};

/// One target and the two names beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The live path.
    pub target: PathBuf,
    /// The extracted copy, beside the target.
    pub staged: PathBuf,
    /// Where the live data goes aside until the services are back.
    pub old: PathBuf,
}

/// Swaps every target in order. On failure, undoes the swaps already made (old data back in place, staged copies
/// removed) and fails with the target that could not be swapped.
pub fn swap_all(swaps: &[Swap]) -> Result<(), HookError> {
    for (done, swap) in swaps.iter().enumerate() {
        if let Err(source) = swap_one(swap) {
            for made in swaps[..done].iter().rev() {
                if let Err(e) = undo(made) {
                    tracing::error!("cannot undo the swap of {}: {e}", made.target.display());
                }
            }
            for staged in swaps.iter().map(|s| &s.staged) {
                let _ = remove_any(staged);
            }
            return Err(HookError::Prepare {
                path: swap.target.clone(),
                source,
            });
        }
    }
    Ok(())
}

fn swap_one(swap: &Swap) -> io::Result<()> {
    let existed = swap.target.symlink_metadata().is_ok();
    if existed {
        std::fs::rename(&swap.target, &swap.old)?;
    }
    if let Err(e) = std::fs::rename(&swap.staged, &swap.target) {
        if existed {
            std::fs::rename(&swap.old, &swap.target)?;
        }
        return Err(e);
    }
    sync_parent(&swap.target)
}

fn undo(swap: &Swap) -> io::Result<()> {
    std::fs::rename(&swap.target, &swap.staged)?;
    if swap.old.symlink_metadata().is_ok() {
        std::fs::rename(&swap.old, &swap.target)?;
    }
    sync_parent(&swap.target)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    fsync_dir(path.parent().unwrap_or(Path::new("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("file"), content).unwrap();
        path
    }

    #[test]
    fn every_target_gets_its_staged_copy_and_the_old_one_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let swap = Swap {
            target: tree(dir.path(), "live", "old"),
            staged: tree(dir.path(), "staged", "new"),
            old: dir.path().join("aside"),
        };
        swap_all(std::slice::from_ref(&swap)).unwrap();
        assert_eq!(std::fs::read_to_string(swap.target.join("file")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(swap.old.join("file")).unwrap(), "old");
        assert!(!swap.staged.exists());
    }

    #[test]
    fn a_failed_swap_puts_every_earlier_target_back_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let first = Swap {
            target: tree(dir.path(), "a", "old a"),
            staged: tree(dir.path(), "a.staged", "new a"),
            old: dir.path().join("a.old"),
        };
        // The second's staged copy is missing: its rename fails after the first swap was made.
        let second = Swap {
            target: tree(dir.path(), "b", "old b"),
            staged: dir.path().join("b.staged-missing"),
            old: dir.path().join("b.old"),
        };

        let err = swap_all(&[first.clone(), second.clone()]).unwrap_err();

        assert!(err.to_string().contains("/b"), "{err}");
        assert_eq!(std::fs::read_to_string(first.target.join("file")).unwrap(), "old a");
        assert_eq!(std::fs::read_to_string(second.target.join("file")).unwrap(), "old b");
        assert!(!first.old.exists() && !first.staged.exists() && !second.old.exists());
    }
}
