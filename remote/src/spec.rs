//! What a remote is once `hooks.toml` and the environment have been read: where (bucket, prefix, endpoint, region),
//! as whom (credentials), and how objects are written (encryption, part size, retries).

use std::fmt;
use std::time::Duration;

use crate::{Recipients, RemoteError};

/// Parts of 8 MiB: two in flight keep an upload's memory near 32 MiB, and 10,000 parts (S3's limit) hold 80 GiB;
/// larger archives get larger parts (see [`RemoteSpec::part_size_for`]).
pub const DEFAULT_PART_SIZE: usize = 8 << 20;

/// S3's most parts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// Static credentials (from `*_file` settings or the environment). Their `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// One remote.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    /// Its name in `hooks.toml` and the catalog.
    pub name: String,
    pub bucket: String,
    /// Where under the bucket the objects go: no leading or trailing `/`; empty for the bucket's top.
    pub prefix: String,
    /// The S3 endpoint (`http://127.0.0.1:8333`, `https://s3.eu-central-1.amazonaws.com`); `None`: AWS's.
    pub endpoint: Option<String>,
    /// `None`: `us-east-1`, which every S3-compatible server accepts.
    pub region: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`) rather than virtual-hosted ones (`bucket.endpoint/key`).
    pub path_style: bool,
    /// `None`: the AWS conventions (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, or
    /// `AWS_PROFILE` in `~/.aws/credentials`).
    pub credentials: Option<Credentials>,
    /// `Some`: objects are age-encrypted to these recipients (`<archive>.age`).
    pub encrypt: Option<Recipients>,
    /// The smallest part of a multipart upload.
    pub part_size: usize,
    /// How many times a failed request is retried (with backoff) before the operation fails.
    pub retries: usize,
    /// How long one request may make no progress.
    pub io_timeout: Duration,
}

impl RemoteSpec {
    /// A remote at `url` (`s3://bucket[/prefix]`) with the defaults: no encryption, path-style when an endpoint is
    /// given, 8 MiB parts, 3 retries, 60 s.
    pub fn new(name: &str, url: &str, endpoint: Option<String>) -> Result<Self, RemoteError> {
        let (bucket, prefix) = parse_url(url).ok_or_else(|| RemoteError::BadUrl {
            remote: name.to_string(),
            url: url.to_string(),
        })?;
        Ok(Self {
            name: name.to_string(),
            bucket,
            prefix,
            path_style: endpoint.is_some(),
            endpoint,
            region: None,
            credentials: None,
            encrypt: None,
            part_size: DEFAULT_PART_SIZE,
            retries: 3,
            io_timeout: Duration::from_secs(60),
        })
    }

    /// `s3://bucket/prefix`, as the user wrote it.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The key of the object holding the archive `name` (`.age` added when encrypted).
    pub fn key_for(&self, name: &str) -> String {
        let file = if self.encrypt.is_some() {
            format!("{name}.age")
        } else {
            name.to_string()
        };
        if self.prefix.is_empty() {
            file
        } else {
            format!("{}/{file}", self.prefix)
        }
    }

    /// The part size for an object of about `size` bytes: [`Self::part_size`], or larger (whole MiB) when that
    /// would take more than S3's 10,000 parts.
    pub fn part_size_for(&self, size: u64) -> usize {
        let needed = size.div_ceil(MAX_PARTS - 1).div_ceil(1 << 20) << 20;
        self.part_size.max(usize::try_from(needed).unwrap_or(usize::MAX))
    }
}

/// `s3://bucket[/prefix…]` → (bucket, prefix without surrounding slashes).
fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = !bucket.is_empty()
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    let prefix = prefix.trim_matches('/');
    let prefix_ok = prefix
        .split('/')
        .all(|part| prefix.is_empty() || (!part.is_empty() && part != "." && part != ".."));
    (bucket_ok && prefix_ok).then(|| (bucket.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_a_bucket_and_an_optional_prefix() {
        assert_eq!(parse_url("s3://backups"), Some(("backups".into(), "".into())));
        assert_eq!(parse_url("s3://backups/"), Some(("backups".into(), "".into())));
        assert_eq!(
            parse_url("s3://backups/host-a/app/"),
            Some(("backups".into(), "host-a/app".into()))
        );
        for bad in [
            "backups",
            "s3://",
            "s3://Bad_Bucket/x",
            "s3://b/a/../c",
            "s3://b/a//c",
            "https://b/x",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_sit_under_the_prefix_and_encrypted_ones_end_in_age() {
        let mut spec = RemoteSpec::new("offsite", "s3://b/host-a", None).unwrap();
        assert_eq!(spec.key_for("backup_x.tar.gz"), "host-a/backup_x.tar.gz");
        spec.encrypt = Some(Recipients::parse(&[crate::encryption::tests::RECIPIENT.to_string()]).unwrap());
        assert_eq!(spec.key_for("backup_x.tar.gz"), "host-a/backup_x.tar.gz.age");
        spec.prefix.clear();
        assert_eq!(spec.key_for("backup_x.tar.gz"), "backup_x.tar.gz.age");
    }

    #[test]
    fn large_archives_get_parts_large_enough_for_s3s_part_limit() {
        let spec = RemoteSpec::new("offsite", "s3://b", None).unwrap();
        assert_eq!(spec.part_size_for(1 << 30), DEFAULT_PART_SIZE);
        let huge = 200u64 << 30;
        let part = spec.part_size_for(huge) as u64;
        assert!(huge.div_ceil(part) < MAX_PARTS, "{part}");
        assert_eq!(part % (1 << 20), 0);
    }

    #[test]
    fn credentials_never_show_their_secret() {
        let c = Credentials {
            access_key_id: "AKIA1".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIA1") && !shown.contains("secret\"") && !shown.contains("very-secret"));
        assert!(!shown.contains("token-secret"));
    }
}
