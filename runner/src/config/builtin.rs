//! The `config` tables of the built-in hooks: one derived type per built-in (`deny_unknown_fields`, spans where an
//! error must point at a value), then the checks a type cannot say, each at the value concerned.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookrun_archive::{resolve_sources, Compression, Format};
use hookrun_hooks::builtin::{
    BackupConfig, Channel, CommandConfig, Copies, NotifyConfig, NotifyEvent, StartConfig, StopConfig, Target, Volumes,
    DEFAULT_START_TIMEOUT,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::Spanned;

use super::common::{Check, RunnerFacts, SpanError};
use super::de::{from_located, DeError, DeErrorKind, Segment};
use super::duration::HumanDuration;
use super::located::Located;
use super::{Builtin, When};

/// The built-ins this build knows, for error messages.
pub const KNOWN: &[&str] = &[
    "stop", "snapshot", "backup", "record", "start", "command", "upload", "notify",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    webhook: Option<Spanned<RawSecretUrl>>,
    ntfy: Option<Spanned<RawSecretUrl>>,
    healthchecks: Option<Spanned<RawSecretUrl>>,
    event: Option<Spanned<String>>,
    retries: Option<Spanned<u32>>,
    backoff: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
}

/// A URL that carries a secret: from an environment variable or a file, never written in `hooks.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretUrl {
    url_env: Option<String>,
    url_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    remotes: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    backup: String,
    copies: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    services: Option<Vec<String>>,
    stop_timeout: Option<HumanDuration>,
    #[serde(default)]
    allow_empty: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStart {
    start_timeout: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    command: Spanned<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    sources: Option<Spanned<Vec<PathBuf>>>,
    volumes: Option<Spanned<toml::Value>>,
    compression: Option<Spanned<toml::Value>>,
    compression_level: Option<Spanned<u32>>,
    min_free_factor: Option<Spanned<f64>>,
    include_artifacts: Option<bool>,
    allow_empty: Option<bool>,
}

/// A built-in's `config` table as written (an empty one at the hook's table when it has none).
pub struct ConfigTable<'a> {
    pub value: &'a Located,
    /// Where "missing …" errors point: the table, or the hook's table when there is no `config`.
    pub span: Range<usize>,
}

impl ConfigTable<'_> {
    /// The table as the built-in `kind`'s derived type; errors worded as hookrun has always worded them.
    fn read<T: DeserializeOwned>(&self, kind: &str) -> Result<T, SpanError> {
        from_located(self.value).map_err(|e| config_error(kind, e, &self.span))
    }

    fn missing(&self, key: &str, what: &str) -> SpanError {
        SpanError::new(self.span.clone(), format!("missing `{key}` ({what})"))
    }
}

/// A deserialization error in `kind`'s config: an unknown key at the key naming those it takes, a missing one at
/// the table saying what it is for, any other at the value, prefixed with its key.
fn config_error(kind: &str, e: DeError, table: &Range<usize>) -> SpanError {
    let span = e.span.clone().unwrap_or_else(|| table.clone());
    let message = match &e.kind {
        DeErrorKind::UnknownKey { key, expected: [] } => {
            format!("unknown config key `{key}`: `{kind}` takes no config")
        }
        DeErrorKind::UnknownKey { key, expected } => format!(
            "unknown config key `{key}` for `{kind}`, expected one of: {}",
            expected.join(", ")
        ),
        DeErrorKind::Missing(key) => format!("missing `{key}` ({})", required_key_purpose(kind, key)),
        _ => match e.path.first() {
            Some(Segment::Key(key)) => format!("`{key}`: {}", e.serde_message()),
            _ => e.serde_message(),
        },
    };
    SpanError::new(span, message)
}

/// What a required config key is for, for "missing …".
fn required_key_purpose(kind: &str, key: &str) -> &'static str {
    match (kind, key) {
        ("snapshot", "backup") => "the name of the backup hook that archives the copies",
        ("command", "command") => "the program and its arguments",
        _ => "required",
    }
}

/// Turns `builtin = "<kind>"` and its config into a typed built-in.
pub fn parse(kind: &Spanned<String>, table: &ConfigTable<'_>, runner: &RunnerFacts<'_>) -> Result<Builtin, SpanError> {
    let needs_project = |what: &str| {
        SpanError::new(
            kind.span(),
            format!("built-in `{what}` needs the Compose project: set `[runner] project`"),
        )
    };
    match kind.get_ref().as_str() {
        "backup" => backup(table, runner).map(Builtin::Backup),
        "record" => table.read::<RawRecord>("record").map(|_| Builtin::Record),
        "snapshot" => {
            let raw: RawSnapshot = table.read("snapshot")?;
            let copies = match raw.copies {
                None => Copies::default(),
                Some(value) => value.get_ref().as_str().and_then(Copies::from_name).ok_or_else(|| {
                    SpanError::new(
                        value.span(),
                        "`copies` must be \"auto\", \"clone\", \"pre-copy\" or \"any\"",
                    )
                })?,
            };
            // The backup's config is filled in once every hook is read (see `load::resolve_snapshots`).
            Ok(Builtin::Snapshot {
                backup: raw.backup,
                config: BackupConfig::default(),
                copies,
            })
        }
        "stop" => {
            if runner.project.is_none() {
                return Err(needs_project("stop"));
            }
            let raw: RawStop = table.read("stop")?;
            Ok(Builtin::Stop(StopConfig {
                services: raw.services,
                stop_timeout: raw.stop_timeout.map(|t| t.0),
                allow_empty: raw.allow_empty,
                compose_file: runner.compose_file.map(Path::to_path_buf),
            }))
        }
        "start" => {
            if runner.project.is_none() {
                return Err(needs_project("start"));
            }
            let raw: RawStart = table.read("start")?;
            Ok(Builtin::Start(StartConfig {
                start_timeout: raw.start_timeout.map_or(DEFAULT_START_TIMEOUT, |t| t.0),
            }))
        }
        "command" => {
            let raw: RawCommand = table.read("command")?;
            if raw.command.get_ref().first().is_none_or(String::is_empty) {
                return Err(SpanError::new(raw.command.span(), "`command` must name a program"));
            }
            Ok(Builtin::Command(CommandConfig {
                command: raw.command.into_inner(),
                env: raw.env,
                cwd: raw.cwd,
            }))
        }
        "upload" => {
            let raw: RawUpload = table.read("upload")?;
            if runner.remotes.is_empty() {
                return Err(SpanError::new(
                    kind.span(),
                    "built-in `upload` needs a `[[remote]]` table to upload to",
                ));
            }
            let remotes = match raw.remotes {
                None => runner.remotes.to_vec(),
                Some(names) => {
                    if let Some(unknown) = names.get_ref().iter().find(|n| !runner.remotes.contains(n)) {
                        return Err(SpanError::new(
                            names.span(),
                            format!(
                                "no remote named `{unknown}`; the [[remote]] tables are: {}",
                                runner.remotes.join(", ")
                            ),
                        ));
                    }
                    if names.get_ref().is_empty() {
                        return Err(SpanError::new(names.span(), "`remotes` names no remote"));
                    }
                    names.into_inner()
                }
            };
            Ok(Builtin::Upload { remotes })
        }
        "notify" => notify(table, runner, kind.span()),
        other => Err(SpanError::new(
            kind.span(),
            format!("unknown built-in `{other}`, expected one of: {}", KNOWN.join(", ")),
        )),
    }
}

/// The `when` a built-in gets when the file does not say: `record` and `start` run `always`, so that a failed
/// attempt is recorded and the services come back whatever failed.
/// The `notify` hook's targets, each URL read from its variable or file (only with `Check::Full`: a command that
/// only reads the catalog needs no secret), and its retries and timeout.
fn notify(table: &ConfigTable<'_>, runner: &RunnerFacts<'_>, at: Range<usize>) -> Result<Builtin, SpanError> {
    let raw: RawNotify = table.read("notify")?;
    let mut targets = Vec::new();
    for (channel, url) in [
        (Channel::Webhook, raw.webhook),
        (Channel::Ntfy, raw.ntfy),
        (Channel::Healthchecks, raw.healthchecks),
    ] {
        let Some(url) = url else { continue };
        let span = url.span();
        let (from, read): (String, Box<dyn Fn() -> Result<String, String>>) = match url.into_inner() {
            RawSecretUrl {
                url_env: Some(var),
                url_file: None,
            } => (
                format!("${var}"),
                Box::new(move || std::env::var(&var).map_err(|_| format!("${var} is not set"))),
            ),
            RawSecretUrl {
                url_env: None,
                url_file: Some(file),
            } => {
                let file = runner.work_dir.join(file);
                let shown = file.display().to_string();
                (
                    shown.clone(),
                    Box::new(move || std::fs::read_to_string(&file).map_err(|e| format!("cannot read {shown}: {e}"))),
                )
            }
            _ => {
                return Err(SpanError::new(
                    span,
                    "give the URL as `url_env = \"VAR\"` or `url_file = \"FILE\"` (one of them)",
                ))
            }
        };
        let url = match runner.check {
            Check::Full => {
                let url = read()
                    .map_err(|why| SpanError::new(span.clone(), why))?
                    .trim()
                    .to_string();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(SpanError::new(span, format!("the URL in {from} is not an http(s) URL")));
                }
                url
            }
            Check::Shape => String::new(),
        };
        targets.push(Target { channel, url, from });
    }
    if targets.is_empty() {
        return Err(SpanError::new(
            at,
            "built-in `notify` needs `webhook`, `ntfy` or `healthchecks`",
        ));
    }
    let event = match raw.event.as_ref().map(|e| e.get_ref().as_str()) {
        None | Some("end") => NotifyEvent::End,
        Some("start") => NotifyEvent::Start,
        Some(other) => {
            let span = raw.event.as_ref().map(Spanned::span).unwrap_or(at);
            return Err(SpanError::new(
                span,
                format!("`event` is \"start\" or \"end\", not {other:?}"),
            ));
        }
    };
    Ok(Builtin::Notify(NotifyConfig {
        targets,
        event,
        retries: raw.retries.map_or(3, |r| r.into_inner()),
        backoff: raw.backoff.map_or(Duration::from_secs(1), |d| d.0),
        timeout: raw.timeout.map_or(Duration::from_secs(10), |d| d.0),
    }))
}

pub fn default_when(kind: &str) -> When {
    match kind {
        "record" | "start" | "notify" => When::Always,
        _ => When::Success,
    }
}

fn backup(table: &ConfigTable<'_>, runner: &RunnerFacts<'_>) -> Result<BackupConfig, SpanError> {
    let defaults = BackupConfig::default();
    let raw: RawBackup = table.read("backup")?;
    if let (Some(sources), Check::Full) = (&raw.sources, runner.check) {
        resolve_sources(runner.work_dir, sources.get_ref())
            .map_err(|e| SpanError::new(sources.span(), e.to_string()))?;
    }
    let volumes = match raw.volumes {
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
        return Err(table.missing("[runner] project", "`volumes` needs the Compose project"));
    }
    let sources = raw.sources.map(Spanned::into_inner).unwrap_or_default();
    if sources.is_empty() && volumes == Volumes::None {
        return Err(table.missing("sources", "files and folders under the work dir, or `volumes`"));
    }
    let compression = compression(raw.compression, raw.compression_level)?;
    let min_free_factor = match raw.min_free_factor {
        Some(factor) if !(factor.get_ref().is_finite() && *factor.get_ref() >= 0.0) => {
            return Err(SpanError::new(
                factor.span(),
                "`min_free_factor` must be a number ≥ 0 (0 turns the check off)",
            ));
        }
        Some(factor) => factor.into_inner(),
        None => defaults.min_free_factor,
    };
    Ok(BackupConfig {
        sources,
        compression,
        min_free_factor,
        include_artifacts: raw.include_artifacts.unwrap_or(defaults.include_artifacts),
        volumes,
        allow_empty: raw.allow_empty.unwrap_or(defaults.allow_empty),
    })
}

/// `compression = "gzip" | "zstd"` (gzip by default) and `compression_level`, whose range and default follow the
/// format: gzip 0–9 (6), zstd 1–19 (3).
fn compression(format: Option<Spanned<toml::Value>>, level: Option<Spanned<u32>>) -> Result<Compression, SpanError> {
    let format = match format {
        None => Format::Gzip,
        Some(value) => value
            .get_ref()
            .as_str()
            .and_then(Format::from_name)
            .ok_or_else(|| SpanError::new(value.span(), "`compression` must be \"gzip\" or \"zstd\""))?,
    };
    let levels = format.levels();
    let level = match level {
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

    /// Parses a `backup` config table of `sources = ["data"]` and `config` (shape only: the sources need not exist).
    /// An error comes back as the text it points at and its message.
    fn parse_backup(config: &str) -> Result<Compression, (String, String)> {
        let text = format!("sources = [\"data\"]\n{config}");
        let value: Located = toml::from_str(&text).unwrap();
        let facts = RunnerFacts {
            work_dir: Path::new("/nonexistent"),
            project: None,
            compose_file: None,
            check: Check::Shape,
            remotes: &[],
        };
        let table = ConfigTable {
            value: &value,
            span: 0..0,
        };
        backup(&table, &facts)
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

#[cfg(test)]
mod message_tests {
    use super::*;

    /// Parses `builtin = kind` with `config` (shape only, a project set); an error comes back as the text it points
    /// at and its message.
    fn refusal(kind: &str, config: &str) -> (String, String) {
        let text = format!("[config]\n{config}\n");
        #[derive(Deserialize)]
        struct File {
            config: Located,
        }
        let file: File = toml::from_str(&text).unwrap();
        let facts = RunnerFacts {
            work_dir: Path::new("/nonexistent"),
            project: Some("p"),
            compose_file: None,
            check: Check::Shape,
            remotes: &[],
        };
        let table = ConfigTable {
            value: &file.config,
            span: file.config.span.clone().unwrap(),
        };
        let kind = Spanned::new(0..0, kind.to_string());
        let e = parse(&kind, &table, &facts).expect_err("refused");
        (text[e.span].to_string(), e.message)
    }

    #[test]
    fn unknown_keys_are_named_at_the_key_with_those_the_builtin_takes() {
        assert_eq!(
            refusal("record", "x = 1"),
            ("x".into(), "unknown config key `x`: `record` takes no config".into())
        );
        assert_eq!(
            refusal("start", "start_timout = \"1s\""),
            (
                "start_timout".into(),
                "unknown config key `start_timout` for `start`, expected one of: start_timeout".into()
            )
        );
    }

    #[test]
    fn a_missing_key_is_at_the_table_saying_what_it_is_for() {
        let (at, message) = refusal("command", "env = {}");
        assert!(at.starts_with("[config]"), "{at}");
        assert_eq!(message, "missing `command` (the program and its arguments)");
        let (at, message) = refusal("snapshot", "copies = \"any\"");
        assert!(at.starts_with("[config]"), "{at}");
        assert_eq!(
            message,
            "missing `backup` (the name of the backup hook that archives the copies)"
        );
    }

    #[test]
    fn a_wrong_type_is_at_the_value_prefixed_with_its_key() {
        assert_eq!(
            refusal("stop", "services = \"web\""),
            (
                "\"web\"".into(),
                "`services`: invalid type: string \"web\", expected a sequence".into()
            )
        );
        assert_eq!(
            refusal("stop", "stop_timeout = 30"),
            (
                "30".into(),
                "`stop_timeout`: a duration needs a unit, e.g. \"30s\", \"5m\" or \"1h\"".into()
            )
        );
        assert_eq!(
            refusal("command", "command = []"),
            ("[]".into(), "`command` must name a program".into())
        );
    }
}
