//! A long-lived process (the web UI) holds several catalogs open at once while other hookrun processes come and go:
//! none of them may take the WAL away from under it.

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use hookrun_catalog::{Catalog, NewRun, RunKind};

/// Set to the catalog's path when this test binary runs as the other process.
const OTHER_PROCESS: &str = "HOOKRUN_CATALOG_OTHER_PROCESS";

fn begin(catalog: &Catalog) -> i64 {
    catalog
        .begin_run(&NewRun {
            kind: RunKind::Manual,
            version: "1".into(),
            project: None,
            started_at: Utc::now(),
            pid: std::process::id(),
            boot_id: None,
            storage_dir: "/storage".into(),
            staging_dir: "/storage/.staging".into(),
        })
        .unwrap()
}

/// The other process: opens the catalog, writes, and closes it (as a CLI command refused by the lock does).
#[test]
fn as_the_other_process() {
    let Ok(path) = std::env::var(OTHER_PROCESS) else { return };
    let catalog = Catalog::open(Path::new(&path)).unwrap();
    begin(&catalog);
}

#[test]
fn a_catalog_opened_and_dropped_beside_another_leaves_its_wal_alone_when_another_process_closes_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let long_lived = Catalog::open(&path).unwrap();
    begin(&long_lived);
    // A page's read: a second catalog in the same process, opened and dropped.
    drop(Catalog::open(&path).unwrap());

    let other = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "as_the_other_process", "--test-threads=1"])
        .env(OTHER_PROCESS, &path)
        .output()
        .unwrap();
    assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stdout));

    assert!(
        dir.path().join("catalog.db-wal").exists(),
        "the WAL is still there while a connection holds it open"
    );
    let id = begin(&long_lived);
    assert_eq!(
        long_lived.run(id).unwrap().unwrap().id,
        id,
        "the long-lived catalog still reads and writes"
    );
    assert_eq!(
        long_lived.recent_runs(10).unwrap().len(),
        3,
        "it sees the other process's run too"
    );
}
