//! The last step of a restore run: copies extracted but never swapped in always go; the old copies go only once the
//! services are back on the restored data (after a failure they stay, as the way back, and the run names them). A
//! successful restore also removes what earlier, finished restores left beside the same targets.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use hookrun_archive::remove_any;

use super::swap::Swap;
use hookrun_catalog::RunKind;
use hookrun_catalog::{Catalog, RunStatus};

use crate::{Hook, HookError, RunContext};

/// What a restore leaves beside its targets, handed from `RestoreHook` to `CleanupHook`.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Staging folders extracted (and verified) before the services stopped, not yet swapped in.
    pub staged: Vec<PathBuf>,
    /// The swaps made: each target now holds the restored data, and its old data is at `old`.
    pub swapped: Vec<Swap>,
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

/// The outputs `CleanupHook` names what it kept and removed in, one line per path.
pub const KEPT: &str = "kept";
pub const REMOVED: &str = "removed";

#[async_trait]
impl Hook for CleanupHook {
    fn name(&self) -> &str {
        "remove-old-copies"
    }

    fn kind(&self) -> &str {
        "cleanup"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let (catalog, run_id) = (ctx.catalog.clone(), ctx.run_id);
        let cleaned = {
            let mut leftovers = self.leftovers.lock().unwrap_or_else(|p| p.into_inner());
            leftovers.remove(ctx.succeeded_so_far(), |run| {
                run != run_id && finished_restore_run(&catalog, run)
            })?
        };
        let outputs = ctx.outputs.entry(self.name().to_string()).or_default();
        cleaned.record(outputs);
        Ok(())
    }
}

/// What a clean-up kept and removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Old copies kept after a failure: (the copy, the target whose data it is).
    pub kept: Vec<(PathBuf, PathBuf)>,
    /// What earlier restores had left beside the targets, removed after a success.
    pub removed: Vec<Leftover>,
}

impl Cleaned {
    /// Names each path on a line of its own in the hook's outputs.
    fn record(&self, outputs: &mut BTreeMap<String, String>) {
        let kept: Vec<String> = self
            .kept
            .iter()
            .map(|(old, target)| {
                format!(
                    "kept {}: what {} held before this restore (move it back to undo the restore; `hookrun recover` \
                     removes it)",
                    old.display(),
                    target.display()
                )
            })
            .collect();
        let removed: Vec<String> = self.removed.iter().map(Leftover::removed_line).collect();
        for (key, lines) in [(KEPT, kept), (REMOVED, removed)] {
            if !lines.is_empty() {
                outputs.insert(key.to_string(), lines.join("\n"));
            }
        }
    }
}

impl Leftovers {
    /// Removes the staged copies; when the run succeeded, the old copies too, and what earlier restores whose run
    /// `stale` says is finished left beside the same targets. After a failure the old copies stay, as the way back.
    pub fn remove(&mut self, run_succeeded: bool, stale: impl Fn(i64) -> bool) -> Result<Cleaned, HookError> {
        let remove = |path: &Path| {
            remove_any(path).map_err(|source| HookError::Prepare {
                path: path.to_path_buf(),
                source,
            })
        };
        for staged in std::mem::take(&mut self.staged) {
            remove(&staged)?;
        }
        let swapped = std::mem::take(&mut self.swapped);
        let mut cleaned = Cleaned::default();
        if !run_succeeded {
            cleaned.kept = swapped
                .into_iter()
                .filter(|s| s.old.symlink_metadata().is_ok())
                .map(|s| (s.old, s.target))
                .collect();
            return Ok(cleaned);
        }
        for swap in &swapped {
            remove(&swap.old)?;
        }
        for swap in &swapped {
            let beside = leftovers_beside(&swap.target).map_err(|source| HookError::Prepare {
                path: swap.target.parent().unwrap_or(Path::new("/")).to_path_buf(),
                source,
            })?;
            for leftover in beside.into_iter().filter(|l| stale(l.run_id)) {
                remove(&leftover.path)?;
                cleaned.removed.push(leftover);
            }
        }
        Ok(cleaned)
    }
}

/// What a restore run names beside a target (`.hookrun-<kind>-<run>-<index>-<target's name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// `restore`: a copy extracted and never swapped in.
    Staged,
    /// `old`: the data the target held before the restore.
    Old,
    /// `undone`: restored data that `hookrun recover` set aside to undo a half-made swap.
    Undone,
}

impl LeftoverKind {
    /// The word in the name.
    pub fn word(self) -> &'static str {
        match self {
            LeftoverKind::Staged => "restore",
            LeftoverKind::Old => "old",
            LeftoverKind::Undone => "undone",
        }
    }

    const ALL: [LeftoverKind; 3] = [LeftoverKind::Staged, LeftoverKind::Old, LeftoverKind::Undone];
}

/// A copy a restore run left beside a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    pub kind: LeftoverKind,
    /// The restore run that left it.
    pub run_id: i64,
    /// The target it was left beside.
    pub target: PathBuf,
}

impl Leftover {
    /// What it is, in words.
    pub fn describe(&self) -> String {
        let (run, target) = (self.run_id, self.target.display());
        match self.kind {
            LeftoverKind::Staged => format!("a copy restore run {run} extracted for {target} and never swapped in"),
            LeftoverKind::Old => format!("what {target} held before restore run {run}"),
            LeftoverKind::Undone => format!("the data restore run {run} had swapped into {target}, set aside"),
        }
    }

    /// The line that says it was removed.
    pub fn removed_line(&self) -> String {
        format!("removed {}: {}", self.path.display(), self.describe())
    }
}

/// The name `kind` of restore run `run_id` gives the copy beside `target` (the `index`-th target of the run).
pub fn leftover_name(kind: LeftoverKind, run_id: i64, index: usize, target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".hookrun-{}-{run_id}-{index}-{name}", kind.word())
}

/// Every copy any restore run left beside `target`, found by name in its folder (a missing folder holds none).
pub fn leftovers_beside(target: &Path) -> io::Result<Vec<Leftover>> {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let name = name.to_string_lossy();
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let parsed = LeftoverKind::ALL.into_iter().find_map(|kind| {
            let rest = file_name.strip_prefix(&format!(".hookrun-{}-", kind.word()))?;
            let (run, rest) = rest.split_once('-')?;
            let (index, rest) = rest.split_once('-')?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (digits(run) && digits(index) && rest == name).then(|| (kind, run.parse().ok()))
        });
        if let Some((kind, Some(run_id))) = parsed {
            found.push(Leftover {
                path: entry.path(),
                kind,
                run_id,
                target: target.to_path_buf(),
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Whether `run_id` is a restore run that has finished (completed, failed, or interrupted and recovered): what it
/// left beside its targets is no one's way back any more. A run the catalog does not know is not assumed finished.
pub fn finished_restore_run(catalog: &Catalog, run_id: i64) -> bool {
    catalog
        .run(run_id)
        .ok()
        .flatten()
        .is_some_and(|run| run.kind == RunKind::Restore && run.status != RunStatus::Running)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target, a staged copy and a set-aside old copy beside it, as a restore of run 7 leaves them.
    fn leftovers(dir: &Path) -> Leftovers {
        let target = dir.join("data");
        let staged = dir.join(leftover_name(LeftoverKind::Staged, 7, 0, &target));
        let old = dir.join(leftover_name(LeftoverKind::Old, 7, 0, &target));
        for path in [&target, &staged, &old] {
            std::fs::create_dir_all(path.join("sub")).unwrap();
            std::fs::write(path.join("sub/file"), path.file_name().unwrap().as_encoded_bytes()).unwrap();
        }
        Leftovers {
            staged: vec![staged],
            swapped: vec![Swap {
                target,
                staged: dir.join("swapped-in"),
                old,
            }],
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn after_a_successful_restore_both_the_staged_and_the_old_copies_go() {
        let dir = tempfile::tempdir().unwrap();

        let cleaned = leftovers(dir.path()).remove(true, |_| false).unwrap();

        assert_eq!(names(dir.path()), ["data"]);
        assert_eq!(cleaned, Cleaned::default(), "its own copies are not news");
    }

    #[test]
    fn after_a_failure_the_staged_copy_goes_and_the_old_copy_stays_as_the_way_back_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let old = dir.path().join(".hookrun-old-7-0-data");

        let cleaned = leftovers(dir.path()).remove(false, |_| true).unwrap();

        assert_eq!(names(dir.path()), [".hookrun-old-7-0-data", "data"]);
        assert_eq!(
            std::fs::read_to_string(old.join("sub/file")).unwrap(),
            ".hookrun-old-7-0-data"
        );
        assert_eq!(cleaned.kept, [(old.clone(), target.clone())]);
        let mut outputs = BTreeMap::new();
        cleaned.record(&mut outputs);
        assert!(
            outputs[KEPT].starts_with(&format!(
                "kept {}: what {} held before this restore",
                old.display(),
                target.display()
            )),
            "{outputs:?}"
        );
    }

    #[test]
    fn a_successful_restore_removes_what_finished_restores_left_beside_its_targets_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let mut leftovers = leftovers(dir.path());
        for name in [
            ".hookrun-old-3-0-data",
            ".hookrun-restore-3-1-data",
            ".hookrun-old-5-0-data",
            ".hookrun-old-3-0-database",
            ".hookrun-old-x-0-data",
            "unrelated",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }

        // Run 3 finished; run 5 is still marked running (`hookrun recover` has its copies to undo its swap).
        let cleaned = leftovers.remove(true, |run| run == 3).unwrap();

        assert_eq!(
            names(dir.path()),
            [
                ".hookrun-old-3-0-database",
                ".hookrun-old-5-0-data",
                ".hookrun-old-x-0-data",
                "data",
                "unrelated"
            ]
        );
        let removed: Vec<(String, LeftoverKind, i64)> = cleaned
            .removed
            .iter()
            .map(|l| {
                (
                    l.path.file_name().unwrap().to_string_lossy().into_owned(),
                    l.kind,
                    l.run_id,
                )
            })
            .collect();
        assert_eq!(
            removed,
            [
                (".hookrun-old-3-0-data".to_string(), LeftoverKind::Old, 3),
                (".hookrun-restore-3-1-data".to_string(), LeftoverKind::Staged, 3)
            ]
        );
        assert_eq!(
            cleaned.removed[0].removed_line(),
            format!(
                "removed {}: what {} held before restore run 3",
                dir.path().join(".hookrun-old-3-0-data").display(),
                target.display()
            )
        );
    }
}
