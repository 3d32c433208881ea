//! The `config` tables of the built-in hooks, checked against what each built-in takes.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hookrun_hooks::archive::resolve_sources;
use hookrun_hooks::builtin::{BackupConfig, CommandConfig};
use toml::Spanned;

use super::fields::{Fields, SpanError};
use super::load::Check;
use super::{Builtin, When};

/// The built-ins this build knows, for error messages.
pub const KNOWN: &[&str] = &["backup", "record", "command"];

/// The built-ins that need the Docker engine and are not in this build yet.
const COMING: &[&str] = &["stop", "start"];

/// Turns `builtin = "<kind>"` and its config into a typed built-in.
pub fn parse(
    kind: &Spanned<String>,
    mut fields: Fields,
    work_dir: &Path,
    check: Check,
) -> Result<Builtin, SpanError> {
    match kind.get_ref().as_str() {
        "backup" => backup(fields, work_dir, check).map(Builtin::Backup),
        "record" => fields.finish("record", &[]).map(|()| Builtin::Record),
        "command" => {
            let command = fields.require::<Vec<String>>("command", "the program and its arguments")?;
            if command.get_ref().is_empty() || command.get_ref()[0].is_empty() {
                return Err(SpanError::new(command.span(), "`command` must name a program"));
            }
            let env = fields.take::<BTreeMap<String, String>>("env")?.map(Spanned::into_inner).unwrap_or_default();
            let cwd = fields.take::<PathBuf>("cwd")?.map(Spanned::into_inner);
            fields.finish("command", &["command", "env", "cwd"])?;
            Ok(Builtin::Command(CommandConfig { command: command.into_inner(), env, cwd }))
        }
        other if COMING.contains(&other) => Err(SpanError::new(
            kind.span(),
            format!(
                "built-in `{other}` needs the Docker engine, which this build of hookrun does not drive yet; \
                 remove the hook (built-ins here: {})",
                KNOWN.join(", ")
            ),
        )),
        other => Err(SpanError::new(
            kind.span(),
            format!("unknown built-in `{other}`, expected one of: {}", KNOWN.join(", ")),
        )),
    }
}

/// The `when` a built-in gets when the file does not say: `record` runs `always`, so failures are recorded too.
pub fn default_when(kind: &str) -> When {
    match kind {
        "record" => When::Always,
        _ => When::Success,
    }
}

fn backup(mut fields: Fields, work_dir: &Path, check: Check) -> Result<BackupConfig, SpanError> {
    let defaults = BackupConfig::default();
    let sources =
        fields.require::<Vec<PathBuf>>("sources", "files and folders under the work dir")?;
    if check == Check::Full {
        check_sources(&sources, work_dir)?;
    }
    let compression_level = match fields.take::<u32>("compression_level")? {
        Some(level) if *level.get_ref() > 9 => {
            return Err(SpanError::new(
                level.span(),
                "`compression_level` must be 0–9",
            ));
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
            "compression_level",
            "min_free_factor",
            "include_artifacts",
        ],
    )?;
    Ok(BackupConfig {
        sources: sources.into_inner(),
        compression_level,
        min_free_factor,
        include_artifacts,
    })
}

/// Every source must exist under the work dir when the file is loaded: a typo must not become a silent gap.
fn check_sources(sources: &Spanned<Vec<PathBuf>>, work_dir: &Path) -> Result<(), SpanError> {
    let span: Range<usize> = sources.span();
    resolve_sources(work_dir, sources.get_ref())
        .map(drop)
        .map_err(|e| SpanError::new(span, e.to_string()))
}
