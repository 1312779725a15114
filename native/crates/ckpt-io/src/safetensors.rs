//! Safetensors headers validated by the reference crate (huggingface
//! `safetensors`): its `TensorInfo` and `Dtype` types read every entry and its
//! `Metadata::new` checks the offsets and sizes, so a file ckpt accepts is one
//! the reference accepts by construction. The top-level object is read member
//! by member instead of through the reference's `#[serde(flatten)]`, which
//! buffers every value first and costs two thirds of its parse. ckpt adds three checks the reference leaves out:
//! no name may appear twice at the top level (the reference keeps the last
//! silently), at most 64 dimensions, and every size below 2^53 so JavaScript
//! numbers hold it exactly.
//!
//! The result is a table in a few flat arrays rather than one object per
//! tensor: handing it to JavaScript costs a handful of allocations, not
//! thousands.

use crate::error::{IoError, Result};
use crate::file::open_regular;
use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo};
use serde::de::{Deserializer, MapAccess, Visitor};
use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes before the JSON: its length, little-endian.
const LENGTH_PREFIX: u64 = 8;
/// The reference refuses longer headers.
const MAX_HEADER_BYTES: u64 = 100_000_000;
/// numpy and torch allow no more dimensions than this.
const MAX_RANK: usize = 64;
/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// The first read takes the length prefix and, usually, the whole header.
const FIRST_READ: usize = 64 * 1024;

/// Every tensor of a header, in file order (by offset).
#[derive(Debug, Default, PartialEq)]
pub struct HeaderTable {
    /// Bytes of JSON after the 8-byte length prefix.
    pub header_length: u64,
    pub file_size: u64,
    /// Every name, one after another.
    pub names: String,
    /// Where each name ends in `names`, in UTF-16 code units (JavaScript string indices).
    pub name_ends: Vec<u32>,
    /// Index of each tensor's dtype in ckpt's dtype list, which follows the reference's order.
    pub dtypes: Vec<u8>,
    pub ranks: Vec<u8>,
    /// Every shape, one after another (`ranks` says where each ends).
    pub dims: Vec<f64>,
    /// Start of each tensor in the data section, then the end of the last: one more than tensors.
    pub offsets: Vec<f64>,
    /// `__metadata__` as key, value, key, value…, sorted by key.
    pub metadata: Vec<String>,
}

/// Reads and validates the header of the safetensors file at `path`, touching no tensor bytes.
pub fn read_header(path: &Path) -> Result<HeaderTable> {
    let (file, snapshot) = open_regular(path)?;
    let json = read_json(&file, snapshot.len, path)?;
    parse_header(&json, snapshot.len, path)
}

fn invalid(path: &Path, detail: String) -> IoError {
    IoError::InvalidFormat { path: path.to_path_buf(), detail }
}

/// The JSON bytes after the length prefix, with the reference's checks of that length.
fn read_json(file: &std::fs::File, file_size: u64, path: &Path) -> Result<Vec<u8>> {
    let read_at = |buffer: &mut [u8], offset: u64| -> Result<usize> {
        let mut done = 0;
        while done < buffer.len() {
            match file.read_at(&mut buffer[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(IoError::from_io(path, "read", e)),
            }
        }
        Ok(done)
    };
    let mut first = vec![0u8; FIRST_READ.min(file_size as usize)];
    let got = read_at(&mut first, 0)?;
    if got < LENGTH_PREFIX as usize {
        return Err(invalid(path, format!("it has {got} bytes, fewer than the 8-byte header length")));
    }
    let length = u64::from_le_bytes(first[..8].try_into().expect("8 bytes"));
    if length > MAX_HEADER_BYTES {
        return Err(invalid(path, format!("its header length {length} exceeds the {MAX_HEADER_BYTES}-byte limit")));
    }
    if LENGTH_PREFIX + length > file_size {
        return Err(invalid(
            path,
            format!("its header length {length} runs past the end of the {file_size}-byte file"),
        ));
    }
    let length = length as usize;
    let mut json = if got >= 8 + length {
        first.truncate(8 + length);
        first.split_off(8)
    } else {
        let mut all = vec![0u8; length];
        let got = read_at(&mut all, LENGTH_PREFIX)?;
        if got < length {
            return Err(crate::file::changed_error(path, "it got shorter while its header was read"));
        }
        all
    };
    json.shrink_to_fit();
    Ok(json)
}

/// The header as the reference's types: tensors in the order written, and the metadata.
struct Parsed {
    tensors: Vec<(String, TensorInfo)>,
    metadata: Option<HashMap<String, String>>,
    duplicate: Option<String>,
}

/// Reads the top-level object member by member (the reference's `#[serde(flatten)]`
/// buffers every value first, which is most of its cost), noting a repeated name.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Parsed, A::Error> {
        let mut parsed = Parsed { tensors: Vec::new(), metadata: None, duplicate: None };
        let mut seen_metadata = false;
        while let Some(name) = map.next_key::<String>()? {
            if name == "__metadata__" {
                if seen_metadata {
                    parsed.duplicate.get_or_insert(name);
                }
                seen_metadata = true;
                parsed.metadata = map.next_value()?;
            } else {
                parsed.tensors.push((name, map.next_value()?));
            }
        }
        Ok(parsed)
    }
}

/// Validates the `json` of a file of `file_size` bytes and builds its table: the
/// tensors are checked by the reference's `Metadata::new`, as its own reader does.
pub fn parse_header(json: &[u8], file_size: u64, path: &Path) -> Result<HeaderTable> {
    let text = std::str::from_utf8(json).map_err(|e| invalid(path, format!("its header is not valid UTF-8: {e}")))?;
    let not_json = |e: serde_json::Error| invalid(path, format!("its header is not valid: {e}"));
    let mut json_reader = serde_json::Deserializer::from_str(text);
    let mut parsed = json_reader.deserialize_map(HeaderVisitor).map_err(not_json)?;
    // Only whitespace may follow the object, as `serde_json::from_str` in the reference requires.
    json_reader.end().map_err(not_json)?;
    parsed.tensors.sort_by_key(|(_, info)| info.data_offsets);
    let duplicate = parsed.duplicate.take().or_else(|| first_repeated(&parsed.tensors));
    if let Some(name) = duplicate {
        return Err(invalid(path, format!("its header names {name:?} twice")));
    }
    let table = build_table(&parsed, json.len() as u64, file_size, path)?;
    let metadata = Metadata::new(parsed.metadata, parsed.tensors)
        .map_err(|e| invalid(path, format!("the reference refuses its tensors: {e}")))?;
    let expected = LENGTH_PREFIX + json.len() as u64 + metadata.data_len() as u64;
    if expected != file_size {
        let what = if expected > file_size { "runs past the end of" } else { "ends before the end of" };
        return Err(invalid(
            path,
            format!("its tensor data {what} the file: {expected} bytes needed, {file_size} found"),
        ));
    }
    Ok(table)
}

fn first_repeated(tensors: &[(String, TensorInfo)]) -> Option<String> {
    let mut seen = hashbrown::HashSet::with_capacity(tensors.len());
    tensors.iter().find(|(name, _)| !seen.insert(name.as_str())).map(|(name, _)| name.clone())
}

/// The flat table of tensors already sorted by offset.
fn build_table(parsed: &Parsed, header_length: u64, file_size: u64, path: &Path) -> Result<HeaderTable> {
    let count = parsed.tensors.len();
    let mut table = HeaderTable {
        header_length,
        file_size,
        names: String::with_capacity(parsed.tensors.iter().map(|(n, _)| n.len()).sum()),
        name_ends: Vec::with_capacity(count),
        dtypes: Vec::with_capacity(count),
        ranks: Vec::with_capacity(count),
        dims: Vec::with_capacity(count * 2),
        offsets: Vec::with_capacity(count + 1),
        metadata: Vec::new(),
    };
    if file_size > MAX_SAFE_INTEGER {
        return Err(invalid(path, format!("{file_size} bytes is past the 2^53-byte limit")));
    }
    let mut utf16_length = 0usize;
    for (name, info) in &parsed.tensors {
        if info.shape.len() > MAX_RANK {
            return Err(invalid(
                path,
                format!("tensor {name:?} has {} dimensions, more than {MAX_RANK}", info.shape.len()),
            ));
        }
        let Some(code) = dtype_code(info.dtype) else {
            return Err(invalid(path, format!("tensor {name:?} has a dtype ckpt does not know: {}", info.dtype)));
        };
        if info.shape.iter().any(|&d| d as u64 > MAX_SAFE_INTEGER) {
            return Err(invalid(path, format!("tensor {name:?} has a dimension past 2^53")));
        }
        utf16_length += if name.is_ascii() { name.len() } else { name.encode_utf16().count() };
        table.names.push_str(name);
        table.name_ends.push(u32::try_from(utf16_length).map_err(|_| invalid(path, "its names are too long".into()))?);
        table.dtypes.push(code);
        table.ranks.push(info.shape.len() as u8);
        table.dims.extend(info.shape.iter().map(|&d| d as f64));
        table.offsets.push(info.data_offsets.0 as f64);
    }
    table.offsets.push(parsed.tensors.last().map_or(0, |(_, info)| info.data_offsets.1) as f64);
    if let Some(pairs) = &parsed.metadata {
        let mut sorted: Vec<_> = pairs.iter().collect();
        sorted.sort();
        for (key, value) in sorted {
            table.metadata.push(key.clone());
            table.metadata.push(value.clone());
        }
    }
    Ok(table)
}

/// ckpt's dtype list (`@ckpt/core` DTYPES) is the reference's enum order, then C128.
fn dtype_code(dtype: Dtype) -> Option<u8> {
    Some(match dtype {
        Dtype::BOOL => 0,
        Dtype::F4 => 1,
        Dtype::F6_E2M3 => 2,
        Dtype::F6_E3M2 => 3,
        Dtype::U8 => 4,
        Dtype::I8 => 5,
        Dtype::F8_E5M2 => 6,
        Dtype::F8_E4M3 => 7,
        Dtype::F8_E8M0 => 8,
        Dtype::F8_E4M3FNUZ => 9,
        Dtype::F8_E5M2FNUZ => 10,
        Dtype::I16 => 11,
        Dtype::U16 => 12,
        Dtype::F16 => 13,
        Dtype::BF16 => 14,
        Dtype::I32 => 15,
        Dtype::U32 => 16,
        Dtype::F32 => 17,
        Dtype::C64 => 18,
        Dtype::F64 => 19,
        Dtype::I64 => 20,
        Dtype::U64 => 21,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `json` (padded with spaces to 8 bytes) followed by `data` bytes.
    fn file(json: &str, data: usize) -> Vec<u8> {
        let mut header = json.as_bytes().to_vec();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend(vec![0u8; data]);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<HeaderTable> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        std::fs::write(&path, bytes).unwrap();
        read_header(&path)
    }

    fn parse(json: &str, data: usize) -> Result<HeaderTable> {
        read(&file(json, data))
    }

    fn refusal(json: &str, data: usize) -> String {
        let error = parse(json, data).unwrap_err();
        assert_eq!(error.code(), "CKPT_FORMAT", "{error}");
        error.to_string()
    }

    #[test]
    fn tensors_come_in_offset_order_with_utf16_name_ends() {
        let table = parse(
            r#"{"__metadata__":{"b":"2","a":"1"},"z":{"dtype":"F32","shape":[2],"data_offsets":[6,14]},"é😀":{"dtype":"BF16","shape":[1,3],"data_offsets":[0,6]}}"#,
            14,
        )
        .unwrap();
        assert_eq!(table.names, "é😀z");
        assert_eq!(table.name_ends, vec![3, 4]);
        assert_eq!(table.dtypes, vec![14, 17]);
        assert_eq!(table.ranks, vec![2, 1]);
        assert_eq!(table.dims, vec![1.0, 3.0, 2.0]);
        assert_eq!(table.offsets, vec![0.0, 6.0, 14.0]);
        assert_eq!(table.metadata, vec!["a", "1", "b", "2"]);
        assert_eq!(table.file_size, 8 + table.header_length + 14);
    }

    #[test]
    fn an_empty_header_is_an_empty_table() {
        let table = parse("{}", 0).unwrap();
        assert!(table.dtypes.is_empty());
        assert_eq!(table.offsets, vec![0.0]);
    }

    #[test]
    fn duplicate_names_are_refused_where_the_reference_keeps_the_last() {
        let json = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
        assert!(refusal(json, 1).contains("twice"));
        let metadata_twice = r#"{"__metadata__":{},"__metadata__":{}}"#;
        assert!(refusal(metadata_twice, 0).contains("twice"));
        // Names inside values or with escaped quotes are not top-level keys.
        let nested = r#"{"__metadata__":{"a":"x\",\"a"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
        assert_eq!(parse(nested, 1).unwrap().names, "a");
    }

    #[test]
    fn what_the_reference_refuses_is_refused() {
        let one = |dtype: &str, shape: &str, offsets: &str| {
            format!(r#"{{"t":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
        };
        for (json, data) in [
            (one("F32", "[2]", "[0,4]"), 4),    // span does not match the shape
            (one("F32", "[1]", "[4,8]"), 8),    // a gap before the first tensor
            (one("F32", "[1]", "[0,4]"), 5),    // trailing bytes
            (one("F32", "[1]", "[0,4]"), 3),    // data past the end
            (one("C128", "[1]", "[0,16]"), 16), // not a safetensors dtype
            (one("F32", "[-1]", "[0,4]"), 4),   // negative dimension
            (one("F4", "[1]", "[0,1]"), 1),     // half a byte
            ("[1,2]".to_string(), 0),           // not an object
            ("{} x".to_string(), 0),            // something after the object
            (r#"{"t":{"dtype":"F32"}}"#.to_string(), 0),
        ] {
            refusal(&json, data);
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        refusal(&deep, 0);
        let too_many = format!("[{}]", vec!["1"; 65].join(","));
        assert!(refusal(&one("U8", &too_many, "[0,1]"), 1).contains("65 dimensions"));
    }

    #[test]
    fn short_and_oversized_length_prefixes_are_refused() {
        assert!(read(b"\x01\x00").unwrap_err().to_string().contains("fewer than the 8-byte"));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend(b"{}");
        assert!(read(&huge).unwrap_err().to_string().contains("exceeds"));
        let mut past = 100u64.to_le_bytes().to_vec();
        past.extend(b"{}");
        assert!(read(&past).unwrap_err().to_string().contains("runs past the end"));
    }

    #[test]
    fn headers_longer_than_the_first_read_are_read_whole() {
        let names: Vec<String> = (0..2000)
            .map(|i| format!(r#""tensor.{i:05}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{}]}}"#, i + 1))
            .collect();
        let table = parse(&format!("{{{}}}", names.join(",")), 2000).unwrap();
        assert!(table.header_length > FIRST_READ as u64);
        assert_eq!(table.dtypes.len(), 2000);
        assert_eq!(&table.names[..11], "tensor.0000");
    }

    #[test]
    fn files_are_read_without_touching_tensor_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        std::fs::write(&path, file(r#"{"w":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}"#, 3)).unwrap();
        assert_eq!(read_header(&path).unwrap().names, "w");
        std::fs::write(&path, b"").unwrap();
        assert!(read_header(&path).unwrap_err().to_string().contains("has 0 bytes"));
        assert_eq!(read_header(dir.path()).unwrap_err().code(), "CKPT_IS_DIRECTORY");
        assert_eq!(read_header(&dir.path().join("none")).unwrap_err().code(), "CKPT_NOT_FOUND");
    }
}
