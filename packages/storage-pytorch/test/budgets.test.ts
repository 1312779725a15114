import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { CkptError, Tuple } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { pytorch } from '../src/index.js';
import { Op } from '../src/pickle/opcodes.js';
import { zipChunks } from '../src/zip/writer.js';
import { PickleBuilder, writeArchive } from './pickle-builder.js';

// Small files that ask for unbounded memory, time or stack: each is refused with a typed error naming its
// budget (CKPT_LIMIT) or its defect (CKPT_FORMAT), never with a crash; a hang meets the test timeout.
const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-budgets-'));
let counter = 0;
const file = () => join(dir, `b-${counter++}.pt`);

async function refusal(path: string, work: () => Promise<unknown> = () => pytorch.inspect(path)): Promise<CkptError> {
  const error = await work().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, String(error)).toBeInstanceOf(CkptError);
  return error as CkptError;
}

/** A torch zip whose data.pkl is deflated (torch stores it; other writers may not). */
function deflatedArchive(path: string, pickle: Uint8Array, copies = 1): void {
  const packed = deflateRawSync(pickle, { level: 9 });
  const names = ['archive/data.pkl', ...Array.from({ length: copies - 1 }, (_, i) => `archive/copy${i}.pkl`)];
  const records = [
    ...names.map((name) => ({ name, data: packed })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ];
  const zip = Buffer.from(
    Buffer.concat(
      zipChunks(
        records,
        records.map((r) => crc32(r.data, 0)),
      ),
    ),
  );
  // Mark the pickle entries deflated, with their inflated size and CRC, in the central directory.
  let at = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  for (let i = 0; i < names.length; i++) {
    zip.writeUInt16LE(8, at + 10);
    zip.writeUInt32LE(crc32(pickle, 0), at + 16);
    zip.writeUInt32LE(pickle.byteLength, at + 24);
    const next = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at + 4);
    at = next;
  }
  writeFileSync(path, zip);
}

describe('budgets on what a pickle may ask for', () => {
  it('thirty million Nones (about 30 KB deflated) exceed the value budget', async () => {
    const nones = new Uint8Array(30_000_000 + 5).fill(Op.NONE);
    nones.set([Op.PROTO, 2, Op.EMPTY_LIST, Op.MARK], 0);
    nones.set([Op.APPENDS, Op.STOP], nones.length - 2);
    const path = file();
    deflatedArchive(path, nones);
    const error = await refusal(path);
    expect(error.code).toBe('CKPT_LIMIT');
    expect(error.message).toMatch(/more values than allowed.*CKPT_MAX_PICKLE_OBJECTS/);
  });

  it('billion laughs: memo references nested 40 deep are refused by the walk budget, not expanded', async () => {
    // Level 0 is a list; each next level is a list holding the previous one ten times (memo GETs).
    const p = new PickleBuilder().proto().op(Op.EMPTY_LIST).op(Op.BINPUT, 0);
    for (let level = 1; level <= 40; level++) {
      p.op(Op.EMPTY_LIST).op(Op.MARK);
      for (let i = 0; i < 10; i++) p.op(Op.BINGET, (level - 1) % 256);
      p.op(Op.APPENDS).op(Op.BINPUT, level % 256);
    }
    const path = file();
    writeArchive(path, { pickle: p.stop().bytes() });
    const error = await refusal(path);
    expect(error.code).toBe('CKPT_LIMIT');
    expect(error.message).toMatch(/CKPT_MAX_TREE_NODES/);
  });

  it('a GLOBAL line of 64 MB is refused before it becomes a string', async () => {
    const line = new Uint8Array(64 << 20).fill(0x61);
    const pickle = Buffer.concat([
      Buffer.from([Op.PROTO, 2, Op.GLOBAL]),
      line,
      Buffer.from('\nx\n'),
      Buffer.from([Op.STOP]),
    ]);
    const path = file();
    deflatedArchive(path, pickle);
    expect((await refusal(path)).message).toMatch(/a GLOBAL line of \d+ bytes/);
  });

  it('the inflate cap covers the whole file: three entries of one stream count three times', async () => {
    const pickle = new Uint8Array(400 << 20).fill(Op.NONE);
    pickle.set([Op.PROTO, 2], 0);
    pickle.set([Op.STOP], pickle.length - 1);
    const path = file();
    deflatedArchive(path, pickle, 3); // 1.2 GB declared in all, over the 1 GiB default
    const error = await refusal(path);
    expect(error.code).toBe('CKPT_LIMIT');
    expect(error.message).toMatch(/in all/);
  });

  it('a torch.Size of five million dimensions is refused, quickly', async () => {
    const p = new PickleBuilder().proto().global('torch._utils', '_rebuild_tensor_v2').op(Op.MARK);
    p.storage('FloatStorage', '0', 1).int(0).op(Op.MARK);
    // size: five million 1s, pushed with BININT1 (2 bytes each), under the value budget
    const dims = new Uint8Array(10_000_000);
    for (let i = 0; i < dims.length; i += 2) dims.set([Op.BININT1, 1], i);
    const head = p.bytes();
    const tail = new PickleBuilder()
      .op(Op.TUPLE)
      .op(Op.MARK)
      .int(1)
      .op(Op.TUPLE)
      .op(Op.NEWFALSE)
      .global('collections', 'OrderedDict')
      .tuple(0)
      .op(Op.REDUCE)
      .op(Op.TUPLE)
      .op(Op.REDUCE)
      .stop()
      .bytes();
    const path = file();
    writeArchive(path, { pickle: Buffer.concat([head, dims, tail]), records: { '0': new Uint8Array(4) } });
    const error = await refusal(path, () => pytorch.load(path));
    expect(error.message).toMatch(/5000000 dimensions, more than 64/);
  });

  it('legitimate wide data stays readable: a 300,000-item tuple and a 300,000-item APPENDS', async () => {
    const path = file();
    const items = Array.from({ length: 300_000 }, (_, i) => i);
    await pytorch.save(path, { ids: Tuple.fromItems(items), list: items } as never);
    const { state } = await pytorch.load(path);
    expect(((state as Record<string, unknown>).ids as unknown[]).length).toBe(300_000);
    expect(((state as Record<string, unknown>).list as unknown[]).length).toBe(300_000);
  });

  it('a tuple dict key nested a million deep is refused, not a stack overflow', async () => {
    const p = new PickleBuilder().proto().op(Op.EMPTY_DICT).op(Op.NONE);
    const nesting = new Uint8Array(1_000_000).fill(Op.TUPLE1);
    const tail = new PickleBuilder().op(Op.NONE).op(Op.SETITEM).stop().bytes();
    const path = file();
    writeArchive(path, { pickle: Buffer.concat([p.bytes(), nesting, tail]) });
    const error = await refusal(path, () => pytorch.load(path));
    expect(error.message).toMatch(/nests more than 1000 tuples deep/);
  });

  it('_rebuild_from_type_v2 nested in itself ten thousand times is refused, not a stack overflow', async () => {
    // f(f, None, (f, None, (... (f, None, ()) ...))): each call calls the next, as deep as the tuples nest.
    const f = () => p.global('torch._tensor', '_rebuild_from_type_v2');
    const p = new PickleBuilder().proto();
    f();
    for (let i = 0; i < 10_000; i++) f().op(Op.NONE);
    p.op(Op.EMPTY_TUPLE);
    for (let i = 0; i < 10_000; i++) p.op(Op.TUPLE3);
    const path = file();
    writeArchive(path, { pickle: p.op(Op.REDUCE).stop().bytes() });
    const error = await refusal(path, () => pytorch.load(path));
    expect(error.message).toMatch(/_rebuild_from_type_v2 nested more than 16 deep/);
  });

  it('a version record of 600 MB (deflated to under 1 MB) is refused before it becomes a string', async () => {
    const pickle = new PickleBuilder().proto().op(Op.NONE).stop().bytes();
    const version = Buffer.alloc(600 << 20, 0x33);
    const packed = deflateRawSync(version, { level: 9 });
    const records = [
      { name: 'archive/data.pkl', data: pickle },
      { name: 'archive/version', data: packed },
    ];
    const zip = Buffer.from(
      Buffer.concat(
        zipChunks(
          records,
          records.map((r) => crc32(r.data, 0)),
        ),
      ),
    );
    const second = zip.indexOf(
      Buffer.from([0x50, 0x4b, 0x01, 0x02]),
      zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 4,
    );
    zip.writeUInt16LE(8, second + 10);
    zip.writeUInt32LE(crc32(version, 0), second + 16);
    zip.writeUInt32LE(version.length, second + 24);
    const path = file();
    writeFileSync(path, zip);
    expect((await refusal(path, () => pytorch.load(path))).message).toMatch(
      /archive\/version is \d+ bytes: not a torch record/,
    );
  });
});
