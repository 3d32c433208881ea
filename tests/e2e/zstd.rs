//! `compression = "zstd"` end to end on files: `hookrun backup` writes a `.tar.zst` that the catalog records,
//! `hookrun verify` passes, `hookrun restore` puts the data back byte for byte; `hookrun recover` removes a dead
//! run's `.tar.zst.partial`; a bad `compression` is refused before anything is touched. Needs the `zstd` tool
//! (`apt-get install zstd`).

use hookrun_e2e::{backup_rows, sh, sha256_file, tree_manifest, Sandbox};

/// A deployment on files and a backup-only chain that writes zstd at its default level.
fn deployment() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file(
        "data/db/table.dat",
        &(0..200_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<_>>(),
        0o640,
    );
    sandbox.file("data/uploads/ünïcödé.txt", b"utf-8 name", 0o600);
    sandbox.file(&format!("data/uploads/{}", "x".repeat(200)), b"a long name", 0o644);
    sandbox.file("config/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    std::fs::create_dir_all(sandbox.work().join("data/empty")).unwrap();
    std::os::unix::fs::symlink("db/table.dat", sandbox.work().join("data/current")).unwrap();
    sandbox.config(
        r#"
[[hook]]
name = "backup"
builtin = "backup"
[hook.config]
sources = ["data", "config"]
compression = "zstd"

[[hook]]
name = "record"
builtin = "record"
"#,
    );
    sandbox
}

#[test]
fn a_zstd_backup_is_recorded_verified_and_restored() {
    let sandbox = deployment();
    let before = tree_manifest(&sandbox.work());

    let backup = sandbox.run(&["backup", "--version", "2.0", "--json"]);

    assert_eq!(backup.code, 0, "stdout:\n{}\nstderr:\n{}", backup.stdout, backup.stderr);
    let id = backup.json()["backup"]["id"].as_i64().unwrap().to_string();
    let rows = backup_rows(&sandbox.catalog());
    assert_eq!(rows.len(), 1, "{rows:?}");
    let path = rows[0].path.clone().expect("a path");
    assert!(path.ends_with(".tar.zst"), "{path}");
    assert!(
        std::path::Path::new(&path).starts_with(sandbox.storage()),
        "{path} is in storage"
    );
    assert_eq!(rows[0].status, "completed");
    assert_eq!(rows[0].sha256.as_deref(), Some(sha256_file(path.as_ref()).as_str()));
    let compression: String = sandbox.catalog_value("SELECT compression FROM backups");
    assert_eq!(compression, "zstd-3", "the default zstd level");
    assert_eq!(sandbox.archives(), [std::path::PathBuf::from(&path)]);
    assert!(
        sandbox.leftovers().iter().all(|n| !n.ends_with(".partial")),
        "no temporary archive left: {:?}",
        sandbox.leftovers()
    );
    sh(&format!("zstd -q -t '{path}'"));
    let list = sandbox.run(&["list"]);
    assert!(
        list.stdout.contains(".tar.zst"),
        "`list` shows the path:\n{}",
        list.stdout
    );

    let verify = sandbox.run(&["verify", &id]);
    assert_eq!(verify.code, 0, "stdout:\n{}\nstderr:\n{}", verify.stdout, verify.stderr);
    let verified: Option<bool> = sandbox.catalog_value("SELECT verify_ok FROM backups");
    assert_eq!(verified, Some(true));

    // The live data moves on, then the backup is restored.
    std::fs::write(sandbox.work().join("data/db/table.dat"), b"overwritten").unwrap();
    std::fs::remove_dir_all(sandbox.work().join("config")).unwrap();
    let restore = sandbox.run(&["restore", &id]);

    assert_eq!(
        restore.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        restore.stdout, restore.stderr
    );
    assert_eq!(
        tree_manifest(&sandbox.work()),
        before,
        "restored byte for byte and in metadata"
    );
}

#[test]
fn recover_removes_the_temporary_zstd_archive_of_a_run_killed_while_writing_it() {
    let sandbox = Sandbox::new();
    sandbox.file("data/file", b"content", 0o644);
    // The run waits in a hook before `backup`; the temporary archive it would have been writing is put in place
    // by the test, under the name `backup` gives it, and then the run is killed.
    sandbox.config(
        r#"
[[hook]]
name = "pause"
builtin = "command"
[hook.config]
command = ["sh", "-c", "touch ../paused; while [ ! -f ../go ]; do sleep 0.1; done"]

[[hook]]
name = "backup"
builtin = "backup"
[hook.config]
sources = ["data"]
compression = "zstd"

[[hook]]
name = "record"
builtin = "record"
"#,
    );
    let mut child = sandbox.command(&["backup"]).spawn().unwrap();
    let paused = sandbox.path().join("paused");
    for _ in 0..3000 {
        if paused.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(paused.exists(), "the run never reached its pause");
    let id: i64 = sandbox.catalog_value("SELECT id FROM runs");
    let partial = sandbox.storage().join(format!(".backup-run{id}.tar.zst.partial"));
    std::fs::create_dir_all(sandbox.storage()).unwrap();
    std::fs::write(&partial, [0x28, 0xb5, 0x2f, 0xfd]).unwrap();

    child.kill().unwrap(); // SIGKILL: no clean-up code runs
    child.wait().unwrap();
    std::fs::write(sandbox.path().join("go"), b"").unwrap(); // lets the orphaned pause loop end
    let recover = sandbox.run(&["recover"]);

    assert_eq!(
        recover.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        recover.stdout, recover.stderr
    );
    assert!(!partial.exists(), "left behind: {:?}", sandbox.storage_files());
    let status: String = sandbox.catalog_value("SELECT status FROM runs");
    assert_eq!(status, "interrupted");
}

#[test]
fn a_bad_compression_is_refused_at_its_value_before_anything_is_touched() {
    for (config, location, message) in [
        (
            "compression = \"xz\"",
            "11:15",
            "`compression` must be \"gzip\" or \"zstd\"",
        ),
        (
            "compression = \"zstd\"\ncompression_level = 22",
            "12:21",
            "`compression_level` must be 1–19 for zstd",
        ),
    ] {
        let sandbox = Sandbox::new();
        std::fs::create_dir_all(sandbox.work().join("data")).unwrap();
        sandbox.config(&format!(
            "[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nsources = [\"data\"]\n{config}\n"
        ));

        let run = sandbox.run(&["backup", "--version", "1"]);

        assert_eq!(run.code, 2, "{config}: exits 2 on a bad config\n{}", run.stderr);
        let expected = format!("{}:{location}: ", sandbox.config_path().display());
        assert!(
            run.stderr.contains(&expected) && run.stderr.contains(message),
            "{config}: expected `{expected}…{message}` in:\n{}",
            run.stderr
        );
        assert!(!sandbox.storage().exists(), "{config}: nothing touched");
    }
}
