//! The end of the archive pipeline: a thread that hashes the compressed bytes (SHA-256) and writes them to the
//! archive file, so that neither holds up the thread that reads the sources and feeds the compressor.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use ring::digest::{Context, SHA256};

/// Bytes handed to the thread at a time.
pub(super) const BUFFER_SIZE: usize = 1 << 20;

/// What the thread wrote.
pub(super) struct Written<W> {
    pub inner: W,
    pub sha256: [u8; 32],
    pub size: u64,
}

/// Hashes and writes everything written to it into `W` on a thread of its own, up to `in_flight` buffers of
/// [`BUFFER_SIZE`] behind: memory stays bounded however far the hashing or the disk falls behind, and a deeper
/// queue lets the (sequential) hash of a stretch of stored, incompressible data overlap with the compression of
/// what follows it. [`HashingSink::finish`] waits for the thread and returns the writer (flushed), the SHA-256
/// and the size. An error of the thread (a full disk) is returned by the next `write` or by `finish`.
pub(super) struct HashingSink<W: Write + Send + 'static> {
    buffer: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    /// Buffers the thread is done with, for reuse.
    empty: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<Written<W>>>>,
}

impl<W: Write + Send + 'static> HashingSink<W> {
    pub(super) fn new(inner: W, in_flight: usize) -> io::Result<Self> {
        let (full, to_write) = mpsc::sync_channel::<Vec<u8>>(in_flight);
        let (done, empty) = mpsc::sync_channel::<Vec<u8>>(in_flight + 2);
        let thread = std::thread::Builder::new()
            .name("archive-sink".into())
            .spawn(move || hash_and_write(inner, &to_write, &done))?;
        Ok(Self {
            buffer: Vec::with_capacity(BUFFER_SIZE),
            full: Some(full),
            empty,
            thread: Some(thread),
        })
    }

    /// Hands the buffer to the thread.
    fn send(&mut self) -> io::Result<()> {
        let fresh = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER_SIZE));
        let full = std::mem::replace(&mut self.buffer, fresh);
        let sent = match &self.full {
            Some(sender) => sender.send(full).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.join().err().unwrap_or_else(stopped))
        }
    }

    /// Hands over what is buffered, waits for the thread and returns what it wrote.
    pub(super) fn finish(mut self) -> io::Result<Written<W>> {
        if !self.buffer.is_empty() {
            self.send()?;
        }
        self.join()
    }

    fn join(&mut self) -> io::Result<Written<W>> {
        self.full = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the archive writing thread panicked")),
            None => Err(stopped()),
        }
    }
}

/// The thread: hashes and writes each buffer, hands it back, and flushes at the end.
fn hash_and_write<W: Write>(
    mut inner: W,
    to_write: &Receiver<Vec<u8>>,
    done: &SyncSender<Vec<u8>>,
) -> io::Result<Written<W>> {
    let mut sha256 = Context::new(&SHA256);
    let mut size = 0u64;
    for mut buffer in to_write {
        sha256.update(&buffer);
        inner.write_all(&buffer)?;
        size += buffer.len() as u64;
        buffer.clear();
        // The writer may have enough spares already; then this one is dropped.
        let _ = done.try_send(buffer);
    }
    inner.flush()?;
    let digest = sha256.finish();
    Ok(Written {
        inner,
        sha256: digest.as_ref().try_into().expect("SHA-256 is 32 bytes"),
        size,
    })
}

fn stopped() -> io::Error {
    io::Error::other("the archive writing thread stopped after an error")
}

impl<W: Write + Send + 'static> Write for HashingSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.thread.is_none() {
            return Err(stopped());
        }
        let n = (BUFFER_SIZE - self.buffer.len()).min(buf.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == BUFFER_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    /// Hands what is buffered to the thread; only [`HashingSink::finish`] waits until it is written.
    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl<W: Write + Send + 'static> Drop for HashingSink<W> {
    /// Stops the thread (after what it was handed) without waiting for a result nobody asked for.
    fn drop(&mut self) {
        self.full = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    #[test]
    fn what_reaches_the_writer_is_what_was_written_and_its_hash_is_sha256() {
        let data: Vec<u8> = (0..(3 * BUFFER_SIZE + 4321)).map(|i| (i * 7 % 253) as u8).collect();
        let mut sink = HashingSink::new(Vec::new(), 4).unwrap();
        for piece in data.chunks(100_003) {
            sink.write_all(piece).unwrap();
        }
        let written = sink.finish().unwrap();
        assert_eq!(written.size, data.len() as u64);
        assert_eq!(written.sha256.as_slice(), sha2::Sha256::digest(&data).as_slice());
        assert!(written.inner == data, "the bytes arrived in order, whole");
    }

    /// A writer that accepts `room` bytes, then fails as a full disk does.
    struct FullDisk {
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_of_the_thread_is_returned_to_the_writer_as_it_was() {
        let mut sink = HashingSink::new(FullDisk { room: BUFFER_SIZE + 10 }, 4).unwrap();
        let piece = vec![1u8; 4096];
        let error = loop {
            if let Err(e) = sink.write_all(&piece) {
                break e;
            }
        };
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
        assert!(sink.write_all(&piece).is_err(), "later writes fail too");
    }

    #[test]
    fn an_error_in_the_last_buffer_is_returned_by_finish() {
        let mut sink = HashingSink::new(FullDisk { room: 10 }, 4).unwrap();
        sink.write_all(&[0u8; 100]).unwrap();
        let error = sink.finish().err().expect("the thread could not write it");
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    }
}
