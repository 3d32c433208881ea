//! Packs: plain tar files into which the snapshot reads a tree's small files while the services are stopped, instead
//! of creating a copy of each; the archive writer appends their entries after the tree they came from.
//!
//! Dependencies go one way: `writer.rs` uses this module; this module uses only `header.rs` (the entry headers it
//! shares with the writer), `durable.rs` and `fault.rs`, never the writer.
//!
//! Creating a file is the costly part of copying a small one: on XFS the bench data set's 51,092 files under 64 KiB
//! took ~1.0 s to create and write anew (and longer to clone), and ~0.3 s to read into four packs (2026-11-26, a
//! throwaway C program over the data set on a loop-mounted XFS; `bench/RESULTS.md` has what it did to the downtime).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tar::{Archive, Builder};

use super::durable::create_private;
use super::fault::fault;
use super::header::entry_header;
use crate::ArchiveError;

/// Files smaller than this go into a pack; larger ones are cloned or copied as files.
pub const PACKED_BELOW: u64 = 64 * 1024;

/// The pack of one copying thread, created with its first file.
pub struct PackWriter {
    path: PathBuf,
    tar: Option<Builder<BufWriter<File>>>,
    /// The file being added.
    content: Vec<u8>,
}

impl PackWriter {
    /// A pack that will be written to `path` (which must not exist) if any file is added.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            tar: None,
            content: Vec::new(),
        }
    }

    /// Adds the file at `source`, of metadata `meta` (whose size must be below [`PACKED_BELOW`]), as `name`: its
    /// path relative to the tree it belongs to.
    pub fn add(&mut self, source: &Path, meta: &fs::Metadata, name: &Path) -> Result<(), ArchiveError> {
        let read_err = |e| ArchiveError::ReadSource {
            path: source.to_path_buf(),
            source: e,
        };
        self.content.clear();
        File::open(source)
            .and_then(|file| file.take(meta.len() + 1).read_to_end(&mut self.content))
            .map_err(read_err)?;
        if self.content.len() as u64 != meta.len() {
            return Err(ArchiveError::SourceChanged {
                path: source.to_path_buf(),
                expected: meta.len(),
            });
        }
        let write_err = |e| ArchiveError::Prepare {
            path: self.path.clone(),
            source: e,
        };
        let tar = match &mut self.tar {
            Some(tar) => tar,
            None => {
                let file = create_private(&self.path).map_err(write_err)?;
                self.tar.insert(Builder::new(BufWriter::with_capacity(1 << 20, file)))
            }
        };
        let mut header = entry_header(meta);
        tar.append_data(&mut header, name, self.content.as_slice())
            .map_err(write_err)
    }

    /// Ends the pack: its path, or `None` when no file was added (and nothing was written).
    pub fn finish(self) -> Result<Option<PathBuf>, ArchiveError> {
        let Some(tar) = self.tar else { return Ok(None) };
        let write_err = |e| ArchiveError::Prepare {
            path: self.path.clone(),
            source: e,
        };
        tar.into_inner()
            .and_then(|writer| writer.into_inner().map_err(|e| e.into_error()))
            .map_err(write_err)?;
        Ok(Some(self.path))
    }
}

/// Appends every entry of the pack at `pack` to `tar`, named under `under`, calling `each` with each file's size
/// first (which may stop the pass with an error).
pub(super) fn append_pack<W: Write>(
    tar: &mut Builder<W>,
    pack: &Path,
    under: &Path,
    mut each: impl FnMut(u64) -> io::Result<()>,
) -> io::Result<()> {
    let read_err = |source| {
        fault(ArchiveError::ReadSource {
            path: pack.to_path_buf(),
            source,
        })
    };
    let mut archive = Archive::new(File::open(pack).map_err(read_err)?);
    for entry in archive.entries().map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = under.join(entry.path().map_err(read_err)?);
        let mut header = entry.header().clone();
        each(header.size().map_err(read_err)?)?;
        tar.append_data(&mut header, name, PackEntry(entry, pack))?;
    }
    Ok(())
}

/// An entry's content, whose read errors name the pack.
struct PackEntry<'a, R: Read>(tar::Entry<'a, R>, &'a Path);

impl<R: Read> Read for PackEntry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|source| {
            fault(ArchiveError::ReadSource {
                path: self.1.to_path_buf(),
                source,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pack_holds_its_files_under_their_names_with_content_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let long = "a-name-longer-than-a-tar-header-holds-".repeat(4);
        for (name, content, mode) in [("small", &b"hello"[..], 0o640), (long.as_str(), &b""[..], 0o600)] {
            fs::write(dir.path().join(name), content).unwrap();
            fs::set_permissions(dir.path().join(name), fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut pack = PackWriter::new(dir.path().join("pack.tar"));
        for name in ["small", long.as_str()] {
            let path = dir.path().join(name);
            pack.add(
                &path,
                &fs::metadata(&path).unwrap(),
                Path::new("sub").join(name).as_path(),
            )
            .unwrap();
        }
        let path = pack.finish().unwrap().expect("files were added");

        let mut archive = Archive::new(File::open(path).unwrap());
        let found: Vec<(PathBuf, u32, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (
                    e.path().unwrap().into_owned(),
                    e.header().mode().unwrap() & 0o7777,
                    content,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (PathBuf::from("sub/small"), 0o640, b"hello".to_vec()),
                (Path::new("sub").join(&long), 0o600, Vec::new()),
            ]
        );
    }

    #[test]
    fn a_pack_without_files_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let pack = PackWriter::new(dir.path().join("pack.tar"));

        assert_eq!(pack.finish().unwrap(), None);
        assert!(!dir.path().join("pack.tar").exists());
    }

    #[test]
    fn a_file_that_changed_size_since_it_was_listed_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing");
        fs::write(&path, b"short").unwrap();
        let listed = fs::metadata(&path).unwrap();
        fs::write(&path, b"longer now").unwrap();
        let mut pack = PackWriter::new(dir.path().join("pack.tar"));

        let error = pack.add(&path, &listed, Path::new("growing")).unwrap_err();

        assert!(
            matches!(error, ArchiveError::SourceChanged { expected: 5, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("growing"), "{error}");
    }

    #[test]
    fn appending_a_pack_renames_its_entries_under_the_tree_and_counts_each_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        let mut pack = PackWriter::new(dir.path().join("pack.tar"));
        pack.add(&path, &fs::metadata(&path).unwrap(), Path::new("d/f"))
            .unwrap();
        pack.add(&path, &fs::metadata(&path).unwrap(), Path::new("g")).unwrap();
        let pack = pack.finish().unwrap().unwrap();

        let mut out = Builder::new(Vec::new());
        let mut sizes = Vec::new();
        append_pack(&mut out, &pack, Path::new("binds/data"), |size| {
            sizes.push(size);
            Ok(())
        })
        .unwrap();

        assert_eq!(sizes, [10, 10]);
        let bytes = out.into_inner().unwrap();
        let names: Vec<PathBuf> = Archive::new(bytes.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().into_owned())
            .collect();
        assert_eq!(names, [PathBuf::from("binds/data/d/f"), PathBuf::from("binds/data/g")]);
    }
}
