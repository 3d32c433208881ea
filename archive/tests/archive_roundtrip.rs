//! Round trip through the public archive API, restic style: back a tree up with `write_archive`, check it with
//! `read_archive`, restore it with `extract`, and compare the trees byte for byte and in their metadata; likewise
//! a snapshot's copy whose small files went into packs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hookrun_archive::tree_copy::copy_tree;
use hookrun_archive::{extract, read_archive, write_archive, ExtractPlan, SourceRoot};
use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
use tokio_util::sync::CancellationToken;

/// Sets the mtime of `path` itself (a symlink's own, not its target's).
fn set_mtime(path: &Path, seconds: i64) {
    let time = Timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Bytes that do not compress, from a fixed seed.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

const LONG_DIRS: &str = "deep/level-one-with-a-fairly-long-name/level-two-with-an-even-longer-name-here/\
                         level-three-the-longest-name-of-them-all";

/// The tree a real deployment might hold, with everything that tends to break archivers.
fn build_tree(root: &Path) {
    let dirs = [
        "docs",
        LONG_DIRS,
        "empty",
        "empty-nested/inner",
        "bin",
        "links",
        "readonly",
    ];
    for dir in dirs {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let files: [(String, Vec<u8>, u32); 10] = [
        ("docs/read me.txt".into(), b"spaces in the name\n".to_vec(), 0o644),
        (
            "docs/ünïcødé — 文字.md".into(),
            "# UTF-8 names\n".as_bytes().to_vec(),
            0o640,
        ),
        (
            format!("docs/{}", "n".repeat(200)),
            b"a 200-character name\n".to_vec(),
            0o600,
        ),
        (
            format!("{LONG_DIRS}/file.txt"),
            b"a path far over 100 characters\n".to_vec(),
            0o644,
        ),
        ("bin/tool.sh".into(), b"#!/bin/sh\necho hi\n".to_vec(), 0o755),
        ("secret".into(), b"hunter2\n".to_vec(), 0o600),
        ("zero-length".into(), Vec::new(), 0o644),
        ("bigger.bin".into(), noise(300_000, 42), 0o640),
        (
            "text.log".into(),
            "GET /index.html 200\n".repeat(20_000).into_bytes(),
            0o644,
        ),
        ("readonly/inside.txt".into(), b"in a read-only folder\n".to_vec(), 0o444),
    ];
    for (name, content, mode) in &files {
        let path = root.join(name);
        std::fs::write(&path, content).unwrap();
        set_mode(&path, *mode);
    }
    let long_target = format!("../{LONG_DIRS}/file.txt");
    assert!(long_target.len() > 100);
    for (link, target) in [
        ("links/rel", "../docs/read me.txt"),
        ("links/dangling", "missing-target"),
        ("links/dir-link", "../docs"),
        ("links/long-target", long_target.as_str()),
    ] {
        std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    }
    // Distinct mtimes for everything, folders last (deepest first) so their own stick.
    let entries: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .contents_first(true)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    for (i, path) in entries.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + 1_000 * i as i64);
    }
    for (dir, mode) in [("docs", 0o755), ("empty", 0o700), ("bin", 0o750), ("readonly", 0o555)] {
        set_mode(&root.join(dir), mode);
    }
    set_mode(root, 0o750);
}

/// One node of a tree as compared: path, type, mode bits, mtime, owner, and content or symlink target.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    path: PathBuf,
    kind: &'static str,
    mode: u32,
    mtime: i64,
    owner: (u32, u32),
    content: Option<Vec<u8>>,
    target: Option<PathBuf>,
}

fn snapshot(root: &Path) -> Vec<Node> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.path().symlink_metadata().unwrap();
            let kind = if meta.is_dir() {
                "dir"
            } else if meta.is_symlink() {
                "symlink"
            } else {
                "file"
            };
            Node {
                path: entry.path().strip_prefix(root).unwrap().to_path_buf(),
                kind,
                // A symlink's own mode means nothing on Linux.
                mode: if meta.is_symlink() { 0 } else { meta.mode() & 0o7777 },
                mtime: meta.mtime(),
                owner: (meta.uid(), meta.gid()),
                content: meta.is_file().then(|| std::fs::read(entry.path()).unwrap()),
                target: meta.is_symlink().then(|| std::fs::read_link(entry.path()).unwrap()),
            }
        })
        .collect()
}

#[test]
fn a_tree_backed_up_checked_and_restored_comes_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    std::fs::write(dir.path().join("config.yml"), "port: 8080\n").unwrap();
    set_mtime(&dir.path().join("config.yml"), 1_234_567_890);
    let roots = [
        SourceRoot::new(&src, "volumes/app_data"),
        SourceRoot::new(dir.path().join("config.yml"), "config.yml"),
    ];
    let archive = dir.path().join("backup.tar.gz");
    let cancel = CancellationToken::new();

    let written = write_archive(&roots, &archive, 6, &cancel, &|_| {}).unwrap();
    let read = read_archive(&archive, &cancel, &|_| {}).unwrap();
    let out = dir.path().join("restore");
    std::fs::create_dir(&out).unwrap();
    let plans = [
        ExtractPlan {
            archive_prefix: "volumes/app_data".into(),
            staging: out.join("app_data"),
        },
        ExtractPlan {
            archive_prefix: "config.yml".into(),
            staging: out.join("config.yml"),
        },
    ];
    let extracted = extract(&archive, &plans, &cancel).unwrap();

    assert_eq!(
        (
            read.sha256.as_str(),
            read.size,
            read.file_count,
            read.entry_count,
            read.bytes
        ),
        (
            written.sha256.as_str(),
            written.size,
            written.file_count,
            written.entry_count,
            written.bytes
        ),
        "the reader sees what the writer wrote"
    );
    assert_eq!(
        (
            extracted.entries,
            extracted.files,
            extracted.bytes,
            extracted.archive.sha256.as_str()
        ),
        (
            written.entry_count,
            written.file_count,
            written.bytes,
            written.sha256.as_str()
        ),
        "every entry was restored"
    );
    let (before, after) = (snapshot(&src), snapshot(&out.join("app_data")));
    // 12 folders (the root among them), 10 files, 4 symlinks.
    assert_eq!(
        before.len(),
        26,
        "the tree is what this test means it to be: {before:#?}"
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    assert_eq!(before.len(), after.len());
    assert_eq!(std::fs::read_to_string(out.join("config.yml")).unwrap(), "port: 8080\n");
    assert_eq!(
        std::fs::symlink_metadata(out.join("config.yml")).unwrap().mtime(),
        1_234_567_890
    );
}

#[test]
fn a_restored_tree_backs_up_to_the_same_content() {
    // Restoring loses nothing the archive records: backing the restored tree up again gives the same tar stream.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    let cancel = CancellationToken::new();
    let first = dir.path().join("first.tar.gz");
    write_archive(&[SourceRoot::new(&src, "data")], &first, 6, &cancel, &|_| {}).unwrap();
    let restored = dir.path().join("restored");
    let plans = [ExtractPlan {
        archive_prefix: "data".into(),
        staging: restored.clone(),
    }];
    extract(&first, &plans, &cancel).unwrap();
    let second = dir.path().join("second.tar.gz");

    write_archive(&[SourceRoot::new(&restored, "data")], &second, 6, &cancel, &|_| {}).unwrap();

    let tar = |path: &Path| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
            &mut out,
        )
        .unwrap();
        out
    };
    assert!(tar(&first) == tar(&second), "the two tar streams differ");
}

#[test]
fn a_snapshot_copy_whose_small_files_are_packed_restores_as_the_live_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    let (copy, packs) = (dir.path().join("copy"), dir.path().join("packs"));
    std::fs::create_dir(&packs).unwrap();
    let cancel = CancellationToken::new();
    let copied = copy_tree(&src, &copy, &packs, &cancel).unwrap();
    let archive = dir.path().join("snapshot.tar.gz");
    let live = dir.path().join("live.tar.gz");

    let root = SourceRoot::new(&copy, "data").with_packs(copied.packs.clone());
    let written = write_archive(&[root], &archive, 6, &cancel, &|_| {}).unwrap();
    let plain = write_archive(&[SourceRoot::new(&src, "data")], &live, 6, &cancel, &|_| {}).unwrap();
    let restored = dir.path().join("restored");
    let plans = [ExtractPlan {
        archive_prefix: "data".into(),
        staging: restored.clone(),
    }];
    let extracted = extract(&archive, &plans, &cancel).unwrap();

    assert!(!copied.packs.is_empty(), "the tree's small files went into packs");
    let counts = |s: &hookrun_archive::ArchiveSummary| (s.file_count, s.entry_count, s.bytes);
    assert_eq!(counts(&written), counts(&plain), "counted as the live tree is");
    assert_eq!(
        (extracted.files, extracted.entries, extracted.bytes),
        counts(&written),
        "every entry was restored"
    );
    assert_eq!(snapshot(&restored), snapshot(&src));
}
