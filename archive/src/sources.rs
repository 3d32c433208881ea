//! Backup sources: configured paths under the work dir resolved to files on disk and their place in the archive.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::walk::{walk, Kind};
use crate::ArchiveError;

/// One tree to archive: where it is on disk and the path it gets inside the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRoot {
    /// The file or folder on disk.
    pub fs_path: PathBuf,
    /// Its path inside the archive (relative, no `..`).
    pub archive_path: PathBuf,
    /// Packs of the tree's small files that a snapshot read aside (their names relative to the tree), appended after
    /// the tree.
    pub packs: Vec<PathBuf>,
}

impl SourceRoot {
    /// A root archived under `archive_path`.
    pub fn new(fs_path: impl Into<PathBuf>, archive_path: impl Into<PathBuf>) -> Self {
        Self {
            fs_path: fs_path.into(),
            archive_path: archive_path.into(),
            packs: Vec::new(),
        }
    }

    /// This root with the packs `packs` appended after it.
    pub fn with_packs(mut self, packs: Vec<PathBuf>) -> Self {
        self.packs = packs;
        self
    }
}

/// What a set of roots holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    /// Regular files.
    pub files: u64,
    /// Entries of every kind, the roots included.
    pub entries: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
}

/// Resolves configured source paths (relative to `work_dir`) to roots, refusing absolute paths, `..`, sources that
/// overlap (the same tree twice, or one inside another: its entries would be archived twice and no restore could put
/// them back), and paths that do not exist. Each keeps its relative path inside the archive.
pub fn resolve_sources(work_dir: &Path, sources: &[PathBuf]) -> Result<Vec<SourceRoot>, ArchiveError> {
    let relatives = sources
        .iter()
        .map(|source| {
            let bad = |reason: &str| ArchiveError::BadSource {
                path: source.clone(),
                reason: reason.to_string(),
            };
            if source.is_absolute() {
                return Err(bad("must be relative to the work dir"));
            }
            if source.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(bad("must stay inside the work dir (no `..`)"));
            }
            let relative: PathBuf = source
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            if relative.as_os_str().is_empty() {
                return Err(bad("names the work dir itself; list the folders to back up"));
            }
            Ok(relative)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((a, b)) = overlapping(&relatives) {
        let inner = if relatives[a].components().count() >= relatives[b].components().count() {
            &relatives[a]
        } else {
            &relatives[b]
        };
        return Err(ArchiveError::Misconfigured(format!(
            "sources `{}` and `{}` overlap: `{}` would be archived twice, and a restore refuses such a backup; \
             list each tree once",
            sources[a].display(),
            sources[b].display(),
            inner.display()
        )));
    }
    sources
        .iter()
        .zip(relatives)
        .map(|(source, relative)| {
            let fs_path = work_dir.join(&relative);
            fs_path.symlink_metadata().map_err(|e| ArchiveError::MissingSource {
                path: source.clone(),
                work_dir: work_dir.to_path_buf(),
                source: e,
            })?;
            Ok(SourceRoot::new(fs_path, relative))
        })
        .collect()
}

/// The first two of `paths` (relative archive paths) where one is the other or lies inside it, as their indexes in
/// `paths`; `None` when the trees they name are disjoint. Compared component by component (`./a/` is `a`).
pub fn overlapping(paths: &[impl AsRef<Path>]) -> Option<(usize, usize)> {
    let parts: Vec<Vec<Component<'_>>> = paths
        .iter()
        .map(|p| {
            p.as_ref()
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect()
        })
        .collect();
    for (j, b) in parts.iter().enumerate() {
        for (i, a) in parts[..j].iter().enumerate() {
            let n = a.len().min(b.len());
            if a[..n] == b[..n] {
                return Some((i, j));
            }
        }
    }
    None
}

/// Walks the roots as the writer does (never following symlinks, leaving out sockets, FIFOs and device nodes) and
/// counts what it archives of them (their packs aside).
pub fn measure(roots: &[SourceRoot]) -> Result<SourceStats, ArchiveError> {
    let mut stats = SourceStats::default();
    for entry in walk(roots).live() {
        let entry = entry?;
        stats.entries += 1;
        if entry.kind == Kind::File {
            stats.files += 1;
            stats.bytes += entry.meta.len();
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_outside_the_work_dir_are_refused() {
        let work = tempfile::tempdir().unwrap();
        for bad in ["/etc", "../etc", "data/../../etc", "."] {
            let err = resolve_sources(work.path(), &[PathBuf::from(bad)]).unwrap_err();
            assert!(matches!(err, ArchiveError::BadSource { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn overlapping_sources_are_refused_naming_both_before_the_disk_is_looked_at() {
        let work = tempfile::tempdir().unwrap();
        for (sources, message) in [
            (
                &["data", "data"][..],
                "sources `data` and `data` overlap: `data` would be archived twice",
            ),
            (
                &["data", "data/sub"],
                "sources `data` and `data/sub` overlap: `data/sub` would be archived twice",
            ),
            (
                &["data/sub", "x", "data"],
                "sources `data/sub` and `data` overlap: `data/sub` would be archived twice",
            ),
            (
                &["./data", "data/"],
                "sources `./data` and `data/` overlap: `data` would be archived twice",
            ),
        ] {
            let sources: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
            let err = resolve_sources(work.path(), &sources).unwrap_err();
            assert!(matches!(err, ArchiveError::Misconfigured(_)), "{err}");
            assert!(err.to_string().starts_with(message), "{err}");
        }
    }

    #[test]
    fn trees_overlap_when_one_is_or_holds_the_other() {
        assert_eq!(overlapping(&["a", "b", "c/d"]), None);
        assert_eq!(overlapping(&["data", "database"]), None, "components, not bytes");
        assert_eq!(overlapping(&["a", "b", "b/c"]), Some((1, 2)));
        assert_eq!(overlapping(&["b/c", "a", "b"]), Some((0, 2)));
        assert_eq!(overlapping(&["./a/", "a"]), Some((0, 1)));
    }

    #[test]
    fn a_missing_source_names_itself() {
        let work = tempfile::tempdir().unwrap();
        let err = resolve_sources(work.path(), &[PathBuf::from("nope")]).unwrap_err();
        assert!(err.to_string().starts_with("source nope: not found"), "{err}");
    }

    #[test]
    fn measure_counts_files_entries_and_bytes() {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("data/empty")).unwrap();
        std::fs::write(work.path().join("data/a"), b"12345").unwrap();
        std::os::unix::fs::symlink("a", work.path().join("data/link")).unwrap();
        let roots = resolve_sources(work.path(), &[PathBuf::from("data")]).unwrap();

        let stats = measure(&roots).unwrap();

        assert_eq!(
            stats,
            SourceStats {
                files: 1,
                entries: 4,
                bytes: 5
            }
        );
    }
}
