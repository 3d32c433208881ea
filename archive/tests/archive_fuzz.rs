//! Property tests: the reader (`read_archive`) and the extractor (`extract`, `check_extraction`) never panic on
//! arbitrary bytes, nor on random damage (bytes flipped, inserted, deleted, the file cut short) to a valid small
//! gzip or zstd archive: they return `Ok` or `Err`, and nothing is written outside the extraction's staging folder.
//!
//! Case counts: 256 per property (3 properties); each takes 5 to 8 s in a debug build on a shared 2-core machine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hookrun_archive::{check_extraction, extract, read_archive, write_archive, Compression, ExtractPlan, SourceRoot};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

/// A small archive of a tree with a file, a long name, a folder and a symlink, in `compression`.
fn small_archive(compression: Compression) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub/empty")).unwrap();
    std::fs::write(src.join("a.txt"), "hello hello hello\n".repeat(40)).unwrap();
    std::fs::write(src.join(format!("sub/{}", "n".repeat(120))), b"long name").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let archive = dir.path().join("small.tar");
    write_archive(
        &[SourceRoot::new(&src, "data")],
        &archive,
        compression,
        &CancellationToken::new(),
        &|_| {},
    )
    .unwrap();
    std::fs::read(archive).unwrap()
}

fn gzip_archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| small_archive(Compression::gzip(6)))
}

fn zstd_archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| small_archive(Compression::zstd(3)))
}

/// Every path under `root`, relative to it.
fn everything_under(root: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

/// Reads, checks and extracts `bytes` as an archive in a temp dir of its own; whatever happens, nothing may appear
/// but the archive itself and what is under the staging folder.
fn read_check_and_extract(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive.tar.gz");
    std::fs::write(&archive, bytes).unwrap();
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let cancel = CancellationToken::new();

    let _ = read_archive(&archive, &cancel, &|_| {});
    let _ = check_extraction(&archive, &[PathBuf::from("data")], &cancel, &|_| {});
    let plans = [ExtractPlan {
        archive_prefix: "data".into(),
        staging: staging.join("data"),
    }];
    let _ = extract(&archive, &plans, &cancel);

    let outside: BTreeSet<PathBuf> = everything_under(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("staging"))
        .collect();
    assert_eq!(
        outside,
        BTreeSet::from([PathBuf::from("archive.tar.gz")]),
        "written outside the staging folder"
    );
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        bytes,
        "the archive itself is untouched"
    );
}

/// One kind of damage at a position (taken modulo the length).
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Damage::Insert(at, b)),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Damage::Delete(at, n)),
        any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn damaged(valid: &[u8], damages: &[Damage]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for damage in damages {
        let len = bytes.len().max(1);
        match damage {
            Damage::Flip(at, mask) => {
                if !bytes.is_empty() {
                    bytes[at % len] ^= mask;
                }
            }
            Damage::Insert(at, inserted) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Damage::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Damage::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_reader_or_the_extractor(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        magic in prop_oneof![Just(Vec::new()), Just(vec![0x1f, 0x8b, 8, 0]), Just(vec![0x28, 0xb5, 0x2f, 0xfd])],
    ) {
        // With a gzip or zstd magic in front, so the bytes reach the decoders, not only the format sniffing.
        read_check_and_extract(&[magic, bytes].concat());
    }

    #[test]
    fn a_damaged_gzip_archive_never_panics_the_reader_or_the_extractor(
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        read_check_and_extract(&damaged(gzip_archive(), &damages));
    }

    #[test]
    fn a_damaged_zstd_archive_never_panics_the_reader_or_the_extractor(
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        read_check_and_extract(&damaged(zstd_archive(), &damages));
    }
}

#[test]
fn the_undamaged_archives_extract() {
    for valid in [gzip_archive(), zstd_archive()] {
        read_check_and_extract(valid);
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a");
        std::fs::write(&archive, valid).unwrap();
        let plans = [ExtractPlan {
            archive_prefix: "data".into(),
            staging: dir.path().join("out"),
        }];
        let summary = extract(&archive, &plans, &CancellationToken::new()).unwrap();
        assert_eq!((summary.files, summary.entries), (2, 6));
    }
}
