//! Starting the kernel's writeback early, so that the fsync that makes an archive (or a restored tree) durable
//! finds little left to write: the disk works while the CPU compresses or decompresses, instead of after.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// How much is written between two writeback requests.
const STEP: u64 = 8 << 20;

/// Asks the kernel to start writing `len` bytes of `file` from `offset` (0 = to its end) to disk, without waiting
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`). Only a hint: an error here is ignored, the fsync that follows
/// reports what matters.
pub fn start_writeback(file: &impl AsRawFd, offset: u64, len: u64) {
    // SAFETY: sync_file_range reads no memory of ours; the descriptor is open for as long as `file` is borrowed.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// A file being written front to back, whose writeback is started every `STEP` bytes.
pub struct WritebackFile {
    file: File,
    written: u64,
    started: u64,
}

impl WritebackFile {
    pub fn new(file: File) -> Self {
        Self {
            file,
            written: 0,
            started: 0,
        }
    }

    /// The file, for the fsync.
    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= STEP {
            start_writeback(&self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_through_it_is_the_file_whatever_the_write_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(3 * STEP as usize + 12345)).map(|i| (i % 251) as u8).collect();
        let mut file = WritebackFile::new(File::create(&path).unwrap());
        for piece in data.chunks(777_777) {
            file.write_all(piece).unwrap();
        }
        assert!(
            file.started >= 2 * STEP && file.written - file.started < STEP,
            "writeback was asked for as the file grew: up to {} of {}",
            file.started,
            file.written
        );
        file.into_file().sync_all().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
