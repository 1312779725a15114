/** An experiment's summary, the database's statistics, and the folder's size over time. */
import type { Statistics, Summary } from '@ckpt/core';
import { bytes, type Html, html, num, seg } from '../html.js';
import type { Workspace } from '../workspace.js';

export interface SummaryData {
  summary: Summary;
  statistics: Statistics | undefined;
  /** Cumulative bytes of the checkpoints kept, in the order they were saved. */
  sizeOverTime: { time: number[]; bytes: number[] };
}

export async function summaryData(ws: Workspace, name: string): Promise<SummaryData> {
  const { summary, records } = await ws.read(name, async (m) => ({
    summary: await m.summary(),
    records: await m.list(),
  }));
  let total = 0;
  const time: number[] = [];
  const sizes: number[] = [];
  for (const r of records) {
    total += r.size;
    time.push(Math.floor(new Date(r.timestamp).getTime() / 1000));
    sizes.push(total);
  }
  const store = await ws.store();
  return { summary, statistics: await store?.statistics(), sizeOverTime: { time, bytes: sizes } };
}

export function summaryPage(name: string, d: SummaryData): Html {
  const s = d.summary;
  const base = `/e/${seg(name)}`;
  return html`<h1>Summary of ${name}</h1>
  <dl class="record">
    <dt>Model</dt><dd>${s.model}</dd><dt>Folder</dt><dd><code>${s.folder}</code></dd>
    <dt>Checkpoints</dt><dd>${num(s.count)} (${bytes(s.totalSize)})</dd>
    <dt>Best</dt><dd>${
      s.best
        ? html`<a href="${base}/c/${seg(s.best.id)}">${s.best.id}</a> ${Object.entries(s.best.metrics)
            .map(([k, v]) => `${k} ${num(v)}`)
            .join(', ')}`
        : 'none'
    }</dd>
    <dt>Latest</dt><dd>${s.latest ? html`<a href="${base}/c/${seg(s.latest.id)}">${s.latest.id}</a>` : 'none'}</dd>
    <dt>Protected</dt><dd>${num(s.protected)}</dd><dt>Backed up</dt><dd>${num(s.backedUp)}</dd>
    <dt>Status</dt><dd>${Object.entries(s.byStatus)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}</dd>
    <dt>Tags</dt><dd>${Object.entries(s.byTag).map(([k, v]) => html`<span class="tag">${k}</span> ${v} `)}</dd>
  </dl>
  ${s.problems.length > 0 ? html`<h2>Problems</h2><ul>${s.problems.map((p) => html`<li><a href="${base}/c/${seg(p.id)}">${p.id}</a>: ${p.status}</li>`)}</ul>` : ''}
  <figure class="chart" data-src="/api/e/${seg(name)}/summary" data-kind="size"><figcaption>Size of the checkpoints kept, over time</figcaption><div class="plot" role="img" aria-label="total size over time"></div><p class="hover" aria-live="polite"></p></figure>
  ${
    d.statistics
      ? html`<h2>Tracking database</h2><dl class="record">
      <dt>Experiments</dt><dd>${num(d.statistics.experiments.total)} (${Object.entries(
        d.statistics.experiments.byStatus,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})</dd>
      <dt>Checkpoints</dt><dd>${num(d.statistics.checkpoints.total)} (${bytes(d.statistics.checkpoints.bytes)})</dd>
      <dt>Metric points</dt><dd>${num(d.statistics.metrics.points)} in ${num(d.statistics.metrics.series)} series</dd></dl>`
      : ''
  }`;
}
