//! Off-site copies against a real S3 server (SeaweedFS `weed mini`, see `fixtures/s3.rs`): uploads after the chain,
//! encrypted with age or not, read back by `verify --remote`, fetched back by `restore`/`rollback` when the local
//! archive is gone or damaged, pruned per location, and every failure (server killed mid-upload, wrong secret,
//! missing bucket, a flipped byte) one line naming the remote with nothing recorded that is not whole.

use std::process::Command;
use std::time::{Duration, Instant};

use hookrun_e2e::s3::{self, S3Server, BUCKET};
use hookrun_e2e::{tree_manifest, Run, Sandbox};

/// A sandbox whose chain backs up `work/data` (a few files and `size` random bytes), records it and, with
/// `upload`, uploads it to the remotes in `remotes`.
fn deployment(remotes: &str, upload: bool, size: usize) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.file("data/config.yml", b"mode: production\n", 0o644);
    sandbox.file("data/db/records.bin", &random_bytes(size), 0o600);
    let upload_hook = if upload {
        "[[hook]]\nname = \"upload\"\nbuiltin = \"upload\"\n"
    } else {
        ""
    };
    sandbox.config(&format!(
        "{remotes}\n[[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\nconfig = {{ sources = [\"data\"] }}\n\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n\n{upload_hook}"
    ));
    sandbox
}

fn random_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ size as u64;
    for b in bytes.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    bytes
}

/// Runs hookrun with the server's credentials.
fn run(sandbox: &Sandbox, server: &S3Server, args: &[&str]) -> Run {
    let mut command = sandbox.command(args);
    server.credentials(&mut command);
    sandbox.run_command(command)
}

/// A unique prefix for one test's objects on the shared server.
fn prefix(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

fn archive_of(sandbox: &Sandbox, id: i64) -> std::path::PathBuf {
    sandbox
        .catalog_value::<String>(&format!("SELECT path FROM backups WHERE id = {id}"))
        .into()
}

fn copies(sandbox: &Sandbox) -> Vec<(i64, String, String, bool)> {
    let conn = sandbox.catalog();
    let mut stmt = conn
        .prepare("SELECT backup_id, location, key, encrypted FROM copies ORDER BY backup_id, location")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// With the data changed since, `restore 1` exits 1 saying `why`, before anything changes.
#[track_caller]
fn assert_restore_refused(sandbox: &Sandbox, server: &S3Server, why: &str) {
    sandbox.file("data/config.yml", b"changed\n", 0o644);
    let refused = run(sandbox, server, &["restore", "1", "--yes"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains(why), "{}", refused.stderr);
    assert_eq!(
        std::fs::read(sandbox.work().join("data/config.yml")).unwrap(),
        b"changed\n",
        "nothing changed"
    );
}

#[test]
fn a_plain_copy_brings_the_data_back_byte_for_byte_after_the_local_archive_is_deleted() {
    let Some(server) = s3::shared() else { return };
    let prefix = prefix("plain");
    let sandbox = deployment(&server.remote_toml("offsite", &prefix, ""), true, 3 << 20);
    let before = tree_manifest(&sandbox.work().join("data"));

    let backup = run(&sandbox, server, &["pre-upgrade", "--version", "1.0"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let archive = archive_of(&sandbox, 1);
    let name = archive.file_name().unwrap().to_str().unwrap().to_string();
    let key = format!("{prefix}/{name}");
    assert_eq!(copies(&sandbox), vec![(1, "offsite".to_string(), key.clone(), false)]);
    assert_eq!(
        server.object(&key),
        std::fs::read(&archive).unwrap(),
        "the object is the archive"
    );
    let sha: String = sandbox.catalog_value("SELECT sha256 FROM copies WHERE backup_id = 1");
    assert_eq!(
        sha,
        sandbox.catalog_value::<String>("SELECT sha256 FROM backups WHERE id = 1")
    );

    std::fs::remove_file(&archive).unwrap();
    sandbox.file("data/config.yml", b"mode: upgraded-and-broken\n", 0o644);
    std::fs::remove_file(sandbox.work().join("data/db/records.bin")).unwrap();
    let rollback = run(&sandbox, server, &["rollback", "--yes"]);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    assert!(
        rollback
            .stdout
            .contains(&format!("fetched: backup 1's archive from remote offsite ({key}")),
        "{}",
        rollback.stdout
    );
    assert_eq!(
        tree_manifest(&sandbox.work().join("data")),
        before,
        "the data is back byte for byte"
    );
    assert!(archive.is_file(), "the fetched archive is the local copy again");
}

#[test]
fn an_encrypted_copy_is_what_age_decrypts_and_a_restore_needs_the_identity() {
    let Some(server) = s3::shared() else { return };
    let keys = tempfile::tempdir().unwrap();
    let (identity, recipient) = s3::age_keypair(keys.path());
    let prefix = prefix("age");
    let remote = server.remote_toml(
        "vault",
        &prefix,
        &format!("encrypt = {{ recipients = [\"{recipient}\"] }}"),
    );
    let sandbox = deployment(&remote, true, 20 << 20);
    let before = tree_manifest(&sandbox.work().join("data"));

    let backup = run(&sandbox, server, &["backup", "--version", "2.0"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let archive = archive_of(&sandbox, 1);
    let key = format!("{prefix}/{}.age", archive.file_name().unwrap().to_str().unwrap());
    assert_eq!(copies(&sandbox), vec![(1, "vault".to_string(), key.clone(), true)]);
    let object = server.object(&key);
    assert_ne!(
        object,
        std::fs::read(&archive).unwrap(),
        "the server never sees the archive in the clear"
    );
    let sealed = keys.path().join("object.age");
    std::fs::write(&sealed, &object).unwrap();
    let decrypted = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(
        decrypted.status.success(),
        "{}",
        String::from_utf8_lossy(&decrypted.stderr)
    );
    assert_eq!(
        decrypted.stdout,
        std::fs::read(&archive).unwrap(),
        "age -d gives the archive byte for byte"
    );

    let verified = run(
        &sandbox,
        server,
        &["verify", "--remote", "--identity", identity.to_str().unwrap(), "1"],
    );
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    assert!(
        verified.stdout.contains("ok      1 (copy on vault)"),
        "{}",
        verified.stdout
    );

    std::fs::remove_file(&archive).unwrap();
    assert_restore_refused(&sandbox, server, "is encrypted: pass --identity FILE");

    let restored = run(
        &sandbox,
        server,
        &["restore", "1", "--yes", "--identity", identity.to_str().unwrap()],
    );
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    assert_eq!(tree_manifest(&sandbox.work().join("data")), before);
}

#[test]
fn a_flipped_byte_on_the_server_fails_verify_remote_and_no_restore_uses_it() {
    let Some(server) = s3::shared() else { return };
    let prefix = prefix("flipped");
    let sandbox = deployment(&server.remote_toml("offsite", &prefix, ""), true, 1 << 20);
    assert_eq!(run(&sandbox, server, &["backup", "--version", "1"]).code, 0);
    let archive = archive_of(&sandbox, 1);
    let key = format!("{prefix}/{}", archive.file_name().unwrap().to_str().unwrap());
    let mut object = server.object(&key);
    let middle = object.len() / 2;
    object[middle] ^= 0x01;
    server.overwrite(&key, &object);

    let doc = run(&sandbox, server, &["--json", "verify", "--remote=offsite", "1"]).json();
    crate::json_schemas::assert_document("verify", &doc);
    assert_eq!(doc["verified"][0]["remote"], "offsite", "{doc}");
    let verified = run(&sandbox, server, &["verify", "--remote", "1"]);
    assert_eq!(verified.code, 1, "{}{}", verified.stdout, verified.stderr);
    assert!(
        verified.stdout.contains(&format!(
            "FAILED  1 (copy on offsite) remote offsite: {key}: the object differs"
        )),
        "{}",
        verified.stdout
    );
    let ok: bool = sandbox.catalog_value("SELECT verify_ok FROM copies WHERE backup_id = 1");
    assert!(!ok, "the failed read-back is recorded on the copy");

    std::fs::remove_file(&archive).unwrap();
    assert_restore_refused(&sandbox, server, "differs from what was uploaded");
    assert!(!archive.exists(), "a damaged download never takes the archive's place");
}

#[test]
fn a_wrong_secret_a_missing_bucket_and_a_server_that_is_down_are_one_line_each_and_the_backup_stands() {
    let Some(server) = s3::shared() else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let remotes = format!(
        "{}[[remote]]\nname = \"nobucket\"\nurl = \"s3://no-such-bucket/x\"\nendpoint = \"{}\"\n\n\
         [[remote]]\nname = \"down\"\nurl = \"s3://{BUCKET}/x\"\nendpoint = \"http://127.0.0.1:{closed}\"\nretries = 0\n",
        server.remote_toml("offsite", &prefix("secret"), ""),
        server.endpoint(),
    );
    let sandbox = deployment(&remotes, true, 1 << 20);
    let mut command = sandbox.command(&["backup", "--version", "1"]);
    server
        .credentials(&mut command)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let backup = sandbox.run_command(command);
    assert_eq!(
        backup.code, 0,
        "an upload failure leaves the completed backup completed: {}",
        backup.stderr
    );
    let status: String = sandbox.catalog_value("SELECT status FROM backups WHERE id = 1");
    assert_eq!(status, "completed");
    assert!(copies(&sandbox).is_empty(), "no copy is recorded");
    let all = format!("{}{}", backup.stdout, backup.stderr);
    assert!(
        all.contains("remote offsite (s3://backups/") && all.contains("access denied (403)"),
        "{all}"
    );

    let sync = run(&sandbox, server, &["sync"]);
    assert_eq!(sync.code, 1, "{}{}", sync.stdout, sync.stderr);
    assert!(sync.stdout.contains("uploaded backup 1 to offsite"), "{}", sync.stdout);
    let failed: Vec<&str> = sync.stdout.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 2, "{}", sync.stdout);
    assert!(
        failed[0].contains("remote nobucket (s3://no-such-bucket/x)")
            && failed[0].contains("the bucket does not exist (NoSuchBucket)"),
        "{}",
        failed[0]
    );
    assert!(
        failed[1].contains("remote down (s3://backups/x)") && failed[1].contains("cannot reach the server"),
        "{}",
        failed[1]
    );
    assert!(failed.iter().all(|l| !l.contains(s3::SECRET_ACCESS_KEY)));
    assert_eq!(copies(&sandbox).len(), 1);

    // No credentials at all: said as such, not as a network error.
    let mut command = sandbox.command(&["sync", "--remote", "nobucket"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", sandbox.path());
    let none = sandbox.run_command(command);
    assert_eq!(none.code, 1, "{}{}", none.stdout, none.stderr);
    assert!(
        none.stdout.contains("no credentials: set AWS_ACCESS_KEY_ID"),
        "{}",
        none.stdout
    );
    assert!(
        !none.stderr.contains("retry"),
        "retries are not logged at the default level: {}",
        none.stderr
    );
}

#[test]
fn a_server_killed_mid_upload_records_no_copy_and_sync_completes_it_later() {
    let Some(server) = S3Server::start() else { return };
    let sandbox = deployment(
        &server.remote_toml("offsite", "cut", "retries = 1\ntimeout = \"5s\""),
        true,
        160 << 20,
    );
    let mut command = sandbox.command(&["backup", "--version", "1"]);
    server.credentials(&mut command);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    // Once the archive is in storage the chain is at `record` and then `upload`: cut the server mid-upload.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_dir(sandbox.storage())
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("backup_"))
        })
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "no archive appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    let backup = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let all = format!("{}{}", backup.stdout, backup.stderr);
    assert!(all.contains("remote offsite (s3://backups/cut)"), "{all}");
    assert!(copies(&sandbox).is_empty(), "no copy is recorded: {all}");

    server.restart();
    assert!(
        server.keys("cut").is_empty(),
        "no object appeared: {:?}",
        server.keys("cut")
    );
    let sync = run(&sandbox, &server, &["sync"]);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    let archive = archive_of(&sandbox, 1);
    let key = format!("cut/{}", archive.file_name().unwrap().to_str().unwrap());
    assert_eq!(copies(&sandbox), vec![(1, "offsite".to_string(), key.clone(), false)]);
    assert_eq!(server.object(&key), std::fs::read(&archive).unwrap());
    let again = run(&sandbox, &server, &["sync"]);
    assert!(
        again.stdout.contains("0 uploaded, 1 already there, 0 failed"),
        "{}",
        again.stdout
    );
}

#[test]
fn sync_adopts_an_object_whose_upload_completed_but_was_never_recorded() {
    let Some(server) = s3::shared() else { return };
    let prefix = prefix("adopt");
    let sandbox = deployment(&server.remote_toml("offsite", &prefix, ""), false, 1 << 20);
    assert_eq!(run(&sandbox, server, &["backup", "--version", "1"]).code, 0);
    assert!(copies(&sandbox).is_empty(), "no upload hook: no copy");
    let first = run(&sandbox, server, &["sync"]);
    assert!(
        first.stdout.contains("1 uploaded, 0 already there, 0 failed"),
        "{}",
        first.stdout
    );
    // A crash between the upload's completion and its record: the catalog forgot, the object is there.
    rusqlite::Connection::open(sandbox.path().join("catalog.db"))
        .unwrap()
        .execute("DELETE FROM copies", [])
        .unwrap();
    let adopted = run(&sandbox, server, &["--json", "sync"]);
    assert_eq!(adopted.code, 0, "{}", adopted.stderr);
    let doc = adopted.json();
    crate::json_schemas::assert_document("sync", &doc);
    assert_eq!(doc["uploaded"][0]["already_there"], true, "{doc}");
    let shown = run(&sandbox, server, &["--json", "show", "1"]).json();
    crate::json_schemas::assert_document("show", &shown);
    assert_eq!(shown["backup"]["copies"][0]["location"], "offsite");
    assert_eq!(copies(&sandbox).len(), 1);
}

#[test]
fn a_remote_keeps_longer_than_local_storage_and_delete_removes_every_copy() {
    let Some(server) = s3::shared() else { return };
    let prefix = prefix("keep");
    let sandbox = deployment(
        &server.remote_toml("offsite", &prefix, "keep = { last = 3 }"),
        true,
        64 << 10,
    );
    for version in ["1", "2", "3"] {
        assert_eq!(run(&sandbox, server, &["backup", "--version", version]).code, 0);
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert_eq!(server.keys(&prefix).len(), 3);
    let dry = run(&sandbox, server, &["--json", "prune", "--keep-last", "1", "--dry-run"]).json();
    crate::json_schemas::assert_document("prune", &dry);
    assert_eq!(dry["local_removed"], serde_json::json!([1, 2]), "{dry}");
    assert_eq!(dry["deleted"], serde_json::json!([]), "{dry}");
    let prune = run(&sandbox, server, &["prune", "--keep-last", "1"]);
    assert_eq!(prune.code, 0, "{}{}", prune.stdout, prune.stderr);
    assert!(
        prune
            .stdout
            .contains("removed the local archive of backup 1: only a remote keeps it"),
        "{}",
        prune.stdout
    );
    assert!(!archive_of(&sandbox, 1).exists() && !archive_of(&sandbox, 2).exists());
    assert!(archive_of(&sandbox, 3).exists());
    assert_eq!(server.keys(&prefix).len(), 3, "the remote keeps its three");
    let list = run(&sandbox, server, &["--json", "list"]).json();
    crate::json_schemas::assert_document("list", &list);
    assert_eq!(list["backups"][0]["copies"][0]["location"], "offsite");
    assert!(list["backups"][0]["local_removed_at"].is_string());

    let restore = run(&sandbox, server, &["restore", "1", "--yes"]);
    assert_eq!(restore.code, 0, "{}{}", restore.stdout, restore.stderr);
    assert!(
        restore.stdout.contains("because its local archive was pruned"),
        "{}",
        restore.stdout
    );

    let delete = run(&sandbox, server, &["delete", "2"]);
    assert_eq!(delete.code, 0, "{}{}", delete.stdout, delete.stderr);
    assert_eq!(server.keys(&prefix).len(), 2, "the copy went with the backup");
    let rows: i64 = sandbox.catalog_value("SELECT count(*) FROM backups WHERE id = 2");
    assert_eq!(rows, 0);
}

#[test]
fn the_upload_starts_only_once_every_service_runs_again_and_plan_says_what_it_will_move() {
    let Some(server) = s3::shared() else { return };
    let Some(world) = hookrun_e2e::deployment::world("") else {
        return;
    };
    let prefix = prefix("downtime");
    let config = world.sandbox.config_path();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[[hook]]\nname = \"upload\"\nbuiltin = \"upload\"\n\n{}",
            server.remote_toml("offsite", &prefix, "")
        ),
    )
    .unwrap();
    let events = hookrun_e2e::docker::EventLog::start(&world.docker);
    let backup = run(&world.sandbox, server, &["pre-upgrade", "--version", "1"]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let events = events.snapshot();
    let upload_started: String = world
        .sandbox
        .catalog_value("SELECT started_at FROM hook_results WHERE name = 'upload' AND status = 'completed'");
    let upload_ns = hookrun_e2e::docker::parse_ns(&upload_started);
    let p = world.project.name.as_str();
    let starts: Vec<_> = events
        .iter()
        .filter(|e| e.project == p && e.action == "start")
        .collect();
    assert!(starts.len() >= 3, "the services started again: {events:#?}");
    for start in starts {
        assert!(
            start.time_nano < upload_ns,
            "{} ran again before the upload began: the upload is outside the downtime",
            start.service
        );
    }
    assert_eq!(server.keys(&prefix).len(), 1);

    let plan = run(&world.sandbox, server, &["--json", "plan"]).json();
    crate::json_schemas::assert_document("plan", &plan);
    let upload = plan["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "upload")
        .unwrap()
        .clone();
    assert_eq!(upload["uploads"][0]["remote"], "offsite", "{upload}");
    assert!(upload["uploads"][0]["expected_bytes"].as_u64().unwrap() > 0, "{upload}");
    assert!(
        upload["uploads"][0]["expected_ms"].is_u64(),
        "timed from the upload just made: {upload}"
    );
    let estimate = run(&world.sandbox, server, &["--json", "estimate"]).json();
    crate::json_schemas::assert_document("estimate", &estimate);
    assert_eq!(estimate["uploads"], upload["uploads"]);
}

#[test]
fn a_damaged_local_archive_is_replaced_by_its_remote_copy_before_the_restore_stops_anything() {
    let Some(server) = s3::shared() else { return };
    let prefix = prefix("damaged");
    let sandbox = deployment(&server.remote_toml("offsite", &prefix, ""), true, 2 << 20);
    let before = tree_manifest(&sandbox.work().join("data"));
    assert_eq!(run(&sandbox, server, &["backup", "--version", "1"]).code, 0);
    let archive = archive_of(&sandbox, 1);
    let good = std::fs::read(&archive).unwrap();
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x80;
    std::fs::write(&archive, &damaged).unwrap();
    sandbox.file("data/config.yml", b"changed\n", 0o644);

    let restore = run(&sandbox, server, &["restore", "1", "--yes"]);
    assert_eq!(restore.code, 0, "{}{}", restore.stdout, restore.stderr);
    assert!(restore.stdout.contains("is damaged (SHA-256"), "{}", restore.stdout);
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        good,
        "the local archive is whole again"
    );
    assert_eq!(tree_manifest(&sandbox.work().join("data")), before);
}
