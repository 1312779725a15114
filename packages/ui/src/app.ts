/**
 * The routes: every page at a readable URL (its state in the query string),
 * the same data as JSON under `/api/`, and every action as a POST (or
 * DELETE) that redirects back with a notice. Pages and API share the data
 * functions in `pages/`.
 */

import { createReadStream, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  CkptError,
  ConflictError,
  InvalidArgumentError,
  maskCredentials,
  NotFoundError,
  readablePath,
  type Settings,
  VetoedError,
} from '@ckpt/core';
import { type Context, Hono } from 'hono';
import { assets } from './assets.js';
import { type Html, html, query, seg } from './html.js';
import { events } from './live.js';
import { checkpointsData, checkpointsPage, checkpointsParams } from './pages/checkpoints.js';
import { compareData, comparePage, compareParams } from './pages/compare.js';
import { deleteConfirmPage, detailData, detailPage } from './pages/detail.js';
import { experimentsData, experimentsPage, experimentsParams } from './pages/experiments.js';
import { type Frame, page } from './pages/layout.js';
import { metricsData, metricsPage, metricsParams } from './pages/metrics.js';
import { keepParams, retentionData, retentionPage, retentionPolicies } from './pages/retention.js';
import { saveSettings, settingsFromForm, settingsPage } from './pages/settings.js';
import { summaryData, summaryPage } from './pages/summary.js';
import { saveUpload, uploadInput, uploadPage } from './pages/upload.js';
import { accessGuard, type Guard, sameOriginGuard } from './security.js';
import { isExperimentName, type Workspace } from './workspace.js';

export interface AppOptions {
  workspace: Workspace;
  guard: Guard;
  /** Exports go into folders under this one. */
  exportRoot: string;
  /** The config file the settings page writes. */
  configPath: string;
  /** Settings read again (same flags, environment and file) after the page saves. */
  reloadSettings: () => Settings;
}

/** HTTP status for a ckpt error. */
function statusOf(error: unknown): 400 | 404 | 409 | 500 {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof InvalidArgumentError) return 400;
  if (error instanceof ConflictError || error instanceof VetoedError) return 409;
  if (error instanceof CkptError && error.code === 'CKPT_FORMAT') return 400;
  return 500;
}

const isPartial = (c: Context) => c.req.header('x-ckpt-partial') === '1';

/** Renders a page, whole or (for a live update) its `<main>` alone. */
async function render(c: Context, frame: Frame, body: Html, status: 200 | 400 | 404 | 409 | 500 = 200) {
  const notice = c.req.query('ok') ?? c.req.query('error');
  const withNotice: Frame = notice
    ? { ...frame, notice: { kind: c.req.query('ok') !== undefined ? 'ok' : 'error', text: notice.slice(0, 500) } }
    : frame;
  c.header('cache-control', 'no-store');
  return c.html(await page(withNotice, body, isPartial(c)), status);
}

/** Back to `to` with a notice in the query string. */
function back(c: Context, to: string, notice: { ok?: string; error?: string }) {
  const [path, search] = to.split('?');
  const params = Object.fromEntries(new URLSearchParams(search ?? ''));
  return c.redirect(`${path}${query({ ...params, ok: notice.ok, error: notice.error })}`, 303);
}

/** The experiment named in the path: one folder name, which must exist. */
function experimentOf(c: Context, ws: Workspace): string {
  const name = c.req.param('name') ?? '';
  if (!isExperimentName(name))
    throw new InvalidArgumentError(`not an experiment name: ${JSON.stringify(name.slice(0, 100))}`);
  ws.folder(name);
  return name;
}

async function formOf(c: Context): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(body)) if (typeof value === 'string') out[key] = value;
  return out;
}

const ACTIONS = ['verify', 'protect', 'unprotect', 'backup', 'restore', 'tag', 'untag', 'describe', 'export'] as const;
type Action = (typeof ACTIONS)[number];

/** A folder name under the export root: one plain segment. */
function exportFolder(root: string, name: string | undefined): string {
  if (!name || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/.test(name) || name.includes('..')) {
    throw new InvalidArgumentError('export: the folder must be one plain name (letters, digits, _ . -)', {
      found: JSON.stringify((name ?? '').slice(0, 100)),
    });
  }
  return join(root, name);
}

/** Runs one action on one checkpoint; returns what to tell the user. */
async function runAction(
  ws: Workspace,
  exportRoot: string,
  name: string,
  id: string,
  action: Action,
  form: Record<string, string>,
): Promise<{ text: string; result: unknown }> {
  return ws.change(name, async (m) => {
    switch (action) {
      case 'verify': {
        const [result] = await m.verify(id);
        return { text: `${id}: ${result?.status}`, result };
      }
      case 'protect':
        return { text: `${id} is protected`, result: await m.protect(id) };
      case 'unprotect':
        return { text: `${id} is no longer protected`, result: await m.unprotect(id) };
      case 'backup':
        return { text: `${id} is backed up`, result: await m.backup(id) };
      case 'restore':
        return { text: `${id} is restored from its backup`, result: await m.restore(id) };
      case 'tag': {
        const tag = (form.tag ?? '').trim();
        if (!tag || tag.length > 200) throw new InvalidArgumentError('tag: give a tag of 1 to 200 characters');
        return { text: `${id} is tagged ${tag}`, result: await m.tag(id, tag) };
      }
      case 'untag':
        return { text: `${id} is no longer tagged ${form.tag ?? ''}`, result: await m.untag(id, form.tag ?? '') };
      case 'describe': {
        const description = (form.description ?? '').slice(0, 10_000);
        return { text: `${id} is described`, result: await m.describe(id, description) };
      }
      case 'export': {
        const destination = exportFolder(exportRoot, form.folder);
        await mkdir(exportRoot, { recursive: true });
        const format = form.format || undefined;
        const result = await m.export(id, destination, format ? { format } : {});
        return { text: `${id} exported to ${result.destination} (${result.format})`, result };
      }
    }
  });
}

export function buildApp(options: AppOptions): Hono {
  const { workspace: ws, guard, exportRoot, configPath } = options;
  const app = new Hono();
  app.use('*', accessGuard(guard));
  app.use('*', sameOriginGuard());
  app.use('*', async (c, next) => {
    await next();
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'same-origin');
    c.header('x-frame-options', 'DENY');
    c.header(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    );
  });

  app.onError(async (error, c) => {
    const status = statusOf(error);
    const code = error instanceof CkptError ? error.code : 'CKPT_INTERNAL';
    const message = error instanceof CkptError || status !== 500 ? error.message : `internal error: ${error.message}`;
    if (c.req.path.startsWith('/api/')) return c.json({ error: { code, message } }, status);
    const body = html`<h1>${status === 404 ? 'Not found' : 'Something went wrong'}</h1><p class="notice error" role="alert">${code}: ${message}</p><p><a href="/experiments">Experiments</a></p>`;
    return render(c, { title: 'Error' }, body, status);
  });

  // ------------------------------------------------------------ assets, live
  app.get('/assets/:file', (c) => {
    const asset = assets().get(c.req.param('file'));
    if (!asset) return c.text('no such asset', 404);
    c.header('content-type', asset.type);
    c.header('cache-control', 'public, max-age=3600');
    return c.body(new Uint8Array(asset.body));
  });
  app.get('/api/events', (c) => events(c, ws));

  // ----------------------------------------------------------------- pages
  app.get('/', (c) => c.redirect('/experiments'));
  app.get('/experiments', async (c) => {
    const p = experimentsParams(c.req.query());
    return render(
      c,
      { title: 'Experiments', current: 'experiments' },
      experimentsPage(await experimentsData(ws, p), p),
    );
  });
  app.get('/api/experiments', async (c) => c.json(await experimentsData(ws, experimentsParams(c.req.query()))));

  app.get('/e/:name', async (c) => {
    const name = experimentOf(c, ws);
    const p = checkpointsParams(c.req.query());
    const frame = { title: name, experiment: name, current: 'checkpoints' };
    return render(c, frame, checkpointsPage(await checkpointsData(ws, name, p), p));
  });
  app.get('/api/e/:name/checkpoints', async (c) => {
    const name = experimentOf(c, ws);
    return c.json(await checkpointsData(ws, name, checkpointsParams(c.req.query())));
  });

  app.get('/e/:name/c/:id', async (c) => {
    const name = experimentOf(c, ws);
    const data = await detailData(ws, name, c.req.param('id'));
    const frame = { title: data.record.id, experiment: name, current: 'checkpoints' };
    return render(
      c,
      frame,
      detailPage(
        data,
        ws.registry.list().map((b) => b.name),
      ),
    );
  });
  app.get('/api/e/:name/c/:id', async (c) => c.json(await detailData(ws, experimentOf(c, ws), c.req.param('id'))));

  app.get('/e/:name/c/:id/file', async (c) => {
    const name = experimentOf(c, ws);
    const record = await ws.read(name, async (m) => {
      const found = await m.get(c.req.param('id'));
      if (!found) throw new NotFoundError(`no checkpoint ${JSON.stringify(c.req.param('id'))}`);
      return found;
    });
    const path = readablePath(ws.folder(name), record.file); // confined: a link out of the folder is refused
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info) throw new NotFoundError(`the file of ${record.id} is missing: ${record.file}`, { path });
    const size = info.size;
    c.header('content-type', 'application/octet-stream');
    c.header('content-length', String(size));
    c.header('content-disposition', `attachment; filename="${record.file.replace(/[^A-Za-z0-9_.-]/g, '_')}"`);
    return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream);
  });

  app.get('/e/:name/c/:id/delete', async (c) => {
    const name = experimentOf(c, ws);
    const data = await detailData(ws, name, c.req.param('id'));
    return render(c, { title: `Delete ${data.record.id}`, experiment: name }, deleteConfirmPage(data));
  });
  app.post('/e/:name/c/:id/delete', async (c) => {
    const name = experimentOf(c, ws);
    const id = c.req.param('id');
    const form = await formOf(c);
    const detail = `/e/${seg(name)}/c/${seg(id)}`;
    if (form.confirm !== 'yes') return back(c, `${detail}/delete`, { error: 'deletion was not confirmed' });
    try {
      await deleteCheckpoint(ws, name, id, form.force === 'yes');
    } catch (error) {
      if (!(error instanceof CkptError) || statusOf(error) === 500) throw error;
      return back(c, `${detail}/delete`, { error: `${error.code}: ${error.message}` });
    }
    return back(c, `/e/${seg(name)}`, { ok: `${id} was deleted` });
  });
  app.delete('/api/e/:name/c/:id', async (c) => {
    const name = experimentOf(c, ws);
    const deleted = await deleteCheckpoint(ws, name, c.req.param('id'), c.req.query('force') === '1');
    return c.json({ deleted });
  });

  for (const action of ACTIONS) {
    app.post(`/e/:name/c/:id/${action}`, async (c) => {
      const name = experimentOf(c, ws);
      const id = c.req.param('id');
      const detail = `/e/${seg(name)}/c/${seg(id)}`;
      try {
        const { text } = await runAction(ws, exportRoot, name, id, action, await formOf(c));
        return back(c, detail, { ok: text });
      } catch (error) {
        if (!(error instanceof CkptError) || statusOf(error) === 500) throw error;
        return back(c, detail, { error: `${error.code}: ${error.message}` });
      }
    });
    app.post(`/api/e/:name/c/:id/${action}`, async (c) => {
      const name = experimentOf(c, ws);
      const form = c.req.header('content-type')?.includes('json') ? await c.req.json() : await formOf(c);
      const { result } = await runAction(
        ws,
        exportRoot,
        name,
        c.req.param('id'),
        action,
        form as Record<string, string>,
      );
      return c.json({ result });
    });
  }

  app.post('/e/:name/verify', async (c) => {
    const name = experimentOf(c, ws);
    const body = await c.req.parseBody({ all: true });
    const ids = [body.ids]
      .flat()
      .filter((v): v is string => typeof v === 'string')
      .slice(0, 10_000);
    if (ids.length === 0) return back(c, `/e/${seg(name)}`, { error: 'select checkpoints to verify' });
    const results = await ws.change(name, async (m) => {
      const out = [];
      for (const id of ids) out.push(...(await m.verify(id)));
      return out;
    });
    const bad = results.filter((r) => r.status !== 'ok');
    return back(c, `/e/${seg(name)}?sel=${ids.join(',')}`, {
      ...(bad.length === 0
        ? { ok: `${results.length} verified, all ok` }
        : {
            error: `${bad.length} of ${results.length} failed: ${bad
              .map((r) => `${r.id} ${r.status}`)
              .slice(0, 5)
              .join(', ')}`,
          }),
    });
  });

  app.get('/e/:name/compare', async (c) => {
    const name = experimentOf(c, ws);
    const p = compareParams(c.req.queries('ids') ?? [], c.req.query());
    const frame = { title: `Compare ${p.ids.join(', ')}`, experiment: name, current: 'checkpoints' };
    return render(c, frame, comparePage(name, await compareData(ws, name, p), p));
  });
  app.get('/api/e/:name/compare', async (c) => {
    const name = experimentOf(c, ws);
    return c.json(await compareData(ws, name, compareParams(c.req.queries('ids') ?? [], c.req.query())));
  });

  app.get('/e/:name/metrics', async (c) => {
    const name = experimentOf(c, ws);
    const p = metricsParams(name, c.req.query(), { n: c.req.queries('n') ?? [], x: c.req.queries('x') ?? [] });
    const frame = { title: `Metrics of ${name}`, experiment: name, current: 'metrics', charts: true };
    return render(c, frame, metricsPage(name, p, await metricsData(ws, p), ws.experiments()));
  });
  app.get('/api/e/:name/metrics', async (c) => {
    const name = experimentOf(c, ws);
    const p = metricsParams(name, c.req.query(), { n: c.req.queries('n') ?? [], x: c.req.queries('x') ?? [] });
    return c.json(await metricsData(ws, p));
  });

  app.get('/e/:name/retention', async (c) => {
    const name = experimentOf(c, ws);
    const keep = keepParams(c.req.query(), ws.settings.checkpoints.retention);
    const frame = { title: `Retention of ${name}`, experiment: name, current: 'retention' };
    return render(c, frame, retentionPage(await retentionData(ws, name, keep), keep));
  });
  app.get('/api/e/:name/retention', async (c) => {
    const name = experimentOf(c, ws);
    return c.json(await retentionData(ws, name, keepParams(c.req.query(), ws.settings.checkpoints.retention)));
  });
  app.post('/e/:name/retention', async (c) => {
    const name = experimentOf(c, ws);
    const form = await formOf(c);
    const keep = keepParams(form, ws.settings.checkpoints.retention);
    const to = `/e/${seg(name)}/retention?last=${keep.last}&best=${keep.best}`;
    if (form.confirm !== 'yes') return back(c, to, { error: 'retention was not confirmed' });
    const removed = await ws.change(name, (m) => m.applyRetention(), { retention: retentionPolicies(keep) });
    return back(c, to, { ok: `${removed.length} checkpoint${removed.length === 1 ? '' : 's'} deleted` });
  });
  app.post('/api/e/:name/retention/apply', async (c) => {
    const name = experimentOf(c, ws);
    const keep = keepParams(c.req.query(), ws.settings.checkpoints.retention);
    const removed = await ws.change(name, (m) => m.applyRetention(), { retention: retentionPolicies(keep) });
    return c.json({ deleted: removed.map((r) => r.id) });
  });

  app.get('/e/:name/summary', async (c) => {
    const name = experimentOf(c, ws);
    const frame = { title: `Summary of ${name}`, experiment: name, current: 'summary', charts: true };
    return render(c, frame, summaryPage(name, await summaryData(ws, name)));
  });
  app.get('/api/e/:name/summary', async (c) => c.json(await summaryData(ws, experimentOf(c, ws))));

  app.get('/e/:name/upload', (c) => {
    const name = experimentOf(c, ws);
    return render(c, { title: `Upload to ${name}`, experiment: name, current: 'upload' }, uploadPage(name));
  });
  app.post('/e/:name/upload', async (c) => {
    const name = experimentOf(c, ws);
    try {
      const outcome = await saveUpload(ws, name, uploadInput(await c.req.formData()));
      if (outcome.status !== 'saved')
        return back(c, `/e/${seg(name)}/upload`, { error: `not saved: ${outcome.status}` });
      return back(c, `/e/${seg(name)}/c/${seg(outcome.record.id)}`, { ok: `saved as ${outcome.record.id}` });
    } catch (error) {
      if (!(error instanceof CkptError) || statusOf(error) === 500) throw error;
      return back(c, `/e/${seg(name)}/upload`, { error: `${error.code}: ${error.message}` });
    }
  });
  app.post('/api/e/:name/upload', async (c) => {
    const name = experimentOf(c, ws);
    const outcome = await saveUpload(ws, name, uploadInput(await c.req.formData()));
    return c.json(outcome);
  });

  app.get('/settings', (c) =>
    render(c, { title: 'Settings', current: 'settings' }, settingsPage(ws.settings, configPath)),
  );
  app.get('/api/settings', (c) =>
    c.json({
      path: configPath,
      // A database URL's password stays on the server.
      settings: {
        ...ws.settings,
        tracker: { ...ws.settings.tracker, database: maskCredentials(ws.settings.tracker.database) },
      },
    }),
  );
  app.post('/settings', async (c) => {
    try {
      await saveSettings(configPath, settingsFromForm(await formOf(c)));
      await ws.replaceSettings(options.reloadSettings());
    } catch (error) {
      if (!(error instanceof CkptError) || statusOf(error) === 500) throw error;
      return back(c, '/settings', { error: `${error.code}: ${error.message}` });
    }
    return back(c, '/settings', { ok: `saved to ${configPath}` });
  });

  app.notFound((c) => {
    if (c.req.path.startsWith('/api/'))
      return c.json({ error: { code: 'CKPT_NOT_FOUND', message: `no route ${c.req.path}` } }, 404);
    return render(
      c,
      { title: 'Not found' },
      html`<h1>Not found</h1><p>Nothing is at this address. <a href="/experiments">Experiments</a></p>`,
      404,
    );
  });
  return app;
}

/** Deletes as the command line does: protected, best and latest checkpoints need `force`. */
async function deleteCheckpoint(ws: Workspace, name: string, id: string, force: boolean): Promise<string> {
  return ws.change(name, async (m) => {
    const record = await m.get(id);
    if (!record) throw new NotFoundError(`no checkpoint ${JSON.stringify(id)} in ${name}`);
    if ((record.isBest || record.isLatest) && !force) {
      throw new ConflictError(
        `${record.id} is the ${record.isBest ? 'best' : 'latest'} checkpoint: confirm with force to delete it`,
      );
    }
    return (await m.delete(record.id, { force })).id;
  });
}
