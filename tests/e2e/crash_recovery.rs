//! A run that dies or is interrupted with the services stopped: `recover` after kill -9 brings them back and marks
//! the run interrupted, SIGTERM stops the current hook and brings them back, and one run at a time holds the storage dir.

use hookrun_e2e::deployment::{assert_all_back, paused_run, wait_for_phase, world, PAUSE};
use std::process::Stdio;

#[test]
fn after_kill_9_with_services_stopped_recover_brings_them_back_and_marks_the_run_interrupted() {
    let Some(world) = world(PAUSE) else { return };
    let mut child = paused_run(&world);

    child.kill().unwrap(); // SIGKILL: no clean-up code runs
    child.wait().unwrap();
    std::fs::write(world.sandbox.path().join("go"), b"").unwrap(); // lets the orphaned pause loop end
    let states = world.project.states(&world.docker);
    assert!(
        states.values().all(|(s, _)| s == "exited"),
        "the run died with services stopped: {states:?}"
    );

    let list = world.sandbox.run(&["list"]);
    assert!(
        list.stderr.contains("was interrupted during hook pause"),
        "the next invocation warns:\n{}",
        list.stderr
    );
    let recover = world.sandbox.run(&["recover"]);

    assert_eq!(
        recover.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        recover.stdout, recover.stderr
    );
    assert_all_back(&world);
    let status: String = world.sandbox.catalog_value("SELECT status FROM runs");
    assert_eq!(status, "interrupted");
    assert!(world
        .sandbox
        .leftovers()
        .iter()
        .all(|n| !n.starts_with(".staging/") && !n.ends_with(".partial")));
    let again = world.sandbox.run(&["recover"]);
    assert!(again.stdout.contains("nothing to recover"), "{}", again.stdout);
}

#[test]
fn sigterm_stops_the_current_hook_brings_the_services_back_and_exits_1() {
    let Some(world) = world(PAUSE) else { return };
    let child = world
        .sandbox
        .command(&["pre-upgrade", "--version", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_phase(&world.sandbox, "hook pause");

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    std::fs::write(world.sandbox.path().join("go"), b"").unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("✗ pause (command)") && stdout.contains("interrupted by SIGTERM"),
        "{stdout}"
    );
    assert!(stdout.contains("- backup (backup) skipped"), "{stdout}");
    assert!(stdout.contains("✓ start (start)"), "the always hooks ran: {stdout}");
    let (status, error): (String, String) = world
        .sandbox
        .catalog()
        .query_row("SELECT status, error FROM runs", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(
        (status.as_str(), error.as_str()),
        ("failed", "hook pause: interrupted by SIGTERM")
    );
    assert_all_back(&world);
}

#[test]
fn a_second_run_while_one_holds_the_storage_dir_exits_4_naming_the_holder() {
    let Some(world) = world(PAUSE) else { return };
    let mut first = paused_run(&world);

    let second = world.sandbox.run(&["backup"]);
    std::fs::write(world.sandbox.path().join("go"), b"").unwrap();
    let first = first.wait().unwrap();

    assert_eq!(second.code, 4, "stdout:\n{}\nstderr:\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("another hookrun holds the lock"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("run 1 (pre-upgrade v1, pid"),
        "names the holder: {}",
        second.stderr
    );
    assert_eq!(first.code(), Some(0), "the first run finished undisturbed");
    assert_all_back(&world);
}
