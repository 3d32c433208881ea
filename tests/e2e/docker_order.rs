//! The order the chain stops and starts a real Compose project in, seen in the engine's own event stream, and
//! its volumes and bind mounts in the archive.

use hookrun_e2e::deployment::{assert_all_back, world};
use hookrun_e2e::docker::{first, parse_ns, ComposeProject, EventLog, TEST_IMAGE};
use hookrun_e2e::sh;

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
