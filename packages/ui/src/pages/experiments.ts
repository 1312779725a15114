/** The experiments: from the tracking database when there is one, and every experiment folder. */
import type { ExperimentQuery, TrackingDatabase } from '@ckpt/core';
import { type Html, html, num, query, seg, when } from '../html.js';
import type { Workspace } from '../workspace.js';

export const EXPERIMENTS_PER_PAGE = 100;

export interface ExperimentsParams {
  project?: string;
  tag?: string;
  status?: string;
  sort?: string;
  order?: 'asc' | 'desc';
  page: number;
}

export function experimentsParams(q: Record<string, string>): ExperimentsParams {
  const page = Math.max(1, Math.min(1_000_000, Number.parseInt(q.page ?? '1', 10) || 1));
  return {
    ...(q.project ? { project: q.project } : {}),
    ...(q.tag ? { tag: q.tag } : {}),
    ...(q.status ? { status: q.status } : {}),
    ...(q.sort ? { sort: q.sort } : {}),
    order: q.order === 'asc' ? 'asc' : 'desc',
    page,
  };
}

export interface ExperimentRowView {
  name: string;
  project: string | undefined;
  status: string | undefined;
  started: string | undefined;
  durationMs: number | undefined;
  tags: string[];
  /** The best value of the monitored metric (`checkpoints.monitor`, by `checkpoints.mode`). */
  best: number | undefined;
  /** Has a checkpoint folder here. */
  folder: boolean;
}

export interface ExperimentsData {
  tracked: boolean;
  /** The metric the best column shows, and which way is better. */
  monitor?: { name: string; mode: 'min' | 'max' };
  /** Experiment folders the tracking database does not know. */
  untracked: string[];
  total: number;
  page: number;
  pages: number;
  experiments: ExperimentRowView[];
}

/** The data behind the page (and `/api/experiments`). */
export async function experimentsData(ws: Workspace, p: ExperimentsParams): Promise<ExperimentsData> {
  const folders = new Set(ws.experiments());
  const store = await ws.store();
  if (!store) {
    const names = [...folders];
    const start = (p.page - 1) * EXPERIMENTS_PER_PAGE;
    return {
      tracked: false,
      untracked: [],
      total: names.length,
      page: p.page,
      pages: Math.max(1, Math.ceil(names.length / EXPERIMENTS_PER_PAGE)),
      experiments: names.slice(start, start + EXPERIMENTS_PER_PAGE).map((name) => ({
        name,
        project: undefined,
        status: undefined,
        started: undefined,
        durationMs: undefined,
        tags: [],
        best: undefined,
        folder: true,
      })),
    };
  }
  const q: ExperimentQuery = {
    ...(p.project ? { project: p.project } : {}),
    ...(p.tag ? { tag: p.tag } : {}),
    ...(p.status ? { status: p.status as ExperimentQuery['status'] } : {}),
    sortBy: p.sort ?? 'started',
    order: p.order ?? 'desc',
    limit: EXPERIMENTS_PER_PAGE,
    offset: (p.page - 1) * EXPERIMENTS_PER_PAGE,
  };
  const found = await store.experiments(q);
  const { monitor, mode } = ws.settings.checkpoints;
  const bestOf = async (id: number) => {
    const summary = (await store.metrics(id)).find((m) => m.name === monitor);
    return mode === 'max' ? summary?.max : summary?.min;
  };
  return {
    tracked: true,
    monitor: { name: monitor, mode },
    untracked: await untrackedFolders(ws, store, folders),
    total: found.total,
    page: p.page,
    pages: Math.max(1, Math.ceil(found.total / EXPERIMENTS_PER_PAGE)),
    experiments: await Promise.all(
      found.experiments.map(async (e) => ({
        name: e.name,
        project: e.project,
        status: e.status,
        started: e.startedAt.toISOString(),
        durationMs: e.endedAt ? e.endedAt.getTime() - e.startedAt.getTime() : undefined,
        tags: e.tags,
        best: await bestOf(e.id),
        folder: folders.has(e.name),
      })),
    ),
  };
}

/** Folders are few; the tracker may hold thousands of experiments: look each folder up. */
async function untrackedFolders(ws: Workspace, store: TrackingDatabase, folders: Set<string>): Promise<string[]> {
  const untracked: string[] = [];
  for (const name of folders) if ((await ws.trackedId(store, name)) === undefined) untracked.push(name);
  return untracked;
}

function duration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function experimentsPage(data: ExperimentsData, p: ExperimentsParams): Html {
  const sortLink = (key: string, label: string) => {
    const active = (p.sort ?? 'started') === key;
    const order = active && p.order === 'desc' ? 'asc' : 'desc';
    return html`<a href="/experiments${query({ ...p, sort: key, order, page: 1 })}" ${active ? html`aria-sort="${p.order === 'asc' ? 'ascending' : 'descending'}"` : ''}>${label}</a>`;
  };
  return html`<h1>Experiments</h1>
  ${
    data.tracked
      ? html`<form class="filters" method="get" action="/experiments" role="search">
      <label>Project <input name="project" value="${p.project ?? ''}"></label>
      <label>Tag <input name="tag" value="${p.tag ?? ''}"></label>
      <label>Status <select name="status">
        ${['', 'running', 'completed', 'failed', 'crashed'].map((s) => html`<option value="${s}" ${p.status === s ? 'selected' : ''}>${s || 'any'}</option>`)}
      </select></label>
      <button type="submit">Filter</button></form>`
      : html`<p class="hint">No tracking database: experiments are the folders under the checkpoint directory.</p>`
  }
  <p class="count">${data.total.toLocaleString('en-US')} experiment${data.total === 1 ? '' : 's'}</p>
  <table class="grid" aria-label="experiments">
    <thead><tr><th scope="col">${sortLink('name', 'Name')}</th><th scope="col">Project</th><th scope="col">Status</th>
    <th scope="col">${sortLink('started', 'Started')}</th><th scope="col">${sortLink('duration', 'Duration')}</th><th scope="col" class="num">${data.monitor ? sortLink(`metric:${data.monitor.name}${data.monitor.mode === 'max' ? ':max' : ''}`, `best ${data.monitor.name}`) : 'best'}</th><th scope="col">Tags</th></tr></thead>
    <tbody>${data.experiments.map(
      (e) => html`<tr>
      <td>${e.folder ? html`<a href="/e/${seg(e.name)}">${e.name}</a>` : e.name}</td>
      <td>${e.project ?? ''}</td><td>${e.status ? html`<span class="status ${e.status}">${e.status}</span>` : ''}</td>
      <td>${when(e.started)}</td><td>${duration(e.durationMs)}</td><td class="num">${num(e.best)}</td>
      <td>${e.tags.map((t) => html`<span class="tag">${t}</span> `)}</td></tr>`,
    )}</tbody>
  </table>
  ${pager('/experiments', p, data.page, data.pages)}
  ${
    data.untracked.length > 0
      ? html`<h2>Also in the checkpoint folder</h2><p class="hint">These experiments have checkpoints but no record in the tracking database.</p>
      <ul class="folders">${data.untracked.map((name) => html`<li><a href="/e/${seg(name)}">${name}</a></li>`)}</ul>`
      : ''
  }`;
}

export function pager(path: string, params: object, page: number, pages: number): Html {
  if (pages <= 1) return html``;
  const at = (n: number) => `${path}${query({ ...(params as Record<string, string>), page: n })}`;
  return html`<nav class="pager" aria-label="pages">
    ${page > 1 ? html`<a href="${at(page - 1)}" rel="prev">Previous</a>` : ''}
    <span>page ${page} of ${pages}</span>
    ${page < pages ? html`<a href="${at(page + 1)}" rel="next">Next</a>` : ''}</nav>`;
}
