//! The `snapshot` hook's `copies` policy end to end (no Docker: a chain of snapshot → backup → record over files):
//! by default it clones where storage can and pre-copies elsewhere; `copies = "clone"` archives in place where
//! storage cannot clone, `copies = "any"` copies byte by byte instead. All give the same archive.
//!
//! Against a real Compose project: with a snapshot the services are back before the archive is written; a pre-copy
//! taken while a service keeps writing archives the tree as it stood at the stop; and when the copies do not fit
//! the snapshot archives with the services stopped.

use hookrun_e2e::deployment::{assert_all_back, world, World};
use hookrun_e2e::docker::TEST_IMAGE;
use hookrun_e2e::docker::{engine, ensure_test_image, first, parse_ns, unique_project, ComposeProject, EventLog};
use hookrun_e2e::{sh, tree_manifest, Sandbox, Unmount};

/// A deployment with a little data and a chain whose snapshot takes `copies` (none: the default).
fn deployment(copies: Option<&str>) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("data/db/table.dat", &vec![7u8; 300_000], 0o640);
    sandbox.file("data/uploads/a.txt", b"hello", 0o644);
    let copies = copies.map_or(String::new(), |c| format!("copies = \"{c}\"\n"));
    sandbox.config(&format!(
        r#"
[[hook]]
name = "snapshot"
builtin = "snapshot"
[hook.config]
backup = "backup"
{copies}
[[hook]]
name = "backup"
builtin = "backup"
[hook.config]
sources = ["data"]

[[hook]]
name = "record"
builtin = "record"
"#
    ));
    sandbox
}

/// Whether the storage's file system clones files from the work dir, asked of GNU `cp --reflink=always`.
fn storage_clones(sandbox: &Sandbox) -> bool {
    std::fs::create_dir_all(sandbox.storage()).unwrap();
    let probe = sandbox.storage().join("cp-probe");
    let cloned = std::process::Command::new("cp")
        .arg("--reflink=always")
        .arg(sandbox.work().join("data/db/table.dat"))
        .arg(&probe)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    let _ = std::fs::remove_file(&probe);
    cloned
}

/// The output `key` that the hook `hook` recorded in the catalog (SQL NULL when it set none).
fn hook_output<T: rusqlite::types::FromSql>(sandbox: &Sandbox, hook: &str, key: &str) -> T {
    sandbox.catalog_value(&format!(
        "SELECT json_extract(outputs, '$.{key}') FROM hook_results WHERE name = '{hook}'"
    ))
}

/// Runs a backup, checks it completed and its archive holds the data exactly; returns the snapshot's mode.
fn backup_and_mode(sandbox: &Sandbox) -> (String, Option<String>) {
    let run = sandbox.run(&["backup", "--version", "1"]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let restored = sandbox.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    sh(&format!(
        "tar -xzf '{}' -C '{}'",
        sandbox.archives()[0].display(),
        restored.display()
    ));
    assert_eq!(tree_manifest(&restored), tree_manifest(&sandbox.work()));
    (
        hook_output(sandbox, "snapshot", "mode"),
        hook_output(sandbox, "snapshot", "reason"),
    )
}

#[test]
fn by_default_the_snapshot_clones_where_storage_clones_and_pre_copies_elsewhere() {
    let sandbox = deployment(None);
    let clones = storage_clones(&sandbox);

    let (mode, reason) = backup_and_mode(&sandbox);

    assert_eq!(mode, if clones { "copy" } else { "pre-copy" }, "{reason:?}");
}

#[test]
fn with_copies_pre_copy_the_snapshot_pre_copies_even_where_storage_clones() {
    let sandbox = deployment(Some("pre-copy"));

    let (mode, _) = backup_and_mode(&sandbox);

    assert_eq!(mode, "pre-copy");
    let entries: String = hook_output(&sandbox, "snapshot", "pre_copied_entries");
    assert_eq!(entries, "5", "data, db, uploads and their two files");
}

#[test]
fn with_copies_clone_the_snapshot_archives_in_place_where_storage_cannot_clone() {
    let sandbox = deployment(Some("clone"));
    let clones = storage_clones(&sandbox);

    let (mode, reason) = backup_and_mode(&sandbox);

    if clones {
        assert_eq!(mode, "copy", "storage clones here: {reason:?}");
    } else {
        assert_eq!(mode, "in place", "storage cannot clone here");
        let reason = reason.expect("the reason is recorded");
        assert!(
            reason.contains("cannot clone") && reason.contains("copies = \"auto\""),
            "{reason}"
        );
    }
}

#[test]
fn a_snapshot_that_archives_in_place_says_so_once_in_plain_words_and_the_backup_is_not_shown_as_work() {
    let sandbox = deployment(Some("clone"));
    if storage_clones(&sandbox) {
        return; // here the snapshot copies: nothing to say
    }

    let run = sandbox.run(&["backup", "--version", "1"]);

    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        !run.stderr.contains("WARN"),
        "expected where storage cannot clone, so no warning: {}",
        run.stderr
    );
    let said: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("wrote the archive itself with the services stopped"))
        .collect();
    assert_eq!(said.len(), 1, "said once:\n{}", run.stdout);
    assert!(said[0].contains("cannot clone"), "{}", said[0]);
    assert!(
        run.stdout
            .contains("- backup (backup) had nothing left to do: the snapshot already wrote the archive"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("✓ backup"), "{}", run.stdout);
}

#[test]
fn with_copies_any_the_snapshot_copies_even_where_storage_cannot_clone() {
    let sandbox = deployment(Some("any"));

    let (mode, _) = backup_and_mode(&sandbox);

    assert_eq!(mode, "copy");
}

#[test]
fn copies_must_be_one_of_the_four_policies() {
    let sandbox = deployment(Some("always"));

    let run = sandbox.run(&["backup", "--version", "1"]);

    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`copies` must be \"auto\", \"clone\", \"pre-copy\" or \"any\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hooks.toml"), "names the file: {}", run.stderr);
}

/// The hook tables stop → snapshot (`copy`, taking `copies`) → start → backup (with `backup_config`) → record.
fn snapshot_chain(copies: &str, backup_config: &str) -> String {
    format!(
        "
[[hook]]
name = \"stop\"
builtin = \"stop\"

[[hook]]
name = \"copy\"
builtin = \"snapshot\"
config = {{ backup = \"backup\", copies = \"{copies}\" }}

[[hook]]
name = \"start\"
builtin = \"start\"

[[hook]]
name = \"backup\"
builtin = \"backup\"
config = {{ {backup_config} }}

[[hook]]
name = \"record\"
builtin = \"record\"
"
    )
}

/// The world's `[runner]` table and [`snapshot_chain`] over its config, volumes and bind mounts.
fn use_snapshot_chain(world: &World, copies: &str) {
    let runner = std::fs::read_to_string(world.sandbox.config_path()).unwrap();
    let runner = &runner[..runner.find("[[hook]]").unwrap()];
    let chain = snapshot_chain(copies, "sources = [\"config\"], volumes = \"auto\"");
    world.sandbox.raw_config(&format!("{runner}{chain}"));
}

#[test]
fn with_a_snapshot_the_services_are_back_before_the_archive_is_written() {
    let Some(world) = world("") else { return };
    // Byte copies allowed: the test machine's storage need not clone.
    use_snapshot_chain(&world, "any");
    let events = EventLog::start(&world.docker);

    let run = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);

    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let events = events.snapshot();
    let (backup_started, _): (String, i64) = world
        .sandbox
        .catalog()
        .query_row(
            "SELECT started_at, duration_ms FROM hook_results WHERE name = 'backup'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let p = world.project.name.as_str();
    for service in ["db", "app", "web", "cache"] {
        assert!(
            first(&events, p, "start", service) <= parse_ns(&backup_started),
            "{service} was back before the archive"
        );
    }
    let archive = &world.sandbox.archives()[0];
    let listing = sh(&format!("tar -tzf '{}'", archive.display()));
    assert!(
        listing.lines().any(|l| l == format!("volumes/{p}_dbdata/boots")),
        "{listing}"
    );
    assert!(listing.lines().any(|l| l == "binds/appdata/uploads/a.txt"), "{listing}");
    let sources: Vec<String> = {
        let catalog = world.sandbox.catalog();
        let mut stmt = catalog
            .prepare("SELECT host_path FROM backup_sources WHERE kind != 'compose' ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert!(
        sources.iter().all(|s| !s.contains(".staging")),
        "restores target the live places: {sources:?}"
    );
    assert_eq!(run.json()["backup"]["status"], "completed");
    assert!(
        world.sandbox.leftovers().iter().all(|n| !n.starts_with(".staging/")),
        "the copies are gone"
    );
    assert_all_back(&world);
}

#[test]
fn when_the_pre_copy_does_not_fit_the_snapshot_archives_with_the_services_stopped_and_says_why() {
    let Some(world) = world("") else { return };
    // tmpfs cannot clone from the work dir: by default the snapshot would pre-copy.
    use_snapshot_chain(&world, "auto");
    // 16 MB of zeros: the copy cannot fit in a 4 MiB storage, the archive (a few KiB) can.
    sh(&format!(
        "head -c 16000000 /dev/zero > '{}'",
        world.sandbox.file("config/zeros.bin", b"", 0o644).display()
    ));
    std::fs::create_dir_all(world.sandbox.storage()).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=4m hookrun-small '{}'",
        world.sandbox.storage().display()
    ));
    let _unmount = Unmount(world.sandbox.storage());
    let events = EventLog::start(&world.docker);

    let run = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);

    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["backup"]["status"], "completed");
    let mode: String = hook_output(&world.sandbox, "copy", "mode");
    assert_eq!(mode, "in place");
    let reason: String = hook_output(&world.sandbox, "copy", "reason");
    assert!(reason.contains("the pre-copy and the archive need"), "{reason}");
    assert_eq!(
        run.json()["hooks"][1]["outputs"]["pre_copy_ms"],
        serde_json::Value::Null,
        "nothing was pre-copied"
    );
    let archive = &world.sandbox.archives()[0];
    let written_ns = std::fs::metadata(archive)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let events = events.snapshot();
    let p = world.project.name.as_str();
    for service in ["db", "app", "web", "cache"] {
        assert!(
            written_ns <= first(&events, p, "start", service),
            "the archive was complete before {service} started"
        );
    }
    let listing = sh(&format!("tar -tzf '{}'", archive.display()));
    assert!(listing.lines().any(|l| l == "config/zeros.bin"), "{listing}");
    assert_all_back(&world);
}

/// A service that, on its first start, keeps rewriting, deleting and creating files, folders and links in its bind
/// mount `./data` until it is stopped; started again, it only idles. So the tree after a run is the tree as it stood
/// at the stop. (`$$` is Compose's escape for a shell's `$`.)
const WRITER: &str = "trap 'exit 0' TERM; \
    if [ -e /data/.written ]; then while true; do sleep 0.2; done; fi; touch /data/.written; i=0; \
    while true; do i=$$((i + 1)); n=$$((i % 2000)); d=d$$((n % 20)); \
      echo round $$i > /data/$$d/f$$n; rm -f /data/$$d/g$$(((i + 7) % 2000)); echo new > /data/$$d/g$$n; \
      mkdir -p /data/new$$((i % 13)); ln -sfn f$$n /data/$$d/link$$((i % 50)); done";

#[test]
fn a_pre_copy_taken_while_a_service_writes_archives_the_tree_as_it_stood_at_the_stop() {
    let Some(docker) = engine() else { return };
    ensure_test_image(&docker);
    let sandbox = Sandbox::new();
    for i in 0..2000 {
        sandbox.file(
            &format!("data/d{}/f{i}", i % 20),
            format!("file {i} ").repeat(i % 300).as_bytes(),
            0o644,
        );
    }
    sandbox.file("data/big.bin", &vec![5u8; 8 << 20], 0o600);
    let written = std::time::Instant::now();
    let name = unique_project("hrpc");
    let compose = format!(
        "version: \"2.4\"\nservices:\n  writer:\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"{WRITER}\"]\n    \
         volumes: [\"./data:/data\"]\n"
    );
    let _project = ComposeProject::up(&name, &sandbox.work(), &compose);
    // The writer is at work before the run begins.
    while !sandbox.work().join("data/d1/g1").exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Entries changed within two seconds of the pre-copy are copied again whatever they look like (a change in the
    // same clock tick could hide): the ones the writer leaves alone must be older than that.
    std::thread::sleep(std::time::Duration::from_millis(2500).saturating_sub(written.elapsed()));
    sandbox.raw_config(&format!(
        "[runner]\nproject = \"{name}\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n{}",
        snapshot_chain("pre-copy", "sources = [\"data\"]")
    ));

    let run = sandbox.run(&["backup", "--version", "1"]);

    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("before the stop: pre-copied"), "{}", run.stdout);
    let outputs = |key: &str| -> i64 {
        let value: String = hook_output(&sandbox, "copy", key);
        value.parse().unwrap()
    };
    assert!(
        outputs("refreshed_entries") > 0,
        "the writer changed files after the pre-copy"
    );
    // How many files the writer reaches before the stop depends on the machine's load; `big.bin` and `.written` it
    // never touches.
    assert!(
        outputs("unchanged_entries") >= 2,
        "what did not change was not copied again"
    );
    let restored = sandbox.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    sh(&format!(
        "tar -xzf '{}' -C '{}'",
        sandbox.archives()[0].display(),
        restored.display()
    ));
    assert_eq!(
        tree_manifest(&restored.join("data")),
        tree_manifest(&sandbox.work().join("data")),
        "the archive holds the tree as it stood at the stop: every file's content, mode and mtime, every folder and link"
    );
}
