//! The I/O core of ckpt.
//!
//! Everything here is plain Rust with no Node-API types, so it is tested with
//! `cargo test` and reused by any binding. The Node-API crate (`ckpt-napi`)
//! only converts types.
//!
//! - [`hash`]: SHA-256 of files from memory mappings, one file or many in
//!   parallel, with progress and detection of files changed while hashed.
//! - [`map`]: read-only mappings with bounds-checked byte ranges.
//! - [`atomic`]: writes to a temporary in the target folder, hashing in the
//!   same pass, then flush, rename and folder flush.
//! - [`safetensors`]: safetensors headers validated by the reference crate, as flat tables.
//! - [`folder`]: one pass over a folder, every entry's kind and size.
//! - [`lock`]: inter-process locks the kernel releases when a holder dies.
//! - [`sigbus`]: turns the SIGBUS a truncated mapping raises into a flag, so
//!   a file shrinking under a reader is an error, never a crash.

pub mod atomic;
pub mod crc;
pub mod error;
mod file;
pub mod folder;
pub mod hash;
pub mod http;
pub mod lock;
pub mod map;
pub mod safetensors;
pub mod sigbus;
mod writeback;

pub use atomic::{AtomicFile, TEMP_SUFFIX, WriteSummary, write_file_atomic};
pub use crc::crc32_many;
pub use error::IoError;
pub use hash::{Digest, Sha256, sha256_bytes, sha256_file, sha256_files, to_hex};
pub use lock::{FileLock, try_lock_file};
pub use map::MappedFile;
