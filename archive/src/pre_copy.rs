//! Pre-copying a tree while its services still run, then refreshing the copy once they are stopped: the `snapshot`
//! hook's way to a short downtime where storage cannot clone (ext4).
//!
//! [`pre_copy`] copies the tree (folders, files, symlinks; owners, modes and times) and remembers what it saw of each entry
//! before copying it: its kind, size, mtime and ctime to the nanosecond, and inode. With the services stopped,
//! [`PreCopy::refresh`] walks the tree again and copies anew only what differs from that (or is new), removes what
//! is gone, and gives the folders their modes and times again: the copy is then the tree as it stands, byte for
//! byte, after reading only its metadata and the changed files.
//!
//! Why a change cannot hide: any write changes a file's ctime, which nothing can set back. The one way to miss a
//! change is a write in the same clock tick as the ctime first seen (file systems keep time in coarse ticks), so an
//! entry whose ctime was within [`RACY`] of the pre-copy's start (or after it) is copied again whatever it looks
//! like. (This assumes the file system's clock is the machine's, as on local disks.)

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::tree_copy::{copy_symlink, prepare, set_dir_metadata, write_copy};
use crate::{remove_any, ArchiveError};

/// Files copied at once: more than the cores, since creating files waits on the file system.
const COPY_THREADS: usize = 4;

/// Bytes copied between two progress reports.
const PROGRESS_STEP: u64 = 8 << 20;

/// How close to the pre-copy's start a ctime may be for the entry to count as possibly changed unseen.
pub const RACY: Duration = Duration::from_secs(2);

/// What kind of entry a path held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

/// What the pre-copy saw of one entry before copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: Kind,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
    mode: u32,
}

impl Seen {
    /// Entries neither a folder, a file nor a symlink (sockets, FIFOs, devices) are left out, as archives leave
    /// them out.
    fn of(meta: &fs::Metadata) -> Option<Self> {
        let kind = meta.file_type();
        let kind = if kind.is_dir() {
            Kind::Dir
        } else if kind.is_file() {
            Kind::File
        } else if kind.is_symlink() {
            Kind::Symlink
        } else {
            return None;
        };
        Some(Self {
            kind,
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        })
    }
}

/// A tree's copy, and what its entries looked like when they were copied.
#[derive(Debug)]
pub struct PreCopy {
    from: PathBuf,
    to: PathBuf,
    /// By path relative to the tree (empty: the tree itself); `true` when the entry must be copied again anyway.
    seen: HashMap<PathBuf, (Seen, bool)>,
    /// Bytes of file content copied.
    pub bytes: u64,
}

/// What [`PreCopy::refresh`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Entries copied again or for the first time (files, folders, symlinks).
    pub copied: u64,
    /// Bytes of file content those copies took.
    pub bytes: u64,
    /// Entries removed from the copy because the tree no longer holds them.
    pub removed: u64,
    /// Entries left as the pre-copy took them.
    pub unchanged: u64,
}

/// Copies `from` (a folder, file or symlink) to `to` (which must not exist) while it may still change, remembering
/// what each entry looked like: [`PreCopy::refresh`] later brings the copy up to date. `progress` hears the bytes
/// copied so far, every few MiB. On error the partial copy is left for the caller to remove (it lives in the run's
/// staging folder).
pub fn pre_copy(
    from: &Path,
    to: &Path,
    cancel: &CancellationToken,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PreCopy, ArchiveError> {
    let racy_from = SystemTime::now()
        .checked_sub(RACY)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs() as i64, i64::from(d.subsec_nanos())));
    let mut seen = HashMap::new();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in Entries::new(from, true) {
        if cancel.is_cancelled() {
            return Err(ArchiveError::Cancelled);
        }
        let (path, relative, meta) = entry?;
        let Some(now) = Seen::of(&meta) else { continue };
        let target = join(to, &relative);
        let made = match now.kind {
            Kind::Dir => fs::create_dir(&target).map_err(|e| prepare(&target, e)).map(|()| {
                dirs.push((target.clone(), meta.clone()));
            }),
            Kind::Symlink => copy_symlink(&path, &target, &meta),
            Kind::File => {
                files.push((path, target.clone(), meta.clone()));
                Ok(())
            }
        };
        match made {
            Ok(()) => {}
            // Gone or changed kind since it was listed: copied again by the refresh.
            Err(ArchiveError::ReadSource { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(other) => return Err(other),
        }
        let racy = now.ctime >= racy_from;
        seen.insert(relative, (now, racy));
    }
    let bytes = copy_files(&files, cancel, progress)?;
    set_dir_metadata(dirs.iter().rev().map(|(d, m)| (d.as_path(), m)))?;
    Ok(PreCopy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        seen,
        bytes,
    })
}

impl PreCopy {
    /// Entries the pre-copy took.
    pub fn entries(&self) -> usize {
        self.seen.len()
    }

    /// Brings the copy up to date with the tree, which must no longer change (its services are stopped): copies
    /// what is new or differs from what the pre-copy saw, removes what is gone, and gives folders whose entries
    /// changed their modes and times again.
    pub fn refresh(mut self, cancel: &CancellationToken) -> Result<Refreshed, ArchiveError> {
        let (from, to) = (self.from.clone(), self.to.clone());
        let mut done = Refreshed::default();
        let mut files = Vec::new();
        // Folders whose copy must get its metadata again: changed ones and those whose entries changed.
        let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
        let mut dirs: HashMap<PathBuf, fs::Metadata> = HashMap::new();
        for entry in Entries::new(&from, false) {
            if cancel.is_cancelled() {
                return Err(ArchiveError::Cancelled);
            }
            let (path, relative, meta) = entry?;
            let Some(now) = Seen::of(&meta) else { continue };
            let before = self.seen.remove(&relative);
            let target = join(&to, &relative);
            if now.kind == Kind::Dir {
                dirs.insert(relative.clone(), meta.clone());
            }
            if let Some((was, false)) = &before {
                if *was == now {
                    done.unchanged += 1;
                    continue;
                }
            }
            done.copied += 1;
            touch_parent(&mut touched, &relative);
            if now.kind == Kind::Dir {
                touched.insert(relative.clone());
            }
            // What the copy holds there is of another kind, or a file or link to write anew.
            let keep = before.as_ref().is_some_and(|(was, _)| was.kind == Kind::Dir) && now.kind == Kind::Dir;
            if !keep {
                remove_any(&target).map_err(|e| prepare(&target, e))?;
            }
            match now.kind {
                Kind::Dir if keep => {}
                Kind::Dir => fs::create_dir(&target).map_err(|e| prepare(&target, e))?,
                Kind::Symlink => copy_symlink(&path, &target, &meta)?,
                Kind::File => files.push((path, target, meta)),
            }
        }
        done.bytes = copy_files(&files, cancel, &|_| {})?;
        // What the tree no longer holds, parents before their entries (removing a folder removes what it held).
        let mut gone: Vec<PathBuf> = self.seen.into_keys().collect();
        gone.sort();
        for relative in gone {
            let target = join(&to, &relative);
            match remove_any(&target) {
                // Inside a folder removed before it, or replaced by a file.
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => {}
                other => other.map_err(|e| prepare(&target, e))?,
            }
            done.removed += 1;
            touch_parent(&mut touched, &relative);
        }
        // Deepest first: giving a folder its times must come after every change to its entries.
        let mut again: Vec<(PathBuf, &fs::Metadata)> = touched
            .iter()
            .filter_map(|relative| dirs.get(relative).map(|meta| (join(&to, relative), meta)))
            .collect();
        again.sort_by(|a, b| b.0.cmp(&a.0));
        set_dir_metadata(again.iter().map(|(d, m)| (d.as_path(), *m)))?;
        Ok(done)
    }
}

/// Marks the folder holding `relative` (the tree itself for a top-level entry) as one whose copy changed.
fn touch_parent(touched: &mut BTreeSet<PathBuf>, relative: &Path) {
    if let Some(parent) = relative.parent() {
        touched.insert(parent.to_path_buf());
    }
}

/// `base` joined with `relative` (`base` itself for the empty path).
fn join(base: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(relative)
    }
}

/// The entries of a tree, its root first and every folder before what it holds: (path, path relative to the
/// tree, metadata). Each entry is looked at relative to its open folder (`statx` on the folder's descriptor, as
/// `std::fs::DirEntry::metadata` does), not by its whole path: the refresh, with the services stopped, walks 55,000
/// entries in the time `find` takes. In a `live` walk an entry that vanishes meanwhile is passed over.
struct Entries {
    root: Option<PathBuf>,
    /// Folders still to read: (path, relative path).
    pending: Vec<(PathBuf, PathBuf)>,
    current: Option<(PathBuf, PathBuf, fs::ReadDir)>,
    live: bool,
}

impl Entries {
    fn new(root: &Path, live: bool) -> Self {
        Self {
            root: Some(root.to_path_buf()),
            pending: Vec::new(),
            current: None,
            live,
        }
    }

    fn vanished(&self, e: &io::Error) -> bool {
        self.live && e.kind() == io::ErrorKind::NotFound
    }
}

impl Iterator for Entries {
    type Item = Result<(PathBuf, PathBuf, fs::Metadata), ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(root) = self.root.take() {
            return Some(match fs::symlink_metadata(&root) {
                Ok(meta) => {
                    if meta.is_dir() {
                        self.pending.push((root.clone(), PathBuf::new()));
                    }
                    Ok((root, PathBuf::new(), meta))
                }
                Err(e) => Err(read_error(&root, e)),
            });
        }
        loop {
            if self.current.is_none() {
                let (path, relative) = self.pending.pop()?;
                match fs::read_dir(&path) {
                    Ok(dir) => self.current = Some((path, relative, dir)),
                    Err(e) if self.vanished(&e) => continue,
                    Err(e) => return Some(Err(read_error(&path, e))),
                }
            }
            let (dir, relative, entries) = self.current.as_mut().expect("opened above");
            let entry = match entries.next() {
                None => {
                    self.current = None;
                    continue;
                }
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    let dir = dir.clone();
                    self.current = None;
                    return Some(Err(read_error(&dir, e)));
                }
            };
            let (path, relative) = (entry.path(), relative.join(entry.file_name()));
            match entry.metadata() {
                Ok(meta) => {
                    if meta.is_dir() {
                        self.pending.push((path.clone(), relative.clone()));
                    }
                    return Some(Ok((path, relative, meta)));
                }
                Err(e) if self.vanished(&e) => continue,
                Err(e) => return Some(Err(read_error(&path, e))),
            }
        }
    }
}

fn read_error(path: &Path, source: io::Error) -> ArchiveError {
    ArchiveError::ReadSource {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies each (source, target, source metadata) on [`COPY_THREADS`] threads; returns the bytes copied. A file
/// that vanished meanwhile is skipped (a refresh finds it gone).
fn copy_files(
    files: &[(PathBuf, PathBuf, fs::Metadata)],
    cancel: &CancellationToken,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, ArchiveError> {
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let reported = AtomicU64::new(0);
    let failure: Mutex<Option<ArchiveError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..COPY_THREADS.min(files.len()) {
            scope.spawn(|| loop {
                if cancel.is_cancelled() {
                    failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(ArchiveError::Cancelled);
                }
                if failure.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                    return;
                }
                let Some((source, target, meta)) = files.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                match copy_file(source, target, meta) {
                    Ok(copied) => {
                        let total = bytes.fetch_add(copied, Ordering::Relaxed) + copied;
                        let last = reported.load(Ordering::Relaxed);
                        if total - last.min(total) >= PROGRESS_STEP
                            && reported
                                .compare_exchange(last, total, Ordering::Relaxed, Ordering::Relaxed)
                                .is_ok()
                        {
                            progress(total);
                        }
                    }
                    Err(error) => {
                        failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
                    }
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(error) => Err(error),
        None => Ok(bytes.into_inner()),
    }
}

/// Copies one file (cloned where the file system can, else by the kernel), with the owner, mode and times of
/// `meta`; one that vanished since it was listed is skipped.
fn copy_file(source: &Path, target: &Path, meta: &fs::Metadata) -> Result<u64, ArchiveError> {
    match File::open(source) {
        Ok(mut from) => write_copy(&mut from, target, meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(read_error(source, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicBool;
    use walkdir::WalkDir;

    /// One entry: its path, kind, mode, owner, mtime (folders and files), and content or link target.
    type Described = (PathBuf, String, u32, (u32, u32), Option<(i64, i64)>, Vec<u8>);

    /// Every entry under `root`, described.
    fn manifest(root: &Path) -> Vec<Described> {
        let mut out: Vec<_> = WalkDir::new(root)
            .into_iter()
            .map(|e| e.unwrap())
            .map(|e| {
                let meta = e.metadata().unwrap();
                let (kind, content, mtime) = if meta.is_dir() {
                    ("dir", Vec::new(), Some((meta.mtime(), meta.mtime_nsec())))
                } else if meta.file_type().is_symlink() {
                    let target = fs::read_link(e.path()).unwrap();
                    ("symlink", target.into_os_string().into_encoded_bytes(), None)
                } else {
                    (
                        "file",
                        fs::read(e.path()).unwrap(),
                        Some((meta.mtime(), meta.mtime_nsec())),
                    )
                };
                let relative = e.path().strip_prefix(root).unwrap().to_path_buf();
                (
                    relative,
                    kind.to_string(),
                    meta.mode(),
                    (meta.uid(), meta.gid()),
                    mtime,
                    content,
                )
            })
            .collect();
        out.sort();
        out
    }

    fn tree(dir: &Path) -> PathBuf {
        let from = dir.join("from");
        for i in 0..300 {
            let sub = from.join(format!("d{}", i % 10));
            fs::create_dir_all(&sub).unwrap();
            fs::write(sub.join(format!("f{i}")), format!("file {i} ").repeat(i % 40 + 1)).unwrap();
        }
        fs::write(from.join("big"), vec![3u8; 3 << 20]).unwrap();
        std::os::unix::fs::symlink("d1/f1", from.join("link")).unwrap();
        from
    }

    #[test]
    fn a_refreshed_copy_equals_the_tree_as_it_stood_when_its_writer_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let from = tree(dir.path());
        let to = dir.path().join("to");
        let stop = AtomicBool::new(false);
        let copy = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                // Rewrites, grows, deletes, recreates and renames files, makes folders and links, until stopped.
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) || round < 50 {
                    let i = round % 300;
                    let file = from.join(format!("d{}/f{i}", i % 10));
                    match round % 5 {
                        0 => fs::write(&file, format!("rewritten {round}")).unwrap(),
                        1 => drop(fs::remove_file(&file)),
                        2 => fs::create_dir_all(from.join(format!("new{}/deeper", round % 7))).unwrap(),
                        3 => drop(fs::rename(from.join(format!("d2/f{}", (i + 2) % 300)), &file)),
                        _ => {
                            let link = from.join(format!("d3/link{}", round % 11));
                            let _ = fs::remove_file(&link);
                            std::os::unix::fs::symlink(format!("target{round}"), link).unwrap();
                        }
                    }
                    if round.is_multiple_of(97) {
                        let mut big = fs::read(from.join("big")).unwrap();
                        let at = (round as usize * 4099) % big.len();
                        big[at] ^= 0xff;
                        fs::write(from.join("big"), big).unwrap();
                    }
                    round += 1;
                }
            });
            let copy = pre_copy(&from, &to, &CancellationToken::new(), &|_| {}).unwrap();
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap();
            copy
        });
        // The writer is stopped: the tree as it stands now is what the copy must hold.
        let refreshed = copy.refresh(&CancellationToken::new()).unwrap();

        assert_eq!(manifest(&to), manifest(&from));
        assert!(
            refreshed.copied > 0,
            "the writer's changes were copied again: {refreshed:?}"
        );
    }

    #[test]
    fn a_rewrite_that_keeps_size_and_mtime_is_found_by_its_ctime() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir(&from).unwrap();
        fs::write(from.join("settings"), b"port = 80").unwrap();
        // Older than the racy window, so only the ctime can tell.
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
        utimensat(CWD, from.join("settings"), &old, AtFlags::empty()).unwrap();
        std::thread::sleep(RACY + Duration::from_millis(100));
        let to = dir.path().join("to");
        let copy = pre_copy(&from, &to, &CancellationToken::new(), &|_| {}).unwrap();

        fs::write(from.join("settings"), b"port = 81").unwrap();
        utimensat(CWD, from.join("settings"), &old, AtFlags::empty()).unwrap();
        let refreshed = copy.refresh(&CancellationToken::new()).unwrap();

        assert_eq!(fs::read(to.join("settings")).unwrap(), b"port = 81");
        assert_eq!(
            (refreshed.copied, refreshed.unchanged),
            (1, 1),
            "the file, not its folder: {refreshed:?}"
        );
    }

    #[test]
    fn an_unchanged_tree_is_left_as_copied_and_entries_that_change_kind_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("was-dir/inner")).unwrap();
        fs::write(from.join("was-dir/inner/file"), b"x").unwrap();
        fs::write(from.join("was-file"), b"y").unwrap();
        fs::set_permissions(from.join("was-file"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::lchown(from.join("was-file"), Some(1234), Some(1235)).unwrap();
        std::thread::sleep(RACY + Duration::from_millis(100));
        let to = dir.path().join("to");

        let unchanged = pre_copy(&from, &to, &CancellationToken::new(), &|_| {})
            .unwrap()
            .refresh(&CancellationToken::new())
            .unwrap();
        assert_eq!(manifest(&to), manifest(&from), "owners and modes are copied");
        assert_eq!((unchanged.copied, unchanged.removed, unchanged.unchanged), (0, 0, 5));

        let copy = pre_copy(&from, &dir.path().join("to2"), &CancellationToken::new(), &|_| {}).unwrap();
        fs::remove_dir_all(from.join("was-dir")).unwrap();
        fs::write(from.join("was-dir"), b"now a file").unwrap();
        fs::remove_file(from.join("was-file")).unwrap();
        fs::create_dir(from.join("was-file")).unwrap();
        std::os::unix::fs::symlink("../was-dir", from.join("was-file/link")).unwrap();
        let changed = copy.refresh(&CancellationToken::new()).unwrap();

        assert_eq!(manifest(&dir.path().join("to2")), manifest(&from));
        assert_eq!(changed.removed, 2, "the old folder's entries: {changed:?}");
    }

    #[test]
    fn a_tree_that_is_one_file_is_refreshed_as_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("app.conf");
        fs::write(&from, b"a = 1").unwrap();
        let to = dir.path().join("copy.conf");
        let copy = pre_copy(&from, &to, &CancellationToken::new(), &|_| {}).unwrap();
        fs::write(&from, b"a = 2, longer").unwrap();

        copy.refresh(&CancellationToken::new()).unwrap();

        assert_eq!(fs::read(&to).unwrap(), b"a = 2, longer");
    }
}
