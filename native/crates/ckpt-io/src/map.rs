//! Read-only mappings with bounds-checked byte ranges.

use crate::error::{IoError, Result};
use crate::file::{Snapshot, changed_error, ensure_unchanged, open_regular};
use crate::sigbus;
use memmap2::{MmapMut, MmapOptions};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A file mapped copy-on-write: the file is never modified through it, and a
/// caller that writes into a range changes only this process's copy (so a
/// JavaScript view written by mistake cannot crash the process or corrupt the
/// checkpoint). Ranges are checked against the size the file had when mapped.
#[derive(Debug)]
pub struct MappedFile {
    // Declared before `map` so the guard is released before the pages are unmapped.
    guard: sigbus::Guard,
    map: Option<MmapMut>,
    file: File,
    before: Snapshot,
    path: PathBuf,
}

impl MappedFile {
    pub fn open(path: &Path) -> Result<Self> {
        let (file, before) = open_regular(path)?;
        let len = usize::try_from(before.len)
            .map_err(|_| IoError::InvalidArgument(format!("{} is too large to map", path.display())))?;
        // An empty file cannot be mapped; it has no bytes to hand out anyway.
        let map = if len == 0 {
            None
        } else {
            // No swap is reserved: pages are only copied if someone writes to them.
            Some(
                unsafe { MmapOptions::new().len(len).no_reserve_swap().map_copy(&file) }
                    .map_err(|e| IoError::from_io(path, "map", e))?,
            )
        };
        let guard = match &map {
            Some(m) => sigbus::protect(m.as_ptr(), m.len()),
            None => sigbus::protect(std::ptr::null(), 0),
        };
        Ok(MappedFile { guard, map, file, before, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.before.len
    }

    pub fn is_empty(&self) -> bool {
        self.before.len == 0
    }

    /// The whole mapping.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The bytes `[offset, offset + length)`, or `OutOfBounds`.
    pub fn range(&self, offset: u64, length: u64) -> Result<&[u8]> {
        let out_of_bounds = || IoError::OutOfBounds { path: self.path.clone(), offset, length, size: self.len() };
        let end = offset.checked_add(length).ok_or_else(out_of_bounds)?;
        if end > self.len() {
            return Err(out_of_bounds());
        }
        Ok(&self.bytes()[offset as usize..end as usize])
    }

    /// True once a read hit a page the file no longer has: those bytes read as zeros.
    pub fn truncated(&self) -> bool {
        self.guard.tripped()
    }

    /// Fails with `FileChanged` when the file was truncated, resized or modified since it was mapped.
    pub fn ensure_unchanged(&self) -> Result<()> {
        if self.truncated() {
            return Err(changed_error(&self.path, "it was truncated while mapped"));
        }
        ensure_unchanged(&self.path, &self.file, &self.before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ranges_are_bounds_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        std::fs::File::create(&path).unwrap().write_all(b"0123456789").unwrap();
        let m = MappedFile::open(&path).unwrap();
        assert_eq!(m.len(), 10);
        assert_eq!(m.range(2, 3).unwrap(), b"234");
        assert_eq!(m.range(10, 0).unwrap(), b"");
        assert_eq!(m.range(0, 10).unwrap(), b"0123456789");
        for (offset, length) in [(0, 11), (11, 0), (9, 2), (u64::MAX, 1), (1, u64::MAX)] {
            assert_eq!(m.range(offset, length).unwrap_err().code(), "CKPT_OUT_OF_BOUNDS", "{offset}+{length}");
        }
        m.ensure_unchanged().unwrap();
    }

    #[test]
    fn empty_files_map_to_no_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::File::create(&path).unwrap();
        let m = MappedFile::open(&path).unwrap();
        assert!(m.is_empty());
        assert_eq!(m.range(0, 0).unwrap(), b"");
        assert_eq!(m.range(0, 1).unwrap_err().code(), "CKPT_OUT_OF_BOUNDS");
    }

    #[test]
    fn changes_after_mapping_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        std::fs::File::create(&path).unwrap().write_all(&vec![9u8; 3 * 4096]).unwrap();
        let m = MappedFile::open(&path).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
        assert_eq!(m.range(2 * 4096, 8).unwrap(), &[0u8; 8], "a truncated page reads as zeros");
        assert!(m.truncated());
        assert_eq!(m.ensure_unchanged().unwrap_err().code(), "CKPT_FILE_CHANGED");
    }

    #[test]
    fn files_over_4_gib_map_and_read_at_high_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let size = (5u64 << 30) + 3;
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(size).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(b"far", (4u64 << 30) + 17).unwrap();
        let m = MappedFile::open(&path).unwrap();
        assert_eq!(m.len(), size);
        assert_eq!(m.range((4u64 << 30) + 17, 3).unwrap(), b"far");
        assert_eq!(m.range(size - 3, 3).unwrap(), &[0u8; 3]);
    }
}
