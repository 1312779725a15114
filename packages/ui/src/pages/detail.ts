/** One checkpoint: its record, its tensors (from the header alone) and every action on it. */
import { type CheckpointRecord, type Inspection, NotFoundError } from '@ckpt/core';
import { bytes, type Html, html, num, seg, when } from '../html.js';
import type { Workspace } from '../workspace.js';

export interface DetailData {
  experiment: string;
  /** The checkpoint root folder (for the loading snippet). */
  root: string;
  record: CheckpointRecord;
  inspection: Inspection | undefined;
  /** Why the tensors could not be read (a compressed or missing file). */
  inspectionError: string | undefined;
  /** Parameters and bytes per dtype. */
  byDtype: Array<{ dtype: string; tensors: number; parameters: number; bytes: number }>;
}

export async function detailData(ws: Workspace, name: string, id: string): Promise<DetailData> {
  return ws.read(name, async (m) => {
    const record = await m.get(id);
    if (!record) throw new NotFoundError(`no checkpoint ${JSON.stringify(id)} in ${name}`);
    let inspection: Inspection | undefined;
    let inspectionError: string | undefined;
    try {
      inspection = await m.inspect(record.id);
    } catch (error) {
      inspectionError = (error as Error).message;
    }
    const groups = new Map<string, { dtype: string; tensors: number; parameters: number; bytes: number }>();
    for (const t of inspection?.tensors ?? []) {
      const g = groups.get(t.dtype) ?? { dtype: t.dtype, tensors: 0, parameters: 0, bytes: 0 };
      g.tensors++;
      g.parameters += t.shape.reduce((a, b) => a * b, 1);
      g.bytes += t.byteLength;
      groups.set(t.dtype, g);
    }
    return { experiment: name, root: ws.root, record, inspection, inspectionError, byDtype: [...groups.values()] };
  });
}

/** How to load this checkpoint from code and the command line (a browser cannot hand tensors to a training process). */
function loadSnippets(d: DetailData): Html {
  const r = d.record;
  const backend = r.format === 'pytorch' ? 'pytorch' : 'safetensors';
  const imports = [
    ['CheckpointManager', '@ckpt/core'],
    [backend, `@ckpt/storage-${backend}`],
  ]
    .map(([name, from]) => `import { ${name} } from ${JSON.stringify(from).replaceAll('"', "'")};`)
    .join('\n');
  const ts = `${imports}

const manager = await CheckpointManager.open({
  directory: ${JSON.stringify(d.root)},
  experiment: ${JSON.stringify(d.experiment)},
  storage: ${backend},
});
const { state } = await manager.load(${JSON.stringify(r.id)}, { verifyIntegrity: true });`;
  const py =
    r.format === 'pytorch'
      ? `import torch\nstate = torch.load(${JSON.stringify(r.path)}, weights_only=True)`
      : `from safetensors.torch import load_file\nstate = load_file(${JSON.stringify(r.path)})`;
  const cli = `npx ckpt verify ${JSON.stringify(r.path)} --sha256 ${r.sha256}`;
  return html`<section aria-labelledby="load-h"><h2 id="load-h">Load it</h2>
    <h3>TypeScript</h3><pre><code>${ts}</code></pre>
    <h3>Python</h3><pre><code>${py}</code></pre>
    <h3>Command line</h3><pre><code>${cli}</code></pre></section>`;
}

function action(base: string, verb: string, label: string, extra: Html | string = ''): Html {
  return html`<form method="post" action="${base}/${verb}" class="action">${extra}<button type="submit">${label}</button></form>`;
}

export function detailPage(d: DetailData, formats: string[]): Html {
  const r = d.record;
  const base = `/e/${seg(d.experiment)}/c/${seg(r.id)}`;
  const i = d.inspection;
  return html`<h1>Checkpoint ${r.id}</h1>
  <dl class="record">
    <dt>Experiment</dt><dd>${d.experiment}</dd>
    <dt>Epoch</dt><dd>${num(r.epoch)}</dd><dt>Step</dt><dd>${num(r.step)}</dd>
    <dt>Saved</dt><dd>${when(r.timestamp)}</dd><dt>Size</dt><dd>${bytes(r.size)} (${num(r.size)} bytes)</dd>
    <dt>Format</dt><dd>${r.format}${r.compression ? ` (${r.compression})` : ''}</dd>
    <dt>SHA-256</dt><dd><code>${r.sha256}</code></dd>
    <dt>Status</dt><dd><span class="status ${r.status}">${r.status}</span></dd>
    <dt>Flags</dt><dd>${r.isBest ? 'best ' : ''}${r.isLatest ? 'latest ' : ''}${r.protected ? 'protected' : ''}</dd>
    <dt>Tags</dt><dd>${r.tags.map((t) => html`<span class="tag">${t}</span> `)}</dd>
    <dt>Description</dt><dd>${r.description ?? ''}</dd>
    <dt>Backup</dt><dd>${r.backup ? html`${r.backup.file} (${when(r.backup.at)})` : 'none'}</dd>
    <dt>File</dt><dd><code>${r.path}</code> <a href="${base}/file" download>Download</a></dd>
  </dl>
  <section aria-labelledby="metrics-h"><h2 id="metrics-h">Metrics</h2>
    <table class="grid small"><tbody>${Object.entries(r.metrics).map(([k, v]) => html`<tr><th scope="row">${k}</th><td class="num">${num(v)}</td></tr>`)}</tbody></table>
  </section>
  ${r.config ? html`<section aria-labelledby="config-h"><h2 id="config-h">Config</h2><pre><code>${JSON.stringify(r.config, null, 2)}</code></pre></section>` : ''}
  <section aria-labelledby="actions-h"><h2 id="actions-h">Actions</h2>
    <div class="actions">
      ${action(base, 'verify', 'Verify')}
      ${r.protected ? action(base, 'unprotect', 'Unprotect') : action(base, 'protect', 'Protect')}
      ${action(base, 'backup', 'Back up')}
      ${r.backup ? action(base, 'restore', 'Restore from backup') : ''}
      ${action(base, 'tag', 'Add tag', html`<label>Tag <input name="tag" required></label> `)}
      ${r.tags.length > 0 ? action(base, 'untag', 'Remove tag', html`<label>Tag <select name="tag">${r.tags.map((t) => html`<option>${t}</option>`)}</select></label> `) : ''}
      ${action(base, 'describe', 'Describe', html`<label>Description <input name="description" value="${r.description ?? ''}"></label> `)}
      ${action(
        base,
        'export',
        'Export',
        html`<label>Folder <input name="folder" required pattern="[A-Za-z0-9_][A-Za-z0-9_.-]*" title="a folder name under the exports folder"></label>
        <label>Format <select name="format">${formats.map((f) => html`<option ${f === r.format ? 'selected' : ''}>${f}</option>`)}</select></label> `,
      )}
      <a class="button danger" href="${base}/delete">Delete…</a>
    </div>
  </section>
  <section aria-labelledby="tensors-h"><h2 id="tensors-h">Tensors</h2>
  ${
    i
      ? html`<p>${num(i.tensors.length)} tensors, ${num(i.parameterCount)} parameters, ${bytes(i.tensorBytes)}</p>
      <table class="grid small" aria-label="parameters by dtype"><thead><tr><th scope="col">dtype</th><th scope="col" class="num">tensors</th><th scope="col" class="num">parameters</th><th scope="col" class="num">bytes</th></tr></thead>
      <tbody>${d.byDtype.map((g) => html`<tr><td>${g.dtype}</td><td class="num">${num(g.tensors)}</td><td class="num">${num(g.parameters)}</td><td class="num">${bytes(g.bytes)}</td></tr>`)}</tbody></table>
      <table class="grid" aria-label="tensors"><thead><tr><th scope="col">Name</th><th scope="col">dtype</th><th scope="col">Shape</th><th scope="col" class="num">Parameters</th><th scope="col" class="num">Bytes</th></tr></thead>
      <tbody>${i.tensors.map((t) => html`<tr><td><code>${t.name}</code></td><td>${t.dtype}</td><td>[${t.shape.join(', ')}]</td><td class="num">${num(t.shape.reduce((a, b) => a * b, 1))}</td><td class="num">${bytes(t.byteLength)}</td></tr>`)}</tbody></table>
      ${Object.keys(i.metadata).length > 0 ? html`<h3>File metadata</h3><table class="grid small"><tbody>${Object.entries(i.metadata).map(([k, v]) => html`<tr><th scope="row">${k}</th><td><code>${v.length > 500 ? `${v.slice(0, 500)}…` : v}</code></td></tr>`)}</tbody></table>` : ''}`
      : html`<p class="notice error">${d.inspectionError ?? 'no tensors'}</p>`
  }
  </section>
  ${loadSnippets(d)}`;
}

export function deleteConfirmPage(d: DetailData): Html {
  const r = d.record;
  const base = `/e/${seg(d.experiment)}/c/${seg(r.id)}`;
  const guarded = r.protected || r.isBest || r.isLatest;
  return html`<h1>Delete ${r.id}?</h1>
  <p>The file (${bytes(r.size)}) and its backup are removed, and the record with them. This cannot be undone.</p>
  ${guarded ? html`<p class="notice error">This checkpoint is ${[r.protected && 'protected', r.isBest && 'the best', r.isLatest && 'the latest'].filter(Boolean).join(', ')}: tick the box to delete it all the same.</p>` : ''}
  <form method="post" action="${base}/delete">
    <input type="hidden" name="confirm" value="yes">
    ${guarded ? html`<label><input type="checkbox" name="force" value="yes"> Delete it anyway</label>` : ''}
    <button type="submit" class="danger">Delete</button> <a href="${base}">Cancel</a>
  </form>`;
}
