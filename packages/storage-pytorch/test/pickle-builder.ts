import { writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { Op } from '../src/pickle/opcodes.js';
import { zipChunks } from '../src/zip/writer.js';

/** Assembles pickles opcode by opcode, for crafting hostile files in tests. */
export class PickleBuilder {
  readonly #bytes: number[] = [];
  op(code: number, ...args: number[]): this {
    this.#bytes.push(code, ...args);
    return this;
  }
  proto(version = 2): this {
    return this.op(Op.PROTO, version);
  }
  global(module: string, name: string): this {
    return this.op(Op.GLOBAL, ...Buffer.from(`${module}\n${name}\n`));
  }
  string(text: string): this {
    const b = Buffer.from(text, 'utf8');
    return this.op(
      Op.BINUNICODE,
      b.length & 0xff,
      (b.length >> 8) & 0xff,
      (b.length >> 16) & 0xff,
      b.length >>> 24,
      ...b,
    );
  }
  int(value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    return this.op(Op.BININT, ...b);
  }
  long(value: bigint): this {
    const out: number[] = [];
    let v = value;
    for (let i = 0; i < 16; i++) {
      out.push(Number(v & 0xffn));
      v >>= 8n;
    }
    return this.op(Op.LONG1, out.length, ...out);
  }
  tuple(count: 0 | 1 | 2 | 3): this {
    return this.op([Op.EMPTY_TUPLE, Op.TUPLE1, Op.TUPLE2, Op.TUPLE3][count] as number);
  }
  /** ('storage', torch.<cls>, key, 'cpu', numel) then BINPERSID. */
  storage(cls: string, key: string, numel: number): this {
    return this.op(Op.MARK)
      .string('storage')
      .global('torch', cls)
      .string(key)
      .string('cpu')
      .int(numel)
      .op(Op.TUPLE)
      .op(Op.BINPERSID);
  }
  /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()). */
  tensor(cls: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').op(Op.MARK).storage(cls, key, numel).int(offset);
    this.op(Op.MARK);
    for (const d of size) this.int(d);
    this.op(Op.TUPLE).op(Op.MARK);
    for (const s of stride) this.int(s);
    this.op(Op.TUPLE).op(Op.NEWFALSE).global('collections', 'OrderedDict').tuple(0).op(Op.REDUCE);
    return this.op(Op.TUPLE).op(Op.REDUCE);
  }
  stop(): this {
    return this.op(Op.STOP);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

export interface ArchiveParts {
  folder?: string;
  pickle: Uint8Array;
  records?: Record<string, Uint8Array>;
  version?: string | null;
}

/** Writes a torch-layout zip archive holding `pickle` and `records` (under data/). */
export function writeArchive(path: string, parts: ArchiveParts): void {
  const folder = parts.folder ?? 'archive';
  const records = [{ name: `${folder}/data.pkl`, data: parts.pickle }];
  for (const [key, bytes] of Object.entries(parts.records ?? {}))
    records.push({ name: `${folder}/data/${key}`, data: bytes });
  if (parts.version !== null)
    records.push({ name: `${folder}/version`, data: new Uint8Array(Buffer.from(parts.version ?? '3\n')) });
  writeFileSync(
    path,
    Buffer.concat(
      zipChunks(
        records,
        records.map((r) => crc32(r.data, 0)),
      ),
    ),
  );
}
