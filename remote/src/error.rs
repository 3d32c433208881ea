//! Why a remote operation failed: one line naming the remote (and the object), with the store's error kept as the
//! source for `{:#}` and logs.

use std::path::PathBuf;

use crate::encryption::KeyError;

/// A failed remote operation.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `url` is not `s3://bucket[/prefix]`.
    #[error(
        "remote {remote}: {url:?} is not an s3://bucket[/prefix] URL (lowercase bucket name, no empty or .. parts)"
    )]
    BadUrl { remote: String, url: String },

    /// The remote's settings cannot be used.
    #[error("remote {remote}: {what}")]
    Config { remote: String, what: String },

    /// A recipient or identity cannot be used.
    #[error("remote {remote}: {source}")]
    Key { remote: String, source: KeyError },

    /// The store refused or could not be reached; `summary` says which in words (access denied, no such bucket,
    /// cannot connect …).
    #[error("remote {remote} ({url}): {action} {key}: {summary}")]
    Store {
        remote: String,
        url: String,
        action: &'static str,
        key: String,
        summary: String,
        source: Box<opendal::Error>,
    },

    /// The transfer was stopped (a signal, the hook's timeout) and aborted.
    #[error("remote {remote}: {key}: stopped before it finished; the upload was aborted")]
    Cancelled { remote: String, key: String },

    /// The object exists and is not the copy being written: it is left alone.
    #[error("remote {remote}: {key} already exists and holds another archive; hookrun never overwrites an object")]
    Exists { remote: String, key: String },

    /// The object does not hold what was sent or recorded.
    #[error("remote {remote}: {key}: {what}")]
    Mismatch { remote: String, key: String, what: String },

    /// The local side of a transfer failed (reading the archive, writing the download).
    #[error("remote {remote}: {path}: {source}")]
    Local {
        remote: String,
        path: PathBuf,
        source: std::io::Error,
    },

    /// Reading the object back failed part-way.
    #[error("remote {remote}: reading {key}: {source}")]
    Read {
        remote: String,
        key: String,
        source: std::io::Error,
    },

    /// The object could not be decrypted (wrong identity, not an age file, damaged).
    #[error("remote {remote}: {key}: cannot decrypt: {source}")]
    Decrypt {
        remote: String,
        key: String,
        source: Box<age::DecryptError>,
    },

    /// The stream could not be encrypted.
    #[error("remote {remote}: cannot encrypt: {source}")]
    Encrypt {
        remote: String,
        source: Box<age::EncryptError>,
    },
}

impl RemoteError {
    /// Whether trying again later may succeed (the server was unreachable, slow or busy), as opposed to a refusal
    /// (credentials, bucket, an existing object, a mismatch).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store { source, .. } => {
                source.is_temporary()
                    || matches!(
                        source.kind(),
                        opendal::ErrorKind::Unexpected | opendal::ErrorKind::RateLimited
                    )
            }
            _ => false,
        }
    }
}

/// The store's error in a few words: what an operator can act on, never the request's headers.
pub(crate) fn summarize(e: &opendal::Error) -> String {
    let display = e.to_string();
    let code = s3_code(&display);
    use opendal::ErrorKind as K;
    if display.contains("signing credential") {
        return "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or the remote's \
                access_key_id_file and secret_access_key_file"
            .to_string();
    }
    match code.as_deref() {
        Some("NoSuchBucket") => return "the bucket does not exist (NoSuchBucket)".to_string(),
        Some("EntityTooLarge" | "QuotaExceeded" | "InsufficientStorage" | "XMinioStorageFull") => {
            return format!("the server is full or refuses the size ({})", code.unwrap_or_default())
        }
        _ => {}
    }
    match e.kind() {
        K::PermissionDenied => match code.as_deref() {
            Some("SignatureDoesNotMatch") => {
                "access denied: the secret access key is wrong (SignatureDoesNotMatch)".to_string()
            }
            Some("InvalidAccessKeyId") => "access denied: unknown access key id (InvalidAccessKeyId)".to_string(),
            Some(c) => format!("access denied ({c}): check the credentials and the bucket's policy"),
            None => "access denied (403): wrong credentials, or they may not use this bucket".to_string(),
        },
        K::NotFound => match code.as_deref() {
            Some("NoSuchBucket") => "the bucket does not exist (NoSuchBucket)".to_string(),
            Some(c) => format!("not found ({c})"),
            None => "not found".to_string(),
        },
        K::ConditionNotMatch => "the object already exists (412 Precondition Failed)".to_string(),
        K::RateLimited => "the server is busy (slow down); try again later".to_string(),
        _ => match (code, s3_field(&display, "message")) {
            (Some(c), Some(message)) => format!("{message} ({c})"),
            (Some(c), None) => c,
            (None, _) => format!("cannot reach the server: {}", innermost_source(e)),
        },
    }
}

/// `S3Error { code: "NoSuchBucket", … }` → `NoSuchBucket`.
fn s3_code(display: &str) -> Option<String> {
    s3_field(display, "code")
}

/// A quoted field of the S3 error opendal shows (`code: "…"`, `message: "…"`).
fn s3_field(display: &str, field: &str) -> Option<String> {
    let marker = format!("S3Error {{ {field}: \"");
    let start = match display.find(&marker) {
        Some(at) => at + marker.len(),
        None => display.find(&format!(", {field}: \""))? + field.len() + 5,
    };
    let len = display[start..].find('"')?;
    Some(display[start..start + len].to_string())
}

/// The deepest cause (`Connection refused (os error 111)`), or the error's own message.
fn innermost_source(e: &opendal::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    if std::ptr::eq(last as *const _ as *const u8, e as *const _ as *const u8) {
        e.message().to_string()
    } else {
        last.to_string()
    }
}
