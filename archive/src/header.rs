//! Tar headers of archived entries, built one way for everyone who writes or counts them: the writer, the packs and
//! the size estimate (which counts them by building them, never by hand). `writer.rs`, `pack.rs` and `estimate.rs`
//! depend on this module; it depends on none of them (only on `walk.rs` for the entry kinds).

use std::io::{self, Read, Write};

use tar::{Builder, Header, HeaderMode};

use super::walk::{Entry, Kind};

/// Size of a tar block: headers and padded content are made of them.
pub(crate) const BLOCK: u64 = 512;

/// The header of an entry for a file, folder or symlink of metadata `meta` (its size and name still to set): GNU
/// format, with its mode, owner and mtime.
pub(crate) fn entry_header(meta: &std::fs::Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    header
}

/// Appends `entry` to `tar` as the writer archives it: its header(s) (a GNU long-name entry first when its name or
/// link target needs one), then, for a file, `content` (which must hold the file's length) and its padding.
pub(crate) fn append_entry<W: Write>(tar: &mut Builder<W>, entry: &Entry, content: impl Read) -> io::Result<()> {
    let mut header = entry_header(&entry.meta);
    match &entry.kind {
        Kind::File => tar.append_data(&mut header, &entry.name, content),
        Kind::Symlink(target) => {
            header.set_size(0);
            tar.append_link(&mut header, &entry.name, target)
        }
        Kind::Dir => {
            header.set_size(0);
            tar.append_data(&mut header, &entry.name, io::empty())
        }
    }
}

/// Appends only the header(s) [`append_entry`] writes for `entry`, without its content or padding: what it costs
/// in the tar stream beyond [`padded`] content.
pub(crate) fn append_headers<W: Write>(tar: &mut Builder<W>, entry: &Entry) -> io::Result<()> {
    append_entry(tar, entry, io::empty())
}

/// `len` bytes of content as the tar stream holds them: padded to whole blocks.
pub(crate) fn padded(len: u64) -> u64 {
    len.next_multiple_of(BLOCK)
}
