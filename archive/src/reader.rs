//! Reading an archive back in one streaming pass with bounded memory: file → SHA-256 → gzip or zstd → tar, every
//! entry's data read to its end, the gzip trailer (CRC-32 and length) or the zstd content checksum checked and the
//! file hashed to its last byte. The format is told by the file's first bytes, never by its name.
//! `read_archive` counts what it finds (to verify an archive against its catalog record); `extract` uses the same
//! pass to write entries into staging folders.

use std::fs::File;
use std::io::{self, BufReader, Chain, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use flate2::bufread::GzDecoder;
use ring::digest::{Context, SHA256};
use tar::{Archive, EntryType, Header};
use tokio_util::sync::CancellationToken;

use super::compression::Detected;
use super::fault::{carried, fault};
use super::Format;
use crate::ArchiveError;

/// What a full read of an archive found. Counts follow the writer's: `entry_count` is every entry it appended
/// (folders, files, symlinks, FIFOs…), GNU long-name and pax pseudo-headers are not entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveContents {
    /// SHA-256 of the archive file, lowercase hex.
    pub sha256: String,
    /// Size of the archive file.
    pub size: u64,
    /// Regular files.
    pub file_count: u64,
    /// Entries of every kind.
    pub entry_count: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
}

impl ArchiveContents {
    /// Checks the archive against the SHA-256 its catalog record holds. The gzip or zstd and tar checks of
    /// `read_archive` catch corruption almost everywhere; the gzip header's MTIME, XFL and OS bytes are covered by no
    /// checksum, so only this comparison notices a change there.
    pub fn expect_sha256(&self, archive: &Path, recorded: &str) -> Result<(), ArchiveError> {
        if self.sha256.eq_ignore_ascii_case(recorded) {
            return Ok(());
        }
        Err(ArchiveError::ArchiveCheck {
            path: archive.to_path_buf(),
            reason: format!("SHA-256 is {}, the catalog recorded {recorded}", self.sha256),
        })
    }
}

/// Reads `path` to its end and checks it: the gzip or zstd magic, the compressed data, the gzip CRC-32 and length
/// trailer or the zstd content checksum, nothing after the gzip member or zstd frame, tar header checksums, an
/// end-of-archive marker, entry paths that stay inside the archive. Reports compressed bytes read to `progress` (at
/// most every 8 MiB, and once at the end). Returns `ArchiveError::Cancelled` when `cancel` fires, `ArchiveCheck` for
/// anything wrong with the archive, `ReadSource` when the file cannot be read.
pub fn read_archive(
    path: &Path,
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<ArchiveContents, ArchiveError> {
    visit_archive(path, cancel, progress, &mut |head: &EntryHead, data: &mut dyn Read| {
        split_path(&head.path).map_err(|reason| bad(path, reason))?;
        let read = io::copy(data, &mut io::sink()).map_err(|e| stream_error(path, e))?;
        if read != head.size {
            return Err(bad(path, format!("entry `{}` is truncated", head.display())));
        }
        Ok(())
    })
}

/// One archive entry as the visitor sees it: GNU long names and pax records already applied.
#[derive(Debug, Clone)]
pub(super) struct EntryHead {
    /// Path inside the archive, raw bytes.
    pub path: Vec<u8>,
    /// Target of a symlink or hard link, raw bytes.
    pub link: Option<Vec<u8>>,
    pub kind: EntryType,
    /// Bytes of data that follow the header.
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
}

impl EntryHead {
    /// A regular file (`0`, NUL or the contiguous-file type `7`).
    pub fn is_file(&self) -> bool {
        matches!(self.kind, EntryType::Regular | EntryType::Continuous)
    }

    /// The path for messages.
    pub fn display(&self) -> String {
        crate::escape::escape_controls(&String::from_utf8_lossy(&self.path)).into_owned()
    }
}

/// What the decompressing side learned about the archive file itself.
#[derive(Debug)]
struct StreamEnd {
    pub sha256: String,
    pub size: u64,
}

/// GNU long names and pax records longer than this are refused rather than held in memory.
const MAX_PSEUDO: u64 = 64 << 10;

/// How often, in compressed bytes, progress is reported.
const PROGRESS_STEP: u64 = 8 << 20;

/// Decompressed bytes handed from the decompressing thread to the parsing one at a time, and how many may wait.
const CHUNK: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 8;

/// The shared pass: calls `visit` for every entry, in archive order, with a reader of its data (whatever the visitor
/// leaves unread is read through), then checks the end of the tar stream, the gzip trailer or zstd checksum and that
/// nothing follows. An error from `visit` stops the pass and is returned as is. Returns what the pass found: the
/// file's SHA-256 and size, and every entry handed to `visit` counted as the writer counts them.
///
/// Two threads share the work, as `gzip -d | tar -x` does: one reads, hashes and decompresses the file, the calling
/// thread parses the tar stream and runs `visit` (which writes the files of an extraction). At most
/// `CHUNKS_IN_FLIGHT` chunks of `CHUNK` bytes wait between them.
pub(super) fn visit_archive(
    path: &Path,
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
    visit: &mut dyn FnMut(&EntryHead, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<ArchiveContents, ArchiveError> {
    let read = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let (chunks, inbox) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let (spare, spares) = mpsc::channel::<Vec<u8>>();
        let decompressing = scope.spawn(|| decompress(path, cancel, &read, chunks, spares));
        let inbox = Inbox {
            chunks: inbox,
            spare,
            current: Vec::new(),
            pos: 0,
            read: &read,
            reported: 0,
            progress,
        };
        let mut contents = ArchiveContents {
            sha256: String::new(),
            size: 0,
            file_count: 0,
            entry_count: 0,
            bytes: 0,
        };
        let parsed = parse(path, cancel, inbox, visit, &mut contents);
        let decompressed = decompressing
            .join()
            .unwrap_or_else(|_| Err(bad(path, "the decompressing thread panicked".into())));
        // The decompressing side's failure is the cause of whatever the parser then saw (data ending early).
        match (parsed, decompressed) {
            (_, Err(error)) => Err(error),
            (Err(error), Ok(_)) => Err(error),
            (Ok(()), Ok(Some(end))) => {
                progress(end.size);
                contents.sha256 = end.sha256;
                contents.size = end.size;
                Ok(contents)
            }
            (Ok(()), Ok(None)) => Err(bad(path, "the tar stream ended before the compressed data".into())),
        }
    })
}

/// The decompressing side of the pass: reads and hashes the file, tells its format, decompresses it into `chunks`
/// (reusing the buffers that come back in `spares`) and checks that nothing follows the gzip member or zstd frame.
/// Returns `None` when the parser stopped taking chunks (it failed, and says why).
fn decompress(
    path: &Path,
    cancel: &CancellationToken,
    read: &AtomicU64,
    chunks: SyncSender<Vec<u8>>,
    spares: Receiver<Vec<u8>>,
) -> Result<Option<StreamEnd>, ArchiveError> {
    let file = File::open(path).map_err(|source| ArchiveError::ReadSource {
        path: path.to_path_buf(),
        source,
    })?;
    let mut raw = RawReader {
        file,
        path,
        hasher: Context::new(&SHA256),
        read,
        cancel,
    };
    // The magic is read through the hashing reader and put back in front of the rest.
    let head = read_head(&mut raw).map_err(|e| stream_error(path, e))?;
    let format = match Format::detect(&head) {
        Detected::Format(format) => format,
        Detected::Truncated => return Err(bad(path, TRUNCATED.into())),
        Detected::Unknown => return Err(bad(path, "not a gzip or zstd archive".into())),
    };
    let compressed = BufReader::with_capacity(256 << 10, Cursor::new(head).chain(raw));
    let mut decompressor = Decompressor::new(format, compressed, path)
        .map_err(|e| bad(path, format!("cannot start decompressing: {e}")))?;
    loop {
        let mut chunk = spares.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let n = fill(&mut decompressor, &mut chunk).map_err(|e| stream_error(path, e))?;
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        if chunks.send(chunk).is_err() {
            return Ok(None);
        }
    }
    drop(chunks);
    let mut buffered = decompressor.into_inner();
    let trailing = io::copy(&mut buffered, &mut io::sink()).map_err(|e| stream_error(path, e))?;
    if trailing > 0 {
        let stream = match format {
            Format::Gzip => "gzip stream",
            Format::Zstd => "zstd frame",
        };
        return Err(bad(path, format!("{trailing} bytes follow the end of the {stream}")));
    }
    let (_, raw) = buffered.into_inner().into_inner();
    Ok(Some(StreamEnd {
        sha256: hex::encode(raw.hasher.finish()),
        size: read.load(Ordering::Relaxed),
    }))
}

/// Reads into `buf` until it is full or the data ends; returns the bytes read.
pub(super) fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The parsing side of the pass: the tar stream in `inbox`, entry by entry (counted into `contents`), then only zero
/// blocks to its end.
fn parse(
    path: &Path,
    cancel: &CancellationToken,
    inbox: Inbox<'_>,
    visit: &mut dyn FnMut(&EntryHead, &mut dyn Read) -> Result<(), ArchiveError>,
    contents: &mut ArchiveContents,
) -> Result<(), ArchiveError> {
    let plain = PlainReader {
        inner: inbox,
        cancel,
        eof: false,
    };
    let mut tar = Archive::new(plain);
    let fail = |e: io::Error| stream_error(path, e);
    {
        let mut pending = Pending::default();
        for entry in tar.entries().map_err(fail)?.raw(true) {
            let mut entry = entry.map_err(fail)?;
            let header = entry.header().clone();
            let kind = header.entry_type();
            match kind {
                EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader => {
                    let data = read_pseudo(path, &header, &mut entry)?;
                    pending.absorb(path, kind, data)?;
                    continue;
                }
                EntryType::XGlobalHeader => {
                    read_pseudo(path, &header, &mut entry)?;
                    continue;
                }
                EntryType::GNUSparse => {
                    let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
                    return Err(bad(
                        path,
                        format!("entry `{name}` is a GNU sparse file, which is not supported"),
                    ));
                }
                _ => {}
            }
            let head = pending.head(path, &header)?;
            visit(&head, &mut entry)?;
            io::copy(&mut entry, &mut io::sink()).map_err(fail)?;
            contents.entry_count += 1;
            if head.is_file() {
                contents.file_count += 1;
                contents.bytes += head.size;
            }
        }
        if !pending.is_empty() {
            return Err(bad(path, "the last long-name or pax header describes no entry".into()));
        }
    }
    let plain = tar.into_inner();
    if plain.eof {
        return Err(bad(path, "the tar stream has no end-of-archive marker".into()));
    }
    // Past the end-of-archive marker only zero blocks may follow (the decompressing side checks the trailer).
    let mut inbox = plain.inner;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = inbox.read(&mut buf).map_err(fail)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(bad(path, "data follows the tar end-of-archive marker".into()));
        }
        if cancel.is_cancelled() {
            return Err(ArchiveError::Cancelled);
        }
    }
}

/// Splits an entry path into its components, refusing what could leave the folder it is extracted into: an absolute
/// path, a `..` component, a NUL byte. `.` and empty components (`a//b`, a trailing `/`) are dropped.
pub(super) fn split_path(path: &[u8]) -> Result<Vec<&[u8]>, String> {
    let name = String::from_utf8_lossy(path);
    if path.first() == Some(&b'/') {
        return Err(format!("entry `{name}` has an absolute path"));
    }
    if path.contains(&0) {
        return Err(format!("entry `{name}` has a NUL byte in its path"));
    }
    let mut parts = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(format!("entry `{name}` leaves its folder")),
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// An `ArchiveCheck` failure of `path`.
pub(super) fn bad(path: &Path, reason: String) -> ArchiveError {
    ArchiveError::ArchiveCheck {
        path: path.to_path_buf(),
        reason,
    }
}

/// What a file cut inside its compressed data is reported as.
const TRUNCATED: &str = "truncated: the file ends inside the compressed data";

/// Turns an error from the decompressing, tar-parsing stack back into what happened: the file could not be read,
/// the pass was cancelled, or the archive is damaged (with a short reason). The decompressor has already turned its
/// own errors into `ArchiveCheck` failures (see `Decompressor`); what is left comes from the tar layer.
pub(super) fn stream_error(path: &Path, error: io::Error) -> ArchiveError {
    let error = match carried(error) {
        Ok(hook_error) => return hook_error,
        Err(error) => error,
    };
    let reason = if error.kind() == io::ErrorKind::UnexpectedEof {
        TRUNCATED.to_string()
    } else {
        format!("corrupt tar data ({error})")
    };
    bad(path, reason)
}

/// The first bytes of the file, as many as the longest magic number (fewer when the file is shorter).
fn read_head(raw: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    raw.take(4).read_to_end(&mut head)?;
    Ok(head)
}

/// The compressed file: its first bytes, already read to tell the format, then the rest.
type Compressed<'a> = BufReader<Chain<Cursor<Vec<u8>>, RawReader<'a>>>;

/// The decompressing stage, chosen once from the file's magic. Its own errors (a corrupt stream, a checksum that does
/// not match, the data ending inside it) leave it as `ArchiveCheck` failures of the file, with a reason that names
/// the format; errors of the file underneath (cannot read, cancelled) pass through unchanged.
struct Decompressor<'a> {
    path: &'a Path,
    codec: Codec<'a>,
}

#[allow(clippy::large_enum_variant, reason = "one per pass, never moved after it is made")]
enum Codec<'a> {
    Gzip(GzDecoder<Compressed<'a>>),
    /// One frame: with `single_frame`, decoding stops at its end and leaves what follows unread.
    Zstd(zstd::stream::read::Decoder<'static, Compressed<'a>>),
}

impl<'a> Decompressor<'a> {
    fn new(format: Format, compressed: Compressed<'a>, path: &'a Path) -> io::Result<Self> {
        let codec = match format {
            Format::Gzip => Codec::Gzip(GzDecoder::new(compressed)),
            Format::Zstd => Codec::Zstd(zstd::stream::read::Decoder::with_buffer(compressed)?.single_frame()),
        };
        Ok(Self { path, codec })
    }

    /// The compressed file, positioned just after the gzip member or zstd frame.
    fn into_inner(self) -> Compressed<'a> {
        match self.codec {
            Codec::Gzip(gzip) => gzip.into_inner(),
            Codec::Zstd(zstd) => zstd.finish(),
        }
    }

    /// Names what went wrong in the compressed data.
    fn reason(&self, error: &io::Error) -> String {
        let text = error.to_string();
        if error.kind() == io::ErrorKind::UnexpectedEof {
            return TRUNCATED.to_string();
        }
        match self.codec {
            Codec::Gzip(_) if text.contains("invalid gzip header") => "corrupt gzip header".to_string(),
            Codec::Gzip(_) if text.contains("matching checksum") => {
                "corrupt: the gzip CRC-32 or length does not match the data".to_string()
            }
            Codec::Gzip(_) => format!("corrupt compressed data ({text})"),
            Codec::Zstd(_) if text.contains("checksum") => {
                "corrupt: the zstd checksum does not match the data".to_string()
            }
            Codec::Zstd(_) => format!("corrupt compressed data (zstd: {text})"),
        }
    }
}

impl Read for Decompressor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.codec {
            Codec::Gzip(gzip) => gzip.read(buf),
            Codec::Zstd(zstd) => zstd.read(buf),
        };
        result.map_err(|error| match carried(error) {
            Ok(underneath) => fault(underneath),
            Err(error) => fault(bad(self.path, self.reason(&error))),
        })
    }
}

/// GNU long name / long link and pax records waiting for the entry they describe.
#[derive(Default)]
struct Pending {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.link.is_none() && self.pax.is_none()
    }

    fn absorb(&mut self, path: &Path, kind: EntryType, mut data: Vec<u8>) -> Result<(), ArchiveError> {
        let slot = match kind {
            EntryType::GNULongName => &mut self.name,
            EntryType::GNULongLink => &mut self.link,
            _ => &mut self.pax,
        };
        if slot.is_some() {
            return Err(bad(path, "two long-name or pax headers describe the same entry".into()));
        }
        if kind != EntryType::XHeader {
            while data.last() == Some(&0) {
                data.pop();
            }
        }
        *slot = Some(data);
        Ok(())
    }

    /// The entry `header` describes, with the pending records applied; clears them.
    fn head(&mut self, path: &Path, header: &Header) -> Result<EntryHead, ArchiveError> {
        let field = |what: &str, result: io::Result<u64>| {
            result.map_err(|e| {
                let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
                bad(path, format!("entry `{name}` has a corrupt {what} field ({e})"))
            })
        };
        let size = field("size", header.entry_size())?;
        let mut head = EntryHead {
            path: self.name.take().unwrap_or_else(|| header.path_bytes().into_owned()),
            link: self
                .link
                .take()
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned())),
            kind: header.entry_type(),
            size,
            mode: header.mode().map_err(|e| {
                bad(
                    path,
                    format!(
                        "entry `{}` has a corrupt mode field ({e})",
                        String::from_utf8_lossy(&header.path_bytes())
                    ),
                )
            })?,
            uid: field("uid", header.uid())?,
            gid: field("gid", header.gid())?,
            mtime: field("mtime", header.mtime())?,
        };
        if let Some(pax) = self.pax.take() {
            apply_pax(path, &pax, &mut head)?;
        }
        Ok(head)
    }
}

/// Applies a pax extended header's `path`, `linkpath`, `uid`, `gid` and `mtime`. A `size` record that disagrees with
/// the header is refused: the entry's data would not be where the header says.
fn apply_pax(path: &Path, pax: &[u8], head: &mut EntryHead) -> Result<(), ArchiveError> {
    let name = head.display();
    let corrupt = |what: String| bad(path, format!("corrupt pax header before `{name}`: {what}"));
    let mut records = Vec::new();
    for record in tar::PaxExtensions::new(pax) {
        let record = record.map_err(|e| corrupt(e.to_string()))?;
        let key = record.key().map_err(|e| corrupt(e.to_string()))?.to_string();
        records.push((key, record.value_bytes().to_vec()));
    }
    let number = |key: &str, value: &[u8]| -> Result<u64, ArchiveError> {
        let text = std::str::from_utf8(value).unwrap_or_default();
        let whole = text.split('.').next().unwrap_or_default();
        whole
            .parse()
            .map_err(|_| corrupt(format!("`{key}` is `{}`", String::from_utf8_lossy(value))))
    };
    for (key, value) in records {
        match key.as_str() {
            "path" => head.path = value,
            "linkpath" => head.link = Some(value),
            "uid" => head.uid = number("uid", &value)?,
            "gid" => head.gid = number("gid", &value)?,
            "mtime" => head.mtime = number("mtime", &value)?,
            "size" if number("size", &value)? != head.size => {
                return Err(corrupt(
                    "a pax `size` that overrides the header is not supported".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads a pseudo-header's data (a long name or pax records), refusing sizes no real name needs.
fn read_pseudo(path: &Path, header: &Header, data: &mut dyn Read) -> Result<Vec<u8>, ArchiveError> {
    let size = header.entry_size().map_err(|e| stream_error(path, e))?;
    if size > MAX_PSEUDO {
        return Err(bad(
            path,
            format!("a long-name or pax header of {size} bytes (more than {MAX_PSEUDO})"),
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    data.take(size)
        .read_to_end(&mut buf)
        .map_err(|e| stream_error(path, e))?;
    if buf.len() as u64 != size {
        return Err(bad(path, "truncated long-name or pax header".into()));
    }
    Ok(buf)
}

/// The archive file as read: hashes and counts every byte, reports progress and notices cancellation.
struct RawReader<'a> {
    file: File,
    path: &'a Path,
    hasher: Context,
    /// Bytes of the file read so far, which the parsing thread reports as progress.
    read: &'a AtomicU64,
    cancel: &'a CancellationToken,
}

impl Read for RawReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(fault(ArchiveError::Cancelled));
        }
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(fault(ArchiveError::ReadSource {
                        path: self.path.to_path_buf(),
                        source,
                    }))
                }
            }
        };
        self.hasher.update(&buf[..n]);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The decompressed stream as the parsing thread reads it: chunk after chunk from the decompressing thread (whose
/// buffers go back for reuse), reporting the file bytes read at most every `PROGRESS_STEP`. The end of the chunks
/// is the end of the data.
struct Inbox<'a> {
    chunks: Receiver<Vec<u8>>,
    spare: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    read: &'a AtomicU64,
    reported: u64,
    progress: &'a dyn Fn(u64),
}

impl Read for Inbox<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len() {
            let Ok(next) = self.chunks.recv() else { return Ok(0) };
            let done = std::mem::replace(&mut self.current, next);
            let _ = self.spare.send(done);
            self.pos = 0;
            let read = self.read.load(Ordering::Relaxed);
            if read - self.reported >= PROGRESS_STEP {
                self.reported = read;
                (self.progress)(read);
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The decompressed tar stream: notices cancellation (a small compressed input can expand a lot) and whether the
/// tar reader ran into the end of the data, which it takes for a clean end.
struct PlainReader<'a, R> {
    inner: R,
    cancel: &'a CancellationToken,
    eof: bool,
}

impl<R: Read> Read for PlainReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(fault(ArchiveError::Cancelled));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::Write;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use flate2::write::GzEncoder;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::{write_archive, ArchiveSummary, Compression, SourceRoot};

    /// The formats every check must hold for, each at its default level.
    const BOTH: [Compression; 2] = [
        Compression {
            format: Format::Gzip,
            level: 6,
        },
        Compression {
            format: Format::Zstd,
            level: 3,
        },
    ];

    /// A tree with folders, an empty folder, files, a symlink, a FIFO and names long enough for GNU long-name headers.
    fn sample_tree(dir: &Path) -> Vec<SourceRoot> {
        let data = dir.join("data");
        std::fs::create_dir_all(data.join("nested/deeper")).unwrap();
        std::fs::create_dir_all(data.join("empty")).unwrap();
        std::fs::write(data.join("a.txt"), "hello archive\n".repeat(500)).unwrap();
        std::fs::write(
            data.join("nested/b.bin"),
            (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        std::fs::write(data.join("nested/deeper/empty-file"), b"").unwrap();
        let long_dir = data.join("d".repeat(90));
        std::fs::create_dir(&long_dir).unwrap();
        std::fs::write(long_dir.join("f".repeat(150)), b"long name").unwrap();
        symlink(
            format!("../{}", "d".repeat(90)),
            data.join("nested/link-with-a-long-target"),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            data.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        std::fs::write(dir.join("config.yml"), b"key: value\n").unwrap();
        vec![
            SourceRoot::new(&data, "data"),
            SourceRoot::new(dir.join("config.yml"), "config.yml"),
        ]
    }

    /// Writes the sample tree into a fresh folder under `dir` as an archive of `compression`.
    fn write_sample(dir: &Path, compression: Compression) -> (PathBuf, ArchiveSummary) {
        let src = dir.join(format!("src-{}", compression.format.name()));
        std::fs::create_dir(&src).unwrap();
        let roots = sample_tree(&src);
        let archive = dir.join(format!("backup.{}", compression.format.extension()));
        let summary = write_archive(&roots, &archive, compression, &CancellationToken::new(), &|_| {}).unwrap();
        (archive, summary)
    }

    fn read(path: &Path) -> Result<ArchiveContents, ArchiveError> {
        read_archive(path, &CancellationToken::new(), &|_| {})
    }

    fn reason(result: Result<ArchiveContents, ArchiveError>) -> String {
        match result {
            Err(ArchiveError::ArchiveCheck { reason, .. }) => reason,
            other => panic!("expected an ArchiveCheck failure, got {other:?}"),
        }
    }

    #[test]
    fn reading_finds_exactly_what_the_writer_wrote() {
        for compression in BOTH {
            reading_finds_exactly_what_the_writer_wrote_in(compression);
        }
    }

    fn reading_finds_exactly_what_the_writer_wrote_in(compression: Compression) {
        let dir = tempfile::tempdir().unwrap();
        let (archive, written) = write_sample(dir.path(), compression);

        let read = read(&archive).unwrap();

        assert_eq!(
            read,
            ArchiveContents {
                sha256: written.sha256.clone(),
                size: written.size,
                file_count: written.file_count,
                entry_count: written.entry_count,
                bytes: written.bytes,
            }
        );
        // 5 folders (data, nested, deeper, empty, the long one), 5 files (config.yml among them), a symlink; the
        // FIFO is left out by the writer (a restore would refuse it).
        assert_eq!((read.entry_count, read.file_count), (11, 5));
        let on_disk = std::fs::read(&archive).unwrap();
        assert_eq!(
            read.sha256,
            hex::encode(Sha256::digest(&on_disk)),
            "the hash covers the whole file"
        );
        assert_eq!(read.size, on_disk.len() as u64);
        read.expect_sha256(&archive, &written.sha256).unwrap();
    }

    /// The tar stream in `bytes`, decompressed by the library alone (no checks of ours).
    fn decompressed(bytes: &[u8], format: Format) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let done = match format {
            Format::Gzip => GzDecoder::new(bytes).read_to_end(&mut out),
            Format::Zstd => zstd::stream::read::Decoder::new(bytes).and_then(|mut d| d.read_to_end(&mut out)),
        };
        done.ok().map(|_| out)
    }

    #[test]
    fn a_byte_flipped_anywhere_fails_verification() {
        for compression in BOTH {
            a_byte_flipped_anywhere_fails_verification_in(compression);
        }
    }

    fn a_byte_flipped_anywhere_fails_verification_in(compression: Compression) {
        let format = compression.format;
        let dir = tempfile::tempdir().unwrap();
        let (archive, written) = write_sample(dir.path(), compression);
        let original = std::fs::read(&archive).unwrap();
        let original_tar = decompressed(&original, format).unwrap();
        let damaged = dir.path().join(format!("damaged.{}", format.extension()));
        let mut caught_by_structure = 0;

        for offset in 0..original.len() {
            let mut bytes = original.clone();
            bytes[offset] ^= 0xff;
            std::fs::write(&damaged, &bytes).unwrap();

            match read(&damaged) {
                Err(ArchiveError::ArchiveCheck { path, reason }) => {
                    assert_eq!(path, damaged);
                    assert!(!reason.is_empty());
                    caught_by_structure += 1;
                }
                // gzip's CRC-32 and zstd's checksum cover the decompressed data: a flip that leaves it unchanged
                // (gzip: the header's MTIME, XFL and OS bytes, an unused code length in a deflate block header;
                // zstd: a larger window size in the frame header) passes the format's and tar's checks. The SHA-256
                // still differs, and the comparison with the catalog's record catches it.
                Ok(contents) => {
                    assert_eq!(
                        decompressed(&bytes, format).as_ref(),
                        Some(&original_tar),
                        "{compression} byte {offset}: content changed"
                    );
                    let err = contents.expect_sha256(&damaged, &written.sha256).unwrap_err();
                    assert!(err.to_string().contains("the catalog recorded"), "{err}");
                }
                Err(other) => panic!("{compression} byte {offset}: {other}"),
            }
        }
        assert!(
            caught_by_structure > original.len() * 9 / 10,
            "{compression}: {caught_by_structure} of {}",
            original.len()
        );
    }

    /// Flips the lowest bit of one byte of `original`, writes it to `damaged` and returns why reading fails.
    fn flipped(original: &[u8], damaged: &Path, offset: usize) -> String {
        let mut bytes = original.to_vec();
        bytes[offset] ^= 0x01;
        std::fs::write(damaged, &bytes).unwrap();
        reason(read(damaged))
    }

    #[test]
    fn flips_in_the_header_the_middle_and_the_trailer_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (archive, _) = write_sample(dir.path(), Compression::gzip(6));
        let original = std::fs::read(&archive).unwrap();
        let len = original.len();
        let damaged = dir.path().join("damaged.tar.gz");
        let flip = |offset: usize| flipped(&original, &damaged, offset);

        assert_eq!(flip(0), "not a gzip or zstd archive");
        assert_eq!(flip(2), "corrupt gzip header", "the compression method byte");
        assert!(flip(len / 2).starts_with("corrupt"), "{}", flip(len / 2));
        assert_eq!(
            flip(len - 8),
            "corrupt: the gzip CRC-32 or length does not match the data"
        );
        assert_eq!(
            flip(len - 1),
            "corrupt: the gzip CRC-32 or length does not match the data"
        );
    }

    #[test]
    fn flips_in_a_zstd_frame_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (archive, _) = write_sample(dir.path(), Compression::zstd(3));
        let original = std::fs::read(&archive).unwrap();
        let len = original.len();
        let damaged = dir.path().join("damaged.tar.zst");
        let flip = |offset: usize| flipped(&original, &damaged, offset);

        assert_eq!(flip(0), "not a gzip or zstd archive");
        assert_eq!(flip(3), "not a gzip or zstd archive");
        assert!(flip(len / 2).starts_with("corrupt"), "{}", flip(len / 2));
        // The frame ends with the low 32 bits of the content's XXH64.
        assert_eq!(flip(len - 1), "corrupt: the zstd checksum does not match the data");
        assert_eq!(flip(len - 4), "corrupt: the zstd checksum does not match the data");
    }

    #[test]
    fn flate2_really_checks_the_crc_in_the_trailer() {
        // A gzip stream whose CRC-32 alone is wrong: the data decompresses fine, only the trailer can tell.
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"payload").unwrap();
        let mut bytes = gz.finish().unwrap();
        let crc_at = bytes.len() - 8;
        bytes[crc_at] ^= 0x01;

        let mut out = Vec::new();
        let err = GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap_err();

        assert_eq!(out, b"payload", "the data itself came out whole");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn a_wrong_crc_fails_the_archive_check() {
        let dir = tempfile::tempdir().unwrap();
        let (archive, _) = write_sample(dir.path(), Compression::gzip(6));
        let mut bytes = std::fs::read(&archive).unwrap();
        let crc_at = bytes.len() - 8;
        let crc = u32::from_le_bytes(bytes[crc_at..crc_at + 4].try_into().unwrap());
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.wrapping_add(1).to_le_bytes());
        std::fs::write(&archive, &bytes).unwrap();

        let err = read(&archive).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "archive {} failed its check: corrupt: the gzip CRC-32 or length does not match the data",
                archive.display()
            )
        );
    }

    #[test]
    fn a_truncated_archive_fails_wherever_it_is_cut() {
        for compression in BOTH {
            let dir = tempfile::tempdir().unwrap();
            let (archive, _) = write_sample(dir.path(), compression);
            let original = std::fs::read(&archive).unwrap();
            let cut = dir.path().join("cut.tar");

            for keep in [
                0,
                1,
                3,
                4,
                10,
                11,
                original.len() / 3,
                original.len() / 2,
                original.len() - 9,
                original.len() - 4,
                original.len() - 1,
            ] {
                std::fs::write(&cut, &original[..keep]).unwrap();
                assert_eq!(
                    reason(read(&cut)),
                    "truncated: the file ends inside the compressed data",
                    "{compression} cut at {keep}"
                );
            }
        }
    }

    #[test]
    fn trailing_garbage_after_the_compressed_stream_fails() {
        for (compression, stream) in BOTH.into_iter().zip(["gzip stream", "zstd frame"]) {
            let dir = tempfile::tempdir().unwrap();
            let (archive, _) = write_sample(dir.path(), compression);
            let mut file = std::fs::OpenOptions::new().append(true).open(&archive).unwrap();
            file.write_all(b"junk").unwrap();

            assert_eq!(
                reason(read(&archive)),
                format!("4 bytes follow the end of the {stream}")
            );
        }
    }

    #[test]
    fn a_second_zstd_frame_after_the_first_fails() {
        // `zstd` itself would decode concatenated frames as one stream; an archive is exactly one frame.
        let dir = tempfile::tempdir().unwrap();
        let (archive, _) = write_sample(dir.path(), Compression::zstd(3));
        let extra = zstd::encode_all(&[0u8; 1024][..], 3).unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&archive).unwrap();
        file.write_all(&extra).unwrap();

        assert_eq!(
            reason(read(&archive)),
            format!("{} bytes follow the end of the zstd frame", extra.len())
        );
    }

    #[test]
    fn files_that_are_not_tar_gz_fail() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.tar.gz");
        std::fs::write(&empty, b"").unwrap();
        assert!(reason(read(&empty)).starts_with("truncated"));

        let text = dir.path().join("text.tar.gz");
        std::fs::write(&text, b"this is plain text, not gzip at all").unwrap();
        assert_eq!(reason(read(&text)), "not a gzip or zstd archive");

        // The name does not decide: a zstd file called .tar.gz is read as zstd, and the other way round.
        let (zstd, _) = write_sample(dir.path(), Compression::zstd(3));
        let misnamed = dir.path().join("really-zstd.tar.gz");
        std::fs::rename(&zstd, &misnamed).unwrap();
        assert!(read(&misnamed).is_ok());

        // Valid zstd around something that is not a tar stream.
        let not_tar_zst = dir.path().join("not-tar.tar.zst");
        std::fs::write(&not_tar_zst, zstd::encode_all(&[b'x'; 2048][..], 3).unwrap()).unwrap();
        assert!(reason(read(&not_tar_zst)).starts_with("corrupt tar data"));

        // Valid gzip around something that is not a tar stream.
        let not_tar = dir.path().join("not-tar.tar.gz");
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b'x'; 2048]).unwrap();
        std::fs::write(&not_tar, gz.finish().unwrap()).unwrap();
        assert!(reason(read(&not_tar)).starts_with("corrupt tar data"));

        // A tar stream cut before its end-of-archive marker, then gzipped whole.
        let no_end = dir.path().join("no-end.tar.gz");
        let mut header = Header::new_gnu();
        header.set_path("file").unwrap();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(b"abc");
        tar.resize(1024, 0);
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        // The header and its data block, and no zero block after them.
        gz.write_all(&tar).unwrap();
        std::fs::write(&no_end, gz.finish().unwrap()).unwrap();
        assert_eq!(reason(read(&no_end)), "the tar stream has no end-of-archive marker");
    }

    #[test]
    fn a_missing_archive_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("nope.tar.gz")).unwrap_err();
        assert!(matches!(err, ArchiveError::ReadSource { .. }), "{err}");
    }

    #[test]
    fn entries_that_leave_the_archive_fail_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("evil.tar.gz");
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..8].copy_from_slice(b"../x.txt");
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(EntryType::Regular);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.resize(512 * 3, 0);
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        std::fs::write(&archive, gz.finish().unwrap()).unwrap();

        assert_eq!(reason(read(&archive)), "entry `../x.txt` leaves its folder");
    }

    #[test]
    fn a_cancelled_read_stops_with_cancelled() {
        for compression in BOTH {
            let dir = tempfile::tempdir().unwrap();
            let (archive, _) = write_sample(dir.path(), compression);
            let cancel = CancellationToken::new();
            cancel.cancel();

            let err = read_archive(&archive, &cancel, &|_| {}).unwrap_err();

            assert!(matches!(err, ArchiveError::Cancelled), "{compression}: {err}");
        }
    }

    #[test]
    fn progress_reports_compressed_bytes_every_8_mib_and_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("big"), vec![7u8; 20 << 20]).unwrap();
        let archive = dir.path().join("big.tar.gz");
        // Level 0 stores the data: the archive is as big as its content, so progress has something to report.
        let written = write_archive(
            &[SourceRoot::new(&src, "src")],
            &archive,
            0,
            &CancellationToken::new(),
            &|_| {},
        )
        .unwrap();
        let calls = RefCell::new(Vec::new());

        read_archive(&archive, &CancellationToken::new(), &|n| calls.borrow_mut().push(n)).unwrap();

        let calls = calls.into_inner();
        assert_eq!(calls.last(), Some(&written.size), "the last report is the whole file");
        let periodic = &calls[..calls.len() - 1];
        assert_eq!(periodic.len(), 2, "20 MiB read: reports after 8 and 16 MiB, {calls:?}");
        assert!(
            periodic[0] >= PROGRESS_STEP && periodic[1] - periodic[0] >= PROGRESS_STEP,
            "{calls:?}"
        );
    }

    #[test]
    fn a_visitor_that_fails_on_the_first_entry_stops_the_pass_however_much_data_follows() {
        for compression in BOTH {
            let dir = tempfile::tempdir().unwrap();
            let src = dir.path().join("src");
            std::fs::create_dir(&src).unwrap();
            // Far more than the chunks that may wait between the two threads.
            std::fs::write(src.join("big"), vec![7u8; 64 << 20]).unwrap();
            let archive = dir.path().join("big.tar");
            write_archive(
                &[SourceRoot::new(&src, "src")],
                &archive,
                compression,
                &CancellationToken::new(),
                &|_| {},
            )
            .unwrap();

            let err = visit_archive(&archive, &CancellationToken::new(), &|_| {}, &mut |head, _| {
                Err(bad(&archive, format!("refused `{}`", head.display())))
            })
            .unwrap_err();

            assert_eq!(
                err.to_string(),
                bad(&archive, "refused `src`".into()).to_string(),
                "{compression}"
            );
        }
    }

    #[test]
    fn paths_are_split_and_checked() {
        assert_eq!(split_path(b"a/./b//c/").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(split_path(b"./").unwrap(), Vec::<&[u8]>::new());
        assert_eq!(
            split_path(b"/etc/passwd").unwrap_err(),
            "entry `/etc/passwd` has an absolute path"
        );
        assert_eq!(
            split_path(b"a/../../b").unwrap_err(),
            "entry `a/../../b` leaves its folder"
        );
        assert_eq!(
            split_path(b"a\0b").unwrap_err(),
            "entry `a\0b` has a NUL byte in its path"
        );
        assert_eq!(split_path(b"..a/b..").unwrap(), vec![&b"..a"[..], b"b.."]);
    }
}
