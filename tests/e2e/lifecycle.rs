//! The backup lifecycle through the binary, on files: verify catches a flipped byte, restore round-trips a tricky
//! tree exactly, refuses corrupt and malicious archives without touching live data, prune keeps what its rules
//! say, delete removes archive then row, and migrate-storage moves archives across filesystems, resumably.

use std::path::{Path, PathBuf};

use hookrun_e2e::{backup_rows, sh, tree_manifest, Sandbox, Unmount};

const CHAIN: &str =
    "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\", \"config\"] }\n\n\
                     [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n";

/// A deployment with everything a restore must get right.
fn deployment() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file(
        "data/db/table.dat",
        &(0..50_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<_>>(),
        0o640,
    );
    sandbox.file("data/uploads/with space.txt", b"spaces", 0o644);
    sandbox.file("data/uploads/ünïcödé/naïve.txt", b"utf-8", 0o600);
    sandbox.file(
        &format!("data/deep/{}/{}", "d".repeat(120), "n".repeat(200)),
        b"long names",
        0o644,
    );
    sandbox.file("config/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    std::fs::create_dir_all(sandbox.work().join("data/empty/inner-empty")).unwrap();
    std::os::unix::fs::symlink("db/table.dat", sandbox.work().join("data/current")).unwrap();
    std::os::unix::fs::symlink("uploads/with space.txt", sandbox.work().join("data/run-link")).unwrap();
    sh(&format!(
        "touch -d '2021-03-04 05:06:07' '{}'",
        sandbox.work().join("data/uploads/with space.txt").display()
    ));
    sandbox.config(CHAIN);
    sandbox
}

fn backup(sandbox: &Sandbox, kind: &str) -> i64 {
    let run = sandbox.run(&[kind, "--version", "1.0", "--json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.json()["backup"]["id"].as_i64().unwrap()
}

#[test]
fn restore_round_trips_a_tricky_tree_exactly() {
    let sandbox = deployment();
    let before = tree_manifest(&sandbox.work());
    let id = backup(&sandbox, "backup");
    // The live data moves on: files change, vanish, appear.
    std::fs::write(sandbox.work().join("data/db/table.dat"), b"corrupted by the upgrade").unwrap();
    std::fs::remove_dir_all(sandbox.work().join("data/uploads")).unwrap();
    sandbox.file("data/new-file", b"written after the backup", 0o644);
    std::fs::remove_dir_all(sandbox.work().join("config")).unwrap();

    let run = sandbox.run(&["restore", &id.to_string()]);

    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(
        tree_manifest(&sandbox.work()),
        before,
        "restored byte for byte and in metadata"
    );
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.work())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no staging or old copies left beside the targets: {leftovers:?}"
    );
    let restored: String = sandbox.catalog_value("SELECT status FROM restores");
    assert_eq!(restored, "completed");
}

#[test]
fn restore_only_puts_back_the_paths_asked_for() {
    let sandbox = deployment();
    let id = backup(&sandbox, "backup");
    std::fs::write(sandbox.work().join("config/run.sh"), b"changed").unwrap();
    std::fs::write(sandbox.work().join("data/db/table.dat"), b"changed").unwrap();

    let dry = sandbox.run(&["restore", &id.to_string(), "--only", "config", "--dry-run"]);
    assert_eq!(
        std::fs::read(sandbox.work().join("config/run.sh")).unwrap(),
        b"changed",
        "dry run changes nothing"
    );
    let run = sandbox.run(&["restore", &id.to_string(), "--only", "config"]);

    assert!(
        dry.stdout.contains("replace") && dry.stdout.contains("config"),
        "{}",
        dry.stdout
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        std::fs::read(sandbox.work().join("config/run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        std::fs::read(sandbox.work().join("data/db/table.dat")).unwrap(),
        b"changed",
        "data was not asked for"
    );
}

#[test]
fn a_flipped_byte_fails_verify_and_restore_refuses_it_without_touching_live_data() {
    let sandbox = deployment();
    let id = backup(&sandbox, "pre-upgrade");
    assert_eq!(sandbox.run(&["verify", &id.to_string()]).code, 0);
    let archive = sandbox.archives()[0].clone();
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();
    std::fs::write(sandbox.work().join("config/run.sh"), b"live data after the upgrade").unwrap();
    let live = tree_manifest(&sandbox.work());

    let verify = sandbox.run(&["verify", "--all"]);
    let restore = sandbox.run(&["restore", &id.to_string()]);
    let rollback = sandbox.run(&["rollback", "--yes"]);

    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(
        verify.stdout.contains(archive.file_name().unwrap().to_str().unwrap()),
        "names the archive: {}",
        verify.stdout
    );
    assert_eq!(restore.code, 1, "{}{}", restore.stdout, restore.stderr);
    assert_ne!(
        rollback.code, 0,
        "rollback never picks a corrupt archive: {}{}",
        rollback.stdout, rollback.stderr
    );
    assert_eq!(tree_manifest(&sandbox.work()), live, "live data untouched");
    let ok: Option<bool> = sandbox.catalog_value("SELECT verify_ok FROM backups");
    assert_eq!(ok, Some(false), "the failed verification is recorded");
}

/// Records `archive` in the catalog as a completed `kind` backup of `data` (as hookrun would have), after a real
/// backup of that kind; returns the real backup's id and the crafted one's.
fn register(sandbox: &Sandbox, archive: &Path, kind: &str) -> (i64, i64) {
    // A first real backup creates the catalog and its schema; the crafted one is recorded like it.
    let real = backup(sandbox, kind);
    let catalog = rusqlite::Connection::open(sandbox.path().join("catalog.db")).unwrap();
    let sha = hookrun_e2e::sha256_file(archive);
    let size = std::fs::metadata(archive).unwrap().len() as i64;
    // Counted as hookrun counts, so that the archive passes verification and the extraction itself is tested.
    let (mut files, mut entries, mut bytes) = (0i64, 0i64, 0i64);
    let mut reader = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap()));
    for entry in reader.entries().unwrap() {
        let entry = entry.unwrap();
        entries += 1;
        if entry.header().entry_type() == tar::EntryType::Regular {
            files += 1;
            bytes += entry.header().size().unwrap() as i64;
        }
    }
    catalog
        .execute(
            "INSERT INTO backups (run_id, type, version, status, path, size, sha256, file_count, entry_count, bytes,
                                  compression, created_at)
             SELECT run_id, type, version, 'completed', ?1, ?2, ?3, ?4, ?5, ?6, compression, created_at
             FROM backups WHERE id = ?7",
            rusqlite::params![archive.to_str().unwrap(), size, sha, files, entries, bytes, real],
        )
        .unwrap();
    let id = catalog.last_insert_rowid();
    catalog
        .execute(
            "INSERT INTO backup_sources (backup_id, kind, name, archive_path, host_path) VALUES (?1, 'path', 'data', 'data', ?2)",
            rusqlite::params![id, sandbox.work().join("data").to_str().unwrap()],
        )
        .unwrap();
    (real, id)
}

/// A tar.gz whose entries are written byte by byte, so that names tar libraries refuse can be in it.
fn crafted_archive(dir: &Path, entries: &[(&str, u8, &str, &[u8])]) -> PathBuf {
    let mut tar = Vec::new();
    for (name, kind, link, data) in entries {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
        header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = *kind;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| *b as u32).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        tar.extend_from_slice(&header);
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let path = dir.join("crafted.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap();
    path
}

#[test]
fn malicious_archives_are_refused_and_nothing_is_written_outside() {
    type Entry<'a> = (&'a str, u8, &'a str, &'a [u8]);
    let attacks: [(&str, &[Entry]); 5] = [
        ("a `..` entry", &[("data/../../escaped", b'0', "", b"pwned")]),
        (
            "an absolute path",
            &[("/tmp/hookrun-escaped-absolute", b'0', "", b"pwned")],
        ),
        (
            "a file through a symlink",
            &[
                ("data/link", b'2', "../..", b""),
                ("data/link/escaped", b'0', "", b"pwned"),
            ],
        ),
        ("a hardlink escape", &[("data/hard", b'1', "../../outside/secret", b"")]),
        ("a device node", &[("data/disk", b'3', "", b"")]),
    ];
    for (attack, entries) in attacks {
        let sandbox = deployment();
        std::fs::create_dir_all(sandbox.path().join("outside")).unwrap();
        std::fs::write(sandbox.path().join("outside/secret"), b"secret").unwrap();
        let archive = crafted_archive(sandbox.path(), entries);
        let (_, id) = register(&sandbox, &archive, "backup");
        let before = outside_storage(&sandbox);

        let run = sandbox.run(&["restore", &id.to_string()]);

        assert_eq!(run.code, 1, "{attack}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("failed its check: "), "{attack}: {}", run.stdout);
        assert!(
            !run.stdout.contains("the catalog recorded"),
            "{attack}: refused by the extraction, not the checksum: {}",
            run.stdout
        );
        assert_eq!(
            outside_storage(&sandbox),
            before,
            "{attack}: nothing written or changed outside storage"
        );
        assert!(!Path::new("/tmp/hookrun-escaped-absolute").exists(), "{attack}");
        assert!(
            !sandbox.path().join("escaped").exists() && !sandbox.work().join("escaped").exists(),
            "{attack}"
        );
    }
}

#[test]
fn links_pointing_anywhere_are_backed_up_verified_and_restored_as_links() {
    let sandbox = deployment();
    let data = sandbox.work().join("data");
    std::os::unix::fs::symlink("/etc/hostname", data.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../config/run.sh", data.join("leaves-its-folder")).unwrap();
    std::os::unix::fs::symlink("uploads/../db/table.dat", data.join("climbs-out-of-a-name")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/anywhere", data.join("uploads/dangling")).unwrap();
    let before = tree_manifest(&sandbox.work());
    let id = backup(&sandbox, "pre-upgrade").to_string();
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::write(sandbox.work().join("config/run.sh"), b"changed by the upgrade").unwrap();

    let verify = sandbox.run(&["verify", &id]);
    let restore = sandbox.run(&["restore", &id]);

    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert_eq!(
        restore.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        restore.stdout, restore.stderr
    );
    assert_eq!(
        tree_manifest(&sandbox.work()),
        before,
        "every link restored as the link it was, the rest byte for byte"
    );
    assert_eq!(
        std::fs::read_link(data.join("absolute")).unwrap(),
        Path::new("/etc/hostname")
    );
    let restored: String = sandbox.catalog_value("SELECT status FROM restores");
    assert_eq!(restored, "completed");
}

#[test]
fn an_archive_the_extraction_would_refuse_fails_verify_naming_the_entry_and_rollback_passes_it_over() {
    let sandbox = deployment();
    let archive = crafted_archive(
        sandbox.path(),
        &[
            ("data", b'5', "", b""),
            ("data/link", b'2', "/etc", b""),
            ("data/link/written-through", b'0', "", b"pwned"),
        ],
    );
    let (good, crafted) = register(&sandbox, &archive, "pre-upgrade");

    let verify = sandbox.run(&["verify", &crafted.to_string()]);
    let rollback = sandbox.run(&["rollback", "--yes"]);

    assert_eq!(verify.code, 1, "{}{}", verify.stdout, verify.stderr);
    assert!(
        verify
            .stdout
            .contains("entry `data/link/written-through` would be written through symlink `data/link`"),
        "names the entry: {}",
        verify.stdout
    );
    let ok: Option<bool> = sandbox.catalog_value(&format!("SELECT verify_ok FROM backups WHERE id = {crafted}"));
    assert_eq!(ok, Some(false), "the failed verification is recorded");
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    let restored: i64 = sandbox.catalog_value("SELECT backup_id FROM restores");
    assert_eq!(restored, good, "rollback took the older backup that restores");
    assert!(!Path::new("/etc/written-through").exists());
}

#[test]
fn a_restore_that_would_put_a_file_where_a_folder_is_is_refused_and_changes_nothing() {
    let sandbox = deployment();
    let archive = crafted_archive(sandbox.path(), &[("data", b'0', "", b"a file, not a folder")]);
    let (_, id) = register(&sandbox, &archive, "backup");
    let live = tree_manifest(&sandbox.work());

    let run = sandbox.run(&["restore", &id.to_string()]);

    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let line = format!(
        "cannot restore {}: it is a folder, and the archive holds a file for it (`data`)",
        sandbox.work().join("data").display()
    );
    assert!(run.stdout.contains(&line), "expected `{line}` in:\n{}", run.stdout);
    assert_eq!(
        tree_manifest(&sandbox.work()),
        live,
        "live data untouched, no staged copy left beside it"
    );
    let restored: String = sandbox.catalog_value("SELECT status FROM restores");
    assert_eq!(restored, "failed");
}

#[test]
fn a_restore_of_part_of_a_tree_never_goes_through_a_symlink_in_the_live_data() {
    let sandbox = deployment();
    let id = backup(&sandbox, "backup").to_string();
    // The live `uploads` became a link to a folder outside the deployment (a restored link may point anywhere).
    let outside = sandbox.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("with space.txt"), b"not the deployment's").unwrap();
    let uploads = sandbox.work().join("data/uploads");
    std::fs::remove_dir_all(&uploads).unwrap();
    std::os::unix::fs::symlink(&outside, &uploads).unwrap();
    let before = outside_storage(&sandbox);

    let run = sandbox.run(&["restore", &id, "--only", "data/uploads/with space.txt"]);

    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("{} is a symlink", uploads.display())),
        "{}",
        run.stdout
    );
    assert_eq!(
        outside_storage(&sandbox),
        before,
        "nothing written through the link, nor anywhere else"
    );
}

/// Everything in the sandbox but hookrun's own files (storage, catalog) and the work dir's own mtime (the staging
/// folder beside the target is created and removed in it).
fn outside_storage(sandbox: &Sandbox) -> std::collections::BTreeMap<PathBuf, String> {
    let mut manifest = tree_manifest(sandbox.path());
    manifest.retain(|path, _| {
        !path.starts_with("storage") && !path.to_string_lossy().starts_with("catalog.db") && path != Path::new("work")
    });
    manifest
}

#[test]
fn prune_follows_its_rules_and_keeps_the_newest_verified_backup() {
    let sandbox = deployment();
    let ids: Vec<i64> = ["pre-upgrade", "backup", "pre-upgrade", "backup", "backup"]
        .iter()
        .map(|k| backup(&sandbox, k))
        .collect();
    assert_eq!(sandbox.run(&["verify", &ids[1].to_string()]).code, 0);

    let dry = sandbox.run(&["prune", "--keep-last", "1", "--dry-run", "--json"]);
    assert_eq!(sandbox.archives().len(), 5, "a dry run deletes nothing");
    let run = sandbox.run(&["prune", "--keep-last", "1", "--keep-pre-upgrade", "1", "--json"]);

    assert_eq!(
        dry.json()["deleted"],
        serde_json::json!([ids[0], ids[2], ids[3]]),
        "keep-last 1 + newest verified"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["deleted"], serde_json::json!([ids[0], ids[3]]));
    let left: Vec<i64> = {
        let catalog = sandbox.catalog();
        let mut stmt = catalog.prepare("SELECT id FROM backups ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(left, [ids[1], ids[2], ids[4]]);
    assert_eq!(sandbox.archives().len(), 3, "each deleted row took its archive with it");
    assert_eq!(sandbox.run(&["prune"]).code, 2, "prune without a rule is refused");
}

#[test]
fn delete_removes_the_archive_and_then_the_row() {
    let sandbox = deployment();
    let id = backup(&sandbox, "backup");

    let run = sandbox.run(&["delete", &id.to_string()]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(sandbox.archives().is_empty());
    assert!(backup_rows(&sandbox.catalog()).is_empty());
}

#[test]
fn migrate_storage_moves_archives_across_filesystems_resuming_after_a_full_disk() {
    let sandbox = deployment();
    let blob = sandbox.file("data/blob", b"", 0o644);
    sh(&format!("head -c 3145728 /dev/urandom > '{}'", blob.display()));
    let ids: Vec<i64> = (0..3).map(|_| backup(&sandbox, "backup")).collect();
    let new_dir = sandbox.path().join("new-storage");
    std::fs::create_dir_all(&new_dir).unwrap();
    // Another filesystem, with room for two archives and not three.
    sh(&format!(
        "mount -t tmpfs -o size=7m hookrun-migrate '{}'",
        new_dir.display()
    ));
    let _unmount = Unmount(new_dir.clone());

    let first = sandbox.run(&["migrate-storage", new_dir.to_str().unwrap()]);
    assert_ne!(
        first.code, 0,
        "the third archive does not fit: {}{}",
        first.stdout, first.stderr
    );
    let in_new = |sandbox: &Sandbox| -> usize {
        backup_rows(&sandbox.catalog())
            .iter()
            .filter(|r| r.path.as_deref().unwrap().starts_with(new_dir.to_str().unwrap()))
            .count()
    };
    assert_eq!(in_new(&sandbox), 2, "two moved before the disk filled");
    sh(&format!("mount -o remount,size=20m '{}'", new_dir.display()));
    let second = sandbox.run(&["migrate-storage", new_dir.to_str().unwrap()]);

    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert!(
        second.stdout.contains("storage_dir ="),
        "says what to change: {}",
        second.stdout
    );
    assert_eq!(in_new(&sandbox), 3);
    assert!(
        sandbox.archives().is_empty(),
        "the old copies are gone: {:?}",
        sandbox.storage_files()
    );
    let partials: Vec<_> = std::fs::read_dir(&new_dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partials.is_empty());
    for id in ids {
        let verify = sandbox.run(&["verify", &id.to_string()]);
        assert_eq!(
            verify.code, 0,
            "backup {id} verifies in its new place: {}",
            verify.stdout
        );
    }
}
