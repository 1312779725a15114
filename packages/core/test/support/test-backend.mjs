/**
 * A small storage backend for the manager's tests, in plain JavaScript so the
 * crash tests' child processes can load it with Node alone. Format: `CKPTTEST`,
 * a u32 header length, a JSON header (the state with tensors replaced by
 * `{ "$t": i }`, the tensors' dtype/shape/offset/length, the metadata), then
 * the tensor bytes. It can be told to fail or to pause, to inject faults.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapFile, writeFileAtomic } from '@ckpt/native';

const MAGIC = Buffer.from('CKPTTEST');

const isTensor = (v) =>
  v !== null && typeof v === 'object' && typeof v.dtype === 'string' && v.data instanceof Uint8Array;

function split(value, tensors) {
  if (isTensor(value)) {
    tensors.push(value);
    return { $t: tensors.length - 1 };
  }
  if (Array.isArray(value)) return value.map((v) => split(v, tensors));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, split(v, tensors)]));
  }
  return value;
}

function join(value, tensors) {
  if (Array.isArray(value)) return value.map((v) => join(v, tensors));
  if (value !== null && typeof value === 'object') {
    if (typeof value.$t === 'number') return tensors[value.$t];
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, join(v, tensors)]));
  }
  return value;
}

async function readHeader(path) {
  const bytes = await readFile(path);
  if (bytes.length < 12 || !bytes.subarray(0, 8).equals(MAGIC)) throw new Error(`not a ckpt-test file: ${path}`);
  const length = bytes.readUInt32LE(8);
  const header = JSON.parse(bytes.subarray(12, 12 + length).toString('utf8'));
  return { header, dataStart: 12 + length, size: bytes.length };
}

/**
 * @param {{ name?: string, extension?: string, failWhen?: (path: string) => boolean, delayMs?: number }} [options]
 */
export function testBackend(options = {}) {
  const name = options.name ?? 'ckpt-test';
  return {
    name,
    extensions: [options.extension ?? '.ckpt-test'],
    dtypes: ['F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F64'],
    detect: (header) => Buffer.from(header.subarray(0, 8)).equals(MAGIC),
    async save(path, state, saveOptions = {}) {
      if (options.delayMs) await sleep(options.delayMs);
      if (options.failWhen?.(path)) throw new Error(`injected failure writing ${path}`);
      const tensors = [];
      const tree = split(state, tensors);
      let offset = 0;
      const entries = tensors.map((t) => {
        const entry = { dtype: t.dtype, shape: [...t.shape], offset, length: t.data.byteLength };
        offset += t.data.byteLength;
        return entry;
      });
      const header = Buffer.from(JSON.stringify({ tree, tensors: entries, metadata: saveOptions.metadata ?? {} }));
      const prefix = Buffer.alloc(12);
      MAGIC.copy(prefix);
      prefix.writeUInt32LE(header.length, 8);
      const written = await writeFileAtomic(path, [prefix, header, ...tensors.map((t) => t.data)], {
        fsync: saveOptions.fsync ?? true,
      });
      const file = { path, size: written.size, sha256: written.sha256 };
      return { ...file, files: [file] };
    },
    async load(path, loadOptions = {}) {
      const { header, dataStart } = await readHeader(path);
      const file = mapFile(path, { copy: loadOptions.copy ?? false });
      try {
        const tensors = header.tensors.map((t) => ({
          dtype: t.dtype,
          shape: t.shape,
          data: file.view(dataStart + t.offset, t.length),
        }));
        return { state: join(header.tree, tensors), metadata: header.metadata, format: name, zeroCopy: file.zeroCopy };
      } finally {
        file.close();
      }
    },
    async inspect(path) {
      const { header } = await readHeader(path);
      const tensors = header.tensors.map((t, i) => ({
        name: String(i),
        dtype: t.dtype,
        shape: t.shape,
        byteLength: t.length,
      }));
      return {
        format: name,
        path,
        files: [path],
        tensors,
        parameterCount: tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0),
        tensorBytes: tensors.reduce((s, t) => s + t.byteLength, 0),
        metadata: header.metadata,
      };
    },
  };
}
