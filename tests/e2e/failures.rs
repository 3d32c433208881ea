//! A backup that fails leaves no archive and no temporary file, records a `failed` row and exits 1: an unreadable
//! source, a full disk, a free-space preflight that says no, and a timeout mid-archive.
//!
//! Against a real Compose project: a failing backup still brings every service back (exit 1), a service that
//! will not start again exits 3 naming it, an unreachable engine stops nothing, and a project name that matches no
//! container is a configuration error.

use hookrun_e2e::deployment::{assert_all_back, world};
use hookrun_e2e::docker::{engine, EventLog};
use hookrun_e2e::{backup_rows, sh, Sandbox, Unmount};
use std::os::unix::process::CommandExt;

const CHAIN: &str = r#"
[[hook]]
name = "backup"
builtin = "backup"
{timeout}
[hook.config]
sources = ["data"]
{extra}

[[hook]]
name = "record"
builtin = "record"
"#;

fn chain(timeout: &str, extra: &str) -> String {
    CHAIN.replace("{timeout}", timeout).replace("{extra}", extra)
}

/// Asserts the aftermath every failed backup must have.
fn assert_failed_cleanly(sandbox: &Sandbox, run: &hookrun_e2e::Run, error_contains: &str) {
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        sandbox.archives().is_empty(),
        "no archive: {:?}",
        sandbox.storage_files()
    );
    let leftovers: Vec<_> = sandbox
        .leftovers()
        .into_iter()
        .filter(|n| !n.starts_with("catalog"))
        .collect();
    assert!(leftovers.is_empty(), "nothing left behind: {leftovers:?}");
    let rows = backup_rows(&sandbox.catalog());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failed");
    assert_eq!(rows[0].path, None, "a failed row points at no archive");
    let error = rows[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains(error_contains),
        "error `{error}` should contain `{error_contains}`"
    );
    assert!(
        run.stdout.contains(error_contains),
        "the operator sees it:\n{}",
        run.stdout
    );
}

/// Asserts the aftermath of a backup its preflight refused: exit 1, the reason shown, no hook run, nothing written
/// and nothing recorded (no run, no hook result, no backup).
fn assert_refused_cleanly(sandbox: &Sandbox, run: &hookrun_e2e::Run, error_contains: &str) {
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("! preflight of backup failed: {error_contains}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("run refused before anything was touched (nothing recorded)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("✓ record"), "no hook ran: {}", run.stdout);
    assert!(sandbox.archives().is_empty());
    for table in ["runs", "hook_results", "backups"] {
        let rows: i64 = sandbox.catalog_value(&format!("SELECT count(*) FROM {table}"));
        assert_eq!(rows, 0, "{table}");
    }
}

#[test]
fn an_unreadable_source_fails_the_backup_and_names_the_file() {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", &vec![b'a'; 1 << 20], 0o644);
    sandbox.file("data/secret.key", b"no one may read me", 0o000);
    sandbox.config(&chain("", ""));
    // Tests run as root, who reads anything: drop the capabilities that let root ignore file modes.
    let mut command = sandbox.command(&["backup"]);
    unsafe {
        command.pre_exec(|| {
            for cap in [1 /* CAP_DAC_OVERRIDE */, 2 /* CAP_DAC_READ_SEARCH */] {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }

    let run = sandbox.run_command(command);

    // The preflight's sample of the sources meets the file before anything is touched.
    assert_refused_cleanly(&sandbox, &run, "cannot read source");
    assert!(run.stdout.contains("data/secret.key"), "{}", run.stdout);
}

#[test]
fn a_full_disk_fails_the_backup_and_leaves_no_partial_archive() {
    let sandbox = Sandbox::new();
    // 8 MiB that does not compress, into a 2 MiB filesystem.
    sh(&format!(
        "head -c 8388608 /dev/urandom > '{}'",
        sandbox.file("data/blob", b"", 0o644).display()
    ));
    std::fs::create_dir_all(sandbox.storage()).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=2m hookrun-test '{}'",
        sandbox.storage().display()
    ));
    let _unmount = Unmount(sandbox.storage());
    // The preflight is turned off so the write itself meets the full disk.
    sandbox.config(&chain("", "min_free_factor = 0"));

    let run = sandbox.run(&["backup"]);

    assert_failed_cleanly(&sandbox, &run, "No space left on device");
}

#[test]
fn the_free_space_preflight_refuses_before_anything_is_written() {
    let sandbox = Sandbox::new();
    sandbox.file("data/a.txt", b"some data", 0o644);
    sandbox.config(&chain("", "min_free_factor = 1e15"));

    let run = sandbox.run(&["backup"]);

    assert_refused_cleanly(&sandbox, &run, "not enough free space");
}

#[test]
fn a_backup_that_outlives_its_timeout_removes_its_temporary_file() {
    let sandbox = Sandbox::new();
    sh(&format!(
        "head -c 67108864 /dev/urandom > '{}'",
        sandbox.file("data/blob", b"", 0o644).display()
    ));
    sandbox.config(&chain("timeout = \"20ms\"", "compression_level = 9"));

    let run = sandbox.run(&["backup"]);

    assert_failed_cleanly(&sandbox, &run, "timed out after 20ms");
}

#[test]
fn a_failing_backup_still_brings_every_service_back_and_exits_1() {
    let Some(world) = world("") else { return };
    // The backup fails after the services stopped: the disk fills while the archive is written (the preflight is
    // turned off so that it does not refuse first).
    sh(&format!(
        "head -c 4000000 /dev/urandom > '{}'",
        world.sandbox.file("config/blob", b"", 0o644).display()
    ));
    let config = std::fs::read_to_string(world.sandbox.config_path()).unwrap();
    world
        .sandbox
        .raw_config(&config.replace("volumes = \"auto\"", "volumes = \"auto\"\nmin_free_factor = 0"));
    std::fs::create_dir_all(world.sandbox.storage()).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=1m hookrun-full '{}'",
        world.sandbox.storage().display()
    ));
    let _unmount = Unmount(world.sandbox.storage());

    let run = world.sandbox.run(&["pre-upgrade", "--version", "1"]);

    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("✓ stop"), "{}", run.stdout);
    assert!(
        run.stdout.contains("✗ backup") && run.stdout.contains("No space left on device"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("✓ start"), "{}", run.stdout);
    assert!(world.sandbox.archives().is_empty());
    assert_all_back(&world);
}

#[test]
fn a_service_that_will_not_start_again_exits_3_naming_it() {
    let Some(world) = world("") else { return };
    world.sandbox.file("appdata/refuse-to-start", b"", 0o644);

    let run = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);

    assert_eq!(run.code, 3, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let error = run.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("services not restored: app: exited with code 1"),
        "{error}"
    );
    assert!(
        error.contains("refusing to start, marker present"),
        "the app's last log lines: {error}"
    );
    let states = world.project.states(&world.docker);
    assert_eq!(states["web"].0, "running", "the others still came back: {states:?}");
    assert_eq!(states["db"].0, "running", "{states:?}");
}

#[test]
fn an_unreachable_engine_is_a_clear_error_and_nothing_is_stopped() {
    let Some(world) = world("") else { return };
    let events = EventLog::start(&world.docker);
    let mut command = world.sandbox.command(&["pre-upgrade", "--version", "1"]);
    command.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");

    let run = world.sandbox.run_command(command);

    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{}",
        run.stdout
    );
    let lifecycle = ["kill", "stop", "die", "start", "restart"];
    let touched: Vec<_> = events
        .snapshot()
        .into_iter()
        .filter(|e| e.project == world.project.name && lifecycle.contains(&e.action.as_str()))
        .collect();
    assert!(touched.is_empty(), "nothing was stopped: {touched:#?}");
}

#[test]
fn a_project_name_that_matches_no_container_is_a_configuration_error() {
    let Some(_docker) = engine() else { return };
    let sandbox = Sandbox::new();
    sandbox.file("config/app.env", b"x", 0o644);
    let chain =
        "[[hook]]\nname = \"stop\"\nbuiltin = \"stop\"\n{allow}\n[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n\
                 config = { sources = [\"config\"] }\n[[hook]]\nname = \"start\"\nbuiltin = \"start\"\n";
    let runner =
        "[runner]\nproject = \"hookrun-no-such-project-anywhere\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\n";

    sandbox.raw_config(&format!("{runner}{}", chain.replace("{allow}", "")));
    let typo = sandbox.run(&["pre-upgrade", "--version", "1"]);
    sandbox.raw_config(&format!(
        "{runner}{}",
        chain.replace("{allow}", "config = { allow_empty = true }")
    ));
    let allowed = sandbox.run(&["pre-upgrade", "--version", "1"]);

    assert_eq!(typo.code, 2, "stdout:\n{}\nstderr:\n{}", typo.stdout, typo.stderr);
    assert!(typo
        .stdout
        .contains("no container has the label com.docker.compose.project=hookrun-no-such-project-anywhere"));
    assert!(
        !typo.stdout.contains("✓ start") && !typo.stdout.contains("✓ record"),
        "nothing touched, no hook ran: {}",
        typo.stdout
    );
    let catalog = rusqlite::Connection::open(sandbox.storage().join("catalog.db")).unwrap();
    let recorded: i64 = catalog
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded, 1, "only the opted-out run is recorded, not the refused one");
    assert!(
        sandbox.archives().len() == 1,
        "the opted-out run backed up: {:?}",
        sandbox.storage_files()
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stdout);
}
