//! SHA-256 of files, read through memory mappings.
//!
//! Measured on the 2-core reference machine (see docs/benchmarks.md): hashing
//! a mapping whose pages are already in the page tables runs at the speed of
//! SHA-256 itself, while faulting pages in on the hashing thread costs about
//! 15%. So a single big file gets a helper thread that populates the page
//! tables a few windows ahead of the hasher; several files at once use every
//! core for hashing instead.

use crate::error::{IoError, Result};
use crate::file::{Snapshot, changed_error, ensure_unchanged, open_regular};
use crate::sigbus;
use memmap2::{Advice, MmapOptions};
use sha2::Digest as _;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

pub type Digest = [u8; 32];

/// Files smaller than this are read, not mapped: a mapping costs more than it saves.
const MAP_THRESHOLD: u64 = 1 << 20;
/// The hasher, the prefetcher and progress reports advance by windows of this size.
const WINDOW: usize = 16 << 20;
/// How many windows the prefetcher may run ahead of the hasher.
const LEAD_WINDOWS: usize = 3;
/// A prefetching helper thread pays for itself only on files at least this big.
const PREFETCH_THRESHOLD: u64 = 64 << 20;

/// A streaming SHA-256 hasher.
#[derive(Clone, Default)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        self.0.finalize().into()
    }
}

impl Sha256 {
    /// Feeds `length` bytes of the file at `path` from `offset`, read with
    /// positional reads: for a file still being written (a download), so its
    /// hashing can follow the writer on another thread.
    pub fn update_from_file(&mut self, path: &Path, offset: u64, length: u64) -> Result<()> {
        use std::os::unix::fs::FileExt as _;
        let file = File::open(path).map_err(|e| IoError::from_io(path, "open", e))?;
        // One buffer per thread, reused: a fresh zeroed MiB per call would page-fault on every call.
        thread_local!(static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; READ_BLOCK]));
        BUFFER.with_borrow_mut(|buffer| {
            let (mut at, end) = (offset, offset + length);
            while at < end {
                let want = ((end - at) as usize).min(buffer.len());
                let n = file.read_at(&mut buffer[..want], at).map_err(|e| IoError::from_io(path, "read", e))?;
                if n == 0 {
                    let size = file.metadata().map_or(0, |m| m.len());
                    return Err(IoError::OutOfBounds { path: path.to_path_buf(), offset, length, size });
                }
                self.update(&buffer[..n]);
                at += n as u64;
            }
            Ok(())
        })
    }
}

/// Positional reads for `update_from_file` go in blocks of this size.
const READ_BLOCK: usize = 1 << 20;

pub fn sha256_bytes(bytes: &[u8]) -> Digest {
    sha2::Sha256::digest(bytes).into()
}

pub fn to_hex(digest: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 15) as usize] as char);
    }
    out
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Hashes one file. `progress(bytes_done, bytes_total)` is called after every window.
pub fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Digest> {
    hash_one(path, cores() > 1, progress)
}

/// Hashes several files in parallel across the cores, biggest first.
/// `progress(bytes_done, bytes_total)` sums over all files and may be called from any thread.
pub fn sha256_files(paths: &[PathBuf], progress: &(dyn Fn(u64, u64) + Sync)) -> Vec<Result<Digest>> {
    let sizes: Vec<u64> = paths.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).collect();
    let total: u64 = sizes.iter().sum();
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));

    let workers = cores().min(paths.len()).max(1);
    // Spare cores go to prefetching only when there are fewer files than cores.
    let prefetch = workers < cores();
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Digest>>>> = paths.iter().map(|_| Default::default()).collect();

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let mut reported = 0u64;
                    let result = hash_one(&paths[i], prefetch, &mut |file_done, _| {
                        let sum = done.fetch_add(file_done - reported, Ordering::Relaxed) + file_done - reported;
                        reported = file_done;
                        progress(sum, total);
                    });
                    *results[i].lock().unwrap() = Some(result);
                }
            });
        }
    });
    results.into_iter().map(|slot| slot.into_inner().unwrap().expect("every file is hashed")).collect()
}

fn hash_one(path: &Path, prefetch: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<Digest> {
    let (file, before) = open_regular(path)?;
    let digest = if before.len < MAP_THRESHOLD {
        hash_by_reading(path, &file, &before)?
    } else {
        hash_mapped(path, &file, &before, prefetch && before.len >= PREFETCH_THRESHOLD, progress)?
    };
    ensure_unchanged(path, &file, &before)?;
    progress(before.len, before.len);
    Ok(digest)
}

fn hash_by_reading(path: &Path, mut file: &File, before: &Snapshot) -> Result<Digest> {
    let mut bytes = Vec::with_capacity(before.len as usize + 1);
    file.read_to_end(&mut bytes).map_err(|e| IoError::from_io(path, "read", e))?;
    if bytes.len() as u64 != before.len {
        return Err(changed_error(path, &format!("expected {} bytes, read {}", before.len, bytes.len())));
    }
    Ok(sha256_bytes(&bytes))
}

fn hash_mapped(
    path: &Path,
    file: &File,
    before: &Snapshot,
    prefetch: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Digest> {
    let len = usize::try_from(before.len)
        .map_err(|_| IoError::InvalidArgument(format!("{} is too large to map", path.display())))?;
    let map = unsafe { MmapOptions::new().len(len).map(file) }.map_err(|e| IoError::from_io(path, "map", e))?;
    let guard = sigbus::protect(map.as_ptr(), len);
    let _ = map.advise(Advice::Sequential);
    let mut hasher = Sha256::new();
    let total = before.len;
    let mut report = |done: usize| progress(done as u64, total);
    let hashed = if prefetch {
        hash_prefetched(&map, &mut hasher, &guard, &mut report)
    } else {
        hash_windows(&map, &mut hasher, &guard, &mut report)
    };
    if guard.tripped() || hashed < len {
        return Err(changed_error(path, "it was truncated while being hashed"));
    }
    Ok(hasher.finish())
}

/// Hashes window by window, faulting pages in on this thread. Returns the bytes hashed.
fn hash_windows(map: &[u8], hasher: &mut Sha256, guard: &sigbus::Guard, report: &mut dyn FnMut(usize)) -> usize {
    let mut done = 0;
    for window in map.chunks(WINDOW) {
        hasher.update(window);
        done += window.len();
        report(done);
        if guard.tripped() {
            break;
        }
    }
    done
}

/// Hashes while a helper thread populates the page tables ahead. Returns the bytes hashed.
fn hash_prefetched(map: &[u8], hasher: &mut Sha256, guard: &sigbus::Guard, report: &mut dyn FnMut(usize)) -> usize {
    let (ready_tx, ready_rx) = sync_channel::<usize>(LEAD_WINDOWS);
    let stop = &AtomicBool::new(false);
    let mut done = 0;
    std::thread::scope(|scope| {
        // `move` hands the sender to the helper, so the channel closes when it stops.
        scope.spawn(move || {
            let mut offset = 0;
            while offset < map.len() && !stop.load(Ordering::Relaxed) {
                let window = &map[offset..(offset + WINDOW).min(map.len())];
                if !populate(window) {
                    return; // past the end of a file that shrank: the hasher sees it stop short
                }
                offset += window.len();
                if ready_tx.send(offset).is_err() {
                    return;
                }
            }
        });
        while let Ok(upto) = ready_rx.recv() {
            hasher.update(&map[done..upto]);
            done = upto;
            report(done);
            if guard.tripped() {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        drop(ready_rx);
    });
    done
}

/// Fills the page tables for `window` (any slice: widened to whole pages). False when
/// the window lies past the end of a mapped file. Also used by atomic writes.
#[cfg(target_os = "linux")]
pub(crate) fn populate(window: &[u8]) -> bool {
    const PAGE: usize = 4096;
    let start = window.as_ptr() as usize & !(PAGE - 1);
    let length = window.as_ptr() as usize + window.len() - start;
    let status = unsafe { libc::madvise(start as *mut libc::c_void, length, libc::MADV_POPULATE_READ) };
    if status == 0 {
        return true;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EFAULT) => false,
        Some(libc::EINVAL) => touch_pages(window),
        _ => true, // the hasher faults the pages in itself
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn populate(window: &[u8]) -> bool {
    touch_pages(window)
}

/// Reads one byte per page (kernels before 5.14 lack MADV_POPULATE_READ).
fn touch_pages(window: &[u8]) -> bool {
    for offset in (0..window.len()).step_by(4096) {
        unsafe { std::ptr::read_volatile(window.as_ptr().add(offset)) };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    fn no_progress() -> impl FnMut(u64, u64) {
        |_, _| {}
    }

    #[test]
    fn update_from_file_hashes_the_range_and_refuses_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0u8; 3 * READ_BLOCK + 17];
        rand::rngs::SmallRng::seed_from_u64(3).fill(&mut bytes[..]);
        let path = write(dir.path(), "growing", &bytes);
        let mut hasher = Sha256::new();
        let split = READ_BLOCK as u64 + 5;
        hasher.update_from_file(&path, 0, split).unwrap();
        hasher.update_from_file(&path, split, bytes.len() as u64 - split).unwrap();
        assert_eq!(to_hex(&hasher.finish()), to_hex(&sha256_bytes(&bytes)));
        let error = Sha256::new().update_from_file(&path, bytes.len() as u64 - 1, 2).unwrap_err();
        assert_eq!(error.code(), "CKPT_OUT_OF_BOUNDS");
    }

    #[test]
    fn known_digests() {
        assert_eq!(to_hex(&sha256_bytes(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(to_hex(&sha256_bytes(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "abc", b"abc");
        assert_eq!(to_hex(&sha256_file(&path, &mut no_progress()).unwrap()), to_hex(&sha256_bytes(b"abc")));
    }

    #[test]
    fn every_path_agrees_with_hashing_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let w = WINDOW;
        let t = MAP_THRESHOLD as usize;
        let sizes =
            [0, 1, 63, 64, 65, t - 1, t, t + 1, w - 1, w, w + 1, 3 * w + 12345, PREFETCH_THRESHOLD as usize + 4097];
        for size in sizes {
            let mut bytes = vec![0u8; size];
            rng.fill(&mut bytes[..]);
            let path = write(dir.path(), &format!("f{size}"), &bytes);
            let expected = sha256_bytes(&bytes);
            for prefetch in [false, true] {
                let got = hash_one(&path, prefetch, &mut no_progress()).unwrap();
                assert_eq!(to_hex(&got), to_hex(&expected), "size {size}, prefetch {prefetch}");
            }
        }
    }

    #[test]
    fn progress_ends_at_the_total_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "p", &vec![3u8; 2 * WINDOW + 5]);
        let mut seen = Vec::new();
        sha256_file(&path, &mut |done, total| seen.push((done, total))).unwrap();
        assert!(seen.len() >= 3);
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(*seen.last().unwrap(), ((2 * WINDOW + 5) as u64, (2 * WINDOW + 5) as u64));
    }

    #[test]
    fn many_files_in_parallel_keep_their_order_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        let mut expected = Vec::new();
        for i in 0..9usize {
            let bytes: Vec<u8> = (0..i * 700_001).map(|k| (k * 31 + i) as u8).collect();
            paths.push(write(dir.path(), &format!("m{i}"), &bytes));
            expected.push(to_hex(&sha256_bytes(&bytes)));
        }
        paths.insert(4, dir.path().join("missing"));
        let last = AtomicU64::new(0);
        let results = sha256_files(&paths, &|done, total| {
            assert!(done <= total);
            last.fetch_max(done, Ordering::Relaxed);
        });
        assert_eq!(results.len(), 10);
        assert!(matches!(results[4], Err(IoError::NotFound { .. })));
        let got: Vec<String> =
            results.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, r)| to_hex(r.as_ref().unwrap())).collect();
        assert_eq!(got, expected);
        let total: u64 = (0..9u64).map(|i| i * 700_001).sum();
        assert_eq!(last.load(Ordering::Relaxed), total);
    }

    #[test]
    fn typed_errors_for_missing_files_directories_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let missing = sha256_file(&dir.path().join("nope"), &mut no_progress()).unwrap_err();
        assert_eq!(missing.code(), "CKPT_NOT_FOUND");
        assert!(missing.to_string().contains("nope"));
        assert_eq!(sha256_file(dir.path(), &mut no_progress()).unwrap_err().code(), "CKPT_IS_DIRECTORY");
        assert_eq!(
            sha256_file(Path::new("/dev/null"), &mut no_progress()).unwrap_err().code(),
            "CKPT_NOT_REGULAR_FILE"
        );
    }

    #[test]
    fn permission_denied_is_reported_as_such() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "secret", b"x");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        match sha256_file(&path, &mut no_progress()) {
            Err(e) => assert_eq!(e.code(), "CKPT_PERMISSION_DENIED"),
            Ok(_) => assert_eq!(unsafe { libc::geteuid() }, 0, "only root may read a mode-000 file"),
        }
    }

    #[test]
    fn a_file_truncated_while_hashed_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let size = 8 * WINDOW;
        let path = write(dir.path(), "t", &vec![1u8; size]);
        for prefetch in [false, true] {
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(size as u64).unwrap();
            let p = path.clone();
            let mut truncated = false;
            let result = hash_one(&path, prefetch, &mut |done, _| {
                if !truncated && done >= WINDOW as u64 {
                    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(WINDOW as u64 + 100).unwrap();
                    truncated = true;
                }
            });
            assert_eq!(result.unwrap_err().code(), "CKPT_FILE_CHANGED", "prefetch {prefetch}");
        }
    }

    #[test]
    fn a_file_modified_in_place_while_hashed_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "m", &vec![1u8; 3 * WINDOW]);
        let p = path.clone();
        let mut touched = false;
        let result = sha256_file(&path, &mut |done, _| {
            if !touched && done >= WINDOW as u64 {
                let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(b"more").unwrap();
                touched = true;
            }
        });
        let error = result.unwrap_err();
        assert_eq!(error.code(), "CKPT_FILE_CHANGED");
        assert!(error.to_string().contains("size went from"), "{error}");
    }
}
