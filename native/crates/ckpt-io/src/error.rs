//! One error type with a variant per failure, each with a stable code.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The failures; each has a stable code, and its message comes from the
/// table in `native/messages.txt`, which the JavaScript side reads too.
#[derive(Debug)]
pub enum IoError {
    NotFound { path: PathBuf },
    IsDirectory { path: PathBuf },
    NotRegularFile { path: PathBuf },
    PermissionDenied { path: PathBuf, op: &'static str },
    FileChanged { path: PathBuf, detail: String },
    OutOfBounds { path: PathBuf, offset: u64, length: u64, size: u64 },
    NoSpace { path: PathBuf },
    InvalidFormat { path: PathBuf, detail: String },
    Io { path: PathBuf, op: &'static str, source: io::Error },
    InvalidArgument(String),
}

/// The message table shared with JavaScript: a line per code, `CODE<TAB>template`.
const MESSAGES: &str = include_str!("../../../messages.txt");

/// The template for `code` (a line of the table).
fn template(code: &str) -> Option<&'static str> {
    MESSAGES
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.split_once('\t').filter(|(c, _)| *c == code).map(|(_, t)| t))
}

/// Fills `{name}` placeholders from `fields`; an unknown name stays as written.
fn render(template: &str, fields: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match fields.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        match template(code) {
            Some(t) => f.write_str(&render(t, &self.fields())),
            None => write!(f, "{code}"), // unreachable while the table is complete (tested)
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IoError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
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
            IoError::InvalidFormat { .. } => "CKPT_FORMAT",
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
            | IoError::InvalidFormat { path, .. }
            | IoError::Io { path, .. } => Some(path),
            IoError::InvalidArgument(_) => None,
        }
    }

    /// The values the message template names.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(path) = self.path() {
            fields.push(("path", path.display().to_string()));
        }
        match self {
            IoError::PermissionDenied { op, .. } => fields.push(("op", op.to_string())),
            IoError::FileChanged { detail, .. } | IoError::InvalidFormat { detail, .. } => {
                fields.push(("detail", detail.clone()))
            }
            IoError::OutOfBounds { offset, length, size, .. } => {
                fields.push(("offset", offset.to_string()));
                fields.push(("length", length.to_string()));
                fields.push(("size", size.to_string()));
            }
            IoError::Io { op, source, .. } => {
                fields.push(("op", op.to_string()));
                fields.push(("message", source.to_string()));
            }
            IoError::InvalidArgument(message) => fields.push(("message", message.clone())),
            _ => {}
        }
        fields
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

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<IoError> {
        let path = PathBuf::from("/data/model.bin");
        vec![
            IoError::NotFound { path: path.clone() },
            IoError::IsDirectory { path: path.clone() },
            IoError::NotRegularFile { path: path.clone() },
            IoError::PermissionDenied { path: path.clone(), op: "open" },
            IoError::FileChanged { path: path.clone(), detail: "size 3 -> 4".into() },
            IoError::OutOfBounds { path: path.clone(), offset: 8, length: 4, size: 10 },
            IoError::NoSpace { path: path.clone() },
            IoError::InvalidFormat { path: path.clone(), detail: "bad header".into() },
            IoError::Io { path, op: "read", source: io::Error::other("boom") },
            IoError::InvalidArgument("offset must be an integer".into()),
        ]
    }

    #[test]
    fn every_code_has_a_template_and_every_placeholder_is_filled() {
        for error in every_kind() {
            let text = error.to_string();
            assert!(template(error.code()).is_some(), "no line for {}", error.code());
            assert!(!text.contains('{'), "{} left a placeholder: {text}", error.code());
        }
    }

    #[test]
    fn messages_read_as_the_table_says() {
        let kinds = every_kind();
        let text = |i: usize| kinds[i].to_string();
        assert_eq!(text(0), "file not found: /data/model.bin");
        assert_eq!(
            text(5),
            "byte range out of bounds: offset 8 + length 4 is past the end of /data/model.bin (10 bytes)"
        );
        assert_eq!(text(8), "could not read /data/model.bin: boom");
        assert_eq!(text(9), "invalid argument: offset must be an integer");
    }

    #[test]
    fn render_leaves_unknown_and_unclosed_placeholders_alone() {
        assert_eq!(render("a {x} {y} {z", &[("x", "1".into())]), "a 1 {y} {z");
    }
}
