//! `hookrun pre-upgrade` end to end on files: the archive is named as the seed names it, recorded as completed
//! with its true SHA-256, and GNU tar gets the sources back byte for byte.

use hookrun_e2e::{backup_rows, sh, sha256_file, tree_manifest, Sandbox};

fn deployment() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file(
        "data/db/table.dat",
        &(0..200_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<_>>(),
        0o640,
    );
    sandbox.file("data/uploads/photo one.jpg", b"\xff\xd8 not really a jpeg", 0o644);
    sandbox.file("data/uploads/ünïcödé.txt", b"utf-8 name", 0o600);
    sandbox.file(
        &format!("data/uploads/{}", "x".repeat(200)),
        b"a 200-character name",
        0o644,
    );
    sandbox.file("config/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    std::fs::create_dir_all(sandbox.work().join("data/empty/nested-empty")).unwrap();
    std::os::unix::fs::symlink("db/table.dat", sandbox.work().join("data/current")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", sandbox.work().join("data/dangling")).unwrap();
    sandbox.config(
        r#"
[[hook]]
name = "backup"
builtin = "backup"
[hook.config]
sources = ["data", "config"]

[[hook]]
name = "record"
builtin = "record"
"#,
    );
    sandbox
}

#[test]
fn pre_upgrade_writes_a_named_recorded_archive_that_tar_restores_exactly() {
    let sandbox = deployment();

    let run = sandbox.run(&["pre-upgrade", "--version", "1.2.3"]);

    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let archives = sandbox.archives();
    assert_eq!(archives.len(), 1, "one archive: {:?}", sandbox.storage_files());
    let name = archives[0].file_name().unwrap().to_string_lossy().into_owned();
    let stamp = name
        .strip_prefix("backup_pre-upgrade_v1.2.3_")
        .and_then(|s| s.strip_suffix(".tar.gz"));
    let stamp = stamp.unwrap_or_else(|| panic!("seed naming: {name}"));
    assert_eq!(stamp.len(), "2023-12-01_14-30-25".len(), "{name}");
    assert!(
        stamp.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '_'),
        "{name}"
    );

    let rows = backup_rows(&sandbox.catalog());
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let sha = &row.sha256;
    assert_eq!(row.status, "completed");
    assert_eq!(row.error, None);
    assert_eq!(row.path.as_deref(), Some(archives[0].to_str().unwrap()));
    let sha256sum = sh(&format!("sha256sum '{}'", archives[0].display()));
    assert_eq!(
        sha.as_deref(),
        sha256sum.split_whitespace().next(),
        "catalog SHA-256 is sha256sum's"
    );
    assert_eq!(sha.as_deref(), Some(sha256_file(&archives[0]).as_str()));

    let (kind, run_status): (String, String) = sandbox
        .catalog()
        .query_row(
            "SELECT b.type, r.status FROM backups b JOIN runs r ON r.id = b.run_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), run_status.as_str()), ("pre-upgrade", "completed"));

    let restored = sandbox.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    sh(&format!(
        "tar -xzf '{}' -C '{}'",
        archives[0].display(),
        restored.display()
    ));
    assert_eq!(
        tree_manifest(&restored),
        tree_manifest(&sandbox.work()),
        "GNU tar restores the sources exactly"
    );
    sh(&format!("gzip -t '{}'", archives[0].display()));
}

#[test]
fn archives_are_not_world_readable_and_leave_nothing_else_in_storage() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = deployment();

    let run = sandbox.run(&["backup", "--version", "7"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    let archive = &sandbox.archives()[0];
    assert!(archive
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("backup_manual_v7_"));
    assert_eq!(std::fs::metadata(archive).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        sandbox
            .leftovers()
            .into_iter()
            .filter(|n| !n.ends_with(".tar.gz"))
            .count(),
        0
    );
}

#[test]
fn two_runs_in_the_same_second_give_two_archives() {
    let sandbox = Sandbox::new();
    sandbox.file(
        "data/a.txt",
        b"small, so that a run takes a fraction of a second",
        0o644,
    );
    sandbox.config("[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = { sources = [\"data\"] }\n\n[[hook]]\nname = \"record\"\nbuiltin = \"record\"\n");
    // A run takes a fraction of a second; among a few dozen pairs, two land in the same second even on a busy machine.
    for _ in 0..60 {
        let before = sandbox.archives().len();
        assert_eq!(sandbox.run(&["backup", "--version", "1"]).code, 0);
        assert_eq!(sandbox.run(&["backup", "--version", "1"]).code, 0);
        let archives = sandbox.archives();
        assert_eq!(archives.len(), before + 2, "every run keeps its own archive");
        let stamps: Vec<String> = archives[before..]
            .iter()
            .map(|a| a.file_name().unwrap().to_string_lossy()["backup_manual_v1_".len()..][..19].to_string())
            .collect();
        if stamps[0] == stamps[1] {
            let names: Vec<_> = archives[before..]
                .iter()
                .map(|a| a.file_name().unwrap().to_owned())
                .collect();
            assert!(
                names.iter().any(|n| n.to_string_lossy().ends_with("_2.tar.gz")),
                "{names:?}"
            );
            let rows = backup_rows(&sandbox.catalog());
            let paths: std::collections::HashSet<_> = rows.iter().map(|r| r.path.clone()).collect();
            assert_eq!(paths.len(), rows.len(), "each row has its own archive");
            return;
        }
    }
    panic!("no two runs landed in the same second in 60 tries");
}

#[test]
fn plan_shows_sources_and_touches_nothing() {
    let sandbox = deployment();

    let run = sandbox.run(&["plan"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("source data"), "{}", run.stdout);
    assert!(run.stdout.contains("source config"), "{}", run.stdout);
    assert!(!sandbox.storage().exists(), "plan created the storage dir");
    assert!(!sandbox.path().join("catalog.db").exists(), "plan created the catalog");
}
