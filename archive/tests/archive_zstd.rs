//! `.tar.zst` archives through the public archive API: written as one standard zstd frame with its content checksum
//! that the `zstd` and `tar` tools accept, checked by `read_archive` (restored by `extract` byte for byte: the
//! round-trip table of `archive_roundtrip.rs`); damage and
//! files that are neither gzip nor zstd are refused with an `ArchiveCheck` failure that names the file.
//!
//! Needs the `zstd` command-line tool and a GNU tar with `--zstd` (`apt-get install zstd`).

mod fixtures;

use std::path::PathBuf;
use std::process::Command;

use fixtures::build_large_tree;

use hookrun_archive::ArchiveError;
use hookrun_archive::{
    extract, read_archive, temporary_path, write_archive, ArchiveSummary, Compression, ExtractPlan, Format, SourceRoot,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// A folder holding the tree under `src/`, and where its archive goes.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        build_large_tree(&dir.path().join("src"));
        Self { dir }
    }

    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    fn archive(&self) -> PathBuf {
        self.dir.path().join("backup.tar.zst")
    }

    /// Writes the tree as `data/` in a zstd archive at level 3, the default.
    fn write(&self) -> ArchiveSummary {
        let roots = [SourceRoot::new(self.src(), "data")];
        write_archive(
            &roots,
            &self.archive(),
            Compression::zstd(3),
            &CancellationToken::new(),
            &|_| {},
        )
        .unwrap()
    }
}

/// Runs a program and returns its stdout, failing the test when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}): `apt-get install zstd`"));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `ArchiveCheck` failure `result` must be, as (path, reason).
fn check_failure<T: std::fmt::Debug>(result: Result<T, ArchiveError>) -> (PathBuf, String) {
    match result {
        Err(ArchiveError::ArchiveCheck { path, reason }) => (path, reason),
        other => panic!("expected an ArchiveCheck failure, got {other:?}"),
    }
}

#[test]
fn the_zstd_and_tar_tools_accept_the_archive_as_one_checksummed_frame() {
    let fixture = Fixture::new();
    fixture.write();
    let archive = fixture.archive();
    let archive = archive.to_str().unwrap();

    run("zstd", &["-q", "-t", archive]);
    let listing = run("zstd", &["-l", "-v", archive]);
    let listed = run("tar", &["--zstd", "-tf", archive]);

    assert!(listing.contains("# Zstandard Frames: 1"), "one frame:\n{listing}");
    assert!(
        listing.contains("Check: XXH64"),
        "with the content checksum:\n{listing}"
    );
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "data",
            "data/current",
            "data/db",
            "data/db/access.log",
            "data/db/table.dat",
            "data/empty",
            "data/uploads",
            "data/uploads/empty-file",
            &format!("data/uploads/{}", "n".repeat(150)),
            "data/uploads/ünïcödé",
            "data/uploads/ünïcödé/with space.txt",
        ]
    );
}

#[test]
fn the_writer_returns_the_sha256_and_size_of_the_file_it_wrote() {
    let fixture = Fixture::new();

    let written = fixture.write();

    let bytes = std::fs::read(fixture.archive()).unwrap();
    assert_eq!(written.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(written.size, bytes.len() as u64);
    assert_eq!(bytes[..4], [0x28, 0xb5, 0x2f, 0xfd], "starts with the zstd magic");
    let read = read_archive(&fixture.archive(), &CancellationToken::new(), &|_| {}).unwrap();
    assert_eq!((read.sha256, read.size), (written.sha256, written.size));
    assert!(
        written.size < written.bytes * 6 / 10,
        "the log compresses, the noise does not: {} of {}",
        written.size,
        written.bytes
    );
}

#[test]
fn verify_catches_a_flipped_byte_in_the_middle_and_names_the_file() {
    let fixture = Fixture::new();
    fixture.write();
    let archive = fixture.archive();
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();

    let (path, reason) = check_failure(read_archive(&archive, &CancellationToken::new(), &|_| {}));

    assert_eq!(path, archive);
    assert!(reason.starts_with("corrupt"), "{reason}");
}

#[test]
fn verify_catches_a_truncated_file_and_names_the_file() {
    let fixture = Fixture::new();
    fixture.write();
    let archive = fixture.archive();
    let whole = std::fs::read(&archive).unwrap();

    for keep in [2, 100, whole.len() / 2, whole.len() - 4, whole.len() - 1] {
        std::fs::write(&archive, &whole[..keep]).unwrap();

        let (path, reason) = check_failure(read_archive(&archive, &CancellationToken::new(), &|_| {}));

        assert_eq!(path, archive, "cut at {keep}");
        assert_eq!(
            reason, "truncated: the file ends inside the compressed data",
            "cut at {keep}"
        );
    }
}

#[test]
fn a_file_that_is_neither_gzip_nor_zstd_is_refused_by_verify_and_extract() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("backup.tar.zst");
    // An xz file, a plain tar and some text, each named like a zstd archive.
    let xz_magic = [0xfd, b'7', b'z', b'X', b'Z', 0x00, 0x00, 0x04];
    let plain_tar = [b"data/\0".as_slice(), &[0u8; 1018]].concat();
    for content in [&xz_magic[..], &plain_tar[..], b"hello"] {
        std::fs::write(&archive, content).unwrap();
        let cancel = CancellationToken::new();
        let plans = [ExtractPlan {
            archive_prefix: "data".into(),
            staging: dir.path().join("out"),
        }];

        let verified = check_failure(read_archive(&archive, &cancel, &|_| {}));
        let extracted = check_failure(extract(&archive, &plans, &cancel));

        let refused = (archive.clone(), "not a gzip or zstd archive".to_string());
        assert_eq!(verified, refused);
        assert_eq!(extracted, refused);
        assert!(!dir.path().join("out").exists(), "nothing extracted");
    }
}

#[test]
fn a_zstd_archive_is_recognised_by_its_content_not_its_name() {
    let fixture = Fixture::new();
    let written = fixture.write();
    let misnamed = fixture.dir.path().join("backup.tar.gz");
    std::fs::rename(fixture.archive(), &misnamed).unwrap();

    let read = read_archive(&misnamed, &CancellationToken::new(), &|_| {}).unwrap();

    assert_eq!(read.sha256, written.sha256);
    assert_eq!(read.file_count, written.file_count);
}

#[test]
fn a_cancelled_zstd_write_stops_and_leaves_no_file() {
    let fixture = Fixture::new();
    let tmp = temporary_path(fixture.dir.path(), 7, Format::Zstd);
    let cancel = CancellationToken::new();
    let roots = [SourceRoot::new(fixture.src(), "data")];
    // Cancelled at the first progress report (after 8 of the 12 MiB), with the encoder's workers busy.
    let progress = |_read: u64| cancel.cancel();

    let result = write_archive(&roots, &tmp, Compression::zstd(3), &cancel, &progress);

    assert!(matches!(result, Err(ArchiveError::Cancelled)), "{result:?}");
    assert!(!tmp.exists(), "the temporary file is removed");
    assert_eq!(
        tmp.file_name().unwrap().to_str().unwrap(),
        ".backup-run7.tar.zst.partial"
    );
}
