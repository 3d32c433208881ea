//! The `config` tables of the built-in hooks, checked against what each built-in takes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hookrun_hooks::archive::resolve_sources;
use hookrun_hooks::builtin::{BackupConfig, CommandConfig, StartConfig, StopConfig, Volumes, DEFAULT_START_TIMEOUT};
use toml::Spanned;

use super::duration::HumanDuration;
use super::fields::{Fields, SpanError};
use super::load::Check;
use super::{Builtin, When};

/// The built-ins this build knows, for error messages.
pub const KNOWN: &[&str] = &["stop", "snapshot", "backup", "record", "start", "command"];

/// What the built-ins need to know of the `[runner]` table.
pub struct RunnerFacts<'a> {
    pub work_dir: &'a Path,
    pub project: Option<&'a str>,
    pub compose_file: Option<&'a Path>,
    pub check: Check,
}

/// Turns `builtin = "<kind>"` and its config into a typed built-in.
pub fn parse(kind: &Spanned<String>, mut fields: Fields, runner: &RunnerFacts<'_>) -> Result<Builtin, SpanError> {
    let needs_project = |what: &str| {
        SpanError::new(
            kind.span(),
            format!("built-in `{what}` needs the Compose project: set `[runner] project`"),
        )
    };
    match kind.get_ref().as_str() {
        "backup" => backup(fields, runner).map(Builtin::Backup),
        "record" => fields.finish("record", &[]).map(|()| Builtin::Record),
        "snapshot" => {
            let backup = fields.require::<String>("backup", "the name of the backup hook that archives the copies")?;
            fields.finish("snapshot", &["backup"])?;
            // The backup's config is filled in once every hook is read (see `load::resolve_snapshots`).
            Ok(Builtin::Snapshot {
                backup: backup.into_inner(),
                config: BackupConfig::default(),
            })
        }
        "stop" => {
            if runner.project.is_none() {
                return Err(needs_project("stop"));
            }
            let services = fields.take::<Vec<String>>("services")?.map(Spanned::into_inner);
            let stop_timeout = fields.take::<HumanDuration>("stop_timeout")?.map(|t| t.into_inner().0);
            let allow_empty = fields.take::<bool>("allow_empty")?.is_some_and(Spanned::into_inner);
            fields.finish("stop", &["services", "stop_timeout", "allow_empty"])?;
            let compose_file = runner.compose_file.map(Path::to_path_buf);
            Ok(Builtin::Stop(StopConfig {
                services,
                stop_timeout,
                allow_empty,
                compose_file,
            }))
        }
        "start" => {
            if runner.project.is_none() {
                return Err(needs_project("start"));
            }
            let start_timeout = fields
                .take::<HumanDuration>("start_timeout")?
                .map_or(DEFAULT_START_TIMEOUT, |t| t.into_inner().0);
            fields.finish("start", &["start_timeout"])?;
            Ok(Builtin::Start(StartConfig { start_timeout }))
        }
        "command" => {
            let command = fields.require::<Vec<String>>("command", "the program and its arguments")?;
            if command.get_ref().is_empty() || command.get_ref()[0].is_empty() {
                return Err(SpanError::new(command.span(), "`command` must name a program"));
            }
            let env = fields
                .take::<BTreeMap<String, String>>("env")?
                .map(Spanned::into_inner)
                .unwrap_or_default();
            let cwd = fields.take::<PathBuf>("cwd")?.map(Spanned::into_inner);
            fields.finish("command", &["command", "env", "cwd"])?;
            Ok(Builtin::Command(CommandConfig {
                command: command.into_inner(),
                env,
                cwd,
            }))
        }
        other => Err(SpanError::new(
            kind.span(),
            format!("unknown built-in `{other}`, expected one of: {}", KNOWN.join(", ")),
        )),
    }
}

/// The `when` a built-in gets when the file does not say: `record` and `start` run `always`, so that a failed
/// attempt is recorded and the services come back whatever failed.
pub fn default_when(kind: &str) -> When {
    match kind {
        "record" | "start" => When::Always,
        _ => When::Success,
    }
}

fn backup(mut fields: Fields, runner: &RunnerFacts<'_>) -> Result<BackupConfig, SpanError> {
    let defaults = BackupConfig::default();
    let sources = fields.take::<Vec<PathBuf>>("sources")?;
    if let (Some(sources), Check::Full) = (&sources, runner.check) {
        resolve_sources(runner.work_dir, sources.get_ref())
            .map_err(|e| SpanError::new(sources.span(), e.to_string()))?;
    }
    let volumes = match fields.take::<toml::Value>("volumes")? {
        None => Volumes::None,
        Some(value) => {
            let span = value.span();
            match value.into_inner() {
                toml::Value::String(s) if s == "auto" => Volumes::Auto,
                toml::Value::Array(names) if names.iter().all(toml::Value::is_str) => {
                    Volumes::Named(names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
                }
                _ => {
                    return Err(SpanError::new(
                        span,
                        "`volumes` must be \"auto\" or a list of volume names",
                    ))
                }
            }
        }
    };
    if volumes != Volumes::None && runner.project.is_none() {
        return Err(fields.missing("[runner] project", "`volumes` needs the Compose project"));
    }
    let sources = sources.map(Spanned::into_inner).unwrap_or_default();
    if sources.is_empty() && volumes == Volumes::None {
        return Err(fields.missing("sources", "files and folders under the work dir, or `volumes`"));
    }
    let compression_level = match fields.take::<u32>("compression_level")? {
        Some(level) if *level.get_ref() > 9 => {
            return Err(SpanError::new(level.span(), "`compression_level` must be 0–9"));
        }
        Some(level) => level.into_inner(),
        None => defaults.compression_level,
    };
    let min_free_factor = match fields.take::<f64>("min_free_factor")? {
        Some(factor) if !(factor.get_ref().is_finite() && *factor.get_ref() >= 0.0) => {
            return Err(SpanError::new(
                factor.span(),
                "`min_free_factor` must be a number ≥ 0 (0 turns the check off)",
            ));
        }
        Some(factor) => factor.into_inner(),
        None => defaults.min_free_factor,
    };
    let include_artifacts = fields
        .take::<bool>("include_artifacts")?
        .map_or(defaults.include_artifacts, Spanned::into_inner);
    fields.finish(
        "backup",
        &[
            "sources",
            "volumes",
            "compression_level",
            "min_free_factor",
            "include_artifacts",
        ],
    )?;
    Ok(BackupConfig {
        sources,
        compression_level,
        min_free_factor,
        include_artifacts,
        volumes,
    })
}
