//! The `config` tables of the built-in hooks, checked against what each built-in takes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hookrun_archive::{resolve_sources, Compression, Format};
use hookrun_hooks::builtin::{
    BackupConfig, CommandConfig, Copies, StartConfig, StopConfig, Volumes, DEFAULT_START_TIMEOUT,
};
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
            let copies = match fields.take::<toml::Value>("copies")? {
                None => Copies::default(),
                Some(value) => value
                    .get_ref()
                    .as_str()
                    .and_then(Copies::from_name)
                    .ok_or_else(|| SpanError::new(value.span(), "`copies` must be \"clone\" or \"any\""))?,
            };
            fields.finish("snapshot", &["backup", "copies"])?;
            // The backup's config is filled in once every hook is read (see `load::resolve_snapshots`).
            Ok(Builtin::Snapshot {
                backup: backup.into_inner(),
                config: BackupConfig::default(),
                copies,
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
                    let names: Vec<String> = names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect();
                    if let Some(bad) = names
                        .iter()
                        .find(|n| n.is_empty() || (n.contains('/') && !n.starts_with('/')))
                    {
                        return Err(SpanError::new(
                            span,
                            format!(
                                "`volumes`: `{bad}` is neither a volume name nor an absolute host path of a bind mount"
                            ),
                        ));
                    }
                    Volumes::Named(names)
                }
                _ => {
                    return Err(SpanError::new(
                        span,
                        "`volumes` must be \"auto\" or a list of volume names and bind mount host paths \
                         (which may hold \"auto\")",
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
    let compression = compression(&mut fields)?;
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
    let allow_empty = fields
        .take::<bool>("allow_empty")?
        .map_or(defaults.allow_empty, Spanned::into_inner);
    fields.finish(
        "backup",
        &[
            "sources",
            "volumes",
            "compression",
            "compression_level",
            "min_free_factor",
            "include_artifacts",
            "allow_empty",
        ],
    )?;
    Ok(BackupConfig {
        sources,
        compression,
        min_free_factor,
        include_artifacts,
        volumes,
        allow_empty,
    })
}

/// `compression = "gzip" | "zstd"` (gzip by default) and `compression_level`, whose range and default follow the
/// format: gzip 0–9 (6), zstd 1–19 (3).
fn compression(fields: &mut Fields) -> Result<Compression, SpanError> {
    let format = match fields.take::<toml::Value>("compression")? {
        None => Format::Gzip,
        Some(value) => value
            .get_ref()
            .as_str()
            .and_then(Format::from_name)
            .ok_or_else(|| SpanError::new(value.span(), "`compression` must be \"gzip\" or \"zstd\""))?,
    };
    let levels = format.levels();
    let level = match fields.take::<u32>("compression_level")? {
        Some(level) if !levels.contains(level.get_ref()) => {
            return Err(SpanError::new(
                level.span(),
                format!(
                    "`compression_level` must be {}–{} for {}",
                    levels.start(),
                    levels.end(),
                    format.name()
                ),
            ));
        }
        Some(level) => level.into_inner(),
        None => format.default_level(),
    };
    Ok(Compression { format, level })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fields::RawTable;

    /// Parses a `backup` config table of `sources = ["data"]` and `config` (shape only: the sources need not exist).
    /// An error comes back as the text it points at and its message.
    fn parse_backup(config: &str) -> Result<Compression, (String, String)> {
        let text = format!("sources = [\"data\"]\n{config}");
        let table: Spanned<RawTable> = toml::from_str(&text).unwrap();
        let facts = RunnerFacts {
            work_dir: Path::new("/nonexistent"),
            project: None,
            compose_file: None,
            check: Check::Shape,
        };
        backup(Fields::new(Some(table), 0..0), &facts)
            .map(|parsed| parsed.compression)
            .map_err(|e| (text[e.span].to_string(), e.message))
    }

    fn refused(at: &str, message: &str) -> Result<Compression, (String, String)> {
        Err((at.to_string(), message.to_string()))
    }

    #[test]
    fn compression_is_gzip_level_6_unless_the_file_says_otherwise() {
        assert_eq!(parse_backup(""), Ok(Compression::gzip(6)));
        assert_eq!(parse_backup("compression_level = 9"), Ok(Compression::gzip(9)));
        assert_eq!(
            parse_backup("compression = \"gzip\"\ncompression_level = 0"),
            Ok(Compression::gzip(0))
        );
    }

    #[test]
    fn zstd_defaults_to_level_3_and_takes_1_to_19() {
        assert_eq!(parse_backup("compression = \"zstd\""), Ok(Compression::zstd(3)));
        assert_eq!(
            parse_backup("compression = \"zstd\"\ncompression_level = 1"),
            Ok(Compression::zstd(1))
        );
        // Written before `compression`, the level is still checked against zstd's range.
        assert_eq!(
            parse_backup("compression_level = 19\ncompression = \"zstd\""),
            Ok(Compression::zstd(19))
        );
    }

    #[test]
    fn an_unknown_format_is_refused_at_its_value() {
        for value in ["\"xz\"", "\"ZSTD\"", "\"\"", "3", "true"] {
            assert_eq!(
                parse_backup(&format!("compression = {value}")),
                refused(value, "`compression` must be \"gzip\" or \"zstd\""),
                "{value}"
            );
        }
    }

    #[test]
    fn a_level_outside_the_formats_range_is_refused_at_its_value() {
        assert_eq!(
            parse_backup("compression_level = 10"),
            refused("10", "`compression_level` must be 0–9 for gzip")
        );
        assert_eq!(
            parse_backup("compression = \"zstd\"\ncompression_level = 0"),
            refused("0", "`compression_level` must be 1–19 for zstd")
        );
        assert_eq!(
            parse_backup("compression_level = 20\ncompression = \"zstd\""),
            refused("20", "`compression_level` must be 1–19 for zstd")
        );
    }
}
