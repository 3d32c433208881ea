//! A connection to one remote: the object store client (`opendal`'s S3 service, with retries and an I/O timeout)
//! and the plain operations on one object: look at it, remove it.

use std::sync::Once;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::services::S3;
use opendal::Operator;

use crate::error::summarize;
use crate::{RemoteError, RemoteSpec, ARCHIVE_SHA256_METADATA};

/// An object as the store describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    /// The ETag, without quotes.
    pub etag: Option<String>,
    /// The SHA-256 of the archive it holds, as the upload declared it.
    pub archive_sha256: Option<String>,
}

/// One remote, ready for requests.
#[derive(Debug, Clone)]
pub struct Remote {
    pub(crate) spec: RemoteSpec,
    pub(crate) op: Operator,
}

/// Says each retry in one short line at `info` (shown with `RUST_LOG=info`): the store's own message spans many
/// lines and would drown the one line that names the failure if the retries do not help.
fn quiet_retry(remote: String) -> impl Fn(opendal::layers::RetryEvent<'_>) + Send + Sync + 'static {
    move |event| {
        tracing::info!(
            "remote {remote}: retrying {} in {:.1}s (attempt {}): {}",
            event.op,
            event.retry_after.as_secs_f64(),
            event.attempt,
            summarize(event.err)
        )
    }
}

impl Remote {
    /// A client for `spec`. Nothing is sent until the first operation (a wrong credential shows there).
    pub fn open(spec: RemoteSpec) -> Result<Self, RemoteError> {
        static TRANSPORT: Once = Once::new();
        TRANSPORT.call_once(opendal::install_default);
        let mut builder = S3::default()
            .bucket(&spec.bucket)
            .root("/")
            .region(spec.region.as_deref().unwrap_or("us-east-1"))
            .checksum_algorithm("crc32c")
            // No instance-metadata probe: on a host outside EC2 it would only delay the "no credentials" error.
            .disable_ec2_metadata();
        if let Some(endpoint) = &spec.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if !spec.path_style {
            builder = builder.enable_virtual_host_style();
        }
        if let Some(c) = &spec.credentials {
            builder = builder
                .access_key_id(&c.access_key_id)
                .secret_access_key(&c.secret_access_key)
                .disable_config_load();
            if let Some(token) = &c.session_token {
                builder = builder.session_token(token);
            }
        }
        let op = Operator::new(builder)
            .map_err(|e| RemoteError::Config {
                remote: spec.name.clone(),
                what: summarize(&e),
            })?
            .layer(TimeoutLayer::new().with_io_timeout(spec.io_timeout))
            .layer(
                RetryLayer::new()
                    .with_max_times(spec.retries)
                    .with_jitter()
                    .with_notify(quiet_retry(spec.name.clone())),
            );
        Ok(Self { spec, op })
    }

    /// Its settings.
    pub fn spec(&self) -> &RemoteSpec {
        &self.spec
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The object `key`, or `None` when there is none.
    pub async fn stat(&self, key: &str) -> Result<Option<StoredObject>, RemoteError> {
        match self.op.stat(key).await {
            Ok(meta) => Ok(Some(StoredObject {
                key: key.to_string(),
                size: meta.content_length(),
                etag: meta.etag().map(|e| e.trim_matches('"').to_string()),
                archive_sha256: meta
                    .user_metadata()
                    .and_then(|m| m.get(ARCHIVE_SHA256_METADATA).map(str::to_string)),
            })),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound && !summarize(&e).contains("NoSuchBucket") => Ok(None),
            Err(e) => Err(self.store_err("looking at", key, e)),
        }
    }

    /// Removes the object `key`; one that is not there is not an error (S3's DELETE).
    pub async fn delete(&self, key: &str) -> Result<(), RemoteError> {
        self.op
            .delete(key)
            .await
            .map_err(|e| self.store_err("deleting", key, e))
    }

    pub(crate) fn store_err(&self, action: &'static str, key: &str, source: opendal::Error) -> RemoteError {
        RemoteError::Store {
            remote: self.spec.name.clone(),
            url: self.spec.url(),
            action,
            key: key.to_string(),
            summary: summarize(&source),
            source: Box::new(source),
        }
    }
}
