//! Opening files for reading and noticing when they change underneath us.

use crate::error::{IoError, Result};
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What we remember of a file when we start reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Snapshot {
    fn of(meta: &Metadata) -> Self {
        Snapshot { len: meta.len(), mtime: (meta.mtime(), meta.mtime_nsec()), ctime: (meta.ctime(), meta.ctime_nsec()) }
    }
}

/// Opens `path` for reading, refusing directories and special files.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Snapshot)> {
    let file = File::open(path).map_err(|e| IoError::from_io(path, "open", e))?;
    let meta = file.metadata().map_err(|e| IoError::from_io(path, "stat", e))?;
    if meta.is_dir() {
        return Err(IoError::IsDirectory { path: path.to_path_buf() });
    }
    if !meta.is_file() {
        return Err(IoError::NotRegularFile { path: path.to_path_buf() });
    }
    Ok((file, Snapshot::of(&meta)))
}

/// Fails with `FileChanged` when the open file's size or times moved since `before`.
/// A file replaced by rename is not a change: our descriptor still reads the old one.
pub(crate) fn ensure_unchanged(path: &Path, file: &File, before: &Snapshot) -> Result<()> {
    let meta = file.metadata().map_err(|e| IoError::from_io(path, "stat", e))?;
    let now = Snapshot::of(&meta);
    if now == *before {
        return Ok(());
    }
    let detail = if now.len != before.len {
        format!("size went from {} to {} bytes", before.len, now.len)
    } else {
        "it was modified in place".to_string()
    };
    Err(IoError::FileChanged { path: path.to_path_buf(), detail })
}

pub(crate) fn changed_error(path: &Path, detail: &str) -> IoError {
    IoError::FileChanged { path: path.to_path_buf(), detail: detail.to_string() }
}
