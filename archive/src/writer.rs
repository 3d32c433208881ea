//! The streaming archive writer: sources → tar → gzip or zstd → SHA-256 → temporary file, in one pass, then checked.
//!
//! Dependencies go one way: the writer uses `pack.rs` (to append packs), `walk.rs` (the sources) and `header.rs`
//! (entry headers); none of them uses the writer.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tar::{Builder, HeaderMode};
use tokio_util::sync::CancellationToken;

use super::compressor::Compressor;
use super::durable::create_private;
use super::fault::{carried, fault};
use super::header::append_entry;
use super::pack::append_pack;
use super::sink::{HashingSink, Written};
use super::walk::{walk, Kind};
use super::writeback::WritebackFile;
use super::{Compression, Format, SourceRoot};
use crate::ArchiveError;

/// What one pass over the sources produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// SHA-256 of the archive file, lowercase hex.
    pub sha256: String,
    /// Size of the archive file.
    pub size: u64,
    /// Regular files archived.
    pub file_count: u64,
    /// Entries of every kind archived.
    pub entry_count: u64,
    /// Bytes of file content archived.
    pub bytes: u64,
}

/// Writes `roots` as a tar stream compressed as `compression` says (a bare level is gzip) to `tmp` (which must not
/// exist), fsyncs it and reads back what can be checked cheaply: its length, and the gzip trailer or the zstd magic.
/// Reports source bytes read to `progress`. On any error, or when `cancel` fires, `tmp` is removed.
pub fn write_archive(
    roots: &[SourceRoot],
    tmp: &Path,
    compression: impl Into<Compression>,
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<ArchiveSummary, ArchiveError> {
    let result = write_and_check(roots, tmp, compression.into(), cancel, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

fn write_and_check(
    roots: &[SourceRoot],
    tmp: &Path,
    compression: Compression,
    cancel: &CancellationToken,
    progress: &dyn Fn(u64),
) -> Result<ArchiveSummary, ArchiveError> {
    let write_err = |source| ArchiveError::WriteArchive {
        path: tmp.to_path_buf(),
        source,
    };
    let file = create_private(tmp).map_err(write_err)?;
    // Hashed and written on a thread of its own, as far behind as the memory budget allows: peak RSS stays under
    // 64 MiB with 16 MiB queued behind gzip, 4 MiB behind zstd (whose own buffers take ~45 MiB on 2 threads at
    // level 3, ~55 MiB at level 6).
    let queued = match compression.format {
        Format::Gzip => 16,
        Format::Zstd => 4,
    };
    let sink = HashingSink::new(WritebackFile::new(file), queued).map_err(write_err)?;
    // One standard gzip member or zstd frame, compressed on every core the process may use.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let compressor = Compressor::new(sink, compression, threads).map_err(write_err)?;
    // The CRC-32 and length of the tar stream are what the gzip trailer must hold (zstd checks its own).
    let mut tar = Builder::new(CrcWriter::new(compressor, compression.format == Format::Gzip));
    tar.mode(HeaderMode::Complete);
    tar.follow_symlinks(false);

    let tally = Tally {
        cancel,
        progress,
        read: Cell::new(0),
        reported: Cell::new(0),
    };
    let mut counts = ArchiveSummary {
        sha256: String::new(),
        size: 0,
        file_count: 0,
        entry_count: 0,
        bytes: 0,
    };
    for root in roots {
        append_tree(&mut tar, root, &tally, &mut counts).map_err(|e| classify(e, tmp))?;
    }
    tar.finish().map_err(write_err)?;
    let crc_writer = tar.into_inner().map_err(write_err)?;
    let (crc, isize) = crc_writer.sum();
    let sink = crc_writer.inner.finish().map_err(write_err)?;
    let Written {
        inner: file,
        sha256: digest,
        size,
    } = sink.finish().map_err(write_err)?;
    let file = file.into_file();
    file.sync_all().map_err(write_err)?;
    drop(file);
    match compression.format {
        Format::Gzip => check_gzip_trailer(tmp, size, crc, isize)?,
        Format::Zstd => check_zstd_start(tmp, size)?,
    }
    progress(tally.read.get());

    counts.sha256 = hex::encode(digest);
    counts.size = size;
    Ok(counts)
}

/// Shared state of one pass: cancellation and progress over all files.
struct Tally<'a> {
    cancel: &'a CancellationToken,
    progress: &'a dyn Fn(u64),
    read: Cell<u64>,
    reported: Cell<u64>,
}

const PROGRESS_STEP: u64 = 8 << 20;

impl Tally<'_> {
    /// Counts `bytes` more source bytes read, reporting progress every [`PROGRESS_STEP`].
    fn add(&self, bytes: u64) {
        let read = self.read.get() + bytes;
        self.read.set(read);
        if read - self.reported.get() >= PROGRESS_STEP {
            self.reported.set(read);
            (self.progress)(read);
        }
    }
}

fn append_tree<W: Write>(
    tar: &mut Builder<W>,
    root: &SourceRoot,
    tally: &Tally<'_>,
    counts: &mut ArchiveSummary,
) -> io::Result<()> {
    let warn = |path: &Path| tracing::warn!(path = %path.display(), "skipping a socket, FIFO or device node");
    for entry in walk(std::slice::from_ref(root)).on_skip(&warn) {
        if tally.cancel.is_cancelled() {
            return Err(fault(ArchiveError::Cancelled));
        }
        let entry = entry.map_err(fault)?;
        if entry.kind == Kind::File {
            let path = entry.path.as_path();
            let file = File::open(path).map_err(|source| {
                fault(ArchiveError::ReadSource {
                    path: path.to_path_buf(),
                    source,
                })
            })?;
            let reader = SourceReader {
                file,
                path,
                expected: entry.meta.len(),
                remaining: entry.meta.len(),
                tally,
            };
            append_entry(tar, &entry, reader)?;
            counts.file_count += 1;
            counts.bytes += entry.meta.len();
        } else {
            append_entry(tar, &entry, io::empty())?;
        }
        counts.entry_count += 1;
    }
    for pack in &root.packs {
        append_pack(tar, pack, &root.archive_path, |size| {
            if tally.cancel.is_cancelled() {
                return Err(fault(ArchiveError::Cancelled));
            }
            counts.file_count += 1;
            counts.entry_count += 1;
            counts.bytes += size;
            tally.add(size);
            Ok(())
        })?;
    }
    Ok(())
}

/// Reads exactly the size the header promised; a file that shrinks or grows meanwhile is an error, not a corrupt
/// archive. Checks cancellation and reports progress as it goes.
struct SourceReader<'a> {
    file: File,
    path: &'a Path,
    expected: u64,
    remaining: u64,
    tally: &'a Tally<'a>,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tally.cancel.is_cancelled() {
            return Err(fault(ArchiveError::Cancelled));
        }
        let changed = || {
            fault(ArchiveError::SourceChanged {
                path: self.path.to_path_buf(),
                expected: self.expected,
            })
        };
        let read_err = |source| {
            fault(ArchiveError::ReadSource {
                path: self.path.to_path_buf(),
                source,
            })
        };
        if self.remaining == 0 {
            return match self.file.read(&mut [0u8; 1]).map_err(read_err)? {
                0 => Ok(0),
                _ => Err(changed()),
            };
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want]).map_err(read_err)?;
        if n == 0 {
            return Err(changed());
        }
        self.remaining -= n as u64;
        self.tally.add(n as u64);
        Ok(n)
    }
}

/// Turns an error from the tar builder back into what happened: a source fault, or a failed write of the archive.
fn classify(error: io::Error, tmp: &Path) -> ArchiveError {
    let error = match carried(error) {
        Ok(hook_error) => return hook_error,
        Err(error) => error,
    };
    ArchiveError::WriteArchive {
        path: tmp.to_path_buf(),
        source: error,
    }
}

/// Reads the file back: it starts with the gzip magic, its length is what was written, and its trailer holds the
/// CRC-32 and length of the tar stream that went in.
fn check_gzip_trailer(path: &Path, size: u64, crc: u32, isize: u32) -> Result<(), ArchiveError> {
    let bad = |reason: String| ArchiveError::ArchiveCheck {
        path: path.to_path_buf(),
        reason,
    };
    let read_err = |source| ArchiveError::WriteArchive {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let on_disk = file.metadata().map_err(read_err)?.len();
    if on_disk != size || size < 18 {
        return Err(bad(format!("{on_disk} bytes on disk, {size} written")));
    }
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).map_err(read_err)?;
    let mut trailer = [0u8; 8];
    file.seek(SeekFrom::End(-8)).map_err(read_err)?;
    file.read_exact(&mut trailer).map_err(read_err)?;
    let found_crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let found_len = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    if magic != [0x1f, 0x8b] || found_crc != crc || found_len != isize {
        return Err(bad(format!(
            "gzip trailer says crc {found_crc:08x} length {found_len}, wrote crc {crc:08x} length {isize}"
        )));
    }
    Ok(())
}

/// Reads the file back: its length is what was written and it starts with the zstd magic. (zstd's own checksum
/// is of the content, within the frame: only a full read, `read_archive`, checks it.)
fn check_zstd_start(path: &Path, size: u64) -> Result<(), ArchiveError> {
    let read_err = |source| ArchiveError::WriteArchive {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let on_disk = file.metadata().map_err(read_err)?.len();
    let magic = Format::Zstd.magic();
    let mut head = vec![0u8; magic.len()];
    if on_disk != size || size < head.len() as u64 {
        return Err(ArchiveError::ArchiveCheck {
            path: path.to_path_buf(),
            reason: format!("{on_disk} bytes on disk, {size} written"),
        });
    }
    file.read_exact(&mut head).map_err(read_err)?;
    if head != magic {
        return Err(ArchiveError::ArchiveCheck {
            path: path.to_path_buf(),
            reason: format!("starts with {}, not the zstd magic 28b52ffd", hex::encode(&head)),
        });
    }
    Ok(())
}

/// Passes bytes through, computing the CRC-32 (and length mod 2³²) of what passes when asked to.
struct CrcWriter<W> {
    inner: W,
    crc: Option<crc32fast::Hasher>,
    len: u64,
}

impl<W: Write> CrcWriter<W> {
    fn new(inner: W, compute: bool) -> Self {
        Self {
            inner,
            crc: compute.then(crc32fast::Hasher::new),
            len: 0,
        }
    }

    /// The CRC-32 and the length mod 2³² (0, 0 when not computed), as a gzip trailer holds them.
    fn sum(&self) -> (u32, u32) {
        self.crc
            .as_ref()
            .map_or((0, 0), |crc| (crc.clone().finalize(), self.len as u32))
    }
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(crc) = &mut self.crc {
            crc.update(&buf[..n]);
            self.len += n as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The path the archive of run `run_id` is written to before it is complete: `.backup-run{id}.tar.gz.partial` or
/// `.tar.zst.partial`.
pub fn temporary_path(storage_dir: &Path, run_id: i64, format: Format) -> PathBuf {
    storage_dir.join(format!(".backup-run{run_id}.{}.partial", format.extension()))
}
