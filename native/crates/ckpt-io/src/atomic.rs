//! Atomic, hashed writes: temporary in the target folder, flush, rename, flush the folder.
//!
//! Readers never see a partial file under the final name, and a failure at any
//! point removes the temporary and leaves an existing file at the target untouched.

use crate::error::{IoError, Result};
use crate::hash::{Digest, Sha256, populate};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Every temporary ends with this, so a crashed writer's leftovers can be found and removed.
pub const TEMP_SUFFIX: &str = ".ckpt-tmp";
/// Large chunks are written and reported in slices of this size.
const SLICE: usize = 16 << 20;
/// Below this, hashing inline is cheaper than starting a thread (about 50 µs).
const PARALLEL_HASH_MIN: u64 = 1 << 20;
/// With fsync, the kernel is asked to start writing back every this many bytes,
/// so the disk works while later bytes are copied and the final flush waits
/// only for the tail.
const WRITEBACK_STEP: u64 = 64 << 20;

/// The digest and size of what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    pub sha256: Digest,
    pub size: u64,
}

/// A file being written under a temporary name; `commit` publishes it, dropping it discards it.
pub struct AtomicFile {
    target: PathBuf,
    temp: NamedTempFile,
    size: u64,
    /// Bytes already flushed to the device by `flush`: `commit` does not flush them again.
    flushed: u64,
    /// Bytes already handed to the kernel's writeback by `start_writeback`.
    writeback_started: u64,
}

impl AtomicFile {
    /// Creates `.<name>.<random>.ckpt-tmp` beside `target`.
    pub fn create(target: &Path) -> Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| IoError::InvalidArgument(format!("{} does not name a file", target.display())))?;
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if target.is_dir() {
            return Err(IoError::IsDirectory { path: target.to_path_buf() });
        }
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(TEMP_SUFFIX)
            .permissions(std::fs::Permissions::from_mode(0o666)) // narrowed by the umask, as for any new file
            .tempfile_in(folder)
            .map_err(|e| IoError::from_io(folder, "create a temporary file in", e))?;
        Ok(AtomicFile { target: target.to_path_buf(), temp, size: 0, flushed: 0, writeback_started: 0 })
    }

    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.temp.as_file_mut().write_all(bytes).map_err(|e| IoError::from_io(&self.target, "write", e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Reserves `size` bytes on the device up front: a full disk fails here, before
    /// anything is copied, and the file system can lay the file out in one piece.
    /// File systems without `fallocate` just skip it.
    pub fn reserve(&mut self, size: u64) -> Result<()> {
        #[cfg(target_os = "linux")]
        {
            let Ok(length) = libc::off_t::try_from(size) else { return Ok(()) };
            if length == 0 {
                return Ok(());
            }
            // KEEP_SIZE: the blocks are reserved, the size still grows only as bytes are written.
            let fd = std::os::fd::AsRawFd::as_raw_fd(self.temp.as_file());
            if unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 0, length) } == 0 {
                return Ok(());
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::EINVAL) => Ok(()),
                _ => Err(IoError::from_io(&self.target, "reserve space for", error)),
            }
        }
        // Elsewhere (macOS) nothing is reserved: a full disk fails at the write instead.
        #[cfg(not(target_os = "linux"))]
        {
            let _ = size;
            Ok(())
        }
    }

    /// Asks the kernel to start writing back what was written since the last call, without waiting.
    pub fn start_writeback(&mut self) {
        let (from, to) = (self.writeback_started, self.size);
        if to > from {
            crate::writeback::start(self.temp.as_file(), from, to - from);
            self.writeback_started = to;
        }
    }

    /// Flushes everything written so far to the device; `commit(true)` then only renames and flushes the folder.
    pub fn flush(&mut self) -> Result<()> {
        self.temp.as_file().sync_all().map_err(|e| IoError::from_io(&self.target, "flush", e))?;
        self.flushed = self.size;
        Ok(())
    }

    /// Flushes (when `fsync`), renames over the target and flushes the folder. Returns the size.
    pub fn commit(mut self, fsync: bool) -> Result<u64> {
        if fsync && self.flushed != self.size {
            self.flush()?;
        }
        let AtomicFile { target, temp, size, .. } = self;
        temp.persist(&target).map_err(|e| IoError::from_io(&target, "rename over", e.error))?;
        if fsync {
            sync_folder(&target)?;
        }
        Ok(size)
    }
}

fn sync_folder(target: &Path) -> Result<()> {
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(folder).and_then(|f| f.sync_all()).map_err(|e| IoError::from_io(folder, "flush", e))
}

/// Writes `chunks` to `target` atomically; the digest is computed by a second
/// thread over the same memory while this one writes, so hashing adds no time
/// when two cores are free. `progress(bytes_written, bytes_total)` follows the writes.
pub fn write_file_atomic(
    target: &Path,
    chunks: &[&[u8]],
    fsync: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<WriteSummary> {
    let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let mut file = AtomicFile::create(target)?;
    if total < PARALLEL_HASH_MIN {
        let mut hasher = Sha256::new();
        for chunk in chunks {
            file.write(chunk)?;
            hasher.update(chunk);
        }
        let size = file.commit(fsync)?;
        progress(total, total);
        return Ok(WriteSummary { sha256: hasher.finish(), size });
    }
    file.reserve(total)?;
    // Hashing on the other core is the longest part (about 0.55 s per GiB): the
    // writes, their writeback and the flush all happen while it runs.
    let written = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            let mut hasher = Sha256::new();
            for chunk in chunks {
                hasher.update(chunk);
            }
            hasher.finish()
        });
        let mut done = 0u64;
        for chunk in chunks {
            for slice in chunk.chunks(SLICE) {
                // The writer runs ahead of the digest: it fills the page tables of memory-mapped
                // tensors (a conversion's source) so the hashing thread finds them present.
                populate(slice); // advisory: the write faults pages in itself when this cannot
                file.write(slice)?;
                done += slice.len() as u64;
                progress(done, total);
                if fsync && done - file.writeback_started >= WRITEBACK_STEP {
                    file.start_writeback();
                }
            }
        }
        if fsync {
            file.flush()?;
        }
        Ok::<_, IoError>(hashing.join().expect("hashing does not panic"))
    });
    let sha256 = written?;
    let size = file.commit(fsync)?;
    progress(total, total);
    Ok(WriteSummary { sha256, size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{sha256_bytes, to_hex};

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(TEMP_SUFFIX))
            .collect()
    }

    #[test]
    fn writes_hashes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model.bin");
        std::fs::write(&target, b"old").unwrap();
        let chunks: [&[u8]; 3] = [b"hello ", b"", b"world"];
        let mut last = (0, 0);
        let summary = write_file_atomic(&target, &chunks, true, &mut |d, t| last = (d, t)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello world");
        assert_eq!(to_hex(&summary.sha256), to_hex(&sha256_bytes(b"hello world")));
        assert_eq!(summary.size, 11);
        assert_eq!(last, (11, 11));
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn large_flushed_writes_hash_on_another_thread_and_keep_their_exact_size() {
        // Past the writeback step, so writeback is started mid-write and the flush overlaps the hashing.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("large.bin");
        let block: Vec<u8> = (0..(7u32 << 20)).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<&[u8]> = (0..10).map(|i| &block[..block.len() - i]).collect();
        let summary = write_file_atomic(&target, &chunks, true, &mut |_, _| {}).unwrap();
        let expected: Vec<u8> = chunks.concat();
        assert!(expected.len() as u64 > WRITEBACK_STEP);
        assert_eq!(summary.size, expected.len() as u64);
        assert_eq!(
            std::fs::metadata(&target).unwrap().len(),
            expected.len() as u64,
            "reserving does not grow the file"
        );
        assert_eq!(to_hex(&summary.sha256), to_hex(&sha256_bytes(&expected)));
        assert!(std::fs::read(&target).unwrap() == expected);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn streaming_writes_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.bin");
        let mut file = AtomicFile::create(&target).unwrap();
        assert!(file.temp_path().to_string_lossy().ends_with(TEMP_SUFFIX));
        file.write(b"abc").unwrap();
        file.write(b"de").unwrap();
        assert!(!target.exists(), "nothing appears under the final name before commit");
        assert_eq!(file.commit(false).unwrap(), 5);
        assert_eq!(std::fs::read(&target).unwrap(), b"abcde");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_dropped_writer_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("keep.bin");
        std::fs::write(&target, b"precious").unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.write(b"half a checkpoint").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn bad_targets_get_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(AtomicFile::create(&dir.path().join("no/such/dir/x")).err().unwrap().code(), "CKPT_NOT_FOUND");
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert_eq!(AtomicFile::create(&dir.path().join("d")).err().unwrap().code(), "CKPT_IS_DIRECTORY");
    }

    /// A full disk: needs root to mount a tiny tmpfs; elsewhere it says so and passes.
    #[test]
    fn a_full_disk_fails_cleanly_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("tiny");
        std::fs::create_dir(&mount).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let target = mount.join("ckpt.bin");
        std::fs::write(&target, b"saved before").unwrap();
        let big = vec![1u8; 1 << 20];
        let error = write_file_atomic(&target, &[&big], true, &mut |_, _| {}).unwrap_err();
        let code = error.code();
        let remaining = leftovers(&mount);
        let before = std::fs::read(&target).unwrap();
        std::process::Command::new("umount").arg(&mount).status().unwrap();
        assert_eq!(code, "CKPT_NO_SPACE", "{error}");
        assert_eq!(before, b"saved before");
        assert!(remaining.is_empty(), "{remaining:?}");
    }
}
