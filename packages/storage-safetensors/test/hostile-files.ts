// Hostile safetensors files, shared by the tests of the refusals and of the two parsers agreeing.

/** A file with `header` (a string, or raw bytes) after its length, then `data` bytes. */
export function build(
  header: string | Uint8Array,
  options: { data?: number; length?: bigint; pad?: boolean } = {},
): Buffer {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(options.length ?? BigInt(json.byteLength));
  return Buffer.concat([prefix, json, Buffer.alloc(options.data ?? 0)]);
}

export const ok = (name = 'x', offsets = '[0,16]', shape = '[2,2]', dtype = 'F32') =>
  `"${name}":{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;

// Each case: what is wrong, the file, and a pattern the FormatError's message must match.
export const hostileCases: Array<[string, Buffer, RegExp]> = [
  ['a file shorter than 8 bytes', Buffer.from([1, 2, 3]), /fewer than the 8-byte header length/],
  ['an empty file', Buffer.alloc(0), /fewer than the 8-byte header length/],
  ['a header length past the end', build('{}', { length: 1000n }), /runs past the end/],
  ['a header length of 2^63', build('{}', { length: 2n ** 63n }), /exceeds the 100000000-byte limit/],
  ['a header length over 100 MB', build('{}', { length: 100_000_001n }), /exceeds the 100000000-byte limit/],
  ['a header that is not a JSON object', build('[1,2,3]'), /not a JSON object/],
  ['a header that is a JSON string', build('"hello"'), /not a JSON object/],
  ['truncated JSON', build(`{${ok()}`, { data: 16 }), /not valid JSON/],
  ['bad UTF-8', build(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), /not valid UTF-8/],
  ['an unknown dtype', build(`{${ok('x', '[0,16]', '[2,2]', 'F128')}}`, { data: 16 }), /unknown dtype "F128"/],
  [
    'C128, which safetensors lacks',
    build(`{${ok('x', '[0,16]', '[1]', 'C128')}}`, { data: 16 }),
    /unknown dtype "C128"/,
  ],
  ['a negative dimension', build(`{${ok('x', '[0,16]', '[-2,-2]')}}`, { data: 16 }), /negative dimension/],
  ['a fractional dimension', build(`{${ok('x', '[0,16]', '[2.5,2]')}}`, { data: 16 }), /number 2\.5 where/],
  ['a dimension written 2.0', build(`{${ok('x', '[0,16]', '[2.0,2]')}}`, { data: 16 }), /number 2\.0 where/],
  ['an offset written 1.6e1', build(`{${ok('x', '[0,1.6e1]')}}`, { data: 16 }), /number 1\.6e1 where/],
  ['a shape of booleans', build(`{${ok('x', '[0,16]', '[true,false]')}}`, { data: 16 }), /not a list of integers/],
  [
    'a shape overflowing 64 bits',
    build(`{${ok('x', '[0,16]', '[4294967296,4294967296,4]')}}`, { data: 16 }),
    /overflows 64 bits/,
  ],
  [
    'a byte length not matching the shape',
    build(`{${ok('x', '[0,12]')}}`, { data: 12 }),
    /takes 16 bytes, data_offsets span 12/,
  ],
  [
    'overlapping offsets',
    build(`{${ok('a', '[0,16]')},${ok('b', '[8,24]')}}`, { data: 24 }),
    /overlaps the previous tensor/,
  ],
  ['a gap between tensors', build(`{${ok('a', '[0,16]')},${ok('b', '[20,36]')}}`, { data: 36 }), /leaves a gap/],
  ['offsets not starting at 0', build(`{${ok('a', '[4,20]')}}`, { data: 20 }), /leaves a gap/],
  ['offsets past the end of the file', build(`{${ok('a', '[0,16]')}}`, { data: 8 }), /runs past the end of the file/],
  ['trailing bytes', build(`{${ok('a', '[0,16]')}}`, { data: 20 }), /4 trailing bytes/],
  ['offsets ending before they begin', build(`{${ok('a', '[16,0]')}}`, { data: 16 }), /end before they begin/],
  [
    'offsets beyond 2^53',
    build(`{${ok('a', '[0,18014398509481984]')}}`, { data: 16 }),
    /not two non-negative integers/,
  ],
  ['duplicate names', build(`{${ok('a', '[0,16]')},${ok('a', '[0,16]')}}`, { data: 16 }), /names "a" twice/],
  [
    'non-string metadata',
    build(`{"__metadata__":{"epoch":3},${ok()}}`, { data: 16 }),
    /must be strings; "epoch" holds a number/,
  ],
  [
    'metadata that is not an object',
    build(`{"__metadata__":[1],${ok()}}`, { data: 16 }),
    /__metadata__ is not an object/,
  ],
  ['a tensor described by a number', build('{"x":5}'), /not described by an object/],
  [
    'deeply nested JSON',
    build(`{"__metadata__":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
    /not an object of strings/,
  ],
];
