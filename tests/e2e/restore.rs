//! Restores and rollbacks against a real Compose project: the services come back on their pre-upgrade data, a
//! restore killed while it extracts or after its swap leaves the live data whole and `recover` finishes it, a tree
//! that is not the kind of its target is refused before anything stops, and what restores leave beside their targets
//! is named and removed.

use hookrun_e2e::deployment::{assert_all_back, wait_for_phase, world, World};
use hookrun_e2e::docker::EventLog;
use hookrun_e2e::sh;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

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
            .prepare("SELECT host_path FROM backup_sources WHERE kind NOT IN ('artifacts', 'compose')")
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
