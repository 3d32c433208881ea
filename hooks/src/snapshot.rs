//! Copying a tree exactly (content, folders, symlinks as links, modes, mtimes), for the `snapshot` hook: a quick
//! consistent copy while the services are stopped, archived after they are back.
//!
//! One thread walks the tree, creating folders and symlinks in order; worker threads copy the files. Each file is
//! first cloned (`FICLONE`: on XFS, btrfs and other reflink file systems the copy shares the extents, so it takes no
//! time and no room until the service writes), and copied by the kernel (`copy_file_range`) where cloning is not
//! supported.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;

use rustix::fs::{futimens, utimensat, AtFlags, Timespec, Timestamps, CWD};
use tokio_util::sync::CancellationToken;
use walkdir::WalkDir;

use crate::HookError;

/// Files copied at once: more than the cores, since creating and cloning files waits on the file system.
const COPY_THREADS: usize = 4;

/// Files the walker may queue ahead of the copying threads.
const QUEUED_FILES: usize = 1024;

/// One file to copy.
struct FileJob {
    source: PathBuf,
    target: PathBuf,
    meta: fs::Metadata,
}

/// Whether a file of `tree` can be cloned (`FICLONE`) into the folder `into`: tried on the first non-empty
/// regular file found, into a probe file removed right after. `None` when `tree` holds no such file.
pub fn can_clone(tree: &Path, into: &Path) -> Result<Option<bool>, HookError> {
    let Some(sample) = WalkDir::new(tree)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_file() && e.metadata().is_ok_and(|m| m.len() > 0))
    else {
        return Ok(None);
    };
    let source = File::open(sample.path()).map_err(|source| HookError::ReadSource {
        path: sample.path().to_path_buf(),
        source,
    })?;
    let probe = into.join(format!(".hookrun-clone-probe-{}", std::process::id()));
    let target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .map_err(|source| HookError::Prepare {
            path: probe.clone(),
            source,
        })?;
    let cloned = rustix::fs::ioctl_ficlone(&target, &source).is_ok();
    drop(target);
    let _ = fs::remove_file(&probe);
    Ok(Some(cloned))
}

/// Copies `from` (a file, folder or symlink) to `to` (which must not exist) and returns the file bytes copied.
/// Sockets, FIFOs and device nodes are left out, as the archive leaves them out. On error the partial copy is left
/// for the caller to remove (it lives in the run's staging folder).
pub fn copy_tree(from: &Path, to: &Path, cancel: &CancellationToken) -> Result<u64, HookError> {
    let bytes = AtomicU64::new(0);
    let failure: Mutex<Option<HookError>> = Mutex::new(None);
    let fail = |error: HookError| {
        let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(error);
    };
    let stop = CancellationToken::new();
    let (jobs, queue) = mpsc::sync_channel::<FileJob>(QUEUED_FILES);
    let queue = Mutex::new(queue);
    let dirs = std::thread::scope(|scope| {
        for _ in 0..COPY_THREADS {
            scope.spawn(|| copy_files(&queue, &bytes, &stop, &fail));
        }
        let walked = walk(from, to, cancel, &stop, |job| jobs.send(job).is_ok());
        drop(jobs);
        match walked {
            Ok(dirs) => dirs,
            Err(error) => {
                stop.cancel();
                fail(error);
                Vec::new()
            }
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    // Folders last, deepest first: creating their entries changed their mtimes.
    for (dir, meta) in dirs.iter().rev() {
        let write_err = |e: io::Error| HookError::Prepare {
            path: dir.clone(),
            source: e,
        };
        fs::set_permissions(dir, meta.permissions()).map_err(write_err)?;
        set_times(dir, meta).map_err(write_err)?;
    }
    Ok(bytes.into_inner())
}

/// Walks `from`, creating folders and symlinks under `to` and handing each file to `send` (which returns false
/// when the copying threads gave up). Returns the folders created, in walk order, with their source metadata.
fn walk(
    from: &Path,
    to: &Path,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    mut send: impl FnMut(FileJob) -> bool,
) -> Result<Vec<(PathBuf, fs::Metadata)>, HookError> {
    let mut dirs = Vec::new();
    for entry in WalkDir::new(from).follow_links(false) {
        if cancel.is_cancelled() {
            return Err(HookError::Cancelled);
        }
        if stop.is_cancelled() {
            break;
        }
        let entry = entry.map_err(|e| HookError::ReadSource {
            path: from.to_path_buf(),
            source: e.into(),
        })?;
        let source = entry.path();
        let read_err = |e: io::Error| HookError::ReadSource {
            path: source.to_path_buf(),
            source: e,
        };
        let relative = source.strip_prefix(from).expect("walkdir stays under its root");
        let target = if relative.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(relative)
        };
        let write_err = |e: io::Error| HookError::Prepare {
            path: target.clone(),
            source: e,
        };
        let meta = entry.metadata().map_err(|e| read_err(e.into()))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&target).map_err(write_err)?;
            dirs.push((target, meta));
        } else if kind.is_symlink() {
            let link = fs::read_link(source).map_err(read_err)?;
            std::os::unix::fs::symlink(link, &target).map_err(write_err)?;
            set_times(&target, &meta).map_err(write_err)?;
        } else if kind.is_file() {
            let job = FileJob {
                source: source.to_path_buf(),
                target,
                meta,
            };
            if !send(job) {
                break;
            }
        }
    }
    Ok(dirs)
}

/// A copying thread: copies files until the queue closes. Once any thread failed it only drains the queue, so the
/// walker is never left waiting on a full one.
fn copy_files(
    queue: &Mutex<Receiver<FileJob>>,
    bytes: &AtomicU64,
    stop: &CancellationToken,
    fail: &(dyn Fn(HookError) + Sync),
) {
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if stop.is_cancelled() {
            continue;
        }
        match copy_file(&job) {
            Ok(copied) => {
                bytes.fetch_add(copied, Ordering::Relaxed);
            }
            Err(error) => {
                stop.cancel();
                fail(error);
            }
        }
    }
}

/// Clones or copies one file, then gives it the source's mode and times.
fn copy_file(job: &FileJob) -> Result<u64, HookError> {
    let read_err = |e: io::Error| HookError::ReadSource {
        path: job.source.clone(),
        source: e,
    };
    let write_err = |e: io::Error| HookError::Prepare {
        path: job.target.clone(),
        source: e,
    };
    let mut source = File::open(&job.source).map_err(read_err)?;
    let mut target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&job.target)
        .map_err(write_err)?;
    let copied = match rustix::fs::ioctl_ficlone(&target, &source) {
        Ok(()) => job.meta.len(),
        // Not a reflink file system (or not the same one): the kernel copies.
        Err(_) => io::copy(&mut source, &mut target).map_err(write_err)?,
    };
    if copied != job.meta.len() {
        return Err(HookError::SourceChanged {
            path: job.source.clone(),
            expected: job.meta.len(),
        });
    }
    target.set_permissions(job.meta.permissions()).map_err(write_err)?;
    futimens(&target, &timestamps(&job.meta)).map_err(|e| write_err(e.into()))?;
    Ok(copied)
}

/// Gives `path` (a folder or symlink, not followed) the access and modification times of `meta`.
fn set_times(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    utimensat(CWD, path, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn timestamps(meta: &fs::Metadata) -> Timestamps {
    use std::os::unix::fs::MetadataExt;
    let at = |secs, nanos| Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    Timestamps {
        last_access: at(meta.atime(), meta.atime_nsec()),
        last_modification: at(meta.mtime(), meta.mtime_nsec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Every file's relative path, mode and content.
    fn manifest(root: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
        let mut out: Vec<_> = WalkDir::new(root)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let mode = e.metadata().unwrap().permissions().mode();
                (
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                    mode,
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_tree_with_more_files_than_the_queue_holds_is_copied_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        for i in 0..(3 * QUEUED_FILES) {
            let sub = from.join(format!("d{}/e{}", i % 7, i % 3));
            fs::create_dir_all(&sub).unwrap();
            let file = sub.join(format!("f{i}"));
            fs::write(&file, format!("file {i} ").repeat(i % 50)).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600 | ((i as u32 % 2) * 0o044))).unwrap();
        }
        let big = vec![7u8; 3 << 20];
        fs::write(from.join("big"), &big).unwrap();

        let bytes = copy_tree(&from, &dir.path().join("to"), &CancellationToken::new()).unwrap();

        let expected = manifest(&from);
        assert_eq!(manifest(&dir.path().join("to")), expected);
        assert_eq!(bytes, expected.iter().map(|(_, _, c)| c.len() as u64).sum::<u64>());
    }

    #[test]
    fn a_file_that_cannot_be_copied_fails_the_copy_naming_it_even_with_a_full_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, stop, failure) = (AtomicU64::new(0), CancellationToken::new(), Mutex::new(None));
        let fail = |error: HookError| {
            failure.lock().unwrap().get_or_insert(error);
        };
        let missing = dir.path().join("vanished");
        let (jobs, queue) = mpsc::sync_channel::<FileJob>(1);
        let queue = Mutex::new(queue);
        std::thread::scope(|scope| {
            scope.spawn(|| copy_files(&queue, &bytes, &stop, &fail));
            let meta = fs::metadata(dir.path()).unwrap();
            // Many more jobs than the queue holds after the failing one: the sender must never be left waiting.
            for i in 0..100 {
                let source = if i == 0 {
                    missing.clone()
                } else {
                    dir.path().join("nothing")
                };
                let target = dir.path().join(format!("copy{i}"));
                jobs.send(FileJob {
                    source,
                    target,
                    meta: meta.clone(),
                })
                .unwrap();
            }
            drop(jobs);
        });
        let error = failure.into_inner().unwrap().expect("the copy failed").to_string();
        assert!(error.contains("vanished"), "{error}");
        assert!(stop.is_cancelled());
        assert!(!dir.path().join("copy1").exists(), "nothing copied after the failure");
    }

    #[test]
    fn a_tree_without_file_content_has_nothing_to_clone() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("empty/nested")).unwrap();
        File::create(tree.join("empty/zero-bytes")).unwrap();

        assert_eq!(can_clone(&tree, dir.path()).unwrap(), None);
    }

    #[test]
    fn the_clone_probe_answers_as_cloning_that_file_does_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/file"), vec![1u8; 100_000]).unwrap();
        let into = dir.path().join("storage");
        fs::create_dir(&into).unwrap();

        let answer = can_clone(&tree, &into).unwrap();

        let source = File::open(tree.join("sub/file")).unwrap();
        let target = File::create(dir.path().join("direct")).unwrap();
        let direct = rustix::fs::ioctl_ficlone(&target, &source).is_ok();
        assert_eq!(answer, Some(direct));
        assert_eq!(fs::read_dir(&into).unwrap().count(), 0, "the probe file is gone");
    }

    #[test]
    fn a_copy_keeps_content_links_modes_and_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("sub/empty")).unwrap();
        fs::write(from.join("sub/file"), b"content").unwrap();
        fs::set_permissions(from.join("sub/file"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/file", from.join("link")).unwrap();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        utimensat(CWD, from.join("sub"), &old, AtFlags::empty()).unwrap();

        let bytes = copy_tree(&from, &dir.path().join("to"), &CancellationToken::new()).unwrap();

        let to = dir.path().join("to");
        assert_eq!(bytes, 7);
        assert_eq!(fs::read(to.join("sub/file")).unwrap(), b"content");
        assert_eq!(
            fs::metadata(to.join("sub/file")).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_link(to.join("link")).unwrap(), Path::new("sub/file"));
        assert!(to.join("sub/empty").is_dir());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(to.join("sub")).unwrap().mtime(),
            1_000_000,
            "folder mtimes survive their contents"
        );
    }
}
