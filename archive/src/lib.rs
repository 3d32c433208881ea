//! hookrun's archives: what goes in (sources), how it is named and placed durably, how it is compressed (gzip or
//! zstd), the streaming writer, the reader and safe extraction, the packs of small files, and the tree copier that
//! snapshots take. Nothing here knows about hooks, the catalog or Docker; every failure is an [`ArchiveError`].

mod compression;
mod compressor;
mod deflate_continue;
mod durable;
mod error;
pub mod escape;
mod estimate;
mod extract;
mod fault;
mod header;
mod naming;
mod pack;
mod parallel_gzip;
pub mod pre_copy;
mod reader;
mod sink;
pub mod size;
mod sources;
mod space;
mod storage;
pub mod tree_copy;
mod walk;
mod writeback;
mod writer;

pub use compression::{Compression, Format};
pub use durable::{create_private, create_private_dir, fsync_dir, remove_any};
pub use error::ArchiveError;
pub use estimate::{estimate, Estimate};
pub use extract::{check_extraction, extract, extract_reporting, ExtractPlan, ExtractSummary};
pub use naming::{archive_file_name, is_archive_name};
pub use pack::{PackWriter, PACKED_BELOW};
pub use parallel_gzip::{ParallelGzip, BLOCK_SIZE};
pub use reader::{read_archive, ArchiveContents};
pub use sources::{measure, overlapping, resolve_sources, SourceRoot, SourceStats};
pub use space::{check_free_space, free_space};
pub use storage::{LocalDir, Storage, StoredArchive};
pub use writer::{temporary_path, write_archive, ArchiveSummary};
