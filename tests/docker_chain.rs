//! The chain against a real Docker Engine and a real Compose project: dependency order seen in the engine's own
//! event stream, volumes and bind mounts in the archive, services back whatever fails, `recover` after kill -9,
//! one run at a time, a project name that matches nothing, and a WASM hook's exec killed (with its children)
//! however the hook ends early: timeout, signal, or its exec dropped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hookrun_e2e::deployment::{assert_all_back, paused_run, wait_for_phase, world, World, CHAIN, PAUSE};
use hookrun_e2e::docker::{engine, ensure_test_image, unique_project, ComposeProject, EventLog, TEST_IMAGE};
use hookrun_e2e::{sh, Sandbox};

/// The time (ns) of each service's first `action` event of `project`.
fn first(events: &[hookrun_e2e::docker::ContainerEvent], project: &str, action: &str, service: &str) -> i64 {
    events
        .iter()
        .find(|e| e.project == project && e.action == action && e.service == service)
        .unwrap_or_else(|| panic!("no {action} event for {service}: {events:#?}"))
        .time_nano
}

#[test]
fn pre_upgrade_stops_dependents_first_archives_volumes_and_starts_dependencies_first() {
    let Some(world) = world("") else { return };
    let neighbour_dir = world.sandbox.path().join("neighbour");
    // A project whose name merely starts with ours: it must never be touched.
    let neighbour_name = format!("{}b", world.project.name);
    let neighbour = ComposeProject::up(
        &neighbour_name,
        &neighbour_dir,
        &format!("version: \"2.4\"\nservices:\n  db:\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 0.2; done\"]\n"),
    );
    neighbour.wait_ready(&world.docker);
    let events = EventLog::start(&world.docker);

    let run = world.sandbox.run(&["pre-upgrade", "--version", "1.2.3", "--json"]);

    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let events = events.snapshot();
    let p = world.project.name.as_str();
    let (stop, start) = ("die", "start");
    assert!(
        first(&events, p, stop, "web") < first(&events, p, stop, "app"),
        "web stops before app"
    );
    assert!(
        first(&events, p, stop, "app") < first(&events, p, stop, "db"),
        "app stops before db"
    );
    assert!(
        first(&events, p, start, "db") < first(&events, p, start, "app"),
        "db starts before app"
    );
    assert!(
        first(&events, p, start, "app") < first(&events, p, start, "web"),
        "app starts before web"
    );
    assert!(
        events.iter().all(|e| e.project != neighbour_name),
        "the neighbour project was touched: {events:#?}"
    );
    assert_eq!(neighbour.states(&world.docker)["db"].0, "running");

    let (backup_started, backup_ms): (String, i64) = world
        .sandbox
        .catalog()
        .query_row(
            "SELECT started_at, duration_ms FROM hook_results WHERE name = 'backup'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let backup_start_ns = parse_ns(&backup_started);
    let backup_end_ns = backup_start_ns + backup_ms * 1_000_000;
    let ours: Vec<_> = events.iter().filter(|e| e.project == p).collect();
    for e in ours.iter().filter(|e| e.action == stop) {
        assert!(
            e.time_nano <= backup_start_ns,
            "{} was still running when the archive was started",
            e.service
        );
    }
    for e in ours.iter().filter(|e| e.action == start) {
        assert!(
            e.time_nano >= backup_end_ns,
            "{} started while the archive was being written",
            e.service
        );
    }

    let archive = &world.sandbox.archives()[0];
    let listing = sh(&format!("tar -tzf '{}'", archive.display()));
    assert!(
        listing.lines().any(|l| l == format!("volumes/{p}_dbdata/boots")),
        "named volume archived:\n{listing}"
    );
    assert!(
        listing.lines().any(|l| l == "binds/appdata/uploads/a.txt"),
        "bind mount archived:\n{listing}"
    );
    assert!(listing.lines().any(|l| l == "config/app.env"), "{listing}");

    let report = run.json();
    assert_eq!(report["backup"]["status"], "completed");
    let stopped: Vec<(String, String)> = {
        let catalog = world.sandbox.catalog();
        let mut stmt = catalog
            .prepare("SELECT service, state FROM services ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let services: Vec<&str> = stopped.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(services.len(), 4, "every running container was journalled: {stopped:?}");
    assert!(stopped.iter().all(|(_, state)| state == "started"), "{stopped:?}");
    let sources: i64 = world
        .sandbox
        .catalog()
        .query_row(
            "SELECT count(*) FROM backup_sources WHERE kind IN ('volume', 'bind')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sources, 2, "the volume and the bind mount are recorded for restore");
    assert_all_back(&world);
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

/// Unmounts a test filesystem when the test ends, however it ends.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
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

#[test]
fn hostile_wasm_hooks_are_contained_and_the_services_come_back() {
    let module = hookrun_e2e::build_wasm("tests/wasm-modules", "hostile");
    let hostile = |attack: &str, timeout: &str| {
        format!(
            "[[hook]]\nname = \"hostile\"\nwasm = \"{}\"\ntimeout = \"{timeout}\"\nconfig = {attack}\n",
            module.display()
        )
    };
    let Some(world) = world("{hostile}") else { return };
    let config = std::fs::read_to_string(world.sandbox.config_path()).unwrap();
    let attacks = [
        (hostile("{ attack = \"infinite-loop\" }", "2s"), "timed out after 2s"),
        (hostile("{ attack = \"memory-bomb\" }", "1m"), "memory limit"),
        (hostile("{ attack = \"panic\" }", "1m"), "boom: the hook gave up"),
        (
            hostile("{ attack = \"read\", path = \"/etc/passwd\" }", "1m"),
            "/etc/passwd",
        ),
        (
            hostile("{ attack = \"exec\", service = \"db\", program = \"sh\" }", "1m"),
            "may not run programs in service `db`",
        ),
    ];
    for (hook, expected) in attacks {
        world.sandbox.raw_config(&config.replace("{hostile}", &hook));

        let run = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);

        assert_eq!(
            run.code, 1,
            "{expected}: stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        let report = run.json();
        let error = report["error"].as_str().unwrap();
        assert!(
            error.starts_with("hook hostile: ") && error.contains(expected),
            "{expected}: {error}"
        );
        assert_eq!(report["backup"]["status"], "failed");
        assert_all_back(&world);
    }

    // A flood of logs, stdout and stderr: the run succeeds and hookrun's memory stays bounded.
    let flood = "{ attack = \"flood\", lines = 200000, line_bytes = 1024, stderr_bytes = 268435456 }";
    world
        .sandbox
        .raw_config(&config.replace("{hostile}", &hostile(flood, "5m")));
    let (run, peak_kib) = world.sandbox.run_measured(&["pre-upgrade", "--version", "1", "--json"]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr (first 2000 bytes):\n{:.2000}",
        run.stdout, run.stderr
    );
    eprintln!("hookrun's peak RSS while the hook flooded it: {} MiB", peak_kib / 1024);
    assert!(
        peak_kib < 200 * 1024,
        "hookrun peaked at {peak_kib} KiB while the hook wrote ~460 MiB"
    );
    assert!(
        run.stderr.len() < 64 << 20,
        "logged output is capped: {} bytes on stderr",
        run.stderr.len()
    );
    assert_all_back(&world);
}

/// A program tree that outlives any short hook: a shell and its two children.
const SLEEPERS: &str = "sleep 100 & sleep 100; wait";

/// Replaces the world's chain with one WASM hook (timeout `timeout`) that runs [`SLEEPERS`] in service `cache`
/// through the exec API and waits for it.
fn sleeper_chain(world: &World, timeout: &str) {
    let module = hookrun_e2e::build_wasm("tests/wasm-modules", "well-behaved");
    world.sandbox.raw_config(&format!(
        "[runner]\nproject = \"{}\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n\n\
         [[hook]]\nname = \"sleeper\"\nwasm = \"{}\"\ntimeout = \"{timeout}\"\n\
         config = {{ exec = {{ service = \"cache\", argv = [\"sh\", \"-c\", \"{SLEEPERS}\"] }} }}\n\
         permissions = {{ exec = [{{ service = \"cache\", programs = [\"sh\"] }}] }}\n",
        world.project.name,
        module.display()
    ));
}

/// The processes of [`SLEEPERS`] still running in `cache`.
fn sleepers(world: &World) -> Vec<String> {
    world
        .project
        .processes(&world.docker, "cache")
        .into_iter()
        .filter(|p| p.contains("sleep 100"))
        .collect()
}

/// Waits (bounded) until [`SLEEPERS`] runs in `cache`, all three processes of it.
fn wait_for_sleepers(world: &World) {
    for _ in 0..200 {
        if sleepers(world).len() == 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the exec never started: {:?}",
        world.project.processes(&world.docker, "cache")
    );
}

/// Asserts that nothing of [`SLEEPERS`] runs in `cache` (allowing the engine a moment to notice the exits).
#[track_caller]
fn assert_no_sleepers(world: &World, after: &str) {
    let mut left = sleepers(world);
    for _ in 0..10 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = sleepers(world);
    }
    panic!("{after}, still running in the container: {left:?}");
}

#[test]
fn a_wasm_hooks_exec_that_times_out_is_killed_with_its_children() {
    let Some(world) = world("") else { return };
    sleeper_chain(&world, "2s");

    let run = world.sandbox.run(&["backup"]);

    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("timed out after 2s"), "{}", run.stdout);
    assert_no_sleepers(&world, "hookrun exited after the hook timed out");
    assert!(!run.stderr.contains("left running"), "{}", run.stderr);
}

#[test]
fn a_signal_during_a_wasm_hooks_exec_kills_the_execd_processes() {
    let Some(world) = world("") else { return };
    sleeper_chain(&world, "5m");
    let child = world
        .sandbox
        .command(&["backup"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_sleepers(&world);

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("interrupted by SIGTERM"), "{stdout}");
    assert_no_sleepers(&world, "hookrun exited after SIGTERM");
}

#[test]
fn an_exec_dropped_before_its_program_ends_kills_the_program() {
    use hookrun_docker::ProjectExec;
    use hookrun_docker::ServiceExec;

    let Some(world) = world("") else { return };
    let exec = ProjectExec {
        project: world.project.name.clone(),
    };
    let argv = ["sh", "-c", SLEEPERS].map(String::from);

    let finished = hookrun_e2e::docker::runtime().block_on(async {
        let mut stdout = tokio::io::sink();
        // Dropped when the timeout fires, as a WASM hook's exec is when the hook is dropped.
        tokio::time::timeout(Duration::from_secs(2), exec.exec("cache", &argv, &mut stdout))
            .await
            .is_ok()
    });

    assert!(!finished, "the program ran for less than 2 s");
    assert_no_sleepers(&world, "the exec's future was dropped");
}

#[test]
fn rollback_puts_the_services_back_on_their_pre_upgrade_data() {
    let Some(world) = world("") else { return };
    let write = |version: &str| {
        world.project.compose(&[
            "exec",
            "-T",
            "db",
            "sh",
            "-c",
            &format!("echo {version} > /data/version"),
        ]);
        world.project.compose(&[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            &format!("echo {version} > /appdata/version"),
        ]);
    };
    let read = |service: &str, file: &str| world.project.compose(&["exec", "-T", service, "cat", file]);
    write("v1");
    let backup = world.sandbox.run(&["pre-upgrade", "--version", "1.0"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    write("v2"); // the upgrade changes the data while the services run
    std::fs::write(world.sandbox.work().join("config/app.env"), b"MODE=broken\n").unwrap();

    let rollback = world.sandbox.run(&["rollback", "--yes"]);

    assert_eq!(
        rollback.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        rollback.stdout, rollback.stderr
    );
    assert_all_back(&world);
    assert_eq!(
        read("db", "/data/version").trim(),
        "v1",
        "the named volume is back to its pre-upgrade data"
    );
    assert_eq!(
        read("app", "/appdata/version").trim(),
        "v1",
        "the bind mount is back too"
    );
    assert_eq!(
        std::fs::read_to_string(world.sandbox.work().join("config/app.env")).unwrap(),
        "MODE=production\n"
    );
    let status: String = world
        .sandbox
        .catalog_value("SELECT status FROM runs WHERE kind = 'restore'");
    assert_eq!(status, "completed");
}

#[test]
fn a_restore_killed_while_it_extracts_leaves_the_live_data_unchanged_and_recover_cleans_up() {
    let Some(world) = world("") else { return };
    // Enough data that the extraction takes a while: the restore is killed while it stages (its preflight, with the
    // services still running).
    sh(&format!(
        "head -c 40000000 /dev/urandom > '{}'",
        world.sandbox.file("config/big.bin", b"", 0o644).display()
    ));
    let backup = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let id = backup.json()["backup"]["id"].as_i64().unwrap().to_string();
    std::fs::write(world.sandbox.work().join("config/app.env"), b"MODE=after-the-upgrade\n").unwrap();
    let live = hookrun_e2e::tree_manifest(&world.sandbox.work().join("config"));

    let mut restore = world
        .sandbox
        .command(&["restore", &id])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_staging(&world.sandbox.work());
    restore.kill().unwrap();
    restore.wait().unwrap();
    let recover = world.sandbox.run(&["recover"]);

    assert_eq!(recover.code, 0, "{}{}", recover.stdout, recover.stderr);
    assert_eq!(
        hookrun_e2e::tree_manifest(&world.sandbox.work().join("config")),
        live,
        "live data unchanged"
    );
    let beside: Vec<String> = std::fs::read_dir(world.sandbox.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".hookrun-"))
        .collect();
    assert!(beside.is_empty(), "no staged or old copies left: {beside:?}");
    assert_all_back(&world);
    let restore_status: String = world.sandbox.catalog_value("SELECT status FROM restores");
    assert_eq!(restore_status, "failed");
}

#[test]
fn a_restore_killed_after_its_swap_is_recorded_completed_by_recover_and_its_data_stays() {
    let Some(world) = world("") else { return };
    let backup = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let id = backup.json()["backup"]["id"].as_i64().unwrap().to_string();
    let app_env = world.sandbox.work().join("config/app.env");
    std::fs::write(&app_env, b"MODE=after-the-upgrade\n").unwrap();

    let mut restore = world
        .sandbox
        .command(&["restore", &id])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The services come back one by one (db must be healthy first): the swap is made, the run is not finished.
    wait_for_phase(&world.sandbox, "hook start");
    restore.kill().unwrap(); // SIGKILL: no clean-up code runs
    restore.wait().unwrap();
    let recover = world.sandbox.run(&["recover"]);

    assert_eq!(recover.code, 0, "{}{}", recover.stdout, recover.stderr);
    let status: String = world.sandbox.catalog_value("SELECT status FROM restores");
    assert_eq!(status, "completed", "the data was restored");
    let note: String = world.sandbox.catalog_value("SELECT note FROM restores");
    assert!(
        note.contains("interrupted during hook start, after the swap") && note.contains("the restored data stays"),
        "{note}"
    );
    assert_eq!(std::fs::read_to_string(&app_env).unwrap(), "MODE=production\n");
    assert!(beside_targets(&world).is_empty(), "{:?}", beside_targets(&world));
    assert_all_back(&world);
}

#[test]
fn a_restore_whose_tree_is_not_the_kind_of_its_target_is_refused_before_anything_stops() {
    let Some(world) = world("") else { return };
    let backup = world.sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let id = backup.json()["backup"]["id"].as_i64().unwrap().to_string();
    // The upgrade turned the `config` folder into a file.
    let config = world.sandbox.work().join("config");
    std::fs::remove_dir_all(&config).unwrap();
    std::fs::write(&config, b"MODE=file\n").unwrap();
    let events = EventLog::start(&world.docker);

    let run = world.sandbox.run(&["restore", &id]);

    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let line = format!(
        "cannot restore {}: it is a file, and the archive holds a folder for it (`config`)",
        config.display()
    );
    assert!(run.stdout.contains(&line), "expected `{line}` in:\n{}", run.stdout);
    let lifecycle = ["kill", "stop", "die", "start", "restart"];
    let touched: Vec<_> = events
        .snapshot()
        .into_iter()
        .filter(|e| e.project == world.project.name && lifecycle.contains(&e.action.as_str()))
        .collect();
    assert!(touched.is_empty(), "nothing was stopped: {touched:#?}");
    assert_eq!(std::fs::read(&config).unwrap(), b"MODE=file\n");
    assert!(
        beside_targets(&world).is_empty(),
        "staged copies removed: {:?}",
        beside_targets(&world)
    );
}

#[test]
fn a_restore_that_fails_after_its_swap_names_the_copies_it_keeps_and_the_next_restore_removes_them() {
    let Some((world, id)) = world_with_a_backup_app_refuses() else {
        return;
    };

    let failed = world.sandbox.run(&["restore", &id]);

    assert_eq!(failed.code, 3, "stdout:\n{}\nstderr:\n{}", failed.stdout, failed.stderr);
    let kept = beside_targets(&world);
    assert_eq!(kept.len(), 3, "one old copy beside each target: {kept:?}");
    for old in &kept {
        let name = old.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".hookrun-old-"), "{name}");
        let target = old.with_file_name(name.splitn(5, '-').nth(4).unwrap());
        let line = format!(
            "kept {}: what {} held before this restore",
            old.display(),
            target.display()
        );
        assert!(
            failed.stdout.contains(&line),
            "expected `{line}` in:\n{}",
            failed.stdout
        );
    }

    // `app` stays down (it refused to start): the next restore stops and starts the others only, and succeeds.
    let next = world.sandbox.run(&["restore", &id]);

    assert_eq!(next.code, 0, "stdout:\n{}\nstderr:\n{}", next.stdout, next.stderr);
    for old in &kept {
        assert!(old.symlink_metadata().is_err(), "{} is gone", old.display());
        assert!(
            next.stdout.contains(&format!("removed {}: ", old.display())),
            "names {}:\n{}",
            old.display(),
            next.stdout
        );
    }
    assert!(beside_targets(&world).is_empty(), "{:?}", beside_targets(&world));
}

#[test]
fn recover_removes_what_finished_restores_left_beside_their_targets_and_says_so() {
    let Some((world, id)) = world_with_a_backup_app_refuses() else {
        return;
    };
    let failed = world.sandbox.run(&["restore", &id]);
    assert_eq!(failed.code, 3, "stdout:\n{}\nstderr:\n{}", failed.stdout, failed.stderr);
    let kept = beside_targets(&world);
    assert_eq!(kept.len(), 3, "{kept:?}");

    let recover = world.sandbox.run(&["recover"]);

    assert_eq!(recover.code, 0, "{}{}", recover.stdout, recover.stderr);
    for old in &kept {
        assert!(old.symlink_metadata().is_err(), "{} is gone", old.display());
        assert!(
            recover.stdout.contains(&format!("removed {}: ", old.display())),
            "names {}:\n{}",
            old.display(),
            recover.stdout
        );
    }
    let again = world.sandbox.run(&["recover", "--json"]);
    assert_eq!(again.json()["removed"], serde_json::json!([]), "{}", again.stdout);
}

#[test]
fn a_bind_mount_inside_another_is_archived_once_and_the_backup_verifies_and_restores() {
    let Some(docker) = engine() else { return };
    ensure_test_image(&docker);
    let sandbox = Sandbox::new();
    sandbox.file("appdata/top.txt", b"top", 0o644);
    sandbox.file("appdata/uploads/a.txt", b"uploaded", 0o644);
    let name = unique_project("hrn");
    let project = ComposeProject::up(
        &name,
        &sandbox.work(),
        &format!(
            "version: \"2.4\"\nservices:\n  app:\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; \
             while true; do sleep 0.2; done\"]\n    volumes: [\"./appdata:/appdata\", \"./appdata/uploads:/uploads\"]\n"
        ),
    );
    project.wait_ready(&docker);
    sandbox.raw_config(&format!(
        "[runner]\nproject = \"{name}\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n{}",
        CHAIN.replace("{between}", "").replace("sources = [\"config\"]\n", "")
    ));
    let before = hookrun_e2e::tree_manifest(&sandbox.work().join("appdata"));

    let backup = sandbox.run(&["pre-upgrade", "--version", "1", "--json"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let id = backup.json()["backup"]["id"].as_i64().unwrap().to_string();
    std::fs::write(sandbox.work().join("appdata/uploads/a.txt"), b"changed").unwrap();
    let verify = sandbox.run(&["verify", &id]);
    let restore = sandbox.run(&["restore", &id]);

    let trees: Vec<String> = {
        let catalog = sandbox.catalog();
        let mut stmt = catalog
            .prepare("SELECT archive_path FROM backup_sources WHERE kind = 'bind'")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(
        trees,
        ["binds/appdata"],
        "the inner bind mount is part of the outer one"
    );
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert_eq!(
        restore.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        restore.stdout, restore.stderr
    );
    assert_eq!(hookrun_e2e::tree_manifest(&sandbox.work().join("appdata")), before);
}

/// A world and a backup of it (its id) that holds the marker making `app` refuse to start: that backup stopped only
/// `cache`, so the marker was archived while `app` ran (it looks only when it starts). The marker is gone from the
/// live data since, and the chain stops every service again.
fn world_with_a_backup_app_refuses() -> Option<(World, String)> {
    let world = world("")?;
    let config = std::fs::read_to_string(world.sandbox.config_path()).unwrap();
    let marker = world.sandbox.file("appdata/refuse-to-start", b"", 0o644);
    world.sandbox.raw_config(&config.replace(
        "builtin = \"stop\"\n",
        "builtin = \"stop\"\nconfig = { services = [\"cache\"] }\n",
    ));
    let backup = world.sandbox.run(&["backup", "--version", "1", "--json"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let id = backup.json()["backup"]["id"].as_i64().unwrap().to_string();
    world.sandbox.raw_config(&config);
    std::fs::remove_file(marker).unwrap();
    Some((world, id))
}

/// What restores left beside the live places of the world's backups (`.hookrun-*` names), sorted.
fn beside_targets(world: &World) -> Vec<std::path::PathBuf> {
    let parents: std::collections::BTreeSet<std::path::PathBuf> = {
        let catalog = world.sandbox.catalog();
        let mut stmt = catalog
            .prepare("SELECT host_path FROM backup_sources WHERE kind != 'artifacts'")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|p| Path::new(&p.unwrap()).parent().unwrap().to_path_buf())
            .collect()
    };
    let mut found: Vec<_> = parents
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".hookrun-"))
        .collect();
    found.sort();
    found
}

/// stop → snapshot (`copy`, byte copies allowed: the test machine's storage need not clone) → start → backup →
/// record over the world's config, volumes and bind mounts.
fn use_snapshot_chain(world: &World) {
    let runner = std::fs::read_to_string(world.sandbox.config_path()).unwrap();
    let runner = &runner[..runner.find("[[hook]]").unwrap()];
    world.sandbox.raw_config(&format!(
        "{runner}
[[hook]]
name = \"stop\"
builtin = \"stop\"

[[hook]]
name = \"copy\"
builtin = \"snapshot\"
config = {{ backup = \"backup\", copies = \"any\" }}

[[hook]]
name = \"start\"
builtin = \"start\"

[[hook]]
name = \"backup\"
builtin = \"backup\"
config = {{ sources = [\"config\"], volumes = \"auto\" }}

[[hook]]
name = \"record\"
builtin = \"record\"
"
    ));
}

#[test]
fn with_a_snapshot_the_services_are_back_before_the_archive_is_written() {
    let Some(world) = world("") else { return };
    use_snapshot_chain(&world);
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
            .prepare("SELECT host_path FROM backup_sources ORDER BY rowid")
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
fn when_the_copies_do_not_fit_the_snapshot_archives_with_the_services_stopped() {
    let Some(world) = world("") else { return };
    use_snapshot_chain(&world);
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
    let mode: String = world
        .sandbox
        .catalog_value("SELECT json_extract(outputs, '$.mode') FROM hook_results WHERE name = 'copy'");
    assert_eq!(mode, "in place");
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

/// Waits until a restore has begun extracting into a staging folder in `dir`.
fn wait_for_staging(dir: &Path) {
    for _ in 0..3000 {
        let staging = std::fs::read_dir(dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".hookrun-restore-")
        });
        if staging {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the restore never began extracting into {}", dir.display());
}

/// Nanoseconds since the epoch of an RFC 3339 UTC time with milliseconds, as the catalog writes them.
fn parse_ns(rfc3339: &str) -> i64 {
    let out = sh(&format!("date -u -d '{rfc3339}' +%s%N"));
    out.trim().parse().unwrap()
}
