//! Fuzz target: the safetensors header reader (`safetensors::read_header`).
//!
//! Inputs are mutants of the shared fixtures and generated headers. Properties:
//! it never panics and returns within a budget; a refusal is `InvalidFormat`;
//! what it accepts, the reference crate accepts too, and the table it builds
//! lies inside the file; what the reference accepts, it accepts unless one of
//! ckpt's own documented limits refuses it; and its peak allocation is bounded
//! by the file's size, whatever sizes the header declares.

mod fuzz;

use ckpt_io::IoError;
use ckpt_io::safetensors::{HeaderTable, read_header};
use fuzz::config::{self, Outcome};
use fuzz::memory::{CountingAllocator, peak_during};
use fuzz::mutate;
use proptest::prelude::*;
use std::io::Write as _;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const BUDGET: Duration = Duration::from_secs(10);

/// ckpt refuses what the reference would take only for these documented limits.
const OWN_LIMITS: [&str; 4] = ["dimensions, more than", "dimension past 2^53", "dtype ckpt does not know", "twice"];

/// What reading `bytes` as a file gives, with the peak bytes allocated while reading.
fn read(bytes: Vec<u8>) -> (Result<HeaderTable, IoError>, usize, Vec<u8>) {
    config::within(BUDGET, "read_header", move || {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        let (result, peak) = peak_during(|| read_header(file.path()));
        (result, peak, bytes)
    })
}

fn check(bytes: Vec<u8>) -> Result<Outcome, TestCaseError> {
    let (ours, peak, bytes) = read(bytes);
    // The header is read once, then parsed into tables a few times its size: never more
    // than a small multiple of the file, whatever lengths and shapes it declares.
    let bound = 64 * 1024 + 32 * bytes.len().min(100_000_000);
    prop_assert!(peak <= bound, "{peak} bytes allocated for a {}-byte file", bytes.len());
    let reference = safetensors::SafeTensors::deserialize(&bytes);
    match ours {
        Ok(table) => {
            prop_assert!(reference.is_ok(), "ckpt accepts what the reference refuses: {:?}", reference.err());
            let data = table.file_size - 8 - table.header_length;
            prop_assert_eq!(table.file_size, bytes.len() as u64);
            prop_assert!(table.offsets.windows(2).all(|w| w[0] <= w[1]), "offsets out of order");
            prop_assert!(table.offsets.last().is_none_or(|&end| end as u64 <= data), "a tensor runs past the data");
            prop_assert_eq!(table.name_ends.len(), reference.unwrap().len());
        }
        Err(IoError::InvalidFormat { detail, .. }) => {
            if reference.is_ok() {
                prop_assert!(
                    OWN_LIMITS.iter().any(|limit| detail.contains(limit)),
                    "ckpt refuses what the reference accepts: {detail}"
                );
            }
            return Ok(Outcome::Refused);
        }
        Err(other) => prop_assert!(false, "not a format error: {other:?}"),
    }
    Ok(Outcome::Accepted)
}

/// A header JSON from generated tensors: names, dtypes (some unknown), shapes
/// (some huge), offsets consistent or not, and metadata.
fn generated_file() -> impl Strategy<Value = Vec<u8>> {
    let dtype =
        prop::sample::select(vec!["F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "C64", "Q4", "f32", ""]);
    let dim = prop_oneof![8 => 0u64..5, 1 => Just(u64::MAX), 1 => Just(1u64 << 53)];
    let tensor = ("[a-z._\\u{0}-\\u{ff}]{0,6}", dtype, prop::collection::vec(dim, 0..4), any::<bool>());
    let tensors = prop::collection::vec(tensor, 0..6);
    let metadata = prop::option::of(prop::collection::vec(("[a-z_]{0,4}", "[ -~]{0,6}"), 0..3));
    (tensors, metadata, -2i64..3).prop_map(|(tensors, metadata, slack)| {
        let mut offset = 0u64;
        let mut members = Vec::new();
        for (name, dtype, shape, consistent) in tensors {
            let size = shape.iter().fold(4u64, |n, &d| n.saturating_mul(d));
            let end = if consistent { offset.saturating_add(size) } else { offset.saturating_add(3) };
            members.push(format!(
                "{}:{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{end}]}}",
                serde_json::to_string(&name).unwrap()
            ));
            offset = end;
        }
        if let Some(pairs) = metadata {
            let pairs: Vec<_> = pairs.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
            members.push(format!("\"__metadata__\":{{{}}}", pairs.join(",")));
        }
        let json = format!("{{{}}}", members.join(","));
        let data = (offset.min(4096) as i64 + slack).max(0) as usize;
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(json.as_bytes());
        bytes.resize(bytes.len() + data, 0);
        bytes
    })
}

#[test]
fn mutated_fixtures() {
    let seeds = prop::sample::select(config::shared_fixtures("safetensors"));
    config::run("safetensors/mutated-fixtures", file!(), 3000, (seeds, mutate::edits(512, 8)), |(seed, edits)| {
        check(mutate::apply(&seed.1, &edits))
    });
}

#[test]
fn generated_headers() {
    let edits = prop::option::weighted(0.3, mutate::edits(256, 4));
    config::run("safetensors/generated-headers", file!(), 3000, (generated_file(), edits), |(bytes, edits)| {
        check(match edits {
            Some(edits) => mutate::apply(&bytes, &edits),
            None => bytes,
        })
    });
}

#[test]
fn arbitrary_bytes() {
    let bytes = prop::collection::vec(any::<u8>(), 0..256);
    config::run("safetensors/arbitrary-bytes", file!(), 2000, bytes, check);
}
