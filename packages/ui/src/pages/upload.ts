/**
 * Upload ("save"): a checkpoint file sent from the browser is read by its
 * backend (so only a valid file is accepted) and saved through the manager:
 * written atomically, hashed and recorded like any other save.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, type SaveOutcome } from '@ckpt/core';
import { type Html, html, seg } from '../html.js';
import type { Workspace } from '../workspace.js';

export const MAX_UPLOAD_BYTES = 8 * 1024 ** 3;

export interface UploadInput {
  file: File;
  epoch?: number;
  step?: number;
  metrics: Record<string, number>;
  tags: string[];
}

/** Reads the form: `file`, `epoch`, `step`, `metrics` as `name=value` lines, `tags` comma-separated. */
export function uploadInput(form: FormData): UploadInput {
  const file = form.get('file');
  if (!(file instanceof File) || file.size === 0) throw new InvalidArgumentError('upload: choose a checkpoint file');
  if (file.size > MAX_UPLOAD_BYTES)
    throw new InvalidArgumentError(`upload: the file is larger than ${MAX_UPLOAD_BYTES} bytes`);
  const integer = (key: string) => {
    const text = String(form.get(key) ?? '').trim();
    if (text === '') return undefined;
    if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`upload: ${key} must be a whole number`, { found: text });
    return Number(text);
  };
  const metrics: Record<string, number> = Object.create(null);
  for (const line of String(form.get('metrics') ?? '').split(/[\n,]/)) {
    if (line.trim() === '') continue;
    const match = /^\s*([A-Za-z0-9_./-]{1,100})\s*[=:]\s*(\S+)\s*$/.exec(line);
    const value = match ? Number(match[2]) : Number.NaN;
    if (!match || !Number.isFinite(value)) {
      throw new InvalidArgumentError('upload: metrics are `name=value` lines', { found: line.trim().slice(0, 100) });
    }
    metrics[match[1] as string] = value;
  }
  const epoch = integer('epoch');
  const step = integer('step');
  const tags = String(form.get('tags') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return {
    file,
    ...(epoch !== undefined ? { epoch } : {}),
    ...(step !== undefined ? { step } : {}),
    metrics: { ...metrics },
    tags,
  };
}

export async function saveUpload(ws: Workspace, name: string, input: UploadInput): Promise<SaveOutcome> {
  ws.folder(name);
  const extension = /\.(safetensors|pt|pth|bin|ckpt)$/i.exec(input.file.name)?.[0]?.toLowerCase();
  if (!extension)
    throw new InvalidArgumentError('upload: the file must be .safetensors, .pt, .pth, .bin or .ckpt', {
      found: input.file.name.slice(0, 100),
    });
  // Staged outside the experiment folder: a reader there must never see it as a checkpoint.
  const staging = await mkdtemp(join(tmpdir(), 'ckpt-upload-'));
  const staged = join(staging, `upload${extension}`);
  try {
    await pipeline(
      Readable.fromWeb(input.file.stream() as import('node:stream/web').ReadableStream),
      createWriteStream(staged),
    );
    const backend = ws.registry.forPath(staged);
    if (!backend) throw new InvalidArgumentError(`upload: no reader for ${extension} files`);
    const { state } = await backend.load(staged, { copy: true });
    return await ws.change(name, (m) =>
      m.save({
        state,
        ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
        ...(input.step !== undefined ? { step: input.step } : {}),
        metrics: input.metrics,
        tags: [...input.tags, 'uploaded'],
        force: true,
      }),
    );
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export function uploadPage(name: string): Html {
  return html`<h1>Upload a checkpoint to ${name}</h1>
  <p>The file is read by its format's reader first: only a valid checkpoint is saved, written atomically, hashed and recorded, in this experiment's format.</p>
  <form method="post" action="/e/${seg(name)}/upload" enctype="multipart/form-data" class="stacked">
    <label>File <input type="file" name="file" required accept=".safetensors,.pt,.pth,.bin,.ckpt"></label>
    <label>Epoch <input name="epoch" inputmode="numeric"></label>
    <label>Step <input name="step" inputmode="numeric"></label>
    <label>Metrics (<code>name=value</code>, one per line) <textarea name="metrics" rows="3"></textarea></label>
    <label>Tags (comma-separated) <input name="tags"></label>
    <button type="submit">Upload</button>
  </form>`;
}
