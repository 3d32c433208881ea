//! Copying a tree exactly (content, folders, symlinks as links, owners, modes, mtimes), its small files into packs, for the
//! `snapshot` hook: a quick consistent copy while the services are stopped, archived after they are back.
//!
//! One thread walks the tree, creating folders and symlinks in order; worker threads copy the files. Each larger file
//! is first cloned (`FICLONE`: on XFS, btrfs and other reflink file systems the copy shares the extents, so it takes no
//! time and no room until the service writes), and copied by the kernel (`copy_file_range`) where cloning is not
//! supported. Files under [`PACKED_BELOW`] are not created at all: each thread reads them into a pack of its own (a
//! plain tar file, see `pack.rs`), which is quicker than creating them, and the archive appends the packs'
//! entries after the copied tree.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;

use rustix::fs::{futimens, utimensat, AtFlags, Timespec, Timestamps, CWD};
use tokio_util::sync::CancellationToken;
use walkdir::WalkDir;

use crate::ArchiveError;
use crate::{create_private, PackWriter, PACKED_BELOW};

/// Files copied at once: more than the cores, since creating and cloning files waits on the file system.
const COPY_THREADS: usize = 4;

/// Files the walker may queue ahead of the copying threads.
const QUEUED_FILES: usize = 1024;

/// One file to copy.
struct FileJob {
    source: PathBuf,
    /// Its path relative to the tree.
    name: PathBuf,
    target: PathBuf,
    meta: fs::Metadata,
}

/// What [`copy_tree`] took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Bytes of file content, packed or copied.
    pub bytes: u64,
    /// The packs holding the small files, named relative to the tree.
    pub packs: Vec<PathBuf>,
}

/// Whether a file of `tree` can be cloned (`FICLONE`) into the folder `into`: tried on the first non-empty
/// regular file found, into a probe file removed right after. `None` when `tree` holds no such file.
pub fn can_clone(tree: &Path, into: &Path) -> Result<Option<bool>, ArchiveError> {
    let Some(sample) = WalkDir::new(tree)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_file() && e.metadata().is_ok_and(|m| m.len() > 0))
    else {
        return Ok(None);
    };
    let source = File::open(sample.path()).map_err(|source| ArchiveError::ReadSource {
        path: sample.path().to_path_buf(),
        source,
    })?;
    let probe = into.join(format!(".hookrun-clone-probe-{}", std::process::id()));
    let target = create_private(&probe).map_err(|source| ArchiveError::Prepare {
        path: probe.clone(),
        source,
    })?;
    let cloned = rustix::fs::ioctl_ficlone(&target, &source).is_ok();
    drop(target);
    let _ = fs::remove_file(&probe);
    Ok(Some(cloned))
}

/// Copies `from` (a file, folder or symlink) to `to` (which must not exist), its files under [`PACKED_BELOW`] into
/// packs in the folder `packs`. Sockets, FIFOs and device nodes are left out, as the archive leaves them out. On
/// error the partial copy is left for the caller to remove (it lives in the run's staging folder).
pub fn copy_tree(from: &Path, to: &Path, packs: &Path, cancel: &CancellationToken) -> Result<Copied, ArchiveError> {
    let bytes = AtomicU64::new(0);
    let failure: Mutex<Option<ArchiveError>> = Mutex::new(None);
    let fail = |error: ArchiveError| {
        let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(error);
    };
    let stop = CancellationToken::new();
    let (jobs, queue) = mpsc::sync_channel::<FileJob>(QUEUED_FILES);
    let queue = Mutex::new(queue);
    let (dirs, mut written) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..COPY_THREADS)
            .map(|n| {
                let pack = PackWriter::new(packs.join(format!("{n}.tar")));
                let (queue, bytes, stop, fail) = (&queue, &bytes, &stop, &fail);
                scope.spawn(move || copy_files(queue, bytes, stop, fail, pack))
            })
            .collect();
        let walked = walk(from, to, cancel, &stop, |job| jobs.send(job).is_ok());
        drop(jobs);
        let dirs = match walked {
            Ok(dirs) => dirs,
            Err(error) => {
                stop.cancel();
                fail(error);
                Vec::new()
            }
        };
        let written: Vec<PathBuf> = workers
            .into_iter()
            .filter_map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect();
        (dirs, written)
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    // Folders last, deepest first: creating their entries changed their mtimes.
    set_dir_metadata(dirs.iter().rev().map(|(dir, meta)| (dir.as_path(), meta)))?;
    written.sort();
    Ok(Copied {
        bytes: bytes.into_inner(),
        packs: written,
    })
}

/// Walks `from`, creating folders and symlinks under `to` and handing each file to `send` (which returns false
/// when the copying threads gave up). Returns the folders created, in walk order, with their source metadata.
fn walk(
    from: &Path,
    to: &Path,
    cancel: &CancellationToken,
    stop: &CancellationToken,
    mut send: impl FnMut(FileJob) -> bool,
) -> Result<Vec<(PathBuf, fs::Metadata)>, ArchiveError> {
    let mut dirs = Vec::new();
    for entry in WalkDir::new(from).follow_links(false) {
        if cancel.is_cancelled() {
            return Err(ArchiveError::Cancelled);
        }
        if stop.is_cancelled() {
            break;
        }
        let entry = entry.map_err(|e| ArchiveError::ReadSource {
            path: from.to_path_buf(),
            source: e.into(),
        })?;
        let source = entry.path();
        let read_err = |e: io::Error| ArchiveError::ReadSource {
            path: source.to_path_buf(),
            source: e,
        };
        let relative = source.strip_prefix(from).expect("walkdir stays under its root");
        let target = if relative.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(relative)
        };
        let write_err = |e: io::Error| ArchiveError::Prepare {
            path: target.clone(),
            source: e,
        };
        let meta = entry.metadata().map_err(|e| read_err(e.into()))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&target).map_err(write_err)?;
            dirs.push((target, meta));
        } else if kind.is_symlink() {
            copy_symlink(source, &target, &meta)?;
        } else if kind.is_file() {
            let job = FileJob {
                source: source.to_path_buf(),
                name: relative.to_path_buf(),
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

/// A copying thread: copies files, or adds them to `pack`, until the queue closes, and returns the pack if it was
/// written. Once any thread failed it only drains the queue, so the walker is never left waiting on a full one.
fn copy_files(
    queue: &Mutex<Receiver<FileJob>>,
    bytes: &AtomicU64,
    stop: &CancellationToken,
    fail: &(dyn Fn(ArchiveError) + Sync),
    mut pack: PackWriter,
) -> Option<PathBuf> {
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { break };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        if stop.is_cancelled() {
            continue;
        }
        // A tree that is a single file is copied as one: a pack's entries are named below their tree.
        let copied = if job.meta.len() < PACKED_BELOW && !job.name.as_os_str().is_empty() {
            pack.add(&job.source, &job.meta, &job.name).map(|()| job.meta.len())
        } else {
            copy_file(&job)
        };
        match copied {
            Ok(copied) => {
                bytes.fetch_add(copied, Ordering::Relaxed);
            }
            Err(error) => {
                stop.cancel();
                fail(error);
            }
        }
    }
    pack.finish().unwrap_or_else(|error| {
        fail(error);
        None
    })
}

/// Clones or copies one file, with the source's owner, mode and times; a file that changed size meanwhile fails
/// the copy.
fn copy_file(job: &FileJob) -> Result<u64, ArchiveError> {
    let mut source = File::open(&job.source).map_err(|e| ArchiveError::ReadSource {
        path: job.source.clone(),
        source: e,
    })?;
    let copied = write_copy(&mut source, &job.target, &job.meta)?;
    if copied != job.meta.len() {
        return Err(ArchiveError::SourceChanged {
            path: job.source.clone(),
            expected: job.meta.len(),
        });
    }
    Ok(copied)
}

/// Writes the file `target` (which must not exist) as a copy of the open file `from`: cloned where the file system
/// can, else copied by the kernel; with the owner, mode and times of `meta`. Returns the bytes copied.
pub(crate) fn write_copy(from: &mut File, target: &Path, meta: &fs::Metadata) -> Result<u64, ArchiveError> {
    let mut to = create_private(target).map_err(|e| prepare(target, e))?;
    let copied = match rustix::fs::ioctl_ficlone(&to, &*from) {
        Ok(()) => meta.len(),
        // Not a reflink file system (or not the same one): the kernel copies.
        Err(_) => io::copy(from, &mut to).map_err(|e| prepare(target, e))?,
    };
    own(std::os::unix::fs::fchown(&to, Some(meta.uid()), Some(meta.gid()))).map_err(|e| prepare(target, e))?;
    to.set_permissions(meta.permissions()).map_err(|e| prepare(target, e))?;
    futimens(&to, &timestamps(meta)).map_err(|e| prepare(target, e.into()))?;
    Ok(copied)
}

/// A copy that could not be written at `path`.
pub(crate) fn prepare(path: &Path, source: io::Error) -> ArchiveError {
    ArchiveError::Prepare {
        path: path.to_path_buf(),
        source,
    }
}

/// Recreates the symlink `source` at `target`, with its times.
pub(crate) fn copy_symlink(source: &Path, target: &Path, meta: &fs::Metadata) -> Result<(), ArchiveError> {
    let link = fs::read_link(source).map_err(|e| ArchiveError::ReadSource {
        path: source.to_path_buf(),
        source: e,
    })?;
    std::os::unix::fs::symlink(link, target).map_err(|e| prepare(target, e))?;
    own(std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()))).map_err(|e| prepare(target, e))?;
    utimensat(CWD, target, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| prepare(target, e.into()))
}

/// Gives each copied folder the mode and times of its source, in the order given (deepest first).
pub(crate) fn set_dir_metadata<'a>(
    dirs: impl Iterator<Item = (&'a Path, &'a fs::Metadata)>,
) -> Result<(), ArchiveError> {
    for (dir, meta) in dirs {
        own(std::os::unix::fs::lchown(dir, Some(meta.uid()), Some(meta.gid()))).map_err(|e| prepare(dir, e))?;
        fs::set_permissions(dir, meta.permissions()).map_err(|e| prepare(dir, e))?;
        utimensat(CWD, dir, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| prepare(dir, e.into()))?;
    }
    Ok(())
}

/// The result of giving a copy its source's owner: refused (not running as root) is not an error, the copy then
/// stays ours, as `cp -p` leaves it.
pub(crate) fn own(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// The access and modification times of `meta`, as `utimensat` and `futimens` take them.
pub(crate) fn timestamps(meta: &fs::Metadata) -> Timestamps {
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

    /// Copies `from` to `to`, its packs beside it.
    fn copy(from: &Path, to: &Path) -> Copied {
        let packs = to.with_extension("packs");
        fs::create_dir(&packs).unwrap();
        copy_tree(from, to, &packs, &CancellationToken::new()).unwrap()
    }

    /// Extracts the packs of `copied` into the copy `to`, with their modes and mtimes: with the copy, what the
    /// snapshot took, whole. (Creating the files changes their folders' mtimes, which a restore sets last.)
    fn unpack(copied: &Copied, to: &Path) {
        for pack in &copied.packs {
            let mut archive = tar::Archive::new(File::open(pack).unwrap());
            archive.set_preserve_permissions(true);
            archive.set_preserve_mtime(true);
            archive.unpack(to).unwrap();
        }
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
        fs::write(from.join("just-big-enough"), vec![8u8; PACKED_BELOW as usize]).unwrap();
        let to = dir.path().join("to");

        let copied = copy(&from, &to);

        let files: Vec<PathBuf> = manifest(&to).into_iter().map(|(path, _, _)| path).collect();
        assert_eq!(
            files,
            [Path::new("big"), Path::new("just-big-enough")],
            "only large files are copied as files"
        );
        assert!(
            (1..=COPY_THREADS).contains(&copied.packs.len()),
            "one pack a thread at most"
        );
        unpack(&copied, &to);
        let expected = manifest(&from);
        assert_eq!(manifest(&to), expected);
        assert_eq!(
            copied.bytes,
            expected.iter().map(|(_, _, c)| c.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn packed_files_keep_their_modes_and_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("sub")).unwrap();
        for (name, mode) in [("private", 0o600), ("shared", 0o644), ("script", 0o755)] {
            fs::write(from.join("sub").join(name), name).unwrap();
            fs::set_permissions(from.join("sub").join(name), fs::Permissions::from_mode(mode)).unwrap();
        }
        utimensat(CWD, from.join("sub/script"), &at(1_000_000), AtFlags::empty()).unwrap();

        let copied = copy(&from, &dir.path().join("to"));
        unpack(&copied, &dir.path().join("to"));

        assert_eq!(manifest(&dir.path().join("to")), manifest(&from));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(dir.path().join("to/sub/script")).unwrap().mtime(),
            1_000_000
        );
    }

    #[test]
    fn a_file_that_cannot_be_copied_fails_the_copy_naming_it_even_with_a_full_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, stop, failure) = (AtomicU64::new(0), CancellationToken::new(), Mutex::new(None));
        let fail = |error: ArchiveError| {
            failure.lock().unwrap().get_or_insert(error);
        };
        let missing = dir.path().join("vanished");
        let large = dir.path().join("large");
        fs::write(&large, vec![1u8; PACKED_BELOW as usize]).unwrap();
        let meta = fs::metadata(&large).unwrap();
        let pack = PackWriter::new(dir.path().join("pack.tar"));
        let (jobs, queue) = mpsc::sync_channel::<FileJob>(1);
        let queue = Mutex::new(queue);
        std::thread::scope(|scope| {
            scope.spawn(|| copy_files(&queue, &bytes, &stop, &fail, pack));
            // Many more jobs than the queue holds after the failing one: the sender must never be left waiting.
            for i in 0..100 {
                let source = if i == 0 { missing.clone() } else { large.clone() };
                let target = dir.path().join(format!("copy{i}"));
                jobs.send(FileJob {
                    source,
                    name: PathBuf::from(format!("copy{i}")),
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
    fn a_tree_that_is_one_small_file_is_copied_as_that_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("settings.conf"), b"port = 80").unwrap();
        let packs = dir.path().join("packs");
        fs::create_dir(&packs).unwrap();

        let copied = copy_tree(
            &dir.path().join("settings.conf"),
            &dir.path().join("copy.conf"),
            &packs,
            &CancellationToken::new(),
        )
        .unwrap();

        assert_eq!(fs::read(dir.path().join("copy.conf")).unwrap(), b"port = 80");
        assert_eq!(copied.packs, Vec::<PathBuf>::new());
    }

    #[test]
    fn a_copy_keeps_content_links_modes_and_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("sub/empty")).unwrap();
        fs::write(from.join("sub/file"), b"content").unwrap();
        fs::set_permissions(from.join("sub/file"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/file", from.join("link")).unwrap();
        utimensat(CWD, from.join("sub"), &at(1_000_000), AtFlags::empty()).unwrap();

        let to = dir.path().join("to");
        let copied = copy(&from, &to);

        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(to.join("sub")).unwrap().mtime(),
            1_000_000,
            "folder mtimes survive their contents"
        );
        assert_eq!(fs::read_link(to.join("link")).unwrap(), Path::new("sub/file"));
        assert!(to.join("sub/empty").is_dir());
        unpack(&copied, &to);
        assert_eq!(copied.bytes, 7);
        assert_eq!(fs::read(to.join("sub/file")).unwrap(), b"content");
        assert_eq!(
            fs::metadata(to.join("sub/file")).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    /// Access and modification times both at `secs`.
    fn at(secs: i64) -> Timestamps {
        let time = Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        Timestamps {
            last_access: time,
            last_modification: time,
        }
    }
}
