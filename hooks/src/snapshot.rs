//! Copying a tree exactly (content, folders, symlinks as links, modes, mtimes), for the `snapshot` hook: a quick
//! consistent copy while the services are stopped, archived after they are back.

use std::fs;
use std::path::Path;

use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
use tokio_util::sync::CancellationToken;
use walkdir::WalkDir;

use crate::HookError;

/// Copies `from` (a file, folder or symlink) to `to` (which must not exist) and returns the file bytes copied.
/// Files go through `std::fs::copy` (the kernel's copy_file_range, which shares extents where the filesystem can).
/// Sockets, FIFOs and device nodes are left out, as the archive leaves them out.
pub fn copy_tree(from: &Path, to: &Path, cancel: &CancellationToken) -> Result<u64, HookError> {
    let mut bytes = 0;
    let mut dirs = Vec::new();
    for entry in WalkDir::new(from).follow_links(false) {
        if cancel.is_cancelled() {
            return Err(HookError::Cancelled);
        }
        let entry = entry.map_err(|e| HookError::ReadSource {
            path: from.to_path_buf(),
            source: e.into(),
        })?;
        let source = entry.path();
        let read_err = |e: std::io::Error| HookError::ReadSource {
            path: source.to_path_buf(),
            source: e,
        };
        let relative = source.strip_prefix(from).expect("walkdir stays under its root");
        let target = if relative.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(relative)
        };
        let write_err = |e: std::io::Error| HookError::Prepare {
            path: target.clone(),
            source: e,
        };
        let meta = entry.metadata().map_err(|e| read_err(e.into()))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&target).map_err(write_err)?;
            dirs.push((target, meta));
            continue;
        } else if kind.is_symlink() {
            let link = fs::read_link(source).map_err(read_err)?;
            std::os::unix::fs::symlink(link, &target).map_err(write_err)?;
        } else if kind.is_file() {
            bytes += fs::copy(source, &target).map_err(read_err)?;
            fs::set_permissions(&target, meta.permissions()).map_err(write_err)?;
        } else {
            continue;
        }
        set_times(&target, &meta).map_err(write_err)?;
    }
    // Folders last, deepest first: creating their entries changed their mtimes.
    for (dir, meta) in dirs.iter().rev() {
        let write_err = |e: std::io::Error| HookError::Prepare {
            path: dir.clone(),
            source: e,
        };
        fs::set_permissions(dir, meta.permissions()).map_err(write_err)?;
        set_times(dir, meta).map_err(write_err)?;
    }
    Ok(bytes)
}

fn set_times(path: &Path, meta: &fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let at = |secs, nanos| Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    let times = Timestamps {
        last_access: at(meta.atime(), meta.atime_nsec()),
        last_modification: at(meta.mtime(), meta.mtime_nsec()),
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
