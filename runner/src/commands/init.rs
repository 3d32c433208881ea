//! `hookrun init [--project NAME]`: a new user's first `hooks.toml`, written from a running Compose project as the
//! Docker API shows it — the chain every deployment starts with (stop, snapshot, start, backup with
//! `volumes = "auto"`, record), the services and volumes it found in comments, and for a service that runs
//! PostgreSQL, MySQL/MariaDB or SQLite the matching dump hook as a commented suggestion. It never overwrites a file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::exit::{Exit, UsageError};
use crate::results::InitResult;
use hookrun_docker::{project_mounts, Engine, MountKind, ProjectContainer};

/// Writes `config` for `project` (or the one project the engine has); refuses an existing file, an unknown project,
/// or several projects without `--project` (exit 2).
pub async fn init(config: &Path, project: Option<&str>) -> anyhow::Result<(InitResult, Exit)> {
    if config.symlink_metadata().is_ok() {
        return Err(UsageError(format!(
            "{} exists: init never overwrites a hooks.toml (remove it, or pass --config NEW_PATH)",
            config.display()
        ))
        .into());
    }
    let engine = Engine::connect().await?;
    let projects = engine.compose_projects().await?;
    let project = match project {
        Some(name) if projects.iter().any(|p| p == name) => name.to_string(),
        Some(name) => {
            return Err(UsageError(format!(
                "no Compose project {name} here (projects: {})",
                list_or_none(&projects)
            ))
            .into())
        }
        None => match projects.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(UsageError(format!(
                    "say which project with --project NAME (projects: {})",
                    list_or_none(&projects)
                ))
                .into())
            }
        },
    };
    let containers = engine.project_containers(&project).await?;
    let folder = std::path::absolute(config)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let text = render(&project, &containers, &folder);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(config)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", config.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    let mounts = project_mounts(&containers);
    let named = |kind: MountKind| -> Vec<String> {
        mounts
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.name.clone())
            .collect()
    };
    let mut services: Vec<String> = containers.iter().map(|c| c.service.clone()).collect();
    services.dedup();
    let result = InitResult {
        path: config.to_path_buf(),
        project,
        services,
        volumes: named(MountKind::Volume),
        binds: named(MountKind::Bind),
        suggestions: containers
            .iter()
            .filter_map(|c| Some(format!("{}: {}", c.service, database(c)?.name())))
            .collect(),
    };
    Ok((result, Exit::Success))
}

fn list_or_none(projects: &[String]) -> String {
    if projects.is_empty() {
        "none has containers".to_string()
    } else {
        projects.join(", ")
    }
}

/// A database a dump hook can be suggested for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    Postgres,
    MySql,
    Sqlite,
}

impl Database {
    fn name(self) -> &'static str {
        match self {
            Database::Postgres => "PostgreSQL",
            Database::MySql => "MySQL/MariaDB",
            Database::Sqlite => "SQLite",
        }
    }
}

/// What database a container runs, judged by its image's name (the official images' names).
fn database(container: &ProjectContainer) -> Option<Database> {
    let image = container.image.to_ascii_lowercase();
    let repository = image.rsplit('/').next().unwrap_or(&image);
    let name = repository.split([':', '@']).next().unwrap_or(repository);
    if name.contains("postgres") || name.contains("postgis") || name.contains("timescale") {
        Some(Database::Postgres)
    } else if name.contains("mysql") || name.contains("mariadb") || name.contains("percona") {
        Some(Database::MySql)
    } else if name.contains("sqlite") {
        Some(Database::Sqlite)
    } else {
        None
    }
}

/// A TOML string (the values come from the engine: quoted and escaped).
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The commented `hooks.toml` for `project`, to be written in `folder`.
fn render(project: &str, containers: &[ProjectContainer], folder: &Path) -> String {
    let working_dir = containers
        .iter()
        .find_map(|c| c.labels.get("com.docker.compose.project.working_dir"))
        .map(PathBuf::from);
    let work_dir = match &working_dir {
        Some(dir) if dir == folder => ".".to_string(),
        Some(dir) => dir.display().to_string(),
        None => ".".to_string(),
    };
    let mounts = project_mounts(containers);
    let mut out = String::new();
    out.push_str(&format!(
        "# hooks.toml for the Compose project {project}, written by `hookrun init` from what the Docker engine runs.\n\
         # Check it with `hookrun hooks check`, see what a backup would take with `hookrun plan`, then run\n\
         # `hookrun pre-upgrade --version V` before an upgrade (or `hookrun upgrade`). Reference: hookrun's README.\n#\n\
         # Services found:\n"
    ));
    for c in containers {
        let health = if c.has_healthcheck {
            ", with a healthcheck (start waits for healthy)"
        } else {
            ""
        };
        let state = if c.running { "running" } else { "not running" };
        out.push_str(&format!("#   {} ({}, image {}{health})\n", c.service, state, c.image));
    }
    out.push_str("# Volumes and bind mounts found (`volumes = \"auto\"` below archives them all):\n");
    if mounts.is_empty() {
        out.push_str("#   none: the backup has only the Compose files to keep (allow_empty below says so)\n");
    }
    for m in &mounts {
        let kind = match m.kind {
            MountKind::Volume => "volume",
            MountKind::Bind => "bind mount",
        };
        out.push_str(&format!("#   {kind} {} (at {})\n", m.name, m.destination));
    }
    out.push_str(&format!(
        "\n[runner]\nproject = {}\nwork_dir = {}\nstorage_dir = \"backups\"          # where archives and the catalog go\n\
         # version = \"1.0.0\"                 # the version `hookrun backup` records when none is given\n",
        quoted(project),
        quoted(&work_dir)
    ));
    for c in containers {
        match database(c) {
            Some(Database::Postgres) => out.push_str(&format!(
                "\n# {service} runs PostgreSQL: a consistent dump before the stop, with the pg-dump example hook\n\
                 # (build it: cargo build --release --target wasm32-wasip1 in hookrun's examples/pg-dump).\n\
                 # [[hook]]\n# name = \"dump-{service}\"\n# wasm = \"examples/pg-dump/target/wasm32-wasip1/release/pg_dump.wasm\"\n\
                 # config = {{ service = {q}, database = \"postgres\", format = \"plain\" }}\n\
                 # permissions = {{ exec = [{{ service = {q}, programs = [\"pg_dump\"] }}] }}\n",
                service = c.service,
                q = quoted(&c.service)
            )),
            Some(Database::MySql) => out.push_str(&format!(
                "\n# {service} runs MySQL/MariaDB: a consistent dump before the stop, into the hook's artifact folder\n\
                 # (archived under hooks/dump-{service}/); the password comes from the container's own environment.\n\
                 # [[hook]]\n# name = \"dump-{service}\"\n# builtin = \"command\"\n\
                 # [hook.config]\n# command = [\"sh\", \"-c\", \"docker-compose -p {project} exec -T {service} sh -c 'exec mysqldump --all-databases --single-transaction -uroot -p\\\"$MYSQL_ROOT_PASSWORD\\\"' > \\\"$HOOKRUN_ARTIFACT_DIR/all.sql\\\"\"]\n",
                service = c.service
            )),
            Some(Database::Sqlite) => out.push_str(&format!(
                "\n# {service} looks like SQLite: an online copy (sqlite3 .backup) before the stop, with the\n\
                 # sqlite-backup example hook (build it in hookrun's examples/sqlite-backup).\n\
                 # [[hook]]\n# name = \"dump-{service}\"\n# wasm = \"examples/sqlite-backup/target/wasm32-wasip1/release/sqlite_backup.wasm\"\n\
                 # config = {{ service = {q}, database = \"/data/app.db\" }}   # the database file inside the container\n\
                 # permissions = {{ exec = [{{ service = {q}, programs = [\"sqlite3\"] }}] }}\n",
                service = c.service,
                q = quoted(&c.service)
            )),
            None => {}
        }
    }
    out.push_str(
        "\n# Stop the project, dependents first.\n[[hook]]\nname = \"stop\"\nbuiltin = \"stop\"\n\n\
         # While the services are stopped, copy only what the backup below archives (a clone where storage can;\n\
         # elsewhere it archives right here, services still stopped).\n\
         [[hook]]\nname = \"snapshot\"\nbuiltin = \"snapshot\"\n[hook.config]\nbackup = \"backup\"\n\n\
         # Bring back exactly what was stopped, dependencies first (runs always).\n\
         [[hook]]\nname = \"start\"\nbuiltin = \"start\"\n\n\
         # Archive the project's volumes and bind mounts (add `sources = [\"config\"]` for folders of the work dir).\n\
         [[hook]]\nname = \"backup\"\nbuiltin = \"backup\"\n[hook.config]\nvolumes = \"auto\"\n",
    );
    if mounts.is_empty() {
        out.push_str("allow_empty = true\n");
    }
    out.push_str(
        "\n# Record the attempt in the catalog (runs always: a failure is recorded too).\n\
         [[hook]]\nname = \"record\"\nbuiltin = \"record\"\n",
    );
    out
}
