//! The `pg-dump` hook: runs `pg_dump` inside the Compose service that holds a PostgreSQL database and streams the
//! dump into the hook's artifact folder, so it lands in the backup archive as `hooks/<name>/<database>.dump`.
//!
//! ```toml
//! [[hook]]
//! name = "dump-db"
//! wasm = "examples/pg-dump/target/wasm32-wasip1/release/pg-dump.wasm"
//! timeout = "30m"
//! config = { service = "db", database = "app", user = "app" }
//! permissions = { exec = [{ service = "db", programs = ["pg_dump"] }] }
//! ```
//!
//! It runs before `stop`, while the database is up: `pg_dump` takes a consistent snapshot without stopping
//! writers. The custom format (the default) is compressed and restores with `pg_restore`; `format = "plain"`
//! writes SQL for `psql`.

use hookrun_sdk::{Context, Hook, Result};
use serde::Deserialize;

/// The hook's `config` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The Compose service running PostgreSQL.
    #[serde(default = "default_service")]
    service: String,
    /// The database to dump.
    database: String,
    /// The role to connect as (over the container's local socket).
    #[serde(default = "default_user")]
    user: String,
    /// `custom` (compressed, for pg_restore) or `plain` (SQL).
    #[serde(default)]
    format: Format,
    /// Extra arguments for pg_dump, e.g. `["--exclude-table=audit_log"]`.
    #[serde(default)]
    extra_args: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Custom,
    Plain,
}

fn default_service() -> String {
    "db".to_string()
}

fn default_user() -> String {
    "postgres".to_string()
}

/// The pg_dump command line for `config`, and the artifact its output goes to.
fn command(config: &Config) -> (Vec<String>, String) {
    let (format, extension) = match config.format {
        Format::Custom => ("custom", "dump"),
        Format::Plain => ("plain", "sql"),
    };
    let mut argv = vec![
        "pg_dump".to_string(),
        "--no-password".to_string(),
        format!("--username={}", config.user),
        format!("--format={format}"),
        format!("--dbname={}", config.database),
    ];
    argv.extend(config.extra_args.iter().cloned());
    let artifact = format!("{}.{extension}", sanitize(&config.database));
    (argv, artifact)
}

/// A database name made safe as a file name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run(hook: &Hook<Config>) -> Result<()> {
    let config = hook.config();
    if config.database.is_empty() {
        return Err("config.database is empty".into());
    }
    let (argv, artifact) = command(config);
    hook.info(format!(
        "dumping database {} from service {} into {artifact}",
        config.database, config.service
    ));
    let result = hook
        .exec(&config.service, &argv)
        .stdout_to_artifact(&artifact)
        .run_checked()
        .context("pg_dump")?;
    if result.stdout_bytes == 0 {
        return Err(format!("pg_dump wrote nothing for database {}", config.database).into());
    }
    hook.info(format!("dumped {} bytes", result.stdout_bytes));
    hook.set_output("file", &artifact)?;
    hook.set_output("bytes", result.stdout_bytes)?;
    Ok(())
}

hookrun_sdk::main!(run);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hookrun_sdk::testing::{ExecReply, TestHost};
    use serde_json::json;

    use super::*;

    #[test]
    fn dumps_the_configured_database_from_the_configured_service() {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(
            TestHost::new(
                json!({ "service": "pg", "database": "shop", "user": "app" }),
                dir.path(),
            )
            .on_exec(|_, _| ExecReply::ok(b"PGDMP...".to_vec())),
        );
        assert_eq!(hookrun_sdk::run_with(host.clone(), run), 0, "{:?}", host.failure());
        let execs = host.execs();
        assert_eq!(execs.len(), 1);
        assert_eq!(execs[0].service, "pg");
        assert_eq!(
            execs[0].argv,
            [
                "pg_dump",
                "--no-password",
                "--username=app",
                "--format=custom",
                "--dbname=shop"
            ]
        );
        assert_eq!(std::fs::read(dir.path().join("shop.dump")).unwrap(), b"PGDMP...");
        assert_eq!(host.outputs()["bytes"], "8");
        assert_eq!(host.outputs()["file"], "shop.dump");
    }

    #[test]
    fn plain_format_writes_sql_and_odd_names_make_safe_files() {
        let config: Config = serde_json::from_value(json!({ "database": "a/b c", "format": "plain" })).unwrap();
        let (argv, artifact) = command(&config);
        assert!(argv.contains(&"--format=plain".to_string()));
        assert_eq!(artifact, "a_b_c.sql");
    }

    #[test]
    fn a_failing_pg_dump_fails_the_hook_with_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(
            TestHost::new(json!({ "database": "nope" }), dir.path())
                .on_exec(|_, _| ExecReply::failed(1, "pg_dump: error: database \"nope\" does not exist\n")),
        );
        assert_eq!(hookrun_sdk::run_with(host.clone(), run), 1);
        let failure = host.failure().unwrap();
        assert!(failure.contains("exited with code 1"), "{failure}");
        assert!(failure.contains("does not exist"), "{failure}");
    }

    #[test]
    fn an_empty_dump_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let host =
            Arc::new(TestHost::new(json!({ "database": "app" }), dir.path()).on_exec(|_, _| ExecReply::ok(Vec::new())));
        assert_eq!(hookrun_sdk::run_with(host.clone(), run), 1);
        assert!(host.failure().unwrap().contains("wrote nothing"));
    }
}
