//! `hookrun upgrade`: the upgrade behind a health gate on a real engine, and the automatic rollback of data,
//! Compose files, containers and images when it fails — each case checked against `docker inspect`, Docker's own
//! event stream and `docker-compose ps`, not only against hookrun's report.

use std::process::Stdio;
use std::time::Duration;

use hookrun_e2e::docker::EventLog;
use hookrun_e2e::tree_manifest;
use hookrun_e2e::upgrade::{Upgradable, APP_V2};

use crate::json_schemas::assert_document;

/// `hookrun upgrade --version 1 --to 2 --json -- sh -c SCRIPT`.
fn upgrade_args(script: &str) -> Vec<&str> {
    vec![
        "upgrade",
        "--version",
        "1",
        "--to",
        "2",
        "--json",
        "--",
        "sh",
        "-c",
        script,
    ]
}

/// What must hold after an automatic rollback: exit 5, the old image ID running for every service, the data byte
/// for byte as before, the old Compose file, a project Compose itself sees as it was, and the record saying so.
struct Before {
    images: std::collections::HashMap<String, (String, String, bool)>,
    data: std::collections::BTreeMap<std::path::PathBuf, String>,
    compose: String,
}

fn before(deployment: &Upgradable) -> Before {
    Before {
        images: deployment.containers(),
        data: tree_manifest(&deployment.data()),
        compose: deployment.compose_file(),
    }
}

/// Docker's own record of the upgrade and its rollback: every service ran before was re-created (by the rollback,
/// if not by the upgrade), and the last thing that happened to each is a start.
fn assert_engine_saw_the_rollback(deployment: &Upgradable, before: &Before, events: &EventLog) {
    let seen = events.snapshot();
    for service in before.images.keys() {
        let actions: Vec<&str> = seen
            .iter()
            .filter(|e| e.project == deployment.project.name && e.service == *service)
            .map(|e| e.action.as_str())
            .collect();
        assert!(actions.contains(&"create"), "{service} was re-created: {actions:?}");
        let last = actions
            .iter()
            .rev()
            .find(|a| ["start", "die", "destroy", "stop"].contains(a));
        assert_eq!(last, Some(&"start"), "{service} was started last: {actions:?}");
    }
}

fn assert_rolled_back(deployment: &Upgradable, before: &Before, run: &hookrun_e2e::Run) -> serde_json::Value {
    assert_eq!(run.code, 5, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_document("upgrade", &doc);
    assert_eq!(doc["exit_code"], 5);
    assert_eq!(doc["upgrade"]["status"], "rolled-back", "{doc:#}");
    assert!(doc["rollback_gate"]["failure"].is_null(), "{doc:#}");
    assert_eq!(
        deployment.containers(),
        before.images,
        "same names, old image IDs, all running"
    );
    assert_eq!(
        tree_manifest(&deployment.data()),
        before.data,
        "the data is the pre-upgrade data"
    );
    assert!(!std::fs::read_to_string(deployment.data().join("table.dat"))
        .unwrap()
        .contains("v2"));
    assert_eq!(
        deployment.compose_file(),
        before.compose,
        "the Compose file is the old one"
    );
    let ps = deployment.project.compose(&["ps"]);
    for (service, (name, _, _)) in &before.images {
        let line = ps.lines().find(|l| l.starts_with(name.as_str()));
        assert!(
            line.is_some_and(|l| l.contains("Up")),
            "docker-compose ps shows {service} up:\n{ps}"
        );
    }
    doc
}

#[test]
fn a_healthy_upgrade_is_left_on_the_new_version_with_a_complete_record() {
    let Some(deployment) = Upgradable::up("", "healthy", "") else {
        return;
    };
    let v1 = deployment.image_id(&deployment.v1_tag());
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let run = deployment.sandbox.run(&upgrade_args(Upgradable::upgrade_to_v2()));
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);

    let containers = deployment.containers();
    assert_eq!(containers["app"].1, deployment.image_id(APP_V2), "app runs v2");
    assert!(containers["app"].2);
    let table = std::fs::read_to_string(deployment.data().join("table.dat")).unwrap();
    assert!(table.contains("v2 migrated the data"), "what v2 wrote stays: {table}");
    // Docker saw the app re-created by the upgrade, and nothing after it.
    let seen = events.snapshot();
    let app: Vec<&str> = seen
        .iter()
        .filter(|e| e.project == deployment.project.name && e.service == "app")
        .map(|e| e.action.as_str())
        .collect();
    assert!(app.contains(&"create") && app.contains(&"start"), "{app:?}");

    let doc = run.json();
    assert_document("upgrade", &doc);
    let upgrade = &doc["upgrade"];
    assert_eq!(upgrade["status"], "upgraded");
    assert_eq!(upgrade["from_version"], "1");
    assert_eq!(upgrade["to_version"], "2");
    for phase in ["pre-upgrade", "command", "gate"] {
        assert!(
            upgrade["phases"][phase].as_u64().is_some(),
            "{phase} timed: {upgrade:#}"
        );
    }
    assert!(doc["gate"]["failure"].is_null());
    assert!(
        doc["gate"]["waited_ms"].as_u64().unwrap() >= 2000,
        "the gate waited healthy_for"
    );
    assert!(
        upgrade["output_tail"].as_str().unwrap().contains("app"),
        "the command's output is kept"
    );
    // The rollback point records what ran, and keeps the v1 image by a tag of hookrun's own.
    let backup_id = upgrade["backup_id"].as_i64().unwrap();
    let recorded = &doc["pre_upgrade"]["deployment"]["containers"];
    let app = recorded
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == "app")
        .unwrap();
    assert_eq!(app["image_id"], v1.as_str());
    let tag = format!("hookrun-rollback/{}-app:{backup_id}", deployment.project.name);
    assert_eq!(app["rollback_tag"], tag.as_str());
    assert_eq!(deployment.image_id(&tag), v1);
    let files = doc["pre_upgrade"]["deployment"]["compose_files"].to_string();
    assert!(
        files.contains("compose/docker-compose.yml") && files.contains("compose/.env"),
        "{files}"
    );

    // `show` reports what ran; a rollback's dry run says what it would re-create.
    let show = deployment.sandbox.run(&["show", &backup_id.to_string(), "--json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert_document("show", &show.json());
    assert_eq!(show.json()["deployment"], doc["pre_upgrade"]["deployment"]);
    let dry_run = deployment.sandbox.run(&["rollback", "--dry-run", "--json"]);
    assert_eq!(dry_run.code, 0, "{}", dry_run.stderr);
    assert_document("restore-dry-run", &dry_run.json());
    assert_eq!(dry_run.json()["recreates"].as_array().unwrap().len(), 2);

    // A manual rollback, later, puts back what ran too: the old image ID, the old data and Compose file.
    let rollback = deployment.sandbox.run(&["rollback", "--yes", "--json"]);
    assert_eq!(
        rollback.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        rollback.stdout, rollback.stderr
    );
    assert_document("run", &rollback.json());
    assert_eq!(
        deployment.containers(),
        before.images,
        "same names, old image IDs, all running"
    );
    assert_eq!(tree_manifest(&deployment.data()), before.data);
    assert_eq!(deployment.compose_file(), before.compose);

    // Deleting the backup releases its image tag.
    let deleted = deployment.sandbox.run(&["delete", &backup_id.to_string()]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let gone = hookrun_e2e::docker::runtime().block_on(deployment.docker.inspect_image(&tag));
    assert!(gone.is_err(), "the rollback tag is removed with its backup");
}

#[test]
fn a_new_version_whose_healthcheck_fails_is_rolled_back_data_containers_and_compose_files() {
    let Some(deployment) = Upgradable::up("", "unhealthy", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let run = deployment.sandbox.run(&upgrade_args(Upgradable::upgrade_to_v2()));
    let doc = assert_rolled_back(&deployment, &before, &run);
    let failure = doc["gate"]["failure"].as_str().unwrap();
    assert!(
        failure.contains("service app") && failure.contains("unhealthy"),
        "{failure}"
    );
    assert!(doc["upgrade"]["phases"]["rollback"].as_u64().is_some());
    // Docker's own record: the app was re-created (v2 by the upgrade, then v1 by the rollback) and started.
    let seen = events.snapshot();
    let app: Vec<&str> = seen
        .iter()
        .filter(|e| e.project == deployment.project.name && e.service == "app")
        .map(|e| e.action.as_str())
        .collect();
    assert!(app.iter().filter(|a| **a == "create").count() >= 2, "{app:?}");
    assert_eq!(
        app.iter().rev().find(|a| ["start", "die", "destroy"].contains(a)),
        Some(&"start")
    );
}

#[test]
fn a_new_version_that_crashes_at_start_is_rolled_back() {
    let Some(deployment) = Upgradable::up("", "crash", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let run = deployment.sandbox.run(&upgrade_args(Upgradable::upgrade_to_v2()));
    let doc = assert_rolled_back(&deployment, &before, &run);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    let failure = doc["gate"]["failure"].as_str().unwrap();
    assert!(
        failure.contains("service app") && failure.contains("exited"),
        "{failure}"
    );
}

#[test]
fn an_upgrade_command_that_fails_is_rolled_back_without_a_gate() {
    let Some(deployment) = Upgradable::up("", "healthy", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let script = format!(
        "{} && echo 'migration failed' >&2 && exit 7",
        Upgradable::upgrade_to_v2()
    );
    let run = deployment.sandbox.run(&upgrade_args(&script));
    let doc = assert_rolled_back(&deployment, &before, &run);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    let error = doc["upgrade"]["error"].as_str().unwrap();
    assert!(error.contains("exited with status 7"), "{error}");
    assert!(doc["gate"].is_null(), "no gate after a failed command");
    assert!(doc["upgrade"]["output_tail"]
        .as_str()
        .unwrap()
        .contains("migration failed"));
}

#[test]
fn an_upgrade_command_that_hangs_past_its_timeout_is_killed_and_rolled_back() {
    let Some(deployment) = Upgradable::up("timeout = \"3s\"", "healthy", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    // A duration no other process on the machine is likely to sleep, so that pgrep finds only this command's.
    let secs = 3000 + std::process::id() % 1000;
    let script = format!("{} && sleep {secs}", Upgradable::upgrade_to_v2());
    let run = deployment.sandbox.run(&upgrade_args(&script));
    let doc = assert_rolled_back(&deployment, &before, &run);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    let error = doc["upgrade"]["error"].as_str().unwrap();
    assert!(error.contains("did not finish within 3s"), "{error}");
    // `[3]`: the pattern does not match pgrep's own command line.
    let sleeping = hookrun_e2e::sh(&format!("pgrep -f 'sleep [3]{:03}' || true", secs - 3000));
    assert!(
        sleeping.trim().is_empty(),
        "the command's process group was killed: {sleeping}"
    );
}

#[test]
fn a_service_the_upgrade_added_is_removed_by_the_rollback() {
    let worker = "  worker:\n    image: hookrun-test-busybox:1\n    command: [\"sh\", \"-c\", \"exit 1\"]\n";
    let Some(deployment) = Upgradable::up("", "healthy", worker) else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let run = deployment.sandbox.run(&upgrade_args(Upgradable::upgrade_to_v2()));
    let doc = assert_rolled_back(&deployment, &before, &run);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    assert!(
        doc["gate"]["failure"].as_str().unwrap().contains("service worker"),
        "{doc:#}"
    );
    assert!(!deployment.containers().contains_key("worker"), "the worker is gone");
}

#[test]
fn a_moved_image_tag_does_not_change_what_the_rollback_runs() {
    let Some(deployment) = Upgradable::up("", "unhealthy", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let v1 = deployment.image_id(&deployment.v1_tag());
    // The upgrade moves the deployment's own tag to v2 (as a pull moves `:latest`) and runs it.
    let script = format!(
        "docker tag {APP_V2} {tag} && sed -i 's|{APP_V2}|{tag}|' docker-compose.v2.yml && {}",
        Upgradable::upgrade_to_v2(),
        tag = deployment.v1_tag()
    );
    let run = deployment.sandbox.run(&upgrade_args(&script));
    assert_rolled_back(&deployment, &before, &run);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    assert_ne!(deployment.image_id(&deployment.v1_tag()), v1, "the tag now names v2");
    assert_eq!(
        deployment.containers()["app"].1,
        v1,
        "the app runs the old image ID all the same"
    );
}

#[test]
fn a_failing_pre_upgrade_chain_upgrades_nothing_and_exits_1() {
    let Some(deployment) = Upgradable::up("", "healthy", "") else {
        return;
    };
    let before = before(&deployment);
    // A free-space preflight no disk passes.
    let config = std::fs::read_to_string(deployment.sandbox.config_path())
        .unwrap()
        .replace(
            "volumes = \"auto\"",
            "volumes = \"auto\"\nmin_free_factor = 1000000000.0",
        );
    deployment.sandbox.raw_config(&config);
    let run = deployment
        .sandbox
        .run(&upgrade_args("touch upgraded; docker-compose up -d"));
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["upgrade"]["status"], "failed");
    assert!(
        !deployment.sandbox.work().join("upgraded").exists(),
        "the command never ran"
    );
    assert_eq!(deployment.containers(), before.images);
}

/// Starts an upgrade in the background and kills it with SIGKILL once its record reaches `phase` (and its run, if
/// given, `run_phase`).
fn kill_during(deployment: &Upgradable, script: &str, phase: &str, run_phase: Option<&str>) {
    let mut child = deployment
        .sandbox
        .command(&upgrade_args(script))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reached = (0..3000).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let Ok(catalog) = rusqlite::Connection::open(deployment.sandbox.path().join("catalog.db")) else {
            return false;
        };
        let upgrade: Option<String> = catalog
            .query_row("SELECT phase FROM upgrades ORDER BY id DESC", [], |r| r.get(0))
            .ok();
        let run: Option<String> = catalog
            .query_row("SELECT phase FROM runs ORDER BY id DESC", [], |r| r.get(0))
            .ok();
        upgrade.as_deref() == Some(phase) && run_phase.is_none_or(|p| run.as_deref() == Some(p))
    });
    assert!(reached, "the upgrade never reached {phase} {run_phase:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_during_its_command_an_upgrade_is_rolled_back_by_recover() {
    let Some(deployment) = Upgradable::up("", "healthy", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    let script = format!("{} && touch ../in-command && sleep 120", Upgradable::upgrade_to_v2());
    kill_during(&deployment, &script, "command", None);
    // Wait until the command has upgraded: the worst moment, v2 running and its data written.
    for _ in 0..600 {
        if deployment.sandbox.path().join("in-command").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    hookrun_e2e::sh("pkill -f 'sleep [1]20' || true");
    let recover = deployment.sandbox.run(&["recover", "--json"]);
    assert_eq!(
        recover.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        recover.stdout, recover.stderr
    );
    assert_document("recover", &recover.json());
    let upgrades = &recover.json()["upgrades"];
    assert_eq!(upgrades[0]["phase"], "command", "{upgrades:#}");
    assert_eq!(upgrades[0]["status"], "rolled-back", "{upgrades:#}");
    assert_eq!(deployment.containers(), before.images);
    assert_eq!(tree_manifest(&deployment.data()), before.data);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    assert_eq!(deployment.compose_file(), before.compose);
}

#[test]
fn killed_during_its_rollback_an_upgrade_finishes_the_rollback_on_recover() {
    let Some(deployment) = Upgradable::up("", "unhealthy", "") else {
        return;
    };
    let before = before(&deployment);
    let events = EventLog::start(&deployment.docker);
    kill_during(&deployment, Upgradable::upgrade_to_v2(), "rollback", Some("hook start"));
    let recover = deployment.sandbox.run(&["recover", "--json"]);
    assert_eq!(
        recover.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        recover.stdout, recover.stderr
    );
    let doc = recover.json();
    assert_eq!(doc["upgrades"][0]["phase"], "rollback", "{doc:#}");
    assert_eq!(doc["upgrades"][0]["status"], "rolled-back", "{doc:#}");
    assert_eq!(deployment.containers(), before.images);
    assert_eq!(tree_manifest(&deployment.data()), before.data);
    assert_engine_saw_the_rollback(&deployment, &before, &events);
    assert_eq!(deployment.compose_file(), before.compose);
}

#[test]
fn a_rollback_command_deploys_the_old_version_instead_of_re_creating_the_containers() {
    let name_placeholder = "{project}";
    let upgrade = format!("rollback_command = [\"sh\", \"-c\", \"docker-compose -p {name_placeholder} up -d\"]");
    let Some(deployment) = Upgradable::up(&upgrade, "unhealthy", "") else {
        return;
    };
    // The project's name is known once it is up: the command names it.
    let config = std::fs::read_to_string(deployment.sandbox.config_path())
        .unwrap()
        .replace(name_placeholder, &deployment.project.name);
    deployment.sandbox.raw_config(&config);
    let before = before(&deployment);
    let run = deployment.sandbox.run(&upgrade_args(Upgradable::upgrade_to_v2()));
    let doc = assert_rolled_back(&deployment, &before, &run);
    let hooks: Vec<&str> = doc["rollback"]["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(hooks.contains(&"rollback_command"), "{hooks:?}");
}
