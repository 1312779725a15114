//! Starting writeback early, so that the final flush of a large file has less left to do.

/// Asks the kernel to start writing a range of `file` back to the disk, without
/// waiting. Advisory: a failure only means the final flush does all the work.
/// Linux only (`sync_file_range`); elsewhere the final flush does it all.
#[cfg(target_os = "linux")]
pub fn start(file: &std::fs::File, offset: u64, length: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(length)) else {
        return;
    };
    unsafe { libc::sync_file_range(file.as_raw_fd(), offset, length, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
pub fn start(_file: &std::fs::File, _offset: u64, _length: u64) {}
