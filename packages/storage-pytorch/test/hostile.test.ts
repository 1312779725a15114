import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync } from 'node:zlib';
import { CkptError, FormatError } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { pytorch, UnsafePickleError } from '../src/index.js';
import { Op } from '../src/pickle/opcodes.js';
import { zipChunks } from '../src/zip/writer.js';
import { PickleBuilder, writeArchive } from './pickle-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-hostile-'));
let n = 0;
const file = () => join(dir, `case-${n++}.pt`);
const sentinel = join(dir, 'PWNED');

async function refusal(path: string, options = {}): Promise<CkptError> {
  const error = await pytorch.load(path, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CkptError);
  return error as CkptError;
}

/** A pickle calling module.name(argument), as a payload would. */
function payload(module: string, name: string, argument = `touch ${sentinel}`): Uint8Array {
  return new PickleBuilder().proto().global(module, name).string(argument).tuple(1).op(Op.REDUCE).stop().bytes();
}

// picklescan's corpus of hostile pickles, with torch 2.13's weights_only verdict on each.
const corpus = fileURLToPath(new URL('./corpus/picklescan/', import.meta.url));
const verdicts: Record<string, string> = JSON.parse(readFileSync(join(corpus, 'TORCH_WEIGHTS_ONLY.json'), 'utf8'));

describe('the picklescan corpus', () => {
  const refused = Object.entries(verdicts).filter(([, v]) => !v.startsWith('accepted'));
  const accepted = Object.entries(verdicts).filter(([, v]) => v.startsWith('accepted'));

  it('holds the 109 files the verdicts list', () => {
    expect(refused.length + accepted.length).toBe(109);
    expect(accepted.map(([f]) => f).sort()).toEqual(['data/new_pytorch_model.bin', 'data/pytorch_model.bin']);
  });

  it.each(refused)('refuses %s as torch does, with a typed error', async (name) => {
    await refusal(join(corpus, name));
  });

  it.each(accepted)('reads %s, which torch accepts', async (name) => {
    const { state } = await pytorch.load(join(corpus, name));
    expect(Object.keys(state).length).toBeGreaterThan(0);
  });

  it('names the dangerous globals of refused pickles', async () => {
    const error = await refusal(join(corpus, 'data/malicious2_v0.pkl'));
    expect(error).toBeInstanceOf(UnsafePickleError);
    expect(error.message).toContain('posix.system');
  });

  it('ran nothing', () => {
    expect(existsSync(sentinel)).toBe(false);
  });
});

describe('globals outside the allow-list', () => {
  it.each([
    ['os', 'system'],
    ['posix', 'system'],
    ['nt', 'system'],
    ['subprocess', 'Popen'],
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['__builtin__', 'eval'],
    ['runpy', '_run_code'],
    ['pickle', 'loads'],
    ['importlib', 'import_module'],
    ['webbrowser', 'open'],
    ['numpy', 'load'],
  ])('%s.%s is refused, naming it, and nothing runs', async (module, name) => {
    const path = file();
    writeArchive(path, { pickle: payload(module, name) });
    const error = await refusal(path);
    expect(error).toBeInstanceOf(UnsafePickleError);
    const reported = module === '__builtin__' ? `builtins.${name}` : `${module}.${name}`;
    expect((error as UnsafePickleError).global).toBe(reported);
    expect(error.message).toContain(reported);
    expect(existsSync(sentinel)).toBe(false);
  });

  it('stay refused for blocked modules even when a user allows them', async () => {
    const path = file();
    writeArchive(path, { pickle: payload('os', 'system') });
    const error = await refusal(path, { allowGlobals: ['os.system'] });
    expect(error.message).toMatch(/nothing is ever loaded from os/);
  });

  it('refuses REDUCE on a value that is not an allowed callable', async () => {
    const path = file();
    writeArchive(path, { pickle: new PickleBuilder().proto().string('x').tuple(0).op(Op.REDUCE).stop().bytes() });
    expect((await refusal(path)).message).toMatch(/REDUCE on string/);
  });

  it('refuses persistent ids other than storages', async () => {
    const path = file();
    writeArchive(path, {
      pickle: new PickleBuilder().proto().string('module').tuple(1).op(Op.BINPERSID).stop().bytes(),
    });
    expect((await refusal(path)).message).toMatch(/persistent id/);
  });
});

describe('malformed pickles', () => {
  it.each([
    [
      'protocol 4 (FRAME)',
      new PickleBuilder().proto(4).op(Op.FRAME, 9, 0, 0, 0, 0, 0, 0, 0).op(Op.NONE).stop().bytes(),
      /FRAME/,
    ],
    [
      'STACK_GLOBAL',
      new PickleBuilder().proto().string('os').string('system').op(Op.STACK_GLOBAL).stop().bytes(),
      /os\.system/,
    ],
    ['an undefined memo reference', new PickleBuilder().proto().op(Op.BINGET, 7).stop().bytes(), /memo entry 7/],
    ['stack underflow', new PickleBuilder().proto().op(Op.TUPLE2).stop().bytes(), /underflow/],
    ['a truncated pickle', new PickleBuilder().proto().string('abc').bytes().subarray(0, 6), /truncated/],
    ['no STOP', new PickleBuilder().proto().op(Op.NONE).bytes(), /truncated/],
    [
      'APPEND to a dict',
      new PickleBuilder().proto().op(Op.EMPTY_DICT).op(Op.NONE).op(Op.APPEND).stop().bytes(),
      /APPEND to dict/,
    ],
    [
      'SETITEM on a list',
      new PickleBuilder().proto().op(Op.EMPTY_LIST).op(Op.NONE).op(Op.NONE).op(Op.SETITEM).stop().bytes(),
      /SETITEM on list/,
    ],
    [
      'a cycle',
      new PickleBuilder().proto().op(Op.EMPTY_LIST).op(Op.BINPUT, 0).op(Op.BINGET, 0).op(Op.APPEND).stop().bytes(),
      /cycle/,
    ],
    ['invalid UTF-8', Uint8Array.from([0x80, 2, Op.BINUNICODE, 2, 0, 0, 0, 0xff, 0xfe, Op.STOP]), /UTF-8/],
  ])('refuses %s with a FormatError', async (_what, pickle, message) => {
    const path = file();
    writeArchive(path, { pickle });
    const error = await refusal(path);
    expect(error.message).toMatch(message);
  });

  it('refuses data nested 100,000 levels deep without overflowing the stack', async () => {
    const builder = new PickleBuilder().proto();
    for (let i = 0; i < 100_000; i++) builder.op(Op.EMPTY_LIST);
    for (let i = 0; i < 99_999; i++) builder.op(Op.APPEND);
    const path = file();
    writeArchive(path, { pickle: builder.stop().bytes() });
    expect((await refusal(path)).message).toMatch(/nests more than 1000 levels/);
  });
});

describe('hostile tensors', () => {
  const floats = (count: number) => new Uint8Array(count * 4);

  it('refuses a storage record shorter than numel x element size', async () => {
    const path = file();
    const pickle = new PickleBuilder().proto().tensor('FloatStorage', '0', 100, 0, [100], [1]).stop().bytes();
    writeArchive(path, { pickle, records: { '0': floats(10) } });
    expect((await refusal(path)).message).toMatch(/holds 40 bytes, but the checkpoint says 100 elements/);
  });

  it('refuses a missing storage record', async () => {
    const path = file();
    writeArchive(path, {
      pickle: new PickleBuilder().proto().tensor('FloatStorage', '3', 4, 0, [4], [1]).stop().bytes(),
    });
    expect((await refusal(path)).message).toMatch(/data\/3 is missing/);
  });

  it.each([
    ['a view past the end of its storage', 2, [4], [1], /past the 4 elements of its storage/],
    ['a strided view past the end', 0, [3], [2], /past the 4 elements/],
    ['a negative size', 0, [-1], [1], /non-negative integers/],
    ['a negative stride', 3, [2], [-1], /non-negative integers/],
    ['a negative offset', -1, [1], [1], /not a non-negative integer/],
    ['sizes and strides of different lengths', 0, [2, 2], [1], /dimensions/],
  ])('refuses %s', async (_what, offset, size, stride, message) => {
    const path = file();
    const pickle = new PickleBuilder().proto().tensor('FloatStorage', '0', 4, offset, size, stride).stop().bytes();
    writeArchive(path, { pickle, records: { '0': floats(4) } });
    expect((await refusal(path)).message).toMatch(message);
  });

  it('refuses an allocation bomb (a stride-0 view of 10^12 elements) without allocating', async () => {
    const path = file();
    const pickle = new PickleBuilder()
      .proto()
      .tensor('FloatStorage', '0', 1, 0, [1_000_000, 1_000_000], [0, 0])
      .stop()
      .bytes();
    writeArchive(path, { pickle, records: { '0': floats(1) } });
    const before = process.memoryUsage().rss;
    expect((await refusal(path)).message).toMatch(/copy budget/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 << 20);
  });

  it('refuses sizes whose product overflows', async () => {
    const path = file();
    const pickle = new PickleBuilder()
      .proto()
      .tensor('FloatStorage', '0', 4, 0, [2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1], [0, 0, 0])
      .stop()
      .bytes();
    writeArchive(path, { pickle, records: { '0': floats(4) } });
    expect((await refusal(path)).message).toMatch(/absurdly large|copy budget/);
  });
});

describe('hostile archives', () => {
  function rawZip(entries: Array<{ name: string; data: Uint8Array }>): Buffer {
    return Buffer.concat(
      zipChunks(
        entries,
        entries.map((e) => crc32(e.data, 0)),
      ),
    );
  }

  it.each([['archive/../../evil.pkl'], ['/etc/passwd'], ['C:/windows/system.ini'], ['archive/..\\..\\evil']])(
    'refuses the entry name %s and writes nothing anywhere',
    async (name) => {
      const path = file();
      const before = readdirSync(dir).length;
      writeFileSync(
        path,
        rawZip([
          { name: 'archive/data.pkl', data: payload('collections', 'OrderedDict') },
          { name, data: new Uint8Array(1) },
        ]),
      );
      expect((await refusal(path)).message).toMatch(/points outside the archive folder/);
      expect(readdirSync(dir).length).toBe(before + 1);
    },
  );

  it('refuses a deflated record that would inflate past the cap', async () => {
    const big = deflateRawSync(Buffer.alloc(64 << 20));
    const zip = Buffer.from(rawZip([{ name: 'archive/data.pkl', data: big }]));
    // Mark the entry deflated with its true inflated size in the central directory.
    const central = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt16LE(8, central + 10);
    zip.writeUInt32LE(64 << 20, central + 24);
    const path = file();
    writeFileSync(path, zip);
    const error = await refusal(path, { maxInflatedBytes: 1 << 20 });
    expect(error.code).toBe('CKPT_LIMIT');
    expect(error.message).toMatch(/more than 1048576 bytes in all.*CKPT_MAX_INFLATED_BYTES/);
  });

  it('refuses truncated archives at any length', async () => {
    const path = file();
    writeArchive(path, { pickle: new PickleBuilder().proto().op(Op.NONE).stop().bytes() });
    const whole = readFileSync(path);
    for (const keep of [0, 3, 22, 100, whole.length - 30, whole.length - 1]) {
      writeFileSync(path, whole.subarray(0, keep));
      expect(await refusal(path)).toBeInstanceOf(FormatError);
    }
  });

  it('names a TorchScript archive as such', async () => {
    const path = file();
    writeFileSync(
      path,
      rawZip([
        { name: 'model/data.pkl', data: new PickleBuilder().proto().op(Op.NONE).stop().bytes() },
        { name: 'model/constants.pkl', data: new Uint8Array(1) },
        { name: 'model/code/__torch__.py', data: Buffer.from('def forward(self): ...') },
        { name: 'model/version', data: Buffer.from('3\n') },
      ]),
    );
    expect((await refusal(path)).message).toMatch(/TorchScript archive \(torch\.jit\.save\)/);
  });

  it('refuses an archive without a version record', async () => {
    const path = file();
    writeArchive(path, { pickle: new PickleBuilder().proto().op(Op.NONE).stop().bytes(), version: null });
    expect((await refusal(path)).message).toMatch(/no version record/);
  });
});

describe('legacy files carrying payloads', () => {
  const magic = new PickleBuilder().proto().long(0x1950a86a20f9469cfc6cn).stop().bytes();
  const protocol = new PickleBuilder().proto().int(1001).stop().bytes();

  it('refuses a payload in the legacy header, naming it', async () => {
    const path = file();
    writeFileSync(path, Buffer.concat([magic, protocol, payload('os', 'system')]));
    const error = await refusal(path);
    expect(error).toBeInstanceOf(UnsafePickleError);
    expect(error.message).toContain('os.system');
  });

  it('refuses a payload in the main pickle', async () => {
    const path = file();
    const sysInfo = new PickleBuilder().proto().op(Op.EMPTY_DICT).stop().bytes();
    writeFileSync(path, Buffer.concat([magic, protocol, sysInfo, payload('subprocess', 'check_output')]));
    expect(await refusal(path)).toBeInstanceOf(UnsafePickleError);
  });

  it('refuses a bare pickle', async () => {
    const path = file();
    writeFileSync(path, new PickleBuilder().proto().op(Op.EMPTY_DICT).stop().bytes());
    expect((await refusal(path)).message).toMatch(/magic number/);
  });
});

describe("the tar format of torch's first releases", () => {
  it('is named and refused as unsupported, not taken for a broken file', async () => {
    const members = mkdtempSync(join(tmpdir(), 'ckpt-pt-tar-'));
    for (const name of ['sys_info', 'pickle', 'storages', 'tensors']) writeFileSync(join(members, name), 'x');
    const path = file();
    const made = spawnSync('tar', ['--format=ustar', '-cf', path, '-C', members, 'sys_info', 'pickle'], {
      encoding: 'utf8',
    });
    expect(made.status, made.stderr).toBe(0);
    const error = await refusal(path);
    expect(error.code).toBe('CKPT_UNSUPPORTED');
    expect(error.message).toMatch(/tar format/);
  });
});
