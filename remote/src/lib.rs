//! hookrun's off-site copies: an archive streamed to S3-compatible object storage (AWS S3, MinIO, Ceph RGW, Garage,
//! SeaweedFS, R2, …), optionally encrypted with age on the way, and read back, checked and decrypted.
//!
//! - [`RemoteSpec`] is one `[[remote]]` of `hooks.toml` once resolved (bucket, prefix, endpoint, credentials, the
//!   age recipients); [`Remote`] is a connection to it.
//! - [`Remote::upload`] streams a complete local archive as a multipart upload with bounded memory (parts of
//!   [`RemoteSpec::part_size`], two in flight). Writes are create-only: the upload completes with
//!   `If-None-Match: *`, so an existing object is never overwritten. Every part carries a CRC32C the server checks;
//!   the archive's SHA-256 travels as object metadata; after completion the object's size and ETag (the MD5 of the
//!   parts, computed here as they are sent) are compared before a copy is returned. A failed upload is aborted.
//! - [`Remote::fetch`] streams an object back into any writer, checking its SHA-256 and, with an identity,
//!   decrypting it and checking the archive's SHA-256 (the object's `hookrun-archive-sha256` metadata).
//! - Errors are [`RemoteError`]s: one line naming the remote and the object, the store's error kept as the source.
//!
//! Why `opendal` and not `object_store`: `object_store` 0.14 completes multipart uploads without a precondition
//! (create-only holds there only for single-request puts), and every archive larger than one part is a multipart
//! upload; `opendal`'s S3 service sends `If-None-Match` on `CompleteMultipartUpload` too.
//!
//! **Never** knows about the catalog, hooks or Docker: it moves bytes and says what it checked.

mod client;
mod encryption;
mod error;
mod spec;
mod transfer;

pub use client::{Remote, StoredObject};
pub use encryption::{Identities, Recipients};
pub use error::RemoteError;
pub use spec::{Credentials, RemoteSpec, DEFAULT_PART_SIZE};
pub use transfer::{Fetched, Uploaded};

/// The object metadata key holding the SHA-256 of the archive an object holds (before encryption).
pub const ARCHIVE_SHA256_METADATA: &str = "hookrun-archive-sha256";
