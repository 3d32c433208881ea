//! Moving an archive: [`Remote::upload`] streams a local file to a create-only object (encrypting it on the way
//! when the remote says so), [`Remote::fetch`] streams an object back into a writer (decrypting it with an
//! identity), each checking what it moved. Reading, hashing and age run on a blocking thread; the requests on the
//! runtime; they meet through a channel of whole parts, so memory stays a few parts whatever the archive's size.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Identities, Remote, RemoteError, ARCHIVE_SHA256_METADATA};

/// Parts in flight to the server at once.
const CONCURRENT_PARTS: usize = 2;

/// A completed, checked upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub key: String,
    /// The object's size (larger than the archive when encrypted).
    pub size: u64,
    /// The SHA-256 of the object as stored.
    pub sha256: String,
    pub encrypted: bool,
    /// Whether the object was already there from an earlier upload of the same archive (nothing was written).
    pub already_there: bool,
}

/// What a fetch read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The object's size and SHA-256.
    pub size: u64,
    pub sha256: String,
    /// The SHA-256 of the archive inside (`None`: encrypted, and no identity was given).
    pub archive_sha256: Option<String>,
    /// The archive's size, when known.
    pub archive_size: Option<u64>,
}

/// What the blocking side of an upload produced.
struct Produced {
    size: u64,
    sha256: String,
    archive_sha256: String,
    part_md5s: Vec<[u8; 16]>,
}

impl Remote {
    /// Uploads the complete local archive `file` (named `name` in storage, with SHA-256 `archive_sha256` as the
    /// catalog knows it) to its key ([`crate::RemoteSpec::key_for`]), create-only. `progress` hears the bytes sent
    /// so far; `cancel` stops it (aborted). An object already under the key is left alone: if it holds this archive
    /// (an earlier upload that was not recorded) it is read back, checked and returned with `already_there`;
    /// otherwise [`RemoteError::Exists`]. On any failure the multipart upload is aborted and no object appears; an
    /// object that completed but does not hold what was sent is deleted (create-only: it is this upload's own).
    pub async fn upload(
        &self,
        file: &Path,
        name: &str,
        archive_sha256: &str,
        cancel: &CancellationToken,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Uploaded, RemoteError> {
        let key = self.spec.key_for(name);
        if let Some(existing) = self.stat(&key).await? {
            return self.adopt(existing, archive_sha256).await;
        }
        let local_size = std::fs::metadata(file)
            .map(|m| m.len())
            .map_err(|e| self.local_err(file, e))?;
        let part = self.spec.part_size_for(local_size + local_size / 1000 + 4096);
        let mut writer = self
            .op
            .writer_with(&key)
            .chunk(part)
            .concurrent(CONCURRENT_PARTS)
            .if_not_exists(true)
            .content_type(match (&self.spec.encrypt, name.ends_with(".zst")) {
                (Some(_), _) => "application/octet-stream",
                (None, true) => "application/zstd",
                (None, false) => "application/gzip",
            })
            .user_metadata([(ARCHIVE_SHA256_METADATA.to_string(), archive_sha256.to_string())])
            .await
            .map_err(|e| self.store_err("uploading", &key, e))?;

        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let producer = {
            let file = file.to_path_buf();
            let recipients = self.spec.encrypt.clone();
            tokio::task::spawn_blocking(move || produce(&file, recipients, part, tx))
        };
        let mut sent = 0u64;
        let mut failure = None;
        loop {
            let chunk = tokio::select! {
                chunk = rx.recv() => chunk,
                () = cancel.cancelled() => {
                    failure = Some(RemoteError::Cancelled { remote: self.spec.name.clone(), key: key.clone() });
                    break;
                }
            };
            let Some(chunk) = chunk else { break };
            let len = chunk.len() as u64;
            if let Err(e) = writer.write(chunk).await {
                failure = Some(self.store_err("uploading", &key, e));
                break;
            }
            sent += len;
            progress(sent);
        }
        drop(rx);
        let produced = producer.await.expect("the upload's reader does not panic");
        let produced = match (failure, produced) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(match e {
                ProduceError::Io(e) => self.local_err(file, e),
                ProduceError::Encrypt(source) => RemoteError::Encrypt {
                    remote: self.spec.name.clone(),
                    source: Box::new(source),
                },
            }),
            (None, Ok(p)) if p.archive_sha256 != archive_sha256 => Err(self.mismatch(
                &key,
                format!(
                    "the local archive {} has SHA-256 {}, not {archive_sha256} as the catalog says: not uploaded",
                    file.display(),
                    p.archive_sha256
                ),
            )),
            (None, Ok(p)) => Ok(p),
        };
        let produced = match produced {
            Ok(p) => p,
            Err(e) => {
                abort(&mut writer, &key).await;
                return Err(e);
            }
        };
        if let Err(e) = writer.close().await {
            if e.kind() == opendal::ErrorKind::ConditionNotMatch {
                // Another writer completed the key first (a concurrent sync): ours was discarded by the server.
                if let Some(existing) = self.stat(&key).await? {
                    return self.adopt(existing, archive_sha256).await;
                }
            }
            abort(&mut writer, &key).await;
            return Err(self.store_err("completing", &key, e));
        }
        if let Err(e) = self.confirm(&key, &produced).await {
            if let Err(removal) = self.delete(&key).await {
                tracing::warn!("{key}: the object that failed its check could not be deleted: {removal}");
            }
            return Err(e);
        }
        Ok(Uploaded {
            key,
            size: produced.size,
            sha256: produced.sha256,
            encrypted: self.spec.encrypt.is_some(),
            already_there: false,
        })
    }

    /// Checks the completed object against what was sent: its size, the archive's SHA-256 in its metadata, and its
    /// ETag (the MD5 of a single-part object, or the MD5 of the parts' MD5s and their count).
    async fn confirm(&self, key: &str, produced: &Produced) -> Result<(), RemoteError> {
        let Some(object) = self.stat(key).await? else {
            return Err(self.mismatch(key, "the completed upload is not there".into()));
        };
        if object.size != produced.size {
            return Err(self.mismatch(
                key,
                format!("the server holds {} bytes, {} were sent", object.size, produced.size),
            ));
        }
        if object.archive_sha256.as_deref() != Some(produced.archive_sha256.as_str()) {
            return Err(self.mismatch(key, "the server did not keep the archive's SHA-256 metadata".into()));
        }
        let expected = expected_etags(&produced.part_md5s);
        match object.etag {
            Some(etag) if expected.contains(&etag) => Ok(()),
            etag => Err(self.mismatch(
                key,
                format!(
                    "the server's ETag {} is not the MD5 of what was sent ({}); the object may be damaged",
                    etag.as_deref().unwrap_or("(none)"),
                    expected.join(" or ")
                ),
            )),
        }
    }

    /// An object already under the key: this archive's (adopted after reading it back) or another's (refused).
    async fn adopt(&self, existing: crate::StoredObject, archive_sha256: &str) -> Result<Uploaded, RemoteError> {
        if existing.archive_sha256.as_deref() != Some(archive_sha256) {
            return Err(RemoteError::Exists {
                remote: self.spec.name.clone(),
                key: existing.key,
            });
        }
        let encrypted = self.spec.encrypt.is_some();
        let (fetched, _) = self.fetch(&existing.key, encrypted, None, io::sink()).await?;
        if !encrypted && fetched.archive_sha256.as_deref() != Some(archive_sha256) {
            return Err(self.mismatch(&existing.key, "an earlier upload of this archive is damaged".into()));
        }
        Ok(Uploaded {
            key: existing.key,
            size: fetched.size,
            sha256: fetched.sha256,
            encrypted,
            already_there: true,
        })
    }

    /// Streams the object `key` into `out`: its SHA-256 and size always; decrypted with `identity` when `encrypted`
    /// (without one, the ciphertext is only hashed and `out` gets nothing); `out` gets the archive. Returns what
    /// was read and `out`.
    pub async fn fetch<W: Write + Send + 'static>(
        &self,
        key: &str,
        encrypted: bool,
        identity: Option<&Identities>,
        out: W,
    ) -> Result<(Fetched, W), RemoteError> {
        let reader = self
            .op
            .reader_with(key)
            .chunk(self.spec.part_size)
            .concurrent(CONCURRENT_PARTS)
            .await
            .map_err(|e| self.store_err("downloading", key, e))?;
        let mut stream = reader
            .into_bytes_stream(..)
            .await
            .map_err(|e| self.store_err("downloading", key, e))?;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
        let consumer = {
            let identity = identity.cloned();
            tokio::task::spawn_blocking(move || consume(rx, encrypted, identity, out))
        };
        while let Some(chunk) = stream.next().await {
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
        drop(tx);
        match consumer.await.expect("the download's writer does not panic") {
            Ok(done) => Ok(done),
            Err(ConsumeError::Read(source)) => Err(RemoteError::Read {
                remote: self.spec.name.clone(),
                key: key.to_string(),
                source,
            }),
            Err(ConsumeError::Write(source)) => Err(RemoteError::Local {
                remote: self.spec.name.clone(),
                path: "(download)".into(),
                source,
            }),
            Err(ConsumeError::Decrypt(source)) => Err(RemoteError::Decrypt {
                remote: self.spec.name.clone(),
                key: key.to_string(),
                source: Box::new(source),
            }),
        }
    }

    fn local_err(&self, path: &Path, source: io::Error) -> RemoteError {
        RemoteError::Local {
            remote: self.spec.name.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn mismatch(&self, key: &str, what: String) -> RemoteError {
        RemoteError::Mismatch {
            remote: self.spec.name.clone(),
            key: key.to_string(),
            what,
        }
    }
}

/// Best effort: an upload that cannot complete is aborted, so the server frees its parts.
async fn abort(writer: &mut opendal::Writer, key: &str) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(
            "{key}: the failed upload could not be aborted ({e}); a bucket lifecycle rule for incomplete multipart \
             uploads frees its parts"
        );
    }
}

/// ETags the server may give an object made of these parts: the MD5 of one part sent as a single PUT, or
/// `md5(md5(part 1) ‖ … ‖ md5(part N))-N` for a multipart upload.
fn expected_etags(part_md5s: &[[u8; 16]]) -> Vec<String> {
    let mut of_parts = Md5::new();
    for md5 in part_md5s {
        of_parts.update(md5);
    }
    let mut expected = vec![format!("{}-{}", hex::encode(of_parts.finalize()), part_md5s.len())];
    if let [single] = part_md5s {
        expected.push(hex::encode(single));
    }
    expected
}

enum ProduceError {
    Io(io::Error),
    Encrypt(age::EncryptError),
}

/// The blocking side of an upload: reads `file`, hashes it, encrypts it when asked, and sends whole parts.
fn produce(
    file: &Path,
    recipients: Option<crate::Recipients>,
    part: usize,
    tx: mpsc::Sender<Bytes>,
) -> Result<Produced, ProduceError> {
    let mut source = HashingReader::new(File::open(file).map_err(ProduceError::Io)?);
    let mut parts = PartWriter::new(part, tx);
    match recipients {
        Some(recipients) => {
            let encryptor = recipients.encryptor().map_err(ProduceError::Encrypt)?;
            let mut sealed = encryptor.wrap_output(&mut parts).map_err(ProduceError::Io)?;
            io::copy(&mut source, &mut sealed).map_err(ProduceError::Io)?;
            sealed.finish().map_err(ProduceError::Io)?;
        }
        None => {
            io::copy(&mut source, &mut parts).map_err(ProduceError::Io)?;
        }
    }
    parts.finish().map_err(ProduceError::Io)?;
    Ok(Produced {
        size: parts.size,
        sha256: hex::encode(parts.sha256.finalize()),
        archive_sha256: hex::encode(source.sha256.finalize()),
        part_md5s: parts.part_md5s,
    })
}

/// How much the blocking side hands the runtime at a time: the store's writer gathers these into parts, so the
/// upload holds only its own parts (not a second copy of each) in memory.
const PIECE: usize = 1 << 20;

/// Sends the written bytes on in pieces of at most [`PIECE`] that never straddle a part boundary, hashing as it
/// goes: the object's SHA-256 and the MD5 of each part of exactly `part` bytes (the last may be shorter), for the
/// ETag check.
struct PartWriter {
    part: usize,
    buf: Vec<u8>,
    tx: mpsc::Sender<Bytes>,
    size: u64,
    sha256: Sha256,
    /// Bytes of the current part so far, and their MD5.
    in_part: usize,
    part_md5: Md5,
    part_md5s: Vec<[u8; 16]>,
}

impl PartWriter {
    fn new(part: usize, tx: mpsc::Sender<Bytes>) -> Self {
        Self {
            part,
            buf: Vec::with_capacity(PIECE),
            tx,
            size: 0,
            sha256: Sha256::new(),
            in_part: 0,
            part_md5: Md5::new(),
            part_md5s: Vec::new(),
        }
    }

    fn send_piece(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.tx
            .blocking_send(Bytes::from(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn end_part(&mut self) {
        let md5 = std::mem::replace(&mut self.part_md5, Md5::new());
        self.part_md5s.push(md5.finalize().into());
        self.in_part = 0;
    }

    /// Sends what is left and closes the last part (an empty object is one empty part).
    fn finish(&mut self) -> io::Result<()> {
        self.send_piece()?;
        if self.in_part > 0 || self.part_md5s.is_empty() {
            self.end_part();
        }
        Ok(())
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(PIECE - self.buf.len()).min(self.part - self.in_part);
        let taken = &data[..take];
        self.buf.extend_from_slice(taken);
        self.sha256.update(taken);
        self.part_md5.update(taken);
        self.size += take as u64;
        self.in_part += take;
        if self.in_part == self.part {
            self.end_part();
            self.send_piece()?;
        } else if self.buf.len() == PIECE {
            self.send_piece()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes (SHA-256) and counts what passes through.
struct HashingReader<R> {
    inner: R,
    sha256: Sha256,
    size: u64,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            sha256: Sha256::new(),
            size: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// A writer that hashes (SHA-256) and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    sha256: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.sha256.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The chunks the runtime receives, as a blocking `Read`.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(io::Error::other(ReadFailedMarker(e.to_string()))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Marks an `io::Error` as coming from the server's stream (not the local writer).
#[derive(Debug)]
struct ReadFailedMarker(String);

impl std::fmt::Display for ReadFailedMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadFailedMarker {}

enum ConsumeError {
    Read(io::Error),
    Write(io::Error),
    Decrypt(age::DecryptError),
}

/// Sorts an error of the copy into a read from the server or a write to `out`.
fn classify(e: io::Error) -> ConsumeError {
    if e.get_ref().is_some_and(|inner| inner.is::<ReadFailedMarker>()) {
        ConsumeError::Read(e)
    } else {
        ConsumeError::Write(e)
    }
}

/// The blocking side of a fetch: hashes the object, decrypts it when it can, writes the archive to `out`.
fn consume<W: Write>(
    rx: mpsc::Receiver<io::Result<Bytes>>,
    encrypted: bool,
    identity: Option<Identities>,
    out: W,
) -> Result<(Fetched, W), ConsumeError> {
    let mut object = HashingReader::new(ChannelReader {
        rx,
        current: Bytes::new(),
    });
    let mut archive = HashingWriter {
        inner: out,
        sha256: Sha256::new(),
        size: 0,
    };
    let decrypted = match (encrypted, &identity) {
        (false, _) => {
            io::copy(&mut object, &mut archive).map_err(classify)?;
            true
        }
        (true, Some(identity)) => {
            let decryptor = age::Decryptor::new_buffered(BufReader::new(&mut object)).map_err(|e| match e {
                age::DecryptError::Io(io) => classify(io),
                other => ConsumeError::Decrypt(other),
            })?;
            let mut plain = decryptor.decrypt(identity.iter()).map_err(ConsumeError::Decrypt)?;
            io::copy(&mut plain, &mut archive).map_err(|e| {
                if e.get_ref().is_some_and(|inner| inner.is::<ReadFailedMarker>()) {
                    ConsumeError::Read(e)
                } else if e.kind() == io::ErrorKind::InvalidData {
                    ConsumeError::Decrypt(age::DecryptError::Io(e))
                } else {
                    ConsumeError::Write(e)
                }
            })?;
            true
        }
        (true, None) => false,
    };
    // Whatever the decryption left unread still counts in the object's hash.
    io::copy(&mut object, &mut io::sink()).map_err(classify)?;
    archive.flush().map_err(ConsumeError::Write)?;
    let fetched = Fetched {
        size: object.size,
        sha256: hex::encode(object.sha256.finalize()),
        archive_sha256: decrypted.then(|| hex::encode(archive.sha256.clone().finalize())),
        archive_size: decrypted.then_some(archive.size),
    };
    Ok((fetched, archive.inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_of_one_part_may_be_its_md5_and_of_several_the_md5_of_their_md5s() {
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        assert_eq!(
            expected_etags(&[a]),
            vec![format!("{}-1", hex::encode(Md5::digest(a))), hex::encode(a)]
        );
        let mut ab = a.to_vec();
        ab.extend_from_slice(&b);
        assert_eq!(
            expected_etags(&[a, b]),
            vec![format!("{}-2", hex::encode(Md5::digest(&ab)))]
        );
    }

    #[test]
    fn pieces_never_straddle_a_part_and_each_part_has_its_md5() {
        let (tx, mut rx) = mpsc::channel(64);
        let part = PIECE + PIECE / 2;
        let data: Vec<u8> = (0..2 * part + 10).map(|i| i as u8).collect();
        let expected: Vec<[u8; 16]> = data.chunks(part).map(|c| Md5::digest(c).into()).collect();
        let written = data.clone();
        let md5s = std::thread::spawn(move || {
            let mut parts = PartWriter::new(part, tx);
            parts.write_all(&written).unwrap();
            parts.finish().unwrap();
            assert_eq!(parts.size, written.len() as u64);
            parts.part_md5s
        })
        .join()
        .unwrap();
        assert_eq!(md5s, expected);
        let mut pieces = Vec::new();
        while let Ok(piece) = rx.try_recv() {
            pieces.push(piece.len());
        }
        // A part of 1.5 pieces: a whole piece, then the half that ends the part; the last part is 10 bytes longer.
        assert_eq!(pieces, vec![PIECE, PIECE / 2, PIECE, PIECE / 2, 10]);
    }
}
