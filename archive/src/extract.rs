//! Safe extraction into staging folders: one streaming pass that writes the entries under each archive prefix into
//! a new folder of its own, refuses anything that could land outside it (absolute paths, `..`, hard links that lead
//! out, writing through a symlink, device nodes and FIFOs) and leaves nothing behind on failure. The same rules run
//! without writing anything as a dry run (`check_extraction`), which is how a verification knows that a restore
//! would accept the archive.
//!
//! Every file-system call works relative to a folder descriptor opened with `O_NOFOLLOW`, starting from the staging
//! folder this call created, and every entry is created with "must not exist" semantics, so no symlink is ever
//! followed and nothing is ever overwritten. A symlink is therefore restored as the link it was, whatever it points
//! to (an absolute path, up and out of its folder): its target is data, not a path anything is written through.
//! Folder modes and mtimes are applied last, deepest first, so creating their contents neither fails on a read-only
//! folder nor changes the mtime they get. When everything is written the staging file systems are synced, so a
//! caller that swaps the staging folders into place finds them on disk.
//!
//! Permissions: the rwx and sticky bits are restored exactly (the umask does not apply). Running as root, the
//! setuid/setgid bits and the numeric owner and group are restored too; as any other user, ownership cannot be
//! given away and setuid/setgid bits are dropped, so a restored program never runs with the restoring user's rights.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, UTIME_OMIT};
use rustix::io::Errno;
use tar::EntryType;
use tokio_util::sync::CancellationToken;

use super::reader::{bad, split_path, stream_error, visit_archive, ArchiveContents, EntryHead};
use super::writeback::start_writeback;
use crate::ArchiveError;

/// Where the entries under one archive path go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractPlan {
    /// A relative path inside the archive (`config`, `volumes/myapp_db`); empty for the whole archive.
    pub archive_prefix: PathBuf,
    /// The folder (or file, when the prefix names a file) to create; it must not exist and its parent must.
    pub staging: PathBuf,
}

/// What an extraction wrote (or, for a dry run, would have written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Entries written into the staging folders (folders, files, symlinks, hard links).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// The whole archive as the pass read it (SHA-256, size, counts of every entry, extracted or not): what a
    /// verification compares with the catalog record, without a second pass.
    pub archive: ArchiveContents,
}

/// Extracts the entries of `archive` under each plan's prefix into its staging folder, in one pass that also
/// checks the archive as `read_archive` does. Entries under no prefix are read through and skipped. Any refused
/// entry, damaged archive, I/O error or cancellation removes every staging folder this call created (and nothing
/// else) before the error is returned: on error, nothing was extracted.
pub fn extract(
    archive: &Path,
    plans: &[ExtractPlan],
    cancel: &CancellationToken,
) -> Result<ExtractSummary, ArchiveError> {
    extract_reporting(archive, plans, cancel, &|_| {})
}

/// [`extract`], reporting the archive's bytes read to `progress` as it goes (the total is the archive's size).
pub fn extract_reporting(
    archive: &Path,
    plans: &[ExtractPlan],
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<ExtractSummary, ArchiveError> {
    let mut targets = prepare(plans)?;
    let result = pass(archive, &mut targets, cancel, progress);
    if result.is_err() {
        for target in &mut targets {
            target.store.discard();
        }
    }
    result
}

/// A dry run of `extract` for the trees under `prefixes`: the same pass and the same rules, with the staging
/// folders modelled in memory instead of written, so it fails exactly where an extraction would (file-system errors
/// aside) and writes nothing. Memory grows with the number of entries under the prefixes (one name each), never
/// with their data, which is read through. Reports the archive's bytes read to `progress`, as `read_archive` does.
pub fn check_extraction(
    archive: &Path,
    prefixes: &[PathBuf],
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<ExtractSummary, ArchiveError> {
    let mut targets: Vec<Target<InMemory>> = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        let target = Target::new(prefix, InMemory::default())?;
        target.check_disjoint(&targets)?;
        targets.push(target);
    }
    pass(archive, &mut targets, cancel, progress)
}

/// The pass both share: every entry goes to the target whose prefix holds it, then every target is finished.
fn pass<S: Store>(
    archive: &Path,
    targets: &mut [Target<S>],
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<ExtractSummary, ArchiveError> {
    let as_root = rustix::process::geteuid().is_root();
    let mut ctx = Ctx {
        archive,
        as_root,
        keep_mode: if as_root { 0o7777 } else { 0o1777 },
        buf: vec![0; 256 << 10],
    };
    let (mut entries, mut files, mut bytes) = (0, 0, 0);
    let contents = visit_archive(
        archive,
        cancel,
        progress,
        &mut |head: &EntryHead, data: &mut dyn Read| {
            let parts = split_path(&head.path).map_err(|reason| bad(archive, reason))?;
            let Some(target) = targets.iter_mut().find(|t| t.holds(&parts)) else {
                return Ok(());
            };
            let rel = &parts[target.prefix.len()..];
            target.place(&mut ctx, head, rel, data)?;
            entries += 1;
            if head.is_file() {
                files += 1;
                bytes += head.size;
            }
            Ok(())
        },
    )?;
    for target in targets.iter_mut() {
        target.finish(&ctx)?;
    }
    Ok(ExtractSummary {
        entries,
        files,
        bytes,
        archive: contents,
    })
}

/// Checks the plans before anything is read: prefixes inside the archive and disjoint, staging paths new and
/// distinct, their parents existing folders.
fn prepare(plans: &[ExtractPlan]) -> Result<Vec<Target<OnDisk>>, ArchiveError> {
    let mut targets: Vec<Target<OnDisk>> = Vec::with_capacity(plans.len());
    for plan in plans {
        let staging = plan.staging.clone();
        let target = Target::new(&plan.archive_prefix, OnDisk::new(staging.clone()))?;
        let prepare_err = |path: &Path, kind: io::ErrorKind, what: &str| ArchiveError::Prepare {
            path: path.to_path_buf(),
            source: io::Error::new(kind, what.to_string()),
        };
        match staging.symlink_metadata() {
            Ok(_) => {
                return Err(prepare_err(
                    &staging,
                    io::ErrorKind::AlreadyExists,
                    "already exists; extraction only creates new folders",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ArchiveError::Prepare { path: staging, source }),
        }
        let parent = match staging.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => {
                return Err(prepare_err(
                    &staging,
                    io::ErrorKind::InvalidInput,
                    "has no parent folder",
                ))
            }
        };
        if !parent.is_dir() {
            return Err(prepare_err(
                parent,
                io::ErrorKind::NotFound,
                "is not an existing folder",
            ));
        }
        if targets.iter().any(|other| other.store.staging == staging) {
            return Err(ArchiveError::Misconfigured(format!(
                "two archive prefixes extract into the same folder {}",
                staging.display()
            )));
        }
        target.check_disjoint(&targets)?;
        targets.push(target);
    }
    Ok(targets)
}

/// What every entry of the pass shares.
struct Ctx<'a> {
    archive: &'a Path,
    as_root: bool,
    /// Mode bits restored: all of them as root, all but setuid/setgid otherwise.
    keep_mode: u32,
    /// Copy buffer for file content.
    buf: Vec<u8>,
}

/// Metadata applied to a created entry.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl From<&EntryHead> for Meta {
    fn from(head: &EntryHead) -> Self {
        Self {
            mode: head.mode,
            uid: head.uid,
            gid: head.gid,
            mtime: head.mtime,
        }
    }
}

/// What the staging path is so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// Nothing yet: it is created by the first entry under the prefix.
    Absent,
    /// A folder.
    Dir,
    /// A file (the prefix names a file).
    File,
}

/// Whether a store created a name, or found it taken (with what took it, when the store can tell).
enum Made {
    Created,
    Exists(Option<FileType>),
}

/// Why a folder inside the staging path could not be reached; the index is the component concerned.
enum WalkError {
    Symlink(usize),
    NotDir(usize),
    Missing(usize),
    /// The file system failed (the store names the path).
    Io(ArchiveError),
}

/// Where the entries a target accepts go: the staging folder on disk, or a model of it. The rules (what is refused,
/// and why) are the target's and the same for every store; a store only creates names, tells whether one is taken
/// and, without following a symlink, what it is. Paths are relative to the staging path.
trait Store {
    /// Creates the staging path as a folder.
    fn make_root_dir(&mut self) -> Result<(), ArchiveError>;
    /// Creates the staging path as a file with the entry's content.
    fn make_root_file(&mut self, ctx: &mut Ctx<'_>, head: &EntryHead, data: &mut dyn Read) -> Result<(), ArchiveError>;
    /// Reaches the folder `parts` (creating missing folders when `create`) and keeps it as the one the next `make_*`
    /// call creates a name in. A symlink or a non-folder on the way is an error, never followed.
    fn enter(&mut self, parts: &[&[u8]], create: bool) -> Result<(), WalkError>;
    /// In the folder last entered: creates folder `name`.
    fn make_dir(&mut self, name: &[u8]) -> Result<Made, ArchiveError>;
    /// In the folder last entered: creates file `name` with the entry's content (`rel` names it for messages).
    fn make_file(
        &mut self,
        ctx: &mut Ctx<'_>,
        rel: &[&[u8]],
        head: &EntryHead,
        data: &mut dyn Read,
    ) -> Result<Made, ArchiveError>;
    /// In the folder last entered: creates symlink `name` -> `target`.
    fn make_symlink(&mut self, ctx: &Ctx<'_>, rel: &[&[u8]], target: &[u8], meta: Meta) -> Result<Made, ArchiveError>;
    /// In the folder last entered: creates `name` as a hard link to the regular file `target` (which `is_file` found).
    fn make_hardlink(&mut self, rel: &[&[u8]], target: &[&[u8]]) -> Result<Made, ArchiveError>;
    /// Whether `rel` is a regular file reached through folders only.
    fn is_file(&mut self, rel: &[&[u8]]) -> Result<bool, ArchiveError>;
    /// Notes the metadata folder `rel` gets once the pass is over.
    fn folder_meta(&mut self, rel: &[&[u8]], meta: Meta);
    /// After the pass: applies what was noted and makes the data durable.
    fn finish(&mut self, ctx: &Ctx<'_>) -> Result<(), ArchiveError>;
    /// Removes what the store created, if anything.
    fn discard(&mut self);
}

/// One prefix during the pass, and the rules every entry under it must follow.
struct Target<S> {
    prefix: Vec<Vec<u8>>,
    /// The prefix as the caller wrote it, for messages.
    shown: String,
    root: Root,
    store: S,
}

impl<S: Store> Target<S> {
    fn new(prefix: &Path, store: S) -> Result<Self, ArchiveError> {
        let shown = prefix.display().to_string();
        let prefix = match split_path(prefix.as_os_str().as_bytes()) {
            Ok(parts) => parts.into_iter().map(<[u8]>::to_vec).collect(),
            Err(_) => {
                return Err(ArchiveError::Misconfigured(format!(
                    "archive prefix `{shown}` must be a relative path without `..`"
                )))
            }
        };
        Ok(Self {
            prefix,
            shown,
            root: Root::Absent,
            store,
        })
    }

    /// Refuses a prefix that overlaps one of `others`: an entry would belong to both.
    fn check_disjoint(&self, others: &[Target<S>]) -> Result<(), ArchiveError> {
        for other in others {
            let n = self.prefix.len().min(other.prefix.len());
            if self.prefix[..n] == other.prefix[..n] {
                return Err(ArchiveError::Misconfigured(format!(
                    "archive prefixes `{}` and `{}` overlap: an entry would belong to both",
                    other.shown, self.shown
                )));
            }
        }
        Ok(())
    }

    fn holds(&self, parts: &[&[u8]]) -> bool {
        parts.len() >= self.prefix.len() && self.prefix.iter().zip(parts).all(|(a, b)| a.as_slice() == *b)
    }

    /// Places the entry `rel` (relative to the staging path) described by `head`.
    fn place(
        &mut self,
        ctx: &mut Ctx<'_>,
        head: &EntryHead,
        rel: &[&[u8]],
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let archive = ctx.archive;
        let refuse = |why: &str| bad(archive, format!("entry `{}` {why}", head.display()));
        match head.kind {
            EntryType::Char => return Err(refuse("is a character device; device nodes are not restored")),
            EntryType::Block => return Err(refuse("is a block device; device nodes are not restored")),
            EntryType::Fifo => return Err(refuse("is a FIFO; FIFOs are not restored")),
            EntryType::Directory
            | EntryType::Regular
            | EntryType::Continuous
            | EntryType::Symlink
            | EntryType::Link => {}
            other => {
                return Err(refuse(&format!(
                    "has the unsupported type `{}`",
                    other.as_byte() as char
                )))
            }
        }
        if rel.is_empty() {
            return self.place_root(ctx, head, data);
        }
        self.ensure_dir(archive, head)?;
        let name = rel[rel.len() - 1];
        match head.kind {
            EntryType::Directory => {
                self.enter_parent(archive, head, rel)?;
                match self.store.make_dir(name)? {
                    Made::Created | Made::Exists(Some(FileType::Directory)) => {}
                    Made::Exists(_) => return Err(refuse("is a folder where the archive already put something else")),
                }
                self.store.folder_meta(rel, Meta::from(head));
            }
            EntryType::Regular | EntryType::Continuous => {
                self.enter_parent(archive, head, rel)?;
                if let Made::Exists(_) = self.store.make_file(ctx, rel, head, data)? {
                    return Err(refuse("appears twice in the archive"));
                }
            }
            EntryType::Symlink => {
                let target = head.link.as_deref().unwrap_or_default();
                check_symlink_target(target).map_err(|why| {
                    bad(
                        archive,
                        format!(
                            "symlink `{}` -> `{}` {why}",
                            head.display(),
                            String::from_utf8_lossy(target)
                        ),
                    )
                })?;
                self.enter_parent(archive, head, rel)?;
                if let Made::Exists(_) = self.store.make_symlink(ctx, rel, target, Meta::from(head))? {
                    return Err(refuse("appears twice in the archive"));
                }
            }
            EntryType::Link => self.place_hardlink(archive, head, rel)?,
            _ => unreachable!("refused above"),
        }
        Ok(())
    }

    /// The entry equal to the prefix: the staging folder's own metadata, or the staging file itself.
    fn place_root(&mut self, ctx: &mut Ctx<'_>, head: &EntryHead, data: &mut dyn Read) -> Result<(), ArchiveError> {
        match (head.kind, self.root) {
            (EntryType::Directory, Root::Absent | Root::Dir) => {
                self.ensure_dir(ctx.archive, head)?;
                self.store.folder_meta(&[], Meta::from(head));
                Ok(())
            }
            (EntryType::Regular | EntryType::Continuous, Root::Absent) => {
                self.store.make_root_file(ctx, head, data)?;
                self.root = Root::File;
                Ok(())
            }
            (EntryType::Regular | EntryType::Continuous, Root::Dir) => Err(bad(
                ctx.archive,
                format!(
                    "entry `{}` is a file, but the archive put entries inside it before",
                    head.display()
                ),
            )),
            (_, Root::File) => Err(bad(
                ctx.archive,
                format!("entry `{}` appears twice in the archive", head.display()),
            )),
            _ => Err(bad(
                ctx.archive,
                format!(
                    "entry `{}` is what `{}` names, so it must be a folder or a file",
                    head.display(),
                    self.shown
                ),
            )),
        }
    }

    /// A hard link must name a regular file extracted before it under the same prefix, reached through folders only
    /// (never through a symlink): so it can only ever share data the extraction itself wrote.
    fn place_hardlink(&mut self, archive: &Path, head: &EntryHead, rel: &[&[u8]]) -> Result<(), ArchiveError> {
        let target = head.link.as_deref().unwrap_or_default();
        let refuse = |why: &str| {
            bad(
                archive,
                format!(
                    "hard link `{}` -> `{}` {why}",
                    head.display(),
                    String::from_utf8_lossy(target)
                ),
            )
        };
        let parts = split_path(target).map_err(|_| refuse("points outside its folder"))?;
        if !self.holds(&parts) || parts.len() == self.prefix.len() {
            return Err(refuse("points outside its folder"));
        }
        let target_rel = &parts[self.prefix.len()..];
        if !self.store.is_file(target_rel)? {
            return Err(refuse("points to no file extracted before it"));
        }
        self.enter_parent(archive, head, rel)?;
        match self.store.make_hardlink(rel, target_rel)? {
            Made::Created => Ok(()),
            Made::Exists(_) => Err(bad(
                archive,
                format!("entry `{}` appears twice in the archive", head.display()),
            )),
        }
    }

    /// Creates the staging folder if this is the first entry under the prefix.
    fn ensure_dir(&mut self, archive: &Path, head: &EntryHead) -> Result<(), ArchiveError> {
        match self.root {
            Root::Dir => Ok(()),
            Root::File => Err(bad(
                archive,
                format!("entry `{}` is inside `{}`, which is a file", head.display(), self.shown),
            )),
            Root::Absent => {
                self.store.make_root_dir()?;
                self.root = Root::Dir;
                Ok(())
            }
        }
    }

    /// Enters the folder that holds `rel`, created where missing, never through a symlink.
    fn enter_parent(&mut self, archive: &Path, head: &EntryHead, rel: &[&[u8]]) -> Result<(), ArchiveError> {
        let archive_path = |i: usize| {
            let parts: Vec<&[u8]> = self
                .prefix
                .iter()
                .map(Vec::as_slice)
                .chain(rel[..=i].iter().copied())
                .collect();
            String::from_utf8_lossy(&parts.join(&b'/')).into_owned()
        };
        match self.store.enter(&rel[..rel.len() - 1], true) {
            Ok(()) => Ok(()),
            Err(WalkError::Symlink(i)) => Err(bad(
                archive,
                format!(
                    "entry `{}` would be written through symlink `{}`",
                    head.display(),
                    archive_path(i)
                ),
            )),
            Err(WalkError::NotDir(i) | WalkError::Missing(i)) => Err(bad(
                archive,
                format!(
                    "entry `{}` needs `{}` to be a folder, and it is not",
                    head.display(),
                    archive_path(i)
                ),
            )),
            Err(WalkError::Io(error)) => Err(error),
        }
    }

    /// After the pass: a prefix must have held something; then the store finishes.
    fn finish(&mut self, ctx: &Ctx<'_>) -> Result<(), ArchiveError> {
        if self.root == Root::Absent {
            return Err(bad(
                ctx.archive,
                format!("holds nothing under `{}` to extract", self.shown),
            ));
        }
        self.store.finish(ctx)
    }
}

/// The staging path on disk as created so far.
enum Created {
    Nothing,
    /// A folder this call created, opened without following symlinks.
    Dir(OwnedFd),
    /// A file this call created (the prefix names a file).
    File(File),
}

/// The staging folder on disk.
struct OnDisk {
    staging: PathBuf,
    created: Created,
    /// Folders whose metadata is applied at the end: depth, path relative to the staging folder (`/`-joined), metadata.
    dirs: Vec<(usize, Vec<u8>, Meta)>,
    /// A folder entered before, kept open (entries come folder by folder), and its path.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    /// Whether the folder last entered is the staging folder itself rather than the cached one.
    at_root: bool,
}

impl OnDisk {
    fn new(staging: PathBuf) -> Self {
        Self {
            staging,
            created: Created::Nothing,
            dirs: Vec::new(),
            cache: None,
            at_root: true,
        }
    }

    fn root(&self) -> BorrowedFd<'_> {
        match &self.created {
            Created::Dir(fd) => fd.as_fd(),
            _ => unreachable!("the target made the staging folder before"),
        }
    }

    /// The folder last entered.
    fn dir(&self) -> BorrowedFd<'_> {
        match &self.cache {
            Some((_, fd)) if !self.at_root => fd.as_fd(),
            _ => self.root(),
        }
    }

    fn staging_path(&self, rel: &[&[u8]]) -> PathBuf {
        let mut path = self.staging.clone();
        path.extend(rel.iter().map(|p| OsStr::from_bytes(p)));
        path
    }

    /// A failure to create `name` in the folder last entered.
    fn prepare_error(&self, name: &OsStr, error: Errno) -> ArchiveError {
        let mut path = match &self.cache {
            Some((parts, _)) if !self.at_root => {
                self.staging_path(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
            }
            _ => self.staging.clone(),
        };
        path.push(name);
        ArchiveError::Prepare {
            path,
            source: error.into(),
        }
    }

    fn walk(&self, parts: &[&[u8]], create: bool) -> Result<OwnedFd, WalkError> {
        walk(self.root(), parts, create).map_err(|e| match e {
            Walked::Blocked(error) => error,
            Walked::Io(i, source) => WalkError::Io(ArchiveError::Prepare {
                path: self.staging_path(&parts[..=i]),
                source,
            }),
        })
    }
}

impl Store for OnDisk {
    fn make_root_dir(&mut self) -> Result<(), ArchiveError> {
        let staging_err = |source| ArchiveError::Prepare {
            path: self.staging.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.staging)
            .map_err(staging_err)?;
        let opened = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&self.staging);
        match opened {
            // From here on the folder is ours, and removed on failure.
            Ok(dir) => {
                self.created = Created::Dir(dir.into());
                Ok(())
            }
            Err(source) => {
                let _ = std::fs::remove_dir(&self.staging);
                Err(staging_err(source))
            }
        }
    }

    fn make_root_file(&mut self, ctx: &mut Ctx<'_>, head: &EntryHead, data: &mut dyn Read) -> Result<(), ArchiveError> {
        let staging_err = |source| ArchiveError::Prepare {
            path: self.staging.clone(),
            source,
        };
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.staging)
            .map_err(staging_err)?;
        // From here on the file is ours, and removed on failure.
        self.created = Created::File(file);
        let Created::File(file) = &mut self.created else {
            unreachable!("just set");
        };
        write_content(ctx, head, data, Some((file, &self.staging)))?;
        set_meta(ctx, file.as_fd(), Meta::from(head)).map_err(staging_err)
    }

    fn enter(&mut self, parts: &[&[u8]], create: bool) -> Result<(), WalkError> {
        self.at_root = parts.is_empty();
        if self.at_root {
            return Ok(());
        }
        let cached = self
            .cache
            .as_ref()
            .is_some_and(|(path, _)| path.len() == parts.len() && path.iter().zip(parts).all(|(a, b)| a == b));
        if !cached {
            let fd = self.walk(parts, create)?;
            self.cache = Some((parts.iter().map(|p| p.to_vec()).collect(), fd));
        }
        Ok(())
    }

    fn make_dir(&mut self, name: &[u8]) -> Result<Made, ArchiveError> {
        let (dir, name) = (self.dir(), OsStr::from_bytes(name));
        match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => Ok(Made::Created),
            Err(Errno::EXIST) => Ok(Made::Exists(kind_at(dir, name))),
            Err(e) => Err(self.prepare_error(name, e)),
        }
    }

    fn make_file(
        &mut self,
        ctx: &mut Ctx<'_>,
        rel: &[&[u8]],
        head: &EntryHead,
        data: &mut dyn Read,
    ) -> Result<Made, ArchiveError> {
        let (dir, name) = (self.dir(), OsStr::from_bytes(rel[rel.len() - 1]));
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => return Ok(Made::Exists(None)),
            Err(e) => return Err(self.prepare_error(name, e)),
        };
        let dest = self.staging_path(rel);
        let mut file = File::from(fd);
        write_content(ctx, head, data, Some((&mut file, &dest)))?;
        set_meta(ctx, file.as_fd(), Meta::from(head)).map_err(|source| ArchiveError::Prepare { path: dest, source })?;
        Ok(Made::Created)
    }

    fn make_symlink(&mut self, ctx: &Ctx<'_>, rel: &[&[u8]], target: &[u8], meta: Meta) -> Result<Made, ArchiveError> {
        let (dir, name) = (self.dir(), OsStr::from_bytes(rel[rel.len() - 1]));
        match rustix::fs::symlinkat(OsStr::from_bytes(target), dir, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Ok(Made::Exists(None)),
            Err(e) => return Err(self.prepare_error(name, e)),
        }
        set_symlink_meta(ctx, dir, name, meta).map_err(|source| ArchiveError::Prepare {
            path: self.staging_path(rel),
            source,
        })?;
        Ok(Made::Created)
    }

    fn make_hardlink(&mut self, rel: &[&[u8]], target: &[&[u8]]) -> Result<Made, ArchiveError> {
        let (target_parent, target_name) = target.split_at(target.len() - 1);
        let target_dir = match self.walk(target_parent, false) {
            Ok(fd) => fd,
            Err(WalkError::Io(error)) => return Err(error),
            Err(_) => {
                return Err(ArchiveError::Prepare {
                    path: self.staging_path(target),
                    source: io::Error::other("is no longer reachable"),
                })
            }
        };
        let (dir, name) = (self.dir(), OsStr::from_bytes(rel[rel.len() - 1]));
        // Without AT_SYMLINK_FOLLOW: the link is made to the name itself, which `is_file` found a regular file.
        match rustix::fs::linkat(
            target_dir,
            OsStr::from_bytes(target_name[0]),
            dir,
            name,
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(Made::Created),
            Err(Errno::EXIST) => Ok(Made::Exists(None)),
            Err(e) => Err(ArchiveError::Prepare {
                path: self.staging_path(rel),
                source: e.into(),
            }),
        }
    }

    fn is_file(&mut self, rel: &[&[u8]]) -> Result<bool, ArchiveError> {
        let (parent, name) = rel.split_at(rel.len() - 1);
        match self.walk(parent, false) {
            Ok(dir) => Ok(kind_at(dir.as_fd(), OsStr::from_bytes(name[0])) == Some(FileType::RegularFile)),
            Err(WalkError::Io(error)) => Err(error),
            Err(_) => Ok(false),
        }
    }

    fn folder_meta(&mut self, rel: &[&[u8]], meta: Meta) {
        self.dirs.push((rel.len(), rel.join(&b'/'), meta));
    }

    /// Folder metadata (deepest first), then the data to disk.
    fn finish(&mut self, ctx: &Ctx<'_>) -> Result<(), ArchiveError> {
        self.cache = None;
        let staging_err = |path: PathBuf| move |source: io::Error| ArchiveError::Prepare { path, source };
        let root = match &self.created {
            Created::Nothing => unreachable!("the target checked that something was extracted"),
            Created::File(fd) => {
                return rustix::fs::syncfs(fd).map_err(|e| staging_err(self.staging.clone())(e.into()))
            }
            Created::Dir(fd) => fd,
        };
        // Deepest first: opening a folder needs its parents still open to us (not yet given a restrictive mode).
        self.dirs.sort_by_key(|(depth, _, _)| std::cmp::Reverse(*depth));
        for (_, joined, meta) in &self.dirs {
            let parts: Vec<&[u8]> = joined.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
            let path = self.staging_path(&parts);
            let fd = match walk(root.as_fd(), &parts, false) {
                Ok(fd) => fd,
                Err(Walked::Io(_, e)) => return Err(staging_err(path)(e)),
                Err(Walked::Blocked(_)) => return Err(staging_err(path)(io::Error::other("is no longer a folder"))),
            };
            set_meta(ctx, fd.as_fd(), *meta).map_err(staging_err(path))?;
        }
        rustix::fs::syncfs(root).map_err(|e| staging_err(self.staging.clone())(e.into()))
    }

    fn discard(&mut self) {
        self.cache = None;
        let result = match std::mem::replace(&mut self.created, Created::Nothing) {
            Created::Nothing => return,
            Created::Dir(fd) => {
                drop(fd);
                remove_tree(&self.staging)
            }
            Created::File(fd) => {
                drop(fd);
                std::fs::remove_file(&self.staging)
            }
        };
        if let Err(error) = result {
            tracing::warn!(staging = %self.staging.display(), %error, "cannot remove the staging folder of a failed extraction");
        }
    }
}

/// The staging folder of a dry run: what the extraction would have created, as a tree of names in memory (no data).
struct InMemory {
    /// Folder `i`'s entries by name; folder 0 is the staging folder.
    folders: Vec<HashMap<Box<[u8]>, Node>>,
    /// The folder last entered.
    current: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// A folder, and its index in `folders`.
    Dir(usize),
    File,
    Symlink,
}

impl Node {
    fn kind(self) -> FileType {
        match self {
            Node::Dir(_) => FileType::Directory,
            Node::File => FileType::RegularFile,
            Node::Symlink => FileType::Symlink,
        }
    }
}

impl Default for InMemory {
    fn default() -> Self {
        Self {
            folders: vec![HashMap::new()],
            current: 0,
        }
    }
}

impl InMemory {
    /// The folder `parts` below the staging folder, as `walk` would find it on disk.
    fn walk(&mut self, parts: &[&[u8]], create: bool) -> Result<usize, WalkError> {
        let mut current = 0;
        for (i, part) in parts.iter().enumerate() {
            current = match self.folders[current].get(*part) {
                Some(Node::Dir(folder)) => *folder,
                Some(Node::Symlink) => return Err(WalkError::Symlink(i)),
                Some(Node::File) => return Err(WalkError::NotDir(i)),
                None if create => {
                    let folder = self.new_folder();
                    self.folders[current].insert((*part).into(), Node::Dir(folder));
                    folder
                }
                None => return Err(WalkError::Missing(i)),
            };
        }
        Ok(current)
    }

    fn new_folder(&mut self) -> usize {
        self.folders.push(HashMap::new());
        self.folders.len() - 1
    }

    /// Adds `name` to the folder last entered, unless it is taken.
    fn add(&mut self, name: &[u8], node: Node) -> Made {
        match self.folders[self.current].get(name) {
            Some(existing) => Made::Exists(Some(existing.kind())),
            None => {
                self.folders[self.current].insert(name.into(), node);
                Made::Created
            }
        }
    }
}

impl Store for InMemory {
    fn make_root_dir(&mut self) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn make_root_file(&mut self, ctx: &mut Ctx<'_>, head: &EntryHead, data: &mut dyn Read) -> Result<(), ArchiveError> {
        write_content(ctx, head, data, None)
    }

    fn enter(&mut self, parts: &[&[u8]], create: bool) -> Result<(), WalkError> {
        self.current = self.walk(parts, create)?;
        Ok(())
    }

    fn make_dir(&mut self, name: &[u8]) -> Result<Made, ArchiveError> {
        if let Some(existing) = self.folders[self.current].get(name) {
            return Ok(Made::Exists(Some(existing.kind())));
        }
        let folder = self.new_folder();
        Ok(self.add(name, Node::Dir(folder)))
    }

    fn make_file(
        &mut self,
        ctx: &mut Ctx<'_>,
        rel: &[&[u8]],
        head: &EntryHead,
        data: &mut dyn Read,
    ) -> Result<Made, ArchiveError> {
        let made = self.add(rel[rel.len() - 1], Node::File);
        if let Made::Created = made {
            write_content(ctx, head, data, None)?;
        }
        Ok(made)
    }

    fn make_symlink(&mut self, _: &Ctx<'_>, rel: &[&[u8]], _: &[u8], _: Meta) -> Result<Made, ArchiveError> {
        Ok(self.add(rel[rel.len() - 1], Node::Symlink))
    }

    fn make_hardlink(&mut self, rel: &[&[u8]], _: &[&[u8]]) -> Result<Made, ArchiveError> {
        Ok(self.add(rel[rel.len() - 1], Node::File))
    }

    fn is_file(&mut self, rel: &[&[u8]]) -> Result<bool, ArchiveError> {
        let (parent, name) = rel.split_at(rel.len() - 1);
        Ok(match self.walk(parent, false) {
            Ok(folder) => self.folders[folder].get(name[0]) == Some(&Node::File),
            Err(_) => false,
        })
    }

    fn folder_meta(&mut self, _: &[&[u8]], _: Meta) {}

    fn finish(&mut self, _: &Ctx<'_>) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn discard(&mut self) {}
}

/// Why `walk` could not open a folder: a refusal, or the file system failing at component `i`.
enum Walked {
    Blocked(WalkError),
    Io(usize, io::Error),
}

/// Opens the folder `parts` below `root` one component at a time with `O_NOFOLLOW`, creating missing ones (0700)
/// when `create`. A symlink or a non-folder on the way is an error, never followed.
fn walk(root: BorrowedFd<'_>, parts: &[&[u8]], create: bool) -> Result<OwnedFd, Walked> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut current = rustix::fs::openat(root, ".", flags, Mode::empty()).map_err(|e| Walked::Io(0, e.into()))?;
    for (i, part) in parts.iter().enumerate() {
        let name = OsStr::from_bytes(part);
        let mut opened = rustix::fs::openat(&current, name, flags, Mode::empty());
        if matches!(opened, Err(Errno::NOENT)) && create {
            match rustix::fs::mkdirat(&current, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(Walked::Io(i, e.into())),
            }
            opened = rustix::fs::openat(&current, name, flags, Mode::empty());
        }
        current = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(Walked::Blocked(WalkError::Missing(i))),
            Err(Errno::LOOP | Errno::NOTDIR) if kind_at(current.as_fd(), name) == Some(FileType::Symlink) => {
                return Err(Walked::Blocked(WalkError::Symlink(i)))
            }
            Err(Errno::LOOP | Errno::NOTDIR) => return Err(Walked::Blocked(WalkError::NotDir(i))),
            Err(e) => return Err(Walked::Io(i, e.into())),
        };
    }
    Ok(current)
}

/// The type of `name` in `dir`, without following a symlink.
fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> Option<FileType> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|stat| FileType::from_raw_mode(stat.st_mode))
}

/// A symlink is restored as it was archived, whatever it points to: nothing is ever written or opened through one
/// (see the module's doc), so where it points is the restored data's business. Only a target no file system can
/// hold is refused.
fn check_symlink_target(target: &[u8]) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("has an empty target");
    }
    if target.contains(&0) {
        return Err("has a NUL byte in its target");
    }
    Ok(())
}

/// Streams an entry's content into `out` (a file and its path for messages; none for a dry run, which reads it
/// through), checking it is as long as its header says.
fn write_content(
    ctx: &mut Ctx<'_>,
    head: &EntryHead,
    data: &mut dyn Read,
    mut out: Option<(&mut File, &Path)>,
) -> Result<(), ArchiveError> {
    let mut written = 0u64;
    loop {
        let n = data.read(&mut ctx.buf).map_err(|e| stream_error(ctx.archive, e))?;
        if n == 0 {
            break;
        }
        if let Some((file, dest)) = &mut out {
            file.write_all(&ctx.buf[..n]).map_err(|source| ArchiveError::Prepare {
                path: dest.to_path_buf(),
                source,
            })?;
        }
        written += n as u64;
    }
    if written != head.size {
        return Err(bad(ctx.archive, format!("entry `{}` is truncated", head.display())));
    }
    // The staging file systems are synced at the end; a big file starts on its way to disk now.
    if let Some((file, _)) = out {
        if written >= WRITEBACK_FROM {
            start_writeback(file, 0, 0);
        }
    }
    Ok(())
}

/// Files at least this big have their writeback started as soon as they are written.
const WRITEBACK_FROM: u64 = 1 << 20;

/// Owner (as root), mode and mtime of an open file or folder. The owner goes first: `chown` clears setuid bits.
fn set_meta(ctx: &Ctx<'_>, fd: BorrowedFd<'_>, meta: Meta) -> io::Result<()> {
    if ctx.as_root {
        let (uid, gid) = owner(meta);
        rustix::fs::fchown(fd, uid, gid)?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode & ctx.keep_mode))?;
    rustix::fs::futimens(fd, &times(meta.mtime))?;
    Ok(())
}

/// Owner (as root) and mtime of a symlink itself; symlinks have no mode of their own on Linux.
fn set_symlink_meta(ctx: &Ctx<'_>, dir: BorrowedFd<'_>, name: &OsStr, meta: Meta) -> io::Result<()> {
    if ctx.as_root {
        let (uid, gid) = owner(meta);
        rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
    }
    rustix::fs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The numeric owner and group to restore; an id that does not fit (or is the "no change" value -1) is left alone.
fn owner(meta: Meta) -> (Option<Uid>, Option<Gid>) {
    let uid = u32::try_from(meta.uid).ok().filter(|&id| id != u32::MAX);
    let gid = u32::try_from(meta.gid).ok().filter(|&id| id != u32::MAX);
    // SAFETY: `from_raw` requires an id other than -1 (u32::MAX), which the filters above exclude.
    unsafe { (uid.map(|id| Uid::from_raw(id)), gid.map(|id| Gid::from_raw(id))) }
}

/// The archive's mtime (whole seconds); the access time is left as it is.
fn times(mtime: u64) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        },
    }
}

/// Removes a staging folder this call created. `remove_dir_all` never follows symlinks; if a folder's restored mode
/// keeps its contents in (possible only once the final metadata pass has started), owners get rwx back and it retries.
fn remove_tree(path: &Path) -> io::Result<()> {
    if std::fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    unlock(path);
    std::fs::remove_dir_all(path)
}

fn unlock(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                unlock(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use tar::Header;

    use super::*;
    use crate::{write_archive, SourceRoot};

    /// A tar.gz built header by header. Names go straight into the header bytes, so the tar crate's own checks
    /// (which refuse `..` and absolute paths) cannot clean them up: these are the archives an attacker would write.
    struct Tar(Vec<u8>);

    impl Tar {
        fn new() -> Self {
            Tar(Vec::new())
        }

        fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) -> Self {
            let mut header = Header::new_gnu();
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name);
            gnu.linkname[..link.len()].copy_from_slice(link);
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(if kind == EntryType::Directory { 0o755 } else { 0o644 });
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_600_000_000);
            if matches!(kind, EntryType::Char | EntryType::Block) {
                header.set_device_major(1).unwrap();
                header.set_device_minor(3).unwrap();
            }
            header.set_cksum();
            self.0.extend_from_slice(header.as_bytes());
            self.0.extend_from_slice(data);
            self.0.resize(self.0.len().next_multiple_of(512), 0);
            self
        }

        fn dir(self, name: &str) -> Self {
            self.raw(EntryType::Directory, name.as_bytes(), b"", b"")
        }

        fn file(self, name: &str, data: &str) -> Self {
            self.raw(EntryType::Regular, name.as_bytes(), b"", data.as_bytes())
        }

        fn symlink(self, name: &str, target: &str) -> Self {
            self.raw(EntryType::Symlink, name.as_bytes(), target.as_bytes(), b"")
        }

        fn hardlink(self, name: &str, target: &str) -> Self {
            self.raw(EntryType::Link, name.as_bytes(), target.as_bytes(), b"")
        }

        fn node(self, kind: EntryType, name: &str) -> Self {
            self.raw(kind, name.as_bytes(), b"", b"")
        }

        /// A GNU long-name pseudo-entry: the next entry's real name, past the header's 100 bytes.
        fn long_name(self, name: &str) -> Self {
            let mut data = name.as_bytes().to_vec();
            data.push(0);
            self.raw(EntryType::GNULongName, b"././@LongLink", b"", &data)
        }

        /// A pax extended header carrying `path` for the next entry.
        fn pax_path(self, path: &str) -> Self {
            let record = format!(" path={path}\n");
            let len = record.len() + 2;
            let record = format!("{len}{record}");
            assert_eq!(record.len(), len);
            self.raw(EntryType::XHeader, b"pax", b"", record.as_bytes())
        }

        fn write(mut self, path: &Path) {
            self.0.extend_from_slice(&[0; 1024]);
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&self.0).unwrap();
            std::fs::write(path, gz.finish().unwrap()).unwrap();
        }
    }

    /// A temp dir holding the archive, and `restore/` with the staging folder to be and a sentinel folder next to
    /// it that no extraction may touch.
    struct Scene {
        _dir: tempfile::TempDir,
        root: PathBuf,
        sentinel: PathBuf,
        staging: PathBuf,
        archive: PathBuf,
    }

    impl Scene {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_path_buf();
            let sentinel = root.join("restore/sentinel");
            std::fs::create_dir_all(&sentinel).unwrap();
            std::fs::write(sentinel.join("passwd"), "original").unwrap();
            Scene {
                staging: root.join("restore/staging"),
                archive: root.join("evil.tar.gz"),
                sentinel,
                root,
                _dir: dir,
            }
        }

        fn plans(&self) -> Vec<ExtractPlan> {
            vec![ExtractPlan {
                archive_prefix: "data".into(),
                staging: self.staging.clone(),
            }]
        }

        fn extract(&self, tar: Tar) -> Result<ExtractSummary, ArchiveError> {
            tar.write(&self.archive);
            extract(&self.archive, &self.plans(), &CancellationToken::new())
        }

        /// Extracts an archive that must be refused; checks nothing was left anywhere; returns the reason.
        fn refused(&self, tar: Tar) -> String {
            let result = self.extract(tar);
            self.assert_untouched();
            match result {
                Err(ArchiveError::ArchiveCheck { path, reason }) => {
                    assert_eq!(path, self.archive);
                    reason
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }

        /// Writes `tar` and runs the dry run over the `data` prefix; checks it wrote nothing.
        fn checked(&self, tar: Tar) -> Result<ExtractSummary, ArchiveError> {
            tar.write(&self.archive);
            let result = check_extraction(&self.archive, &["data".into()], &CancellationToken::new(), &|_| {});
            self.assert_untouched();
            result
        }

        /// Everything under the temp dir is as before: the archive, the sentinel and its file, and no staging.
        fn assert_untouched(&self) {
            let found: BTreeSet<String> = walkdir::WalkDir::new(&self.root)
                .into_iter()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .strip_prefix(&self.root)
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect();
            let expected: BTreeSet<String> = [
                "",
                "evil.tar.gz",
                "restore",
                "restore/sentinel",
                "restore/sentinel/passwd",
            ]
            .into_iter()
            .map(String::from)
            .collect();
            assert_eq!(found, expected);
            let passwd = self.sentinel.join("passwd");
            assert_eq!(std::fs::read_to_string(&passwd).unwrap(), "original");
            assert_eq!(
                std::fs::metadata(&passwd).unwrap().nlink(),
                1,
                "no hard link to the sentinel"
            );
        }
    }

    /// The legitimate start every malicious archive below has, so the staging folder exists when the bad entry comes.
    fn harmless() -> Tar {
        Tar::new().dir("data").dir("data/sub").file("data/sub/ok.txt", "fine")
    }

    #[test]
    fn an_entry_with_dotdot_is_refused() {
        let scene = Scene::new();
        let reason = scene.refused(harmless().file("data/../sentinel/pwned", "gotcha"));
        assert_eq!(reason, "entry `data/../sentinel/pwned` leaves its folder");

        let reason = scene.refused(harmless().file("../../etc/x", "gotcha"));
        assert_eq!(reason, "entry `../../etc/x` leaves its folder", "even under no prefix");
    }

    #[test]
    fn an_entry_with_an_absolute_path_is_refused() {
        let scene = Scene::new();
        let target = scene.sentinel.join("pwned").display().to_string();
        let reason = scene.refused(harmless().file(&target, "gotcha"));
        assert_eq!(reason, format!("entry `{target}` has an absolute path"));
    }

    #[test]
    fn symlinks_are_restored_as_they_were_archived_whatever_they_point_to() {
        let scene = Scene::new();
        let outside = scene.sentinel.join("passwd").display().to_string();
        let links = [
            ("abs", outside.as_str()),
            ("sub/up-and-out", "../../sentinel/passwd"),
            ("dotdot", ".."),
            ("climbs-out-of-a-name", "sub/../../sentinel"),
            ("dangling", "/nonexistent/hookrun/target"),
        ];
        let mut tar = harmless();
        for (name, target) in links {
            tar = tar.symlink(&format!("data/{name}"), target);
        }

        let summary = scene.extract(tar).unwrap();

        assert_eq!(summary.entries, 3 + links.len() as u64);
        for (name, target) in links {
            let link = scene.staging.join(name);
            assert!(
                std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
                "{name}"
            );
            assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(target), "{name}");
        }
        assert_eq!(
            std::fs::read_to_string(scene.sentinel.join("passwd")).unwrap(),
            "original",
            "a link's target is data: nothing was written there"
        );
    }

    #[test]
    fn nothing_is_written_through_a_symlink_that_points_outside() {
        let scene = Scene::new();
        let outside = scene.sentinel.display().to_string();
        let through = "would be written through symlink `data/link`";
        for (link, tar) in [
            (
                outside.as_str(),
                harmless().symlink("data/link", &outside).file("data/link/pwned", "x"),
            ),
            (
                outside.as_str(),
                harmless().symlink("data/link", &outside).dir("data/link/pwned"),
            ),
            (
                outside.as_str(),
                harmless()
                    .symlink("data/link", &outside)
                    .symlink("data/link/pwned", "x"),
            ),
            (
                "..",
                harmless()
                    .symlink("data/link", "..")
                    .file("data/link/sentinel/pwned", "x"),
            ),
        ] {
            let reason = scene.refused(tar);
            assert!(reason.ends_with(through), "{link}: {reason}");
        }

        let reason = scene.refused(
            harmless()
                .symlink("data/link", &outside)
                .hardlink("data/hard", "data/link/passwd"),
        );
        assert_eq!(
            reason,
            "hard link `data/hard` -> `data/link/passwd` points to no file extracted before it"
        );

        let reason = scene.refused(harmless().symlink("data/link", &outside).file("data/link", "x"));
        assert_eq!(reason, "entry `data/link` appears twice in the archive");
    }

    #[test]
    fn a_symlink_without_a_target_is_refused() {
        let scene = Scene::new();
        let reason = scene.refused(harmless().symlink("data/empty", ""));
        assert_eq!(reason, "symlink `data/empty` -> `` has an empty target");
    }

    #[test]
    fn nothing_is_written_through_a_symlink_even_one_that_points_inside() {
        let scene = Scene::new();
        // `here -> .` and `sub/up -> ..` both resolve inside the folder and are fine as links; writing through
        // them is not, whatever they point to.
        let reason = scene.refused(harmless().symlink("data/here", ".").file("data/here/x", "through"));
        assert_eq!(
            reason,
            "entry `data/here/x` would be written through symlink `data/here`"
        );

        let reason = scene.refused(harmless().symlink("data/sub/up", "..").dir("data/sub/up/d"));
        assert_eq!(
            reason,
            "entry `data/sub/up/d` would be written through symlink `data/sub/up`"
        );

        let reason = scene.refused(harmless().symlink("data/sub/up", "..").symlink("data/sub/up/l", "x"));
        assert_eq!(
            reason,
            "entry `data/sub/up/l` would be written through symlink `data/sub/up`"
        );
    }

    #[test]
    fn a_folder_or_file_over_an_existing_entry_is_refused() {
        let scene = Scene::new();
        let reason = scene.refused(harmless().symlink("data/link", "sub").dir("data/link"));
        assert_eq!(
            reason,
            "entry `data/link` is a folder where the archive already put something else"
        );

        let reason = scene.refused(harmless().file("data/sub/ok.txt", "replaced"));
        assert_eq!(reason, "entry `data/sub/ok.txt` appears twice in the archive");

        let reason = scene.refused(harmless().file("data/f", "x").file("data/f/inner", "y"));
        assert_eq!(
            reason,
            "entry `data/f/inner` needs `data/f` to be a folder, and it is not"
        );
    }

    #[test]
    fn hard_links_that_leave_their_folder_are_refused() {
        let scene = Scene::new();
        let reason = scene.refused(harmless().hardlink("data/hard", "../../etc/passwd"));
        assert_eq!(
            reason,
            "hard link `data/hard` -> `../../etc/passwd` points outside its folder"
        );

        let outside = scene.sentinel.join("passwd").display().to_string();
        let reason = scene.refused(harmless().hardlink("data/hard", &outside));
        assert_eq!(
            reason,
            format!("hard link `data/hard` -> `{outside}` points outside its folder")
        );

        // A file the archive holds, but under another prefix than the link's.
        let reason = scene.refused(harmless().file("other/file", "x").hardlink("data/hard", "other/file"));
        assert_eq!(
            reason,
            "hard link `data/hard` -> `other/file` points outside its folder"
        );
    }

    #[test]
    fn hard_links_to_anything_but_an_extracted_file_are_refused() {
        let scene = Scene::new();
        let reason = scene.refused(harmless().hardlink("data/hard", "data/later").file("data/later", "x"));
        assert_eq!(
            reason,
            "hard link `data/hard` -> `data/later` points to no file extracted before it"
        );

        let reason = scene.refused(harmless().hardlink("data/hard", "data/sub"));
        assert_eq!(
            reason,
            "hard link `data/hard` -> `data/sub` points to no file extracted before it"
        );

        let reason = scene.refused(
            harmless()
                .symlink("data/l", "sub/ok.txt")
                .hardlink("data/hard", "data/l"),
        );
        assert_eq!(
            reason,
            "hard link `data/hard` -> `data/l` points to no file extracted before it"
        );

        let reason = scene.refused(harmless().hardlink("data/hard", "data/sub/../../sentinel/passwd"));
        assert_eq!(
            reason,
            "hard link `data/hard` -> `data/sub/../../sentinel/passwd` points outside its folder"
        );
    }

    #[test]
    fn device_nodes_and_fifos_are_refused() {
        let scene = Scene::new();
        for (kind, what) in [
            (EntryType::Char, "is a character device; device nodes are not restored"),
            (EntryType::Block, "is a block device; device nodes are not restored"),
            (EntryType::Fifo, "is a FIFO; FIFOs are not restored"),
        ] {
            let reason = scene.refused(harmless().node(kind, "data/node"));
            assert_eq!(reason, format!("entry `data/node` {what}"));
        }
    }

    #[test]
    fn long_names_and_pax_paths_are_checked_like_header_names() {
        let scene = Scene::new();
        let reason = scene.refused(
            harmless()
                .long_name("data/../sentinel/pwned")
                .file("data/innocent", "x"),
        );
        assert_eq!(reason, "entry `data/../sentinel/pwned` leaves its folder");

        let reason = scene.refused(harmless().pax_path("data/../sentinel/pwned").file("data/innocent", "x"));
        assert_eq!(reason, "entry `data/../sentinel/pwned` leaves its folder");
    }

    #[test]
    fn a_harmless_archive_extracts_and_links_work_inside() {
        let scene = Scene::new();
        let summary = scene
            .extract(
                harmless()
                    .file("data/a", "shared")
                    .hardlink("data/sub/b", "data/a")
                    .symlink("data/sub/up", "../a")
                    .file("elsewhere/skipped", "not mine"),
            )
            .unwrap();

        assert_eq!((summary.entries, summary.files, summary.bytes), (6, 2, 10));
        let a = std::fs::metadata(scene.staging.join("a")).unwrap();
        let b = std::fs::metadata(scene.staging.join("sub/b")).unwrap();
        assert_eq!(a.ino(), b.ino(), "a hard link, not a copy");
        assert_eq!(
            std::fs::read_link(scene.staging.join("sub/up")).unwrap(),
            Path::new("../a")
        );
        assert_eq!(std::fs::read_to_string(scene.staging.join("sub/up")).unwrap(), "shared");
        assert!(!scene.root.join("restore/elsewhere").exists() && !scene.staging.join("elsewhere").exists());
        assert_eq!(std::fs::read_dir(&scene.staging).unwrap().count(), 2, "a and sub");
        let on_disk = std::fs::read(&scene.archive).unwrap();
        assert_eq!(
            summary.archive.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&on_disk))
        );
        assert_eq!(summary.archive.size, on_disk.len() as u64);
        assert_eq!(
            (
                summary.archive.entry_count,
                summary.archive.file_count,
                summary.archive.bytes
            ),
            (7, 3, 18),
            "the whole archive is counted, the skipped entry too"
        );
    }

    #[test]
    fn each_prefix_goes_to_its_own_staging_path_and_a_file_prefix_becomes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("config/nested")).unwrap();
        std::fs::write(src.join("config/nested/app.yml"), "port: 80\n").unwrap();
        std::fs::create_dir_all(src.join("uploads")).unwrap();
        std::fs::write(src.join("uploads/cat.jpg"), [0xff, 0xd8, 0xff]).unwrap();
        std::fs::write(src.join(".env"), "SECRET=1\n").unwrap();
        let archive = dir.path().join("backup.tar.gz");
        let roots = [
            SourceRoot::new(src.join("config"), "config"),
            SourceRoot::new(src.join("uploads"), "binds/data/uploads"),
            SourceRoot::new(src.join(".env"), ".env"),
        ];
        write_archive(&roots, &archive, 6, &CancellationToken::new(), &|_| {}).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let plans = [
            ExtractPlan {
                archive_prefix: "binds/data/uploads".into(),
                staging: out.join("uploads.staged"),
            },
            ExtractPlan {
                archive_prefix: ".env".into(),
                staging: out.join("env.staged"),
            },
        ];

        let summary = extract(&archive, &plans, &CancellationToken::new()).unwrap();

        assert_eq!((summary.entries, summary.files, summary.bytes), (3, 2, 12));
        assert_eq!(
            std::fs::read(out.join("uploads.staged/cat.jpg")).unwrap(),
            [0xff, 0xd8, 0xff]
        );
        assert_eq!(std::fs::read_to_string(out.join("env.staged")).unwrap(), "SECRET=1\n");
        let names: BTreeSet<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["env.staged", "uploads.staged"].map(std::ffi::OsString::from).into(),
            "config skipped"
        );
    }

    #[test]
    fn an_existing_staging_folder_is_refused_and_left_alone() {
        let scene = Scene::new();
        std::fs::create_dir(&scene.staging).unwrap();
        std::fs::write(scene.staging.join("precious"), "keep me").unwrap();

        let err = scene.extract(harmless()).unwrap_err();

        assert!(matches!(err, ArchiveError::Prepare { .. }), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            std::fs::read_to_string(scene.staging.join("precious")).unwrap(),
            "keep me"
        );
        assert_eq!(std::fs::read_dir(&scene.staging).unwrap().count(), 1);
    }

    #[test]
    fn plans_are_checked_before_anything_is_read() {
        let scene = Scene::new();
        harmless().write(&scene.archive);
        let plan = |prefix: &str, staging: &str| ExtractPlan {
            archive_prefix: prefix.into(),
            staging: scene.root.join(staging),
        };
        let run = |plans: &[ExtractPlan]| extract(&scene.archive, plans, &CancellationToken::new()).unwrap_err();

        let err = run(&[plan("data", "no/such/parent/staging")]);
        assert!(matches!(err, ArchiveError::Prepare { .. }), "{err}");
        let err = run(&[plan("data", "restore/a"), plan("data/sub", "restore/b")]);
        assert_eq!(
            err.to_string(),
            "archive prefixes `data` and `data/sub` overlap: an entry would belong to both"
        );
        let err = run(&[plan("../data", "restore/a")]);
        assert_eq!(
            err.to_string(),
            "archive prefix `../data` must be a relative path without `..`"
        );
        let err = run(&[plan("data", "restore/a"), plan("other", "restore/a")]);
        assert!(matches!(err, ArchiveError::Misconfigured(_)), "{err}");
        scene.assert_untouched();
    }

    #[test]
    fn a_prefix_the_archive_does_not_hold_fails_and_removes_the_others() {
        let scene = Scene::new();
        harmless().write(&scene.archive);
        let plans = [
            ExtractPlan {
                archive_prefix: "data".into(),
                staging: scene.staging.clone(),
            },
            ExtractPlan {
                archive_prefix: "volumes/db".into(),
                staging: scene.root.join("restore/db"),
            },
        ];

        let err = extract(&scene.archive, &plans, &CancellationToken::new()).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "archive {} failed its check: holds nothing under `volumes/db` to extract",
                scene.archive.display()
            )
        );
        scene.assert_untouched();
    }

    #[test]
    fn a_corrupt_trailer_found_after_every_entry_was_written_still_removes_the_staging_folder() {
        let scene = Scene::new();
        harmless().write(&scene.archive);
        let mut bytes = std::fs::read(&scene.archive).unwrap();
        let crc_at = bytes.len() - 8;
        bytes[crc_at] ^= 0x01;
        std::fs::write(&scene.archive, bytes).unwrap();

        let err = extract(&scene.archive, &scene.plans(), &CancellationToken::new()).unwrap_err();

        assert!(err.to_string().contains("CRC-32"), "{err}");
        scene.assert_untouched();
    }

    #[test]
    fn a_cancelled_extraction_leaves_nothing() {
        let scene = Scene::new();
        harmless().write(&scene.archive);
        let cancel = CancellationToken::new();
        cancel.cancel();

        let err = extract(&scene.archive, &scene.plans(), &cancel).unwrap_err();

        assert!(matches!(err, ArchiveError::Cancelled), "{err}");
        scene.assert_untouched();
    }

    #[test]
    fn folder_modes_and_mtimes_are_applied_after_their_contents() {
        let scene = Scene::new();
        let mut tar = Tar::new().dir("data");
        // A read-only folder listed before what it holds: its mode and mtime must survive its contents.
        tar = tar.raw(EntryType::Directory, b"data/ro", b"", b"");
        let last = tar.0.len() - 512;
        let mut header = Header::from_byte_slice(&tar.0[last..]).clone();
        header.set_mode(0o555);
        header.set_mtime(1_000_000_000);
        header.set_cksum();
        tar.0[last..].copy_from_slice(header.as_bytes());
        tar = tar
            .file("data/ro/inside", "x")
            .dir("data/ro/deeper")
            .file("data/ro/deeper/f", "y");

        scene.extract(tar).unwrap();

        let ro = std::fs::metadata(scene.staging.join("ro")).unwrap();
        assert_eq!(ro.permissions().mode() & 0o7777, 0o555);
        assert_eq!(ro.mtime(), 1_000_000_000);
        assert_eq!(std::fs::read_to_string(scene.staging.join("ro/deeper/f")).unwrap(), "y");
        assert_eq!(std::fs::metadata(&scene.staging).unwrap().mtime(), 1_600_000_000);
    }

    #[test]
    fn owners_and_setuid_bits_are_restored_only_by_root() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let tool = src.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let as_root = rustix::process::geteuid().is_root();
        if as_root {
            std::os::unix::fs::chown(&tool, Some(1234), Some(5678)).unwrap();
        }
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let archive = dir.path().join("backup.tar.gz");
        write_archive(
            &[SourceRoot::new(&src, "src")],
            &archive,
            6,
            &CancellationToken::new(),
            &|_| {},
        )
        .unwrap();
        let staging = dir.path().join("out");
        let plans = [ExtractPlan {
            archive_prefix: "src".into(),
            staging: staging.clone(),
        }];

        extract(&archive, &plans, &CancellationToken::new()).unwrap();

        let restored = std::fs::metadata(staging.join("tool")).unwrap();
        if as_root {
            assert_eq!((restored.uid(), restored.gid()), (1234, 5678));
            assert_eq!(restored.permissions().mode() & 0o7777, 0o4755, "root keeps setuid");
        } else {
            assert_eq!(restored.uid(), rustix::process::geteuid().as_raw());
            assert_eq!(restored.permissions().mode() & 0o7777, 0o755, "setuid dropped");
        }
    }

    /// Every archive some test above shows the extraction refusing, and the reason it gives.
    fn refused_archives(scene: &Scene) -> Vec<(Tar, String)> {
        let outside = scene.sentinel.display().to_string();
        let cases = vec![
            (
                harmless().file("data/../sentinel/pwned", "x"),
                "entry `data/../sentinel/pwned` leaves its folder",
            ),
            (
                harmless().file("../../etc/x", "x"),
                "entry `../../etc/x` leaves its folder",
            ),
            (harmless().file("/etc/x", "x"), "entry `/etc/x` has an absolute path"),
            (
                harmless().symlink("data/link", &outside).file("data/link/pwned", "x"),
                "entry `data/link/pwned` would be written through symlink `data/link`",
            ),
            (
                harmless().symlink("data/sub/up", "..").dir("data/sub/up/d"),
                "entry `data/sub/up/d` would be written through symlink `data/sub/up`",
            ),
            (
                harmless().symlink("data/empty", ""),
                "symlink `data/empty` -> `` has an empty target",
            ),
            (
                harmless().symlink("data/link", "sub").dir("data/link"),
                "entry `data/link` is a folder where the archive already put something else",
            ),
            (
                harmless().file("data/sub/ok.txt", "again"),
                "entry `data/sub/ok.txt` appears twice in the archive",
            ),
            (
                harmless().dir("data/sub/ok.txt"),
                "entry `data/sub/ok.txt` is a folder where the archive already put something else",
            ),
            (
                harmless().symlink("data/sub", "x"),
                "entry `data/sub` appears twice in the archive",
            ),
            (
                harmless().file("data/f", "x").file("data/f/inner", "y"),
                "entry `data/f/inner` needs `data/f` to be a folder, and it is not",
            ),
            (
                harmless().hardlink("data/hard", "../../etc/passwd"),
                "hard link `data/hard` -> `../../etc/passwd` points outside its folder",
            ),
            (
                harmless().hardlink("data/hard", "data/later").file("data/later", "x"),
                "hard link `data/hard` -> `data/later` points to no file extracted before it",
            ),
            (
                harmless()
                    .symlink("data/l", "sub/ok.txt")
                    .hardlink("data/hard", "data/l"),
                "hard link `data/hard` -> `data/l` points to no file extracted before it",
            ),
            (
                harmless()
                    .symlink("data/l", "sub")
                    .hardlink("data/hard", "data/l/ok.txt"),
                "hard link `data/hard` -> `data/l/ok.txt` points to no file extracted before it",
            ),
            (
                harmless()
                    .hardlink("data/hard", "data/sub/ok.txt")
                    .hardlink("data/hard", "data/sub/ok.txt"),
                "entry `data/hard` appears twice in the archive",
            ),
            (
                harmless().node(EntryType::Fifo, "data/node"),
                "entry `data/node` is a FIFO; FIFOs are not restored",
            ),
            (
                harmless().node(EntryType::Block, "data/node"),
                "entry `data/node` is a block device; device nodes are not restored",
            ),
            (
                harmless()
                    .long_name("data/../sentinel/pwned")
                    .file("data/innocent", "x"),
                "entry `data/../sentinel/pwned` leaves its folder",
            ),
            (
                Tar::new().file("data", "a file").file("data/inner", "x"),
                "entry `data/inner` is inside `data`, which is a file",
            ),
            (
                harmless().file("data", "x"),
                "entry `data` is a file, but the archive put entries inside it before",
            ),
            (
                Tar::new().symlink("data", "elsewhere"),
                "entry `data` is what `data` names, so it must be a folder or a file",
            ),
            (
                Tar::new().file("other/file", "x"),
                "holds nothing under `data` to extract",
            ),
        ];
        cases
            .into_iter()
            .map(|(tar, reason)| (tar, reason.to_string()))
            .collect()
    }

    #[test]
    fn the_dry_run_refuses_what_the_extraction_refuses_for_the_same_reason_and_writes_nothing() {
        let scene = Scene::new();
        for (index, (tar, reason)) in refused_archives(&scene).into_iter().enumerate() {
            let bytes = tar.0.clone();
            assert_eq!(scene.refused(tar), reason, "extraction, case {index}");
            match scene.checked(Tar(bytes)) {
                Err(ArchiveError::ArchiveCheck { path, reason: checked }) => {
                    assert_eq!(path, scene.archive);
                    assert_eq!(checked, reason, "dry run, case {index}");
                }
                other => panic!("case {index}: the dry run did not refuse ({reason}): {other:?}"),
            }
        }
    }

    #[test]
    fn the_dry_run_accepts_what_the_extraction_accepts_and_counts_alike() {
        let scene = Scene::new();
        let tar = || {
            harmless()
                .file("data/a", "shared")
                .hardlink("data/sub/b", "data/a")
                .symlink("data/sub/up", "../a")
                .symlink("data/abs", "/etc/hostname")
                .symlink("data/c", "sub/../../x")
                .dir("data/sub")
                .file("data/implicit/parents/f", "made on the way")
                .file("elsewhere/skipped", "not mine")
        };

        let checked = scene.checked(tar()).unwrap();
        let extracted = scene.extract(tar()).unwrap();

        assert_eq!(checked, extracted);
        assert_eq!((checked.entries, checked.files, checked.bytes), (10, 3, 25));
    }

    #[test]
    fn the_dry_run_checks_every_prefix_and_refuses_overlapping_ones() {
        let scene = Scene::new();
        harmless().file("other/file", "x").write(&scene.archive);
        let check = |prefixes: &[&str]| {
            let prefixes: Vec<PathBuf> = prefixes.iter().map(PathBuf::from).collect();
            check_extraction(&scene.archive, &prefixes, &CancellationToken::new(), &|_| {})
        };

        assert_eq!(check(&["data", "other"]).unwrap().entries, 4);
        assert_eq!(check(&[]).unwrap().entries, 0, "no prefix: the archive is only read");
        assert_eq!(
            check(&["data", "missing"]).unwrap_err().to_string(),
            format!(
                "archive {} failed its check: holds nothing under `missing` to extract",
                scene.archive.display()
            )
        );
        for (prefixes, shown) in [
            (["data", "data"], "`data` and `data`"),
            (["data", "data/sub"], "`data` and `data/sub`"),
        ] {
            let err = check(&prefixes).unwrap_err();
            assert!(matches!(err, ArchiveError::Misconfigured(_)), "{err}");
            assert_eq!(
                err.to_string(),
                format!("archive prefixes {shown} overlap: an entry would belong to both")
            );
        }
        scene.assert_untouched();
    }

    #[test]
    fn the_dry_run_finds_an_entry_cut_short_as_the_extraction_does() {
        let scene = Scene::new();
        // A tar stream that ends 3 bytes into a 10-byte file, gzipped whole.
        let mut tar = harmless().file("data/f", "0123456789").0;
        tar.truncate(tar.len() - 512 + 3);
        let cut = |scene: &Scene| {
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&tar).unwrap();
            std::fs::write(&scene.archive, gz.finish().unwrap()).unwrap();
        };
        let reason = |result: Result<ExtractSummary, ArchiveError>| match result {
            Err(ArchiveError::ArchiveCheck { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };

        cut(&scene);
        let checked = reason(check_extraction(
            &scene.archive,
            &["data".into()],
            &CancellationToken::new(),
            &|_| {},
        ));
        cut(&scene);
        let extracted = reason(extract(&scene.archive, &scene.plans(), &CancellationToken::new()));

        assert_eq!(checked, extracted);
        assert!(
            checked.starts_with("truncated") || checked.ends_with("is truncated"),
            "{checked}"
        );
        scene.assert_untouched();
    }
}
