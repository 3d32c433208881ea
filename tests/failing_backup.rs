//! A backup that fails leaves no archive and no temporary file, records a `failed` row and exits 1: an unreadable
//! source, a full disk, a free-space preflight that says no, and a timeout mid-archive.

use std::os::unix::process::CommandExt;

use hookrun_e2e::{backup_rows, sh, Sandbox};

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

/// Unmounts a test filesystem when the test ends, however it ends.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
