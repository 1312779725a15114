//! Turns the SIGBUS of a truncated mapping into a flag.
//!
//! When a file shrinks while it is mapped, touching a page past its new end
//! raises SIGBUS, whose default action ends the process. A checkpoint being
//! rewritten in place while we hash or read it must be an error, not a crash,
//! so every range we map is registered here. The handler maps a zero page over
//! a faulting page inside a registered range, marks that range as tripped and
//! returns; the reader finishes on zeros and then reports `FileChanged`. Faults
//! anywhere else go to the handler that was installed before ours.
//!
//! The handler only touches atomics and issues `mmap`, which is a plain
//! system call, so it is safe to run in signal context.

use std::ffi::c_void;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const SLOTS: usize = 4096;
/// `start` of a slot reserved by `protect` but not yet published.
const RESERVED: usize = 1;

struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    tripped: AtomicBool,
}

static TABLE: [Slot; SLOTS] =
    [const { Slot { start: AtomicUsize::new(0), end: AtomicUsize::new(0), tripped: AtomicBool::new(false) } }; SLOTS];
static NEXT_HINT: AtomicUsize = AtomicUsize::new(0);
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Keeps a mapped range registered with the handler until dropped.
#[derive(Debug)]
pub struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// True once a read in the range hit a page past the end of the file.
    pub fn tripped(&self) -> bool {
        self.slot.is_some_and(|i| TABLE[i].tripped.load(Ordering::Acquire))
    }

    /// Whether the range is registered (false only when the table is full).
    pub fn active(&self) -> bool {
        self.slot.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let slot = &TABLE[i];
            slot.start.store(RESERVED, Ordering::Release);
            slot.end.store(0, Ordering::Release);
            slot.tripped.store(false, Ordering::Release);
            slot.start.store(0, Ordering::Release);
        }
    }
}

/// Registers `[ptr, ptr + len)`; reads there that fault with SIGBUS read zeros instead.
pub fn protect(ptr: *const u8, len: usize) -> Guard {
    if len == 0 {
        return Guard { slot: None };
    }
    install();
    let start = ptr as usize;
    let hint = NEXT_HINT.fetch_add(1, Ordering::Relaxed);
    for k in 0..SLOTS {
        let i = (hint + k) % SLOTS;
        let slot = &TABLE[i];
        if slot.start.compare_exchange(0, RESERVED, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            slot.tripped.store(false, Ordering::Release);
            slot.end.store(start + len, Ordering::Release);
            slot.start.store(start, Ordering::Release);
            return Guard { slot: Some(i) };
        }
    }
    Guard { slot: None }
}

fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Release);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
            let _ = PREVIOUS.set(previous);
        }
    });
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let address = unsafe { (*info).si_addr() } as usize;
    let page_size = PAGE_SIZE.load(Ordering::Acquire);
    for slot in TABLE.iter() {
        let start = slot.start.load(Ordering::Acquire);
        if start > RESERVED && address >= start && address < slot.end.load(Ordering::Acquire) {
            let page = address & !(page_size - 1);
            let zero_page = unsafe {
                libc::mmap(
                    page as *mut c_void,
                    page_size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zero_page != libc::MAP_FAILED {
                slot.tripped.store(true, Ordering::Release);
                return;
            }
        }
    }
    unsafe { forward(signal, info, context) }
}

/// Hands a SIGBUS that is not ours to whoever handled it before us.
unsafe fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let previous = PREVIOUS.get();
    let handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action: a fault re-executes and ends the process
        // as it would have without us; a signal sent by kill is raised again.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, std::ptr::null_mut());
            if (*info).si_code <= 0 {
                libc::raise(signal);
            }
        }
        return;
    }
    let flags = previous.map_or(0, |p| p.sa_flags);
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) = std::mem::transmute(handler);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_truncated_under_a_mapping_reads_zeros_and_trips_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrinks.bin");
        let page = PAGE_SIZE.load(Ordering::Acquire).max(4096);
        std::fs::File::create(&path).unwrap().write_all(&vec![7u8; page * 4]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let guard = protect(map.as_ptr(), map.len());
        assert!(guard.active());
        assert_eq!(map[page * 3], 7);
        assert!(!guard.tripped());

        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(page as u64).unwrap();
        // Without the guard this read would end the process with SIGBUS.
        let past_end = unsafe { std::ptr::read_volatile(map.as_ptr().add(page * 3 + 5)) };
        assert_eq!(past_end, 0);
        assert!(guard.tripped());
        assert_eq!(map[0], 7, "pages still inside the file keep their bytes");
    }

    #[test]
    fn guards_release_their_slots() {
        let data = [0u8; 16];
        let start = data.as_ptr() as usize;
        let slots: Vec<usize> = {
            let a = protect(data.as_ptr(), data.len());
            let b = protect(data.as_ptr(), data.len());
            assert!(a.active() && b.active());
            assert_ne!(a.slot, b.slot);
            vec![a.slot.unwrap(), b.slot.unwrap()]
        };
        for i in slots {
            assert_ne!(TABLE[i].start.load(Ordering::Acquire), start, "slot {i} still holds our range");
        }
        assert!(!protect(data.as_ptr(), 0).active(), "an empty range needs no slot");
    }
}
