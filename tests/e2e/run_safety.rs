//! A run that is cut short or crowded out never leaves the services down and never lies about it: a closed or full
//! stdout, a hung-up terminal (SIGHUP), a run that died before, a kill between placing the archive and recording
//! it, concurrent first runs, a deleted lock file, a permissive umask.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use hookrun_e2e::deployment::{assert_all_back, paused_after_backup, paused_run, wait_for_phase, world, PAUSE};
use hookrun_e2e::terminal::Terminal;
use hookrun_e2e::Sandbox;

/// The run of a world whose stdout nobody can read: a pipe whose reader is gone, or `/dev/full`.
fn run_with_broken_stdout(sandbox: &Sandbox, stdout: Stdio) -> hookrun_e2e::Run {
    let output = sandbox
        .command(&["pre-upgrade", "--version", "1"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    hookrun_e2e::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_stdout_that_cannot_be_written_does_not_stop_the_chain_and_the_exit_code_says_so() {
    let Some(world) = world("") else { return };
    let closed_pipe = {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { libc::close(fds[0]) }; // nobody will ever read: every write fails with EPIPE
        Stdio::from(unsafe { OwnedFd::from_raw_fd(fds[1]) })
    };
    let full_disk = Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());

    for (what, stdout) in [("a closed pipe", closed_pipe), ("/dev/full", full_disk)] {
        let run = run_with_broken_stdout(&world.sandbox, stdout);

        assert_eq!(run.code, 1, "{what}: stderr:\n{}", run.stderr);
        assert!(
            run.stderr.contains("hookrun: could not write to stdout"),
            "{what}: said on stderr:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
        assert_all_back(&world);
    }
    let catalog = world.sandbox.catalog();
    let statuses: Vec<(String, String)> = catalog
        .prepare("SELECT r.status, b.status FROM runs r JOIN backups b ON b.run_id = r.id ORDER BY r.id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let finished = ("completed".to_string(), "completed".to_string());
    assert_eq!(
        statuses,
        [finished.clone(), finished],
        "each chain ran to its end and was recorded"
    );
}

#[test]
fn a_terminal_that_hangs_up_stops_the_run_like_sigterm_and_the_services_come_back() {
    let Some(world) = world(PAUSE) else { return };
    let mut terminal = Terminal::spawn(world.sandbox.command(&["pre-upgrade", "--version", "1"]));
    wait_for_phase(&world.sandbox, "hook pause");

    terminal.hang_up(); // the SSH session drops: SIGHUP, and the terminal is gone for every later write
    let status = terminal.child.wait().unwrap();
    std::fs::write(world.sandbox.path().join("go"), b"").unwrap();

    assert_eq!(status.code(), Some(1), "exits 1 (not killed by SIGHUP): {status:?}");
    assert_all_back(&world);
    let (status, error): (String, String) = world
        .sandbox
        .catalog()
        .query_row("SELECT status, error FROM runs", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(
        (status.as_str(), error.as_str()),
        ("failed", "hook pause: interrupted by SIGHUP")
    );
}

#[test]
fn under_nohup_a_hang_up_is_ignored_and_the_run_completes() {
    let Some(world) = world(PAUSE) else { return };
    let mut command = world.sandbox.command(&["pre-upgrade", "--version", "1"]);
    command.stdout(Stdio::null());
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN); // what nohup does
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    wait_for_phase(&world.sandbox, "hook pause");

    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(world.sandbox.path().join("go"), b"").unwrap();
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(0), "{status:?}");
    let status: String = world.sandbox.catalog_value("SELECT status FROM runs");
    assert_eq!(status, "completed");
    assert_all_back(&world);
}

#[test]
fn a_run_after_one_that_died_recovers_it_first_and_ends_with_every_service_up() {
    let Some(world) = world(PAUSE) else { return };
    let mut dead = paused_run(&world);
    dead.kill().unwrap(); // SIGKILL: the services stay stopped
    dead.wait().unwrap();
    std::fs::write(world.sandbox.path().join("go"), b"").unwrap();

    let next = world.sandbox.run(&["pre-upgrade", "--version", "2"]);

    assert_eq!(next.code, 0, "stdout:\n{}\nstderr:\n{}", next.stdout, next.stderr);
    assert!(
        next.stdout
            .contains("recovered run 1 (pre-upgrade, interrupted during hook pause): started "),
        "says what it did first:\n{}",
        next.stdout
    );
    assert_all_back(&world);
    let statuses: Vec<String> = world
        .sandbox
        .catalog()
        .prepare("SELECT status FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, ["interrupted", "completed"]);
}

#[test]
fn an_archive_placed_by_a_run_killed_before_record_is_in_the_catalog_and_recover_accounts_for_it() {
    let sandbox = paused_after_backup();
    let mut child = sandbox
        .command(&["backup", "--version", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_phase(&sandbox, "hook pause");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    let archive = sandbox
        .archives()
        .pop()
        .expect("the archive was placed before the kill");

    let listed = sandbox.run(&["list", "--json"]);
    let rows = listed.json()["backups"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "list sees it: {}", listed.stdout);
    assert_eq!(rows[0]["path"], archive.to_str().unwrap());
    assert_eq!(
        rows[0]["status"], "failed",
        "never offered as usable: {}",
        listed.stdout
    );

    let recover = sandbox.run(&["recover"]);

    assert_eq!(recover.code, 0, "{}{}", recover.stdout, recover.stderr);
    assert!(
        recover
            .stdout
            .contains(&format!("its archive {} is recorded as failed", archive.display())),
        "{}",
        recover.stdout
    );
    let (status, error): (String, String) = sandbox
        .catalog()
        .query_row("SELECT status, error FROM backups", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(status, "failed");
    assert!(
        error.starts_with("run interrupted: interrupted during hook pause"),
        "{error}"
    );
    assert!(
        archive.is_file(),
        "the complete archive is kept, and prune or delete can remove it"
    );
    let deleted = sandbox.run(&["delete", "1"]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(!archive.exists());
}

#[test]
fn concurrent_first_runs_on_a_new_storage_dir_let_one_in_and_tell_the_others_exit_4() {
    let sandbox = paused_after_backup();
    let children: Vec<Child> = (0..6)
        .map(|_| {
            sandbox
                .command(&["backup", "--version", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_for_phase(&sandbox, "hook pause");
    let mut codes = Vec::new();
    let mut errors = Vec::new();
    let mut winner = None;
    for mut child in children {
        // Every loser ends on its own; the one that got in waits in its pause.
        match (0..500).find_map(|_| {
            let done = child.try_wait().unwrap();
            if done.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            done
        }) {
            Some(status) => {
                codes.push(status.code());
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
                errors.push(stderr);
            }
            None => winner = Some(child),
        }
    }
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    let winner = winner.expect("one run got in").wait().unwrap();

    assert_eq!(winner.code(), Some(0));
    assert_eq!(codes, [Some(4); 5], "{errors:#?}");
    assert!(
        errors.iter().all(|e| e.contains("another hookrun holds the lock")),
        "{errors:#?}"
    );
}

#[test]
fn deleting_the_lock_file_during_a_run_does_not_let_a_second_run_in() {
    let sandbox = paused_after_backup();
    let mut first = sandbox
        .command(&["backup", "--version", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_phase(&sandbox, "hook pause");
    std::fs::remove_file(sandbox.storage().join(".hookrun.lock")).unwrap();

    let second = sandbox.run(&["backup", "--version", "2"]);
    std::fs::write(sandbox.path().join("go"), b"").unwrap();

    assert_eq!(second.code, 4, "{}", second.stderr);
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

#[test]
fn storage_staging_lock_and_catalog_are_private_whatever_the_umask() {
    let sandbox = paused_after_backup();
    let mut command = sandbox.command(&["backup", "--version", "1"]);
    command.stdout(Stdio::null());
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    wait_for_phase(&sandbox, "hook pause");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let staging = sandbox.storage().join(".staging");
    let run_staging = std::fs::read_dir(&staging).unwrap().next().unwrap().unwrap().path();
    let during = [
        (sandbox.storage(), mode(&sandbox.storage())),
        (staging.clone(), mode(&staging)),
        (run_staging.clone(), mode(&run_staging)),
        (
            sandbox.storage().join(".hookrun.lock"),
            mode(&sandbox.storage().join(".hookrun.lock")),
        ),
    ];
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));

    for (path, found) in during {
        let expected = if path.ends_with(".hookrun.lock") { 0o600 } else { 0o700 };
        assert_eq!(found, expected, "{}: {found:o}", path.display());
    }
    for file in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        let path = sandbox.path().join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert_eq!(mode(&sandbox.archives()[0]), 0o600);
    // An existing catalog that someone made readable to all is made private again.
    std::fs::set_permissions(
        sandbox.path().join("catalog.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(sandbox.run(&["list"]).code, 0);
    assert_eq!(mode(&sandbox.path().join("catalog.db")), 0o600);
}

#[test]
fn an_archive_in_storage_the_catalog_does_not_know_is_named_by_list_and_fails_verify_all() {
    let sandbox = paused_after_backup();
    std::fs::write(sandbox.path().join("go"), b"").unwrap();
    assert_eq!(sandbox.run(&["backup", "--version", "1"]).code, 0);
    let known = sandbox.archives().pop().unwrap();
    let stray = sandbox.storage().join("backup_manual_v0.9_2026-01-01_00-00-00.tar.gz");
    std::fs::copy(&known, &stray).unwrap();

    let list = sandbox.run(&["list"]);
    let verify = sandbox.run(&["verify", "--all"]);
    let verify_json = sandbox.run(&["verify", "--all", "--json"]);

    let said = format!("{} (", stray.display());
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains(&said) && list.stdout.contains("is in storage but not in the catalog"),
        "{}",
        list.stdout
    );
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(verify.stdout.contains(&format!("FAILED  {said}")), "{}", verify.stdout);
    assert!(
        verify.stdout.contains(&format!("ok      1 {}", known.display())),
        "{}",
        verify.stdout
    );
    assert_eq!(
        verify_json.json()["unknown_archives"][0]["path"],
        stray.to_str().unwrap()
    );
}
