//! Round trip through the public archive API, restic style: back a tree up with `write_archive`, check it with
//! `read_archive`, restore it with `extract`, and compare the trees byte for byte and in their metadata, for every
//! format × level × tree shape of one table; likewise a snapshot's copy whose small files went into packs.

mod fixtures;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fixtures::{build_deployment_tree, build_large_tree, set_mtime, snapshot};
use hookrun_archive::tree_copy::copy_tree;
use hookrun_archive::{extract, read_archive, write_archive, Compression, ExtractPlan, SourceRoot};
use tokio_util::sync::CancellationToken;

/// The trees a round trip backs up.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A deployment's tree with everything that tends to break archivers: 12 folders (the root among them), 10
    /// files, 4 symlinks.
    Deployment,
    /// 12 MiB of text and noise (more than one job of the multithreaded encoders), 5 folders, 5 files, a symlink.
    Large,
}

impl Shape {
    fn build(self, root: &Path) {
        match self {
            Shape::Deployment => build_deployment_tree(root),
            Shape::Large => build_large_tree(root),
        }
    }

    /// Nodes of the tree, its root included.
    fn nodes(self) -> usize {
        match self {
            Shape::Deployment => 26,
            Shape::Large => 11,
        }
    }
}

/// Every round trip: format × level × tree shape. The first two are the ones each format has always had (gzip-6 of
/// the deployment tree, zstd-3 of the large one).
fn round_trips() -> [(Compression, Shape); 7] {
    [
        (Compression::gzip(6), Shape::Deployment),
        (Compression::zstd(3), Shape::Large),
        (Compression::gzip(0), Shape::Deployment),
        (Compression::gzip(9), Shape::Deployment),
        (Compression::zstd(3), Shape::Deployment),
        (Compression::zstd(19), Shape::Deployment),
        (Compression::gzip(6), Shape::Large),
    ]
}

/// Backs the tree of `shape` (and a lone file beside it) up as `compression` says, checks the archive, restores it
/// and compares the restored trees with the originals.
fn round_trip(compression: Compression, shape: Shape) {
    let case = format!("{compression} of the {shape:?} tree");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    shape.build(&src);
    std::fs::write(dir.path().join("config.yml"), "port: 8080\n").unwrap();
    set_mtime(&dir.path().join("config.yml"), 1_234_567_890);
    let roots = [
        SourceRoot::new(&src, "volumes/app_data"),
        SourceRoot::new(dir.path().join("config.yml"), "config.yml"),
    ];
    let archive = dir.path().join(format!("backup.{}", compression.format.extension()));
    let cancel = CancellationToken::new();

    let written = write_archive(&roots, &archive, compression, &cancel, &|_| {}).unwrap();
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
        "{case}: the reader sees what the writer wrote"
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
        "{case}: every entry was restored, from the file the writer wrote"
    );
    let (before, after) = (snapshot(&src), snapshot(&out.join("app_data")));
    assert_eq!(
        before.len(),
        shape.nodes(),
        "{case}: the tree is what this test means it to be: {before:#?}"
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "{case}");
    }
    assert_eq!(before.len(), after.len(), "{case}");
    assert_eq!(
        std::fs::read_to_string(out.join("config.yml")).unwrap(),
        "port: 8080\n",
        "{case}"
    );
    assert_eq!(
        std::fs::symlink_metadata(out.join("config.yml")).unwrap().mtime(),
        1_234_567_890,
        "{case}"
    );
}

#[test]
fn every_format_level_and_tree_backed_up_checked_and_restored_comes_back_identical() {
    for (compression, shape) in round_trips() {
        round_trip(compression, shape);
    }
}

#[test]
fn a_restored_tree_backs_up_to_the_same_content() {
    // Restoring loses nothing the archive records: backing the restored tree up again gives the same tar stream.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build_deployment_tree(&src);
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
    build_deployment_tree(&src);
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
