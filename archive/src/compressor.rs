//! The compressing stage shared by the archive writer and the size estimate: one standard gzip member
//! (`ParallelGzip`) or one zstd frame with its content checksum, compressed on a given number of threads.

use std::io::{self, Write};

use zstd::stream::raw::CParameter;

use super::{Compression, Format, ParallelGzip};

/// The input each zstd worker compresses at a time. zstd's default is four windows (8 MiB at level 3, 32 MiB at
/// 17–19) and it buffers about five jobs' input on 2 workers: 75 MiB peak RSS for a level-3 backup of 1 GiB here,
/// 49 MiB with 4 MiB jobs, for 0.01 % more archive (each job starts from the end of the one before, not from
/// nothing). The levels' own tables come on top: ~55 MiB at level 9, ~215 MiB at 19.
const ZSTD_JOB_SIZE: u32 = 4 << 20;

/// The compressing stage: one standard gzip member or one zstd frame, compressed on `threads` threads.
pub(super) enum Compressor<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// Compresses into `inner` as `compression` says, on `threads` threads (1: on the calling thread for zstd, on one
    /// worker for gzip).
    pub(super) fn new(inner: W, compression: Compression, threads: usize) -> io::Result<Self> {
        match compression.format {
            Format::Gzip => ParallelGzip::new(inner, compression.level, threads).map(Compressor::Gzip),
            Format::Zstd => {
                // 22 is zstd's highest level; it clamps higher ones itself, this keeps `as` from wrapping.
                let level = compression.level.min(22) as i32;
                let mut zstd = zstd::stream::write::Encoder::new(inner, level)?;
                zstd.include_checksum(true)?;
                if threads > 1 {
                    zstd.multithread(threads as u32)?;
                    zstd.set_parameter(CParameter::JobSize(ZSTD_JOB_SIZE))?;
                }
                Ok(Compressor::Zstd(zstd))
            }
        }
    }

    /// Ends the member or frame and hands back the writer underneath.
    pub(super) fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(gzip) => gzip.finish(),
            Compressor::Zstd(zstd) => zstd.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(gzip) => gzip.write(buf),
            Compressor::Zstd(zstd) => zstd.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(gzip) => gzip.flush(),
            Compressor::Zstd(zstd) => zstd.flush(),
        }
    }
}
