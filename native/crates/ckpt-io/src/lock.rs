//! Advisory whole-file locks (`flock`) between processes.
//!
//! The kernel releases the lock when the holder exits for any reason,
//! SIGKILL included, so a crashed writer never leaves a stale lock behind
//! and nobody has to guess from timestamps whether a lock is abandoned.

use crate::error::IoError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes the exclusive lock on `path` (created if missing) if nobody holds
/// it, or returns `None` at once when another process (or handle) does.
pub fn try_lock_file(path: &Path) -> Result<Option<FileLock>, IoError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| IoError::from_io(path, "open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(FileLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(IoError::from_io(path, "lock", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_waits_for_the_first_to_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = try_lock_file(&path).unwrap().expect("free lock");
        assert!(try_lock_file(&path).unwrap().is_none());
        drop(first);
        assert!(try_lock_file(&path).unwrap().is_some());
    }

    #[test]
    fn missing_folder_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = try_lock_file(&dir.path().join("no/such/x.lock")).unwrap_err();
        assert_eq!(err.code(), "CKPT_NOT_FOUND");
    }
}
