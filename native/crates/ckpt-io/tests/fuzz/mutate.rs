//! Byte-level mutations of seed files, as a proptest strategy: the edits a
//! mutation fuzzer makes (bit flips, interesting values, truncation, inserted,
//! removed and repeated slices), each shrinkable to a smaller list.

use proptest::prelude::*;

/// One edit; positions are taken modulo the current length, so any edit applies to any input.
#[derive(Debug, Clone)]
pub enum Edit {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    /// Overwrites 1, 2, 4 or 8 bytes with a boundary value (0, -1, 2^31, 2^63, ...).
    Interesting {
        at: usize,
        which: usize,
        width: usize,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
    Repeat {
        at: usize,
        len: usize,
    },
}

const INTERESTING: [u64; 10] =
    [0, 1, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x7fff_ffff_ffff_ffff, u64::MAX];

/// Edits aimed at the first `focus` bytes (a header) three times out of four.
pub fn edits(focus: usize, max: usize) -> impl Strategy<Value = Vec<Edit>> {
    let at = prop_oneof![3 => 0..focus.max(1), 1 => any::<usize>()];
    let edit = (
        at,
        any::<u8>(),
        0usize..INTERESTING.len(),
        0usize..4,
        prop::collection::vec(any::<u8>(), 1..16),
        1usize..64,
        0usize..7,
    )
        .prop_map(|(at, byte, which, width, bytes, len, kind)| match kind {
            0 => Edit::Flip { at, bit: byte % 8 },
            1 => Edit::Set { at, byte },
            2 => Edit::Interesting { at, which, width: 1 << width },
            3 => Edit::Truncate { at },
            4 => Edit::Insert { at, bytes },
            5 => Edit::Remove { at, len },
            _ => Edit::Repeat { at, len },
        });
    prop::collection::vec(edit, 1..max)
}

/// `seed` with `edits` applied in order.
pub fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for edit in edits {
        let n = out.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % n };
        match edit {
            Edit::Flip { at, bit } if n > 0 => out[pos(*at)] ^= 1 << bit,
            Edit::Set { at, byte } if n > 0 => out[pos(*at)] = *byte,
            Edit::Interesting { at, which, width } if n > 0 => {
                let bytes = INTERESTING[*which].to_le_bytes();
                let start = pos(*at);
                let end = (start + width).min(n);
                out[start..end].copy_from_slice(&bytes[..end - start]);
            }
            Edit::Truncate { at } => out.truncate(pos(*at)),
            Edit::Insert { at, bytes } => {
                let start = pos(*at);
                out.splice(start..start, bytes.iter().copied());
            }
            Edit::Remove { at, len } if n > 0 => {
                let start = pos(*at);
                out.drain(start..(start + len).min(n));
            }
            Edit::Repeat { at, len } if n > 0 => {
                let start = pos(*at);
                let slice = out[start..(start + len).min(n)].to_vec();
                out.splice(start..start, slice);
            }
            _ => {}
        }
    }
    out
}
