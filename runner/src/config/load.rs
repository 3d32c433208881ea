//! Loading `hooks.toml`: parse with spans, resolve paths against the file's folder (a WASM hook's granted folders
//! against the work dir), validate, and point every error at its file, line and column.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::builtin::{self, ConfigTable};
use super::common::{line_column, normalize, Check, RunnerFacts, SpanError};
use super::duration::HumanDuration;
use super::located::{Located, LocatedTable};
use super::remote::RawRemote;
use super::{
    Builtin, Config, ConfigError, HookKind, HookSpec, OnError, Permissions, RunnerConfig, UpgradeConfig, WasmHookSpec,
    When, DEFAULT_MEMORY_LIMIT,
};

/// The timeout of a hook when neither it nor `[runner.defaults]` says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    runner: Spanned<RawRunner>,
    #[serde(default)]
    hook: Vec<Spanned<RawHook>>,
    upgrade: Option<RawUpgrade>,
    #[serde(default)]
    remote: Vec<Spanned<RawRemote>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpgrade {
    command: Option<Spanned<Vec<String>>>,
    timeout: Option<HumanDuration>,
    healthy_for: Option<HumanDuration>,
    gate_timeout: Option<HumanDuration>,
    rollback_command: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunner {
    project: Option<String>,
    work_dir: Spanned<PathBuf>,
    storage_dir: Spanned<PathBuf>,
    catalog: Option<PathBuf>,
    version: Option<String>,
    compose_file: Option<Spanned<PathBuf>>,
    archive_compose_files: Option<bool>,
    metrics_file: Option<PathBuf>,
    #[serde(default)]
    defaults: RawDefaults,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    name: Spanned<String>,
    builtin: Option<Spanned<String>>,
    wasm: Option<Spanned<PathBuf>>,
    when: Option<When>,
    on_error: Option<OnError>,
    timeout: Option<HumanDuration>,
    config: Option<LocatedTable>,
    permissions: Option<Located>,
    memory_limit: Option<Spanned<toml::Value>>,
    artifacts: Option<Spanned<bool>>,
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path, check: Check) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    parse(&text, path, check)
}

/// Validates `text` as if read from `path`.
pub fn parse(text: &str, path: &Path, check: Check) -> Result<Config, ConfigError> {
    let at = |span: Range<usize>, message: String| {
        let (line, column) = line_column(text, span.start);
        ConfigError::At {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile =
        toml::from_str(text).map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim().replace('\n', "; ")))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let base = std::path::absolute(&base).unwrap_or(base);

    let runner = raw.runner.into_inner();
    let work_dir = base.join(runner.work_dir.get_ref());
    if !work_dir.is_dir() {
        return Err(at(
            runner.work_dir.span(),
            format!("work_dir {} is not a folder", work_dir.display()),
        ));
    }
    // The work dir as the engine reports mounts in it: `..` and symlinks resolved (`work_dir = ".."` must still
    // find the bind mounts under it).
    let work_dir = std::fs::canonicalize(&work_dir).unwrap_or(work_dir);
    let storage_dir = normalize(&base.join(runner.storage_dir.get_ref()));
    let catalog = runner
        .catalog
        .map_or_else(|| storage_dir.join("catalog.db"), |c| normalize(&base.join(c)));
    let default_timeout = runner.defaults.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
    let compose_file = runner.compose_file.as_ref().map(|f| base.join(f.get_ref()));
    if let (Some(file), Some(spanned), Check::Full) = (&compose_file, &runner.compose_file, check) {
        if !file.is_file() {
            return Err(at(spanned.span(), format!("compose file {} not found", file.display())));
        }
    }
    let facts = RunnerFacts {
        work_dir: &work_dir,
        project: runner.project.as_deref(),
        compose_file: compose_file.as_deref(),
        check,
        remotes: &[],
    };

    let mut remotes = Vec::with_capacity(raw.remote.len());
    let mut remote_lines: HashMap<String, usize> = HashMap::new();
    for raw_remote in raw.remote {
        let table = raw_remote.span();
        let raw_remote = raw_remote.into_inner();
        let name = raw_remote.name().clone();
        if let Some(first_line) = remote_lines.insert(name.get_ref().clone(), line_column(text, table.start).0) {
            return Err(at(
                name.span(),
                format!(
                    "duplicate remote name `{}` (first used on line {first_line})",
                    name.get_ref()
                ),
            ));
        }
        remotes.push(raw_remote.resolve(&base).map_err(|e| at(e.span, e.message))?);
    }
    let remote_names: Vec<String> = remotes.iter().map(|r| r.spec.name.clone()).collect();
    let facts = RunnerFacts {
        remotes: &remote_names,
        ..facts
    };

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut hooks = Vec::with_capacity(raw.hook.len());
    for raw_hook in raw.hook {
        let hook_span = raw_hook.span();
        let hook = raw_hook.into_inner();
        let err = |e: SpanError| at(e.span, e.message);
        let name = hook.name.get_ref().clone();
        check_name(&hook.name).map_err(err)?;
        if let Some(first_line) = seen.insert(name.clone(), line_column(text, hook_span.start).0) {
            return Err(at(
                hook.name.span(),
                format!("duplicate hook name `{name}` (first used on line {first_line})"),
            ));
        }
        let config = hook
            .config
            .map_or_else(|| Located::empty_table(hook_span.clone()), |table| table.0);
        let config = ConfigTable {
            span: config.span.clone().unwrap_or(hook_span.clone()),
            value: &config,
        };
        let may_write_artifacts =
            hook.wasm.is_some() || hook.builtin.as_ref().is_some_and(|b| b.get_ref() == "command");
        if let Some(artifacts) = hook.artifacts.as_ref().filter(|_| !may_write_artifacts) {
            return Err(at(
                artifacts.span(),
                "`artifacts` applies to WASM and `command` hooks only".into(),
            ));
        }
        let (kind, default_when) = match (hook.builtin, hook.wasm) {
            (Some(kind), None) => {
                let permissions = hook
                    .permissions
                    .as_ref()
                    .map(|p| p.span.clone().unwrap_or(hook_span.clone()));
                if let Some(extra) = permissions.or(hook.memory_limit.as_ref().map(Spanned::span)) {
                    return Err(at(
                        extra,
                        "`permissions` and `memory_limit` apply to WASM hooks only".into(),
                    ));
                }
                let when = builtin::default_when(kind.get_ref());
                let parsed = builtin::parse(&kind, &config, &facts).map_err(err)?;
                (HookKind::Builtin(parsed), when)
            }
            (None, Some(module)) => {
                let file = base.join(module.get_ref());
                if check == Check::Full && !file.is_file() {
                    return Err(at(module.span(), format!("WASM module {} not found", file.display())));
                }
                // Granted folders, like every path the chain works on, are relative to the work dir.
                let permissions = match &hook.permissions {
                    Some(table) => Permissions::from_located(table, &work_dir, check == Check::Full).map_err(|e| {
                        let span = e.span.or_else(|| table.span.clone()).unwrap_or(hook_span.clone());
                        at(span, e.message)
                    })?,
                    None => Permissions {
                        work_dir: Some(work_dir.clone()),
                        ..Permissions::default()
                    },
                };
                let memory_limit = match &hook.memory_limit {
                    Some(limit) => parse_size(limit.get_ref(), "memory_limit").map_err(|m| at(limit.span(), m))?,
                    None => DEFAULT_MEMORY_LIMIT,
                };
                let spec = WasmHookSpec {
                    name: name.clone(),
                    module: file,
                    config: serde_json::to_value(config.value.to_toml()).unwrap_or_default(),
                    permissions,
                    memory_limit,
                };
                (HookKind::Wasm(spec), When::Success)
            }
            (Some(_), Some(module)) => {
                return Err(at(
                    module.span(),
                    format!("hook `{name}` sets both `builtin` and `wasm`; choose one"),
                ));
            }
            (None, None) => {
                return Err(at(
                    hook.name.span(),
                    format!("hook `{name}` needs `builtin = \"...\"` or `wasm = \"...\"`"),
                ));
            }
        };
        let on_error = hook.on_error.unwrap_or(match kind {
            HookKind::Builtin(Builtin::Upload { .. } | Builtin::Notify(_)) => OnError::Continue,
            _ => OnError::Abort,
        });
        hooks.push(HookSpec {
            name,
            kind,
            when: hook.when.unwrap_or(default_when),
            // An upload's failure never turns a completed local backup into a failed run unless it says so.
            on_error,
            timeout: hook.timeout.map_or(default_timeout, |t| t.0),
            artifacts: hook.artifacts.as_ref().is_none_or(|a| *a.get_ref()),
            line: line_column(text, hook_span.start).0,
            name_at: line_column(text, hook.name.span().start),
        });
    }

    resolve_snapshots(&mut hooks).map_err(|(line, message)| ConfigError::At {
        file: path.to_path_buf(),
        line,
        column: 1,
        message,
    })?;
    check_uploads_follow_the_start(&hooks).map_err(|(hook, message)| ConfigError::At {
        file: path.to_path_buf(),
        line: hook.name_at.0,
        column: hook.name_at.1,
        message,
    })?;
    check_artifacts_reach_the_archive(&hooks).map_err(|(hook, message)| ConfigError::At {
        file: path.to_path_buf(),
        line: hook.name_at.0,
        column: hook.name_at.1,
        message,
    })?;

    let upgrade = match raw.upgrade {
        None => UpgradeConfig::default(),
        Some(raw) => {
            let program = |list: Option<Spanned<Vec<String>>>, key: &str| {
                match list {
                Some(list) if list.get_ref().first().is_none_or(|p| p.trim().is_empty()) => Err(at(
                    list.span(),
                    format!("upgrade.{key} needs a program (the array's first item), e.g. [\"docker-compose\", \"up\", \"-d\"]"),
                )),
                other => Ok(other.map(Spanned::into_inner)),
            }
            };
            let defaults = UpgradeConfig::default();
            UpgradeConfig {
                command: program(raw.command, "command")?,
                timeout: raw.timeout.map_or(defaults.timeout, |t| t.0),
                healthy_for: raw.healthy_for.map_or(defaults.healthy_for, |t| t.0),
                gate_timeout: raw.gate_timeout.map_or(defaults.gate_timeout, |t| t.0),
                rollback_command: program(raw.rollback_command, "rollback_command")?,
            }
        }
    };

    Ok(Config {
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        runner: RunnerConfig {
            project: runner.project.clone(),
            work_dir: work_dir.clone(),
            storage_dir,
            catalog,
            version: runner.version,
            compose_file,
            archive_compose_files: runner.archive_compose_files.unwrap_or(true),
            metrics_file: runner.metrics_file.map(|f| normalize(&base.join(f))),
        },
        hooks,
        upgrade,
        remotes,
    })
}

/// An upload runs after the archive exists and after the services are back: never inside the downtime.
fn check_uploads_follow_the_start(hooks: &[HookSpec]) -> Result<(), (&HookSpec, String)> {
    let is = |hook: &HookSpec, label: &str| hook.kind.label() == label;
    for (index, upload) in hooks.iter().enumerate().filter(|(_, h)| is(h, "upload")) {
        let before = &hooks[..index];
        if !before.iter().any(|h| is(h, "backup") || is(h, "snapshot")) {
            return Err((
                upload,
                format!(
                    "hook `{}` uploads the archive: place it after the backup hook",
                    upload.name
                ),
            ));
        }
        let last_stop = before.iter().rposition(|h| is(h, "stop"));
        let last_start = before.iter().rposition(|h| is(h, "start"));
        if let Some(stop) = last_stop {
            if last_start.is_none_or(|start| start < stop) {
                return Err((
                    upload,
                    format!(
                        "hook `{}` would upload while the services are stopped: place it after the start hook",
                        upload.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Gives every `snapshot` hook the config of the backup hook it names, which must come after it in the chain.
fn resolve_snapshots(hooks: &mut [HookSpec]) -> Result<(), (usize, String)> {
    for index in 0..hooks.len() {
        let (line, name) = match &hooks[index].kind {
            HookKind::Builtin(Builtin::Snapshot { backup, .. }) => (hooks[index].line, backup.clone()),
            _ => continue,
        };
        let later = hooks[index + 1..].iter().find(|h| h.name == name).map(|h| &h.kind);
        let Some(HookKind::Builtin(Builtin::Backup(config))) = later else {
            return Err((
                line,
                format!("snapshot needs `backup = \"{name}\"` to name a backup hook that comes after it"),
            ));
        };
        let config = config.clone();
        if let HookKind::Builtin(Builtin::Snapshot { config: resolved, .. }) = &mut hooks[index].kind {
            *resolved = config;
        }
    }
    Ok(())
}

/// Every hook that may write artifacts (WASM and `command` hooks, unless `artifacts = false`) must run before the
/// archive that takes them is written: before the `backup` that includes them, or before that backup's `snapshot`
/// (which writes the archive itself where storage cannot clone, with every later hook still to run). Otherwise what
/// it writes never reaches the archive — a dump missing from the backup — so the chain is refused, on any file
/// system. `failure` hooks are left alone: a failed run's archive is never used.
fn check_artifacts_reach_the_archive(hooks: &[HookSpec]) -> Result<(), (&HookSpec, String)> {
    // Where each backup that takes artifacts may write its archive: at its snapshot if it has one, else itself.
    let mut points: Vec<(usize, &HookSpec)> = Vec::new();
    for (index, hook) in hooks.iter().enumerate() {
        let HookKind::Builtin(Builtin::Backup(backup)) = &hook.kind else {
            continue;
        };
        if !backup.include_artifacts {
            continue;
        }
        let snapshot = hooks.iter().enumerate().find(|(_, h)| {
            matches!(&h.kind, HookKind::Builtin(Builtin::Snapshot { backup: named, .. }) if *named == hook.name)
        });
        points.push(snapshot.unwrap_or((index, hook)));
    }
    let Some(&(last, archiver)) = points.iter().max_by_key(|(index, _)| *index) else {
        return Ok(());
    };
    for hook in &hooks[last + 1..] {
        let writes = matches!(hook.kind, HookKind::Wasm(_) | HookKind::Builtin(Builtin::Command(_)));
        if writes && hook.artifacts && hook.when != When::Failure {
            let how = if matches!(archiver.kind, HookKind::Builtin(Builtin::Snapshot { .. })) {
                "may write the archive before it runs (storage that cannot clone)"
            } else {
                "writes the archive before it runs"
            };
            return Err((
                hook,
                format!(
                    "hook `{}` comes after `{}` (line {}), which {how}: its artifacts would never reach the \
                     archive; move `{}` before `{}`, or set `artifacts = false` on it if it writes none",
                    hook.name, archiver.name, archiver.line, hook.name, archiver.name
                ),
            ));
        }
    }
    Ok(())
}

/// A size in bytes: a whole number, or a string with a binary unit ("256MiB", "1 GiB", "512KiB").
pub(super) fn parse_size(value: &toml::Value, key: &str) -> Result<u64, String> {
    let bad = || format!("`{key}` must be bytes or a size like \"256MiB\", not {value}");
    let bytes = match value {
        toml::Value::Integer(n) if *n > 0 => *n as u64,
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (number, unit) = s.split_at(split);
            let number: u64 = number.parse().map_err(|_| bad())?;
            let scale: u64 = match unit.trim() {
                "" | "B" => 1,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                _ => return Err(bad()),
            };
            number.checked_mul(scale).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if bytes == 0 {
        return Err(bad());
    }
    Ok(bytes)
}

/// Hook names become folder names (`hooks/<name>/` in the archive): letters, digits, `-` and `_` only.
fn check_name(name: &Spanned<String>) -> Result<(), SpanError> {
    let ok = !name.get_ref().is_empty()
        && name.get_ref().len() <= 64
        && name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SpanError::new(
            name.span(),
            format!(
                "hook name `{}` must be 1–64 letters, digits, `-` or `_`",
                name.get_ref()
            ),
        ))
    }
}
