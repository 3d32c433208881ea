//! An archive error carried through the `io::Error`s that the tar and gzip layers pass on, and taken back out again,
//! so that a source that cannot be read or a cancellation is reported as itself, not as a broken archive.

use std::io;

use crate::ArchiveError;

/// The carrier.
#[derive(Debug)]
struct Fault(ArchiveError);

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Fault {}

/// Wraps `error` to travel as an `io::Error`.
pub(super) fn fault(error: ArchiveError) -> io::Error {
    io::Error::other(Fault(error))
}

/// The archive error `error` carries, or `error` itself when it carries none.
pub(super) fn carried(error: io::Error) -> Result<ArchiveError, io::Error> {
    if !error.get_ref().is_some_and(|inner| inner.is::<Fault>()) {
        return Err(error);
    }
    let inner = error.into_inner().expect("checked above");
    Ok(inner.downcast::<Fault>().map(|f| f.0).expect("checked above"))
}
