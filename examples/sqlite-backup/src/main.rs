//! The `sqlite-backup` hook: for apps that keep their data in SQLite inside a container (Gitea, Vaultwarden,
//! Uptime Kuma, …). It checks the database's integrity with `sqlite3` inside the service, then streams a
//! consistent `.dump` (taken in one read transaction, so writers may keep going) into the hook's artifact folder:
//! the backup gets `hooks/<name>/<db>.sql`, restorable with `sqlite3 new.db < <db>.sql`. A corrupt database fails
//! the hook before the upgrade touches anything.
//!
//! ```toml
//! [[hook]]
//! name = "app-db"
//! wasm = "examples/sqlite-backup/target/wasm32-wasip1/release/sqlite-backup.wasm"
//! config = { service = "app", database = "/data/app.db" }
//! permissions = { exec = [{ service = "app", programs = ["sqlite3"] }] }
//! ```

use hookrun_sdk::{Context, Hook, Result};
use serde::Deserialize;

/// The hook's `config` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The Compose service whose container holds the database.
    service: String,
    /// The database file's path inside the container.
    database: String,
    /// The sqlite3 program in the container.
    #[serde(default = "default_program")]
    program: String,
    /// Skip `PRAGMA integrity_check` (it reads the whole file).
    #[serde(default)]
    skip_integrity_check: bool,
}

fn default_program() -> String {
    "sqlite3".to_string()
}

/// The artifact name for a database path: its file name with `.sql`.
fn artifact_name(database: &str) -> String {
    let stem = database
        .rsplit('/')
        .next()
        .unwrap_or(database)
        .trim_end_matches(".sqlite3")
        .trim_end_matches(".sqlite")
        .trim_end_matches(".db");
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.sql", if stem.is_empty() { "database" } else { &stem })
}

fn run(hook: &Hook<Config>) -> Result<()> {
    let c = hook.config();
    let sqlite = |args: &[&str]| {
        let mut argv = vec![c.program.as_str(), "-readonly", "-bail", c.database.as_str()];
        argv.extend_from_slice(args);
        argv.into_iter().map(String::from).collect::<Vec<_>>()
    };

    if !c.skip_integrity_check {
        let check = hook
            .exec(&c.service, sqlite(&["PRAGMA integrity_check;"]))
            .capture_stdout()
            .run_checked()
            .context("integrity check")?;
        let verdict = check.stdout.unwrap_or_default();
        let verdict = verdict.trim();
        if verdict != "ok" {
            let first = verdict.lines().next().unwrap_or("no answer");
            return Err(format!("{} failed its integrity check: {first}", c.database).into());
        }
        hook.set_output("integrity", "ok")?;
    }

    let artifact = artifact_name(&c.database);
    let dump = hook
        .exec(&c.service, sqlite(&[".dump"]))
        .stdout_to_artifact(&artifact)
        .run_checked()
        .context("sqlite3 .dump")?;
    hook.info(format!(
        "dumped {} ({} bytes) into {artifact}",
        c.database, dump.stdout_bytes
    ));
    hook.set_output("file", &artifact)?;
    hook.set_output("bytes", dump.stdout_bytes)?;
    Ok(())
}

hookrun_sdk::main!(run);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hookrun_sdk::testing::{ExecReply, TestHost};
    use serde_json::json;

    use super::*;

    fn host(dir: &std::path::Path, integrity: &'static str) -> Arc<TestHost> {
        Arc::new(
            TestHost::new(json!({ "service": "app", "database": "/data/app.db" }), dir).on_exec(move |_, argv| {
                if argv.last().unwrap() == ".dump" {
                    ExecReply::ok(b"BEGIN TRANSACTION;\nCOMMIT;\n".to_vec())
                } else {
                    ExecReply::ok(integrity.as_bytes().to_vec())
                }
            }),
        )
    }

    #[test]
    fn checks_integrity_then_dumps_into_an_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let host = host(dir.path(), "ok\n");
        assert_eq!(hookrun_sdk::run_with(host.clone(), run), 0, "{:?}", host.failure());
        let argvs: Vec<_> = host.execs().into_iter().map(|e| e.argv).collect();
        assert_eq!(
            argvs,
            [
                vec![
                    "sqlite3",
                    "-readonly",
                    "-bail",
                    "/data/app.db",
                    "PRAGMA integrity_check;"
                ],
                vec!["sqlite3", "-readonly", "-bail", "/data/app.db", ".dump"],
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app.sql")).unwrap(),
            "BEGIN TRANSACTION;\nCOMMIT;\n"
        );
        assert_eq!(host.outputs()["integrity"], "ok");
    }

    #[test]
    fn a_corrupt_database_fails_before_dumping() {
        let dir = tempfile::tempdir().unwrap();
        let host = host(
            dir.path(),
            "*** in database main ***\nPage 3: btreeInitPage() returns error code 11\n",
        );
        assert_eq!(hookrun_sdk::run_with(host.clone(), run), 1);
        assert!(host.failure().unwrap().contains("failed its integrity check"));
        assert_eq!(host.execs().len(), 1, "no dump after a failed check");
        assert!(!dir.path().join("app.sql").exists());
    }

    #[test]
    fn artifact_names_come_from_the_database_file() {
        assert_eq!(artifact_name("/data/gitea.db"), "gitea.sql");
        assert_eq!(artifact_name("/var/lib/kuma/kuma.sqlite3"), "kuma.sql");
        assert_eq!(artifact_name("weird name.db"), "weird_name.sql");
    }
}
