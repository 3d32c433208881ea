//! The configured remotes, opened: credentials read as the AWS conventions say (the remote's `*_file` settings,
//! else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else `AWS_PROFILE` and
//! `~/.aws/credentials`), and the one place an archive is fetched back from a remote.

use std::io::Write;
use std::path::{Path, PathBuf};

use hookrun_archive::{create_private, create_private_dir, fsync_dir};
use hookrun_catalog::{BackupRow, Catalog, CopyRow};
use hookrun_remote::{Credentials, Fetched, Identities, Remote, RemoteError};

use crate::config::{Config, RemoteConfig};

/// Opens `remote`, reading its credentials. Nothing is sent yet.
pub fn open(remote: &RemoteConfig) -> Result<Remote, RemoteError> {
    let mut spec = remote.spec.clone();
    spec.credentials = credentials(remote)?;
    Remote::open(spec)
}

/// Opens the remote a copy is on; a copy on a remote no longer in `hooks.toml` is named.
pub fn open_for(config: &Config, copy: &CopyRow) -> Result<Remote, RemoteError> {
    let remote = config.remote(&copy.location).ok_or_else(|| RemoteError::Config {
        remote: copy.location.clone(),
        what: format!(
            "not configured in {} any more (its copy {} of backup {} is still recorded)",
            config.path.display(),
            copy.key,
            copy.backup_id
        ),
    })?;
    open(remote)
}

fn credentials(remote: &RemoteConfig) -> Result<Option<Credentials>, RemoteError> {
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| RemoteError::Config {
                remote: remote.spec.name.clone(),
                what: format!("{what} {}: {e}", path.display()),
            })
    };
    if let Some(files) = &remote.credential_files {
        return Ok(Some(Credentials {
            access_key_id: read(&files.access_key_id, "access_key_id_file")?,
            secret_access_key: read(&files.secret_access_key, "secret_access_key_file")?,
            session_token: files
                .session_token
                .as_deref()
                .map(|f| read(f, "session_token_file"))
                .transpose()?,
        }));
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Ok(match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: env("AWS_SESSION_TOKEN"),
        }),
        // The SDKs' shared files (AWS_PROFILE, ~/.aws/credentials) are read by the client itself.
        _ => None,
    })
}

/// Where a backup's archive was fetched from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchedArchive {
    pub backup: i64,
    pub remote: String,
    pub key: String,
    pub bytes: u64,
    /// Why the local archive could not be used.
    pub because: String,
}

/// Makes sure backup `row`'s local archive is there and whole before a restore stops anything: when it is missing,
/// pruned, or its size or SHA-256 differ from the catalog's, the archive is downloaded from a copy (decrypted with
/// `identity` when encrypted), checked against the catalog's SHA-256 in staging, and only then put in its place.
/// Returns where it came from, or `None` when the local archive was fine. A backup without copies is left to the
/// restore's own checks.
pub async fn ensure_local_archive(
    config: &Config,
    catalog: &Catalog,
    row: &BackupRow,
    identity: Option<&Identities>,
) -> anyhow::Result<Option<FetchedArchive>> {
    let Some(path) = row.path.as_deref().map(PathBuf::from) else {
        return Ok(None);
    };
    if row.copies.is_empty() {
        return Ok(None);
    }
    let Some(because) = local_archive_problem(row, &path).await? else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    // Copies whose last read-back failed are tried last.
    let mut copies: Vec<&CopyRow> = row.copies.iter().collect();
    copies.sort_by_key(|c| c.verify_ok == Some(false));
    for copy in copies {
        if copy.encrypted && identity.is_none() {
            errors.push(format!(
                "remote {}: {} is encrypted: pass --identity FILE (the age identity of one of its recipients)",
                copy.location, copy.key
            ));
            continue;
        }
        match fetch_into_place(config, catalog, row, copy, &path, identity).await {
            Ok(bytes) => {
                return Ok(Some(FetchedArchive {
                    backup: row.id,
                    remote: copy.location.clone(),
                    key: copy.key.clone(),
                    bytes,
                    because,
                }))
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    anyhow::bail!(
        "backup {}: {because}, and no remote copy could be used: {}",
        row.id,
        errors.join("; ")
    )
}

/// Why the local archive cannot be used, or `None` when it can (size and SHA-256 as the catalog says).
async fn local_archive_problem(row: &BackupRow, path: &Path) -> anyhow::Result<Option<String>> {
    if row.local_removed_at.is_some() {
        return Ok(Some("its local archive was pruned (a remote keeps it)".into()));
    }
    let size = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some(format!("its archive {} is missing", path.display())))
        }
        Err(e) => return Ok(Some(format!("its archive {} cannot be read: {e}", path.display()))),
    };
    if row.size.is_some_and(|s| s as u64 != size) {
        return Ok(Some(format!(
            "its archive {} has {size} bytes, not {} as recorded",
            path.display(),
            row.size.unwrap_or_default()
        )));
    }
    let file = path.to_path_buf();
    let sha = tokio::task::spawn_blocking(move || crate::storage::file_sha256(&file)).await??;
    Ok(match &row.sha256 {
        Some(expected) if *expected != sha => Some(format!(
            "its archive {} is damaged (SHA-256 {sha}, not {expected})",
            path.display()
        )),
        _ => None,
    })
}

/// Whether what a fetch of `copy` read is what was uploaded (size, SHA-256) and, when it could tell, backup `row`'s
/// archive (its SHA-256 after decryption); the error is one line naming the remote and the object.
pub fn check_fetched(row: &BackupRow, copy: &CopyRow, fetched: &Fetched) -> Result<(), String> {
    let named = |what: String| format!("remote {}: {}: {what}", copy.location, copy.key);
    if fetched.size != copy.size as u64 || fetched.sha256 != copy.sha256 {
        return Err(named(format!(
            "the object differs from what was uploaded: SHA-256 {} ({} bytes), uploaded {} ({} bytes)",
            fetched.sha256, fetched.size, copy.sha256, copy.size
        )));
    }
    match (&fetched.archive_sha256, &row.sha256) {
        (Some(got), Some(want)) if got != want => Err(named(format!(
            "it does not hold backup {}'s archive: SHA-256 {got}, recorded {want}",
            row.id
        ))),
        _ => Ok(()),
    }
}

/// Downloads `copy` into `<storage>/.staging`, checks it, and renames it to `path` (replacing a damaged file).
async fn fetch_into_place(
    config: &Config,
    catalog: &Catalog,
    row: &BackupRow,
    copy: &CopyRow,
    path: &Path,
    identity: Option<&Identities>,
) -> anyhow::Result<u64> {
    let remote = open_for(config, copy)?;
    let staging = config.runner.storage_dir.join(".staging");
    create_private_dir(&staging)?;
    // The storage lock is held: a download left here is a dead process's, never whole.
    for entry in std::fs::read_dir(&staging).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("fetch-") && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let part = staging.join(format!("fetch-{}-{}.part", row.id, std::process::id()));
    let file = create_private(&part)?;
    let fetched = remote.fetch(&copy.key, copy.encrypted, identity, file).await;
    let outcome = match fetched {
        Err(e) => Err(anyhow::Error::from(e)),
        Ok((fetched, mut file)) => {
            let synced = file.flush().and_then(|()| file.sync_all());
            drop(file);
            if let Err(e) = synced {
                Err(anyhow::anyhow!("{}: {e}", part.display()))
            } else if let Err(e) = check_fetched(row, copy, &fetched) {
                Err(anyhow::anyhow!(e))
            } else if fetched.archive_sha256.is_none() || row.sha256.is_none() {
                // Never taken into place unchecked (the copy was decrypted, and the catalog knows the archive).
                Err(anyhow::anyhow!(
                    "remote {}: {}: backup {}'s archive could not be checked",
                    copy.location,
                    copy.key,
                    row.id
                ))
            } else {
                Ok(fetched.archive_size.unwrap_or(fetched.size))
            }
        }
    };
    let bytes = match outcome {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    std::fs::rename(&part, path).map_err(|e| anyhow::anyhow!("{} → {}: {e}", part.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    catalog.local_archive_restored(row.id)?;
    Ok(bytes)
}
