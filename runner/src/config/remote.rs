//! The `[[remote]]` tables: where off-site copies go (an S3-compatible bucket and prefix), how they are encrypted,
//! how long each remote keeps them, and where its credentials come from — files named here, or the environment in
//! the AWS conventions; never the secrets themselves in `hooks.toml`.

use std::path::{Path, PathBuf};

use hookrun_remote::{Recipients, RemoteSpec};
use serde::Deserialize;
use toml::Spanned;

use super::common::SpanError;
use super::duration::HumanDuration;
use super::load::parse_size;
use crate::retention::Rules;

/// One `[[remote]]`, resolved (credentials are read when the remote is used: see `remotes::open`).
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Everything but the credentials.
    pub spec: RemoteSpec,
    /// `access_key_id_file`, `secret_access_key_file` (and `session_token_file`), absolute.
    pub credential_files: Option<CredentialFiles>,
    /// How long this remote keeps copies when `prune` runs (`None`: as long as the command's rules keep them
    /// locally).
    pub keep: Option<Rules>,
}

/// Files holding a remote's credentials, one secret each (surrounding whitespace ignored).
#[derive(Debug, Clone)]
pub struct CredentialFiles {
    pub access_key_id: PathBuf,
    pub secret_access_key: PathBuf,
    pub session_token: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemote {
    name: Spanned<String>,
    url: Spanned<String>,
    endpoint: Option<Spanned<String>>,
    region: Option<String>,
    path_style: Option<bool>,
    access_key_id_file: Option<Spanned<PathBuf>>,
    secret_access_key_file: Option<Spanned<PathBuf>>,
    session_token_file: Option<PathBuf>,
    encrypt: Option<Spanned<RawEncrypt>>,
    keep: Option<Spanned<RawKeep>>,
    part_size: Option<Spanned<toml::Value>>,
    retries: Option<Spanned<usize>>,
    timeout: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncrypt {
    #[serde(default)]
    recipients: Vec<String>,
    recipients_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeep {
    last: Option<usize>,
    within: Option<HumanDuration>,
    pre_upgrade: Option<usize>,
}

/// The smallest part S3 accepts (but the last).
const MIN_PART_SIZE: u64 = 5 << 20;

impl RawRemote {
    /// The remote's name and where it is in the file.
    pub(super) fn name(&self) -> &Spanned<String> {
        &self.name
    }

    /// Resolves the table; relative files are relative to `base` (the file's folder).
    pub(super) fn resolve(self, base: &Path) -> Result<RemoteConfig, SpanError> {
        let name = self.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(SpanError::new(
                self.name.span(),
                format!("remote name {name:?}: use letters, digits, `-` and `_`"),
            ));
        }
        let endpoint = match self.endpoint {
            Some(e) if !(e.get_ref().starts_with("http://") || e.get_ref().starts_with("https://")) => {
                return Err(SpanError::new(
                    e.span(),
                    format!(
                        "remote {name}: endpoint {:?} must start with http:// or https://",
                        e.get_ref()
                    ),
                ))
            }
            other => other.map(Spanned::into_inner),
        };
        let mut spec = RemoteSpec::new(name, self.url.get_ref(), endpoint)
            .map_err(|e| SpanError::new(self.url.span(), e.to_string()))?;
        spec.region = self.region;
        if let Some(path_style) = self.path_style {
            spec.path_style = path_style;
        }
        if let Some(size) = &self.part_size {
            let bytes = parse_size(size.get_ref(), "part_size").map_err(|m| SpanError::new(size.span(), m))?;
            if bytes < MIN_PART_SIZE {
                return Err(SpanError::new(
                    size.span(),
                    format!("remote {name}: part_size must be at least 5MiB (S3's smallest part)"),
                ));
            }
            spec.part_size = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        if let Some(retries) = self.retries {
            spec.retries = retries.into_inner();
        }
        if let Some(timeout) = self.timeout {
            spec.io_timeout = timeout.0;
        }
        if let Some(encrypt) = self.encrypt {
            let span = encrypt.span();
            let raw = encrypt.into_inner();
            let mut lines = raw.recipients;
            if let Some(file) = raw.recipients_file {
                let file = base.join(file);
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    SpanError::new(
                        span.clone(),
                        format!("remote {name}: recipients_file {}: {e}", file.display()),
                    )
                })?;
                lines.push(text);
            }
            spec.encrypt = Some(
                Recipients::parse(&lines)
                    .map_err(|e| SpanError::new(span.clone(), format!("remote {name}: encrypt: {e}")))?,
            );
        }
        let credential_files = match (self.access_key_id_file, self.secret_access_key_file) {
            (None, None) => None,
            (Some(id), Some(secret)) => Some(CredentialFiles {
                access_key_id: base.join(id.get_ref()),
                secret_access_key: base.join(secret.get_ref()),
                session_token: self.session_token_file.map(|f| base.join(f)),
            }),
            (Some(one), None) | (None, Some(one)) => {
                return Err(SpanError::new(
                    one.span(),
                    format!("remote {name}: give both access_key_id_file and secret_access_key_file, or neither"),
                ))
            }
        };
        let keep = match self.keep {
            None => None,
            Some(keep) => {
                let span = keep.span();
                let raw = keep.into_inner();
                let rules = Rules {
                    keep_last: raw.last,
                    keep_within: raw.within.map(|w| w.0),
                    keep_pre_upgrade: raw.pre_upgrade,
                };
                if rules.keep_last.is_none() && rules.keep_within.is_none() && rules.keep_pre_upgrade.is_none() {
                    return Err(SpanError::new(
                        span,
                        format!("remote {name}: keep needs at least one of last, within, pre_upgrade"),
                    ));
                }
                Some(rules)
            }
        };
        Ok(RemoteConfig {
            spec,
            credential_files,
            keep,
        })
    }
}
