//! One pass over a folder: every entry's name, kind and size, as flat arrays.
//!
//! The checkpoint manager checks every record's file when it opens an
//! experiment; with tens of thousands of records, a `stat` per file from
//! JavaScript costs several times the system calls themselves. Here each
//! entry costs one `fstatat` relative to the open folder (the standard
//! library's `DirEntry::metadata`, which does not follow links), and the work
//! runs on a worker thread while JavaScript reads the index.

use crate::error::{IoError, Result};
use std::path::Path;

/// What an entry is. Links are reported as links, never followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EntryKind {
    File = 0,
    Folder = 1,
    Link = 2,
    /// A socket, pipe or device; or an entry that vanished between listing and `stat`.
    Other = 3,
}

/// The entries of one folder. Entry `i`'s name is `names[ends[i-1]..ends[i]]`,
/// with the ends counted in UTF-16 units so JavaScript can slice its string.
#[derive(Debug, Default)]
pub struct FolderTable {
    pub names: String,
    pub name_ends: Vec<u32>,
    pub kinds: Vec<u8>,
    /// Sizes in bytes (0 for anything but a file).
    pub sizes: Vec<f64>,
    /// Names that are not UTF-8 (never written by ckpt): counted, not listed.
    pub skipped: u32,
}

/// Lists `folder` (not its subfolders) with each entry's kind and size.
pub fn scan(folder: &Path) -> Result<FolderTable> {
    let entries = std::fs::read_dir(folder).map_err(|e| IoError::from_io(folder, "read folder", e))?;
    let mut table = FolderTable::default();
    let mut utf16_length = 0usize;
    for entry in entries {
        let entry = entry.map_err(|e| IoError::from_io(folder, "read folder", e))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            table.skipped += 1;
            continue;
        };
        let (kind, size) = match entry.metadata() {
            Ok(meta) if meta.file_type().is_symlink() => (EntryKind::Link, 0),
            Ok(meta) if meta.is_file() => (EntryKind::File, meta.len()),
            Ok(meta) if meta.is_dir() => (EntryKind::Folder, 0),
            _ => (EntryKind::Other, 0),
        };
        utf16_length += if name.is_ascii() { name.len() } else { name.encode_utf16().count() };
        let end = u32::try_from(utf16_length).map_err(|_| {
            IoError::InvalidArgument(format!(
                "{} holds more names than one scan can return (over 4 G characters)",
                folder.display()
            ))
        })?;
        table.names.push_str(name);
        table.name_ends.push(end);
        table.kinds.push(kind as u8);
        table.sizes.push(size as f64);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn entries(table: &FolderTable) -> Vec<(String, u8, f64)> {
        let units: Vec<u16> = table.names.encode_utf16().collect();
        let mut start = 0usize;
        let mut out: Vec<(String, u8, f64)> = table
            .name_ends
            .iter()
            .enumerate()
            .map(|(i, &end)| {
                let name = String::from_utf16(&units[start..end as usize]).unwrap();
                start = end as usize;
                (name, table.kinds[i], table.sizes[i])
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn lists_files_folders_and_links_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.safetensors"), b"12345").unwrap();
        fs::write(dir.path().join("é-model.bin"), b"xy").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub").join("deep.bin"), b"not listed").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.bin")).unwrap();
        let table = scan(dir.path()).unwrap();
        assert_eq!(
            entries(&table),
            vec![
                ("a.safetensors".into(), EntryKind::File as u8, 5.0),
                ("link.bin".into(), EntryKind::Link as u8, 0.0),
                ("sub".into(), EntryKind::Folder as u8, 0.0),
                ("é-model.bin".into(), EntryKind::File as u8, 2.0),
            ]
        );
        assert_eq!(table.skipped, 0);
    }

    #[test]
    fn names_that_are_not_utf8_are_counted_not_listed() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad-\xff.bin")), b"x").unwrap();
        fs::write(dir.path().join("good.bin"), b"x").unwrap();
        let table = scan(dir.path()).unwrap();
        assert_eq!(entries(&table).len(), 1);
        assert_eq!(table.skipped, 1);
    }

    #[test]
    fn a_missing_folder_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let error = scan(&dir.path().join("gone")).unwrap_err();
        assert_eq!(error.code(), "CKPT_NOT_FOUND");
    }
}
