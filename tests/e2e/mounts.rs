//! Every volume and bind mount of the project is accounted for — archived (where) or left out (why) — in `plan`,
//! `estimate` and the run's own report: a work dir written as `..` still finds the bind mounts under it, a bind
//! mount outside the work dir (data in `/srv/app`, the usual layout) can be named by its path, and a backup that
//! would archive none of the project's data is refused before anything stops.
//! A bind mount inside another is archived once, and the backup verifies and restores.

use hookrun_e2e::deployment::{assert_all_back, world, CHAIN};
use hookrun_e2e::docker::{engine, ensure_test_image, unique_project, ComposeProject, EventLog, TEST_IMAGE};
use hookrun_e2e::{hookrun_bin, sh, Run, Sandbox};
use std::process::Command;

#[test]
fn plan_and_estimate_give_the_same_estimate_volumes_and_bind_mounts_included() {
    let Some(world) = world("") else { return };

    let plan = world.sandbox.run(&["plan", "--json"]);
    let estimate = world.sandbox.run(&["estimate", "--json"]);

    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(estimate.code, 0, "{}", estimate.stderr);
    let planned = plan.json()["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "backup")
        .unwrap()["backup"]
        .clone();
    let estimated = estimate.json()["backups"][0].clone();
    for field in [
        "sources",
        "mounts",
        "files",
        "bytes",
        "estimated_archive_bytes",
        "need_bytes",
        "preflight",
    ] {
        assert_eq!(planned[field], estimated[field], "{field}");
    }
    let trees: Vec<&str> = planned["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["archive_path"].as_str().unwrap())
        .collect();
    assert!(trees.contains(&"binds/appdata"), "{trees:?}");
    assert!(
        trees.iter().any(|t| t.starts_with("volumes/")),
        "the named volume counts too: {trees:?}"
    );
}

#[test]
fn a_work_dir_written_with_dot_dot_still_archives_the_bind_mounts_under_it() {
    let Some(world) = world("") else { return };
    // The operator keeps hooks.toml in a folder of the deployment and points up to it.
    let ops = world.sandbox.work().join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    let config = std::fs::read_to_string(world.sandbox.config_path())
        .unwrap()
        .replace("work_dir = \"work\"", "work_dir = \"..\"")
        .replace("storage_dir = \"storage\"", "storage_dir = \"../../storage\"")
        .replace("catalog = \"catalog.db\"", "catalog = \"../../catalog.db\"");
    std::fs::write(ops.join("hooks.toml"), config).unwrap();

    let output = Command::new(hookrun_bin())
        .arg("--config")
        .arg(ops.join("hooks.toml"))
        .args(["pre-upgrade", "--version", "1"])
        .output()
        .unwrap();
    let run = Run::from_output(output);

    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("(at /appdata) → archived as binds/appdata"),
        "the run says where the bind mount went:\n{}",
        run.stdout
    );
    let archive = world.sandbox.archives().pop().unwrap();
    let listing = sh(&format!("tar -tzf '{}'", archive.display()));
    assert!(listing.lines().any(|l| l == "binds/appdata/uploads/a.txt"), "{listing}");
    assert_all_back(&world);
}

/// A project whose only data is a bind mount outside the work dir (`<sandbox>/srv-data`, seen at `/srv`).
fn outside_world(volumes: &str, extra: &str) -> Option<(ComposeProject, Sandbox, bollard::Docker)> {
    let docker = engine()?;
    ensure_test_image(&docker);
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path().join("srv-data")).unwrap();
    std::fs::write(sandbox.path().join("srv-data/orders.db"), b"orders").unwrap();
    let name = unique_project("hrm");
    let yaml = format!(
        "version: \"2.4\"\nservices:\n  app:\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; \
         while true; do sleep 0.2; done\"]\n    volumes: [\"../srv-data:/srv\"]\n"
    );
    let project = ComposeProject::up(&name, &sandbox.work(), &yaml);
    project.wait_ready(&docker);
    sandbox.raw_config(&format!(
        "[runner]\nproject = \"{name}\"\nwork_dir = \"work\"\nstorage_dir = \"storage\"\ncatalog = \"catalog.db\"\n\n\
         [[hook]]\nname = \"stop\"\nbuiltin = \"stop\"\n\n\
         [[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nvolumes = {volumes}\n{extra}\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n\n\
         [[hook]]\nname = \"start\"\nbuiltin = \"start\"\n"
    ));
    Some((project, sandbox, docker))
}

#[test]
fn a_backup_that_would_archive_none_of_the_projects_data_is_refused_before_anything_stops() {
    let Some((project, sandbox, docker)) = outside_world("\"auto\"", "") else {
        return;
    };
    let srv = sandbox.path().join("srv-data");
    let events = EventLog::start(&docker);

    let plan = sandbox.run(&["plan"]);
    let run = sandbox.run(&["pre-upgrade", "--version", "1"]);

    let left_out = format!(
        "bind mount {} (at /srv) → not archived: outside the work dir {}; add \"{}\" to `volumes` to archive it",
        srv.display(),
        std::fs::canonicalize(sandbox.work()).unwrap().display(),
        srv.display()
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains(&left_out),
        "plan says what happens to it:\n{}",
        plan.stdout
    );
    let estimate = sandbox.run(&["estimate"]);
    assert!(estimate.stdout.contains(&left_out), "{}", estimate.stdout);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "backup `backup` would archive none of the project's data: it takes no tree at all (every mount of the \
             project is left out: see `hookrun plan`); set `allow_empty = true` on it if that is intended"
        ),
        "{}",
        run.stdout
    );
    let stopped = events
        .snapshot()
        .iter()
        .filter(|e| e.project == project.name && e.action == "stop")
        .count();
    assert_eq!(stopped, 0, "nothing was stopped");
    assert!(sandbox.archives().is_empty());

    // Said to be intended, the same backup runs.
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    sandbox.raw_config(&config.replace("volumes = \"auto\"\n", "volumes = \"auto\"\nallow_empty = true\n"));
    let intended = sandbox.run(&["pre-upgrade", "--version", "1"]);
    assert_eq!(intended.code, 0, "{}{}", intended.stdout, intended.stderr);
    assert!(
        intended.stdout.contains(&left_out),
        "the run says it too:\n{}",
        intended.stdout
    );
}

#[test]
fn a_bind_mount_outside_the_work_dir_is_archived_when_its_path_is_named_and_restored_there() {
    let srv_placeholder = "SRV";
    let Some((_project, sandbox, _docker)) = outside_world(&format!("[\"auto\", \"{srv_placeholder}\"]"), "") else {
        return;
    };
    let srv = sandbox.path().join("srv-data");
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    sandbox.raw_config(&config.replace(srv_placeholder, srv.to_str().unwrap()));

    let run = sandbox.run(&["pre-upgrade", "--version", "1"]);

    let inside_archive = format!("host{}", srv.display());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("(at /srv) → archived as {inside_archive}")),
        "{}",
        run.stdout
    );
    let archive = sandbox.archives().pop().unwrap();
    let listing = sh(&format!("tar -tzf '{}'", archive.display()));
    assert!(
        listing.lines().any(|l| l == format!("{inside_archive}/orders.db")),
        "{listing}"
    );

    std::fs::write(srv.join("orders.db"), b"changed after the backup").unwrap();
    let restore = sandbox.run(&["restore", "1"]);
    assert_eq!(restore.code, 0, "{}{}", restore.stdout, restore.stderr);
    assert_eq!(std::fs::read(srv.join("orders.db")).unwrap(), b"orders");
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
