//! One error type with a variant per failure, each with a stable code.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("file not found: {path}")]
    NotFound { path: PathBuf },

    #[error("expected a file but found a directory: {path}")]
    IsDirectory { path: PathBuf },

    #[error("expected a regular file but found a special file (pipe, socket or device): {path}")]
    NotRegularFile { path: PathBuf },

    #[error("permission denied while trying to {op} {path}")]
    PermissionDenied { path: PathBuf, op: &'static str },

    #[error("file changed while it was being read: {path} ({detail})")]
    FileChanged { path: PathBuf, detail: String },

    #[error("byte range out of bounds: offset {offset} + length {length} is past the end of {path} ({size} bytes)")]
    OutOfBounds { path: PathBuf, offset: u64, length: u64, size: u64 },

    #[error("no space left on the device while writing {path}")]
    NoSpace { path: PathBuf },

    #[error("could not {op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl IoError {
    /// A stable, machine-readable code; the JavaScript error carries it as `code`.
    pub fn code(&self) -> &'static str {
        match self {
            IoError::NotFound { .. } => "CKPT_NOT_FOUND",
            IoError::IsDirectory { .. } => "CKPT_IS_DIRECTORY",
            IoError::NotRegularFile { .. } => "CKPT_NOT_REGULAR_FILE",
            IoError::PermissionDenied { .. } => "CKPT_PERMISSION_DENIED",
            IoError::FileChanged { .. } => "CKPT_FILE_CHANGED",
            IoError::OutOfBounds { .. } => "CKPT_OUT_OF_BOUNDS",
            IoError::NoSpace { .. } => "CKPT_NO_SPACE",
            IoError::Io { .. } => "CKPT_IO",
            IoError::InvalidArgument(_) => "CKPT_INVALID_ARGUMENT",
        }
    }

    /// The path the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            IoError::NotFound { path }
            | IoError::IsDirectory { path }
            | IoError::NotRegularFile { path }
            | IoError::PermissionDenied { path, .. }
            | IoError::FileChanged { path, .. }
            | IoError::OutOfBounds { path, .. }
            | IoError::NoSpace { path }
            | IoError::Io { path, .. } => Some(path),
            IoError::InvalidArgument(_) => None,
        }
    }

    /// Classifies an operating-system error from `op` on `path`.
    pub fn from_io(path: &Path, op: &'static str, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => IoError::NotFound { path },
            io::ErrorKind::PermissionDenied => IoError::PermissionDenied { path, op },
            io::ErrorKind::IsADirectory => IoError::IsDirectory { path },
            io::ErrorKind::StorageFull => IoError::NoSpace { path },
            _ => IoError::Io { path, op, source },
        }
    }
}

pub type Result<T> = std::result::Result<T, IoError>;
