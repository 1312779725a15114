/**
 * Metric curves from the tracker, downsampled in the database (`metricBuckets`),
 * with the experiment's checkpoints as markers. Smoothing is an exponential
 * moving average, debiased: each smoothed value is a weighted mean of raw
 * values, so it never leaves the raw range; the raw curve is drawn beside it.
 */
import { InvalidArgumentError, maskCredentials, NotFoundError } from '@ckpt/core';
import { type Html, html, num, query, seg } from '../html.js';
import type { Workspace } from '../workspace.js';

export interface MetricsParams {
  experiments: string[];
  names: string[];
  from?: number;
  to?: number;
  log: boolean;
  /** Show every series' value at this step (the last point at or before it). */
  at?: number;
  /** 0 (off) to 0.99. */
  smooth: number;
  buckets: number;
}

const list = (text: string | undefined) =>
  (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const int = (text: string | undefined) => (text && /^\d+$/.test(text) ? Number(text) : undefined);

/** From the query: `names` and `experiments` as comma lists, or the form's repeated `n` and `x`. */
export function metricsParams(
  name: string,
  q: Record<string, string>,
  repeated: { n?: string[]; x?: string[] } = {},
): MetricsParams {
  const smooth = Number(q.smooth ?? '0');
  return {
    experiments: [...new Set([name, ...list(q.experiments), ...(repeated.x ?? [])])].slice(0, 8),
    names: [...new Set([...list(q.names), ...(repeated.n ?? [])])].slice(0, 8),
    ...(int(q.from) !== undefined ? { from: int(q.from) } : {}),
    ...(int(q.to) !== undefined ? { to: int(q.to) } : {}),
    log: q.log === '1',
    ...(int(q.at) !== undefined ? { at: int(q.at) } : {}),
    smooth: Number.isFinite(smooth) ? Math.min(0.99, Math.max(0, smooth)) : 0,
    buckets: Math.min(5000, Math.max(10, int(q.buckets) ?? 1000)),
  };
}

export interface Series {
  experiment: string;
  name: string;
  steps: number[];
  /** The value at each bucket's last step. */
  values: number[];
  min: number[];
  max: number[];
  smoothed: number[] | undefined;
}

export interface Marker {
  experiment: string;
  id: string;
  step: number;
  metrics: Record<string, number>;
}

export interface MetricsData {
  names: string[];
  series: Series[];
  markers: Marker[];
}

export function smooth(values: number[], weight: number): number[] {
  const out: number[] = [];
  let average = 0;
  let total = 0;
  for (const value of values) {
    if (!Number.isFinite(value)) {
      out.push(value);
      continue;
    }
    average = average * weight + value * (1 - weight);
    total = total * weight + (1 - weight);
    out.push(average / total); // debiased: a weighted mean of the values so far
  }
  return out;
}

export async function metricsData(ws: Workspace, p: MetricsParams): Promise<MetricsData> {
  if (p.names.some((n) => n.length > 200)) throw new InvalidArgumentError('a metric name is too long');
  const store = await ws.store();
  if (!store)
    throw new NotFoundError('no tracking database: metrics come from the tracker', {
      path: maskCredentials(ws.settings.tracker.database),
    });
  const available = new Set<string>();
  const series: Series[] = [];
  const markers: Marker[] = [];
  const ids = new Map<string, number | undefined>();
  for (const experiment of p.experiments) ids.set(experiment, await ws.trackedId(store, experiment));
  for (const id of ids.values()) {
    if (id === undefined) continue;
    for (const m of await store.metrics(id)) available.add(m.name);
  }
  const names = p.names.length > 0 ? p.names : [...available].sort().slice(0, 2);
  for (const [experiment, id] of ids) {
    if (id === undefined) {
      if (experiment === p.experiments[0])
        throw new NotFoundError(`the tracker has no experiment ${JSON.stringify(experiment)}`);
      continue;
    }
    for (const name of names) {
      const range = {
        ...(p.from !== undefined ? { fromStep: p.from } : {}),
        ...(p.to !== undefined ? { toStep: p.to } : {}),
      };
      const buckets = await store.metricBuckets(id, name, p.buckets, range);
      const values = buckets.map((b) => b.last);
      series.push({
        experiment,
        name,
        steps: buckets.map((b) => b.toStep),
        values,
        min: buckets.map((b) => b.min),
        max: buckets.map((b) => b.max),
        smoothed: p.smooth > 0 ? smooth(values, p.smooth) : undefined,
      });
    }
    if (ws.has(experiment)) {
      const records = await ws.read(experiment, (m) => m.list());
      for (const r of records) {
        if (r.step === null && r.epoch === null) continue;
        const step = r.step ?? r.epoch ?? 0;
        if ((p.from !== undefined && step < p.from) || (p.to !== undefined && step > p.to)) continue;
        markers.push({ experiment, id: r.id, step, metrics: r.metrics });
      }
    }
  }
  return { names: [...available].sort(), series, markers };
}

/** Each series' value at `step`: the last bucket ending at or before it (raw, not smoothed). */
export function valuesAt(
  series: Series[],
  step: number,
): Array<{ experiment: string; name: string; step: number; value: number } | undefined> {
  return series.map((s) => {
    let found: number | undefined;
    for (let i = 0; i < s.steps.length && (s.steps[i] as number) <= step; i++) found = i;
    return found === undefined
      ? undefined
      : { experiment: s.experiment, name: s.name, step: s.steps[found] as number, value: s.values[found] as number };
  });
}

export function metricsPage(name: string, p: MetricsParams, data: MetricsData, experiments: string[]): Html {
  const base = `/e/${seg(name)}/metrics`;
  const api = `/api/e/${seg(name)}/metrics${query({
    experiments: p.experiments.join(','),
    names: p.names.join(','),
    from: p.from,
    to: p.to,
    smooth: p.smooth || undefined,
    buckets: p.buckets,
  })}`;
  return html`<h1>Metrics of ${name}</h1>
  <form class="filters" method="get" action="${base}">
    <fieldset><legend>Metrics</legend>${data.names.map((m) => html`<label><input type="checkbox" name="n" value="${m}" ${p.names.includes(m) || (p.names.length === 0 && data.series.some((s) => s.name === m)) ? 'checked' : ''}> ${m}</label> `)}</fieldset>
    ${
      experiments.length > 1
        ? html`<fieldset><legend>Overlay</legend>${experiments
            .filter((e) => e !== name)
            .slice(0, 50)
            .map(
              (e) =>
                html`<label><input type="checkbox" name="x" value="${e}" ${p.experiments.includes(e) ? 'checked' : ''}> ${e}</label> `,
            )}</fieldset>`
        : ''
    }
    <label>From step <input name="from" inputmode="numeric" size="7" value="${p.from ?? ''}"></label>
    <label>to <input name="to" inputmode="numeric" size="7" value="${p.to ?? ''}"></label>
    <label><input type="checkbox" name="log" value="1" ${p.log ? 'checked' : ''}> log scale</label>
    <label>Values at step <input name="at" inputmode="numeric" size="7" value="${p.at ?? ''}"></label>
    <label>Smoothing <input type="range" name="smooth" min="0" max="0.99" step="0.01" value="${p.smooth}"></label>
    <button type="submit">Draw</button>
  </form>
  ${
    p.at !== undefined && data.series.length > 0
      ? html`<table class="grid small" aria-label="values at step ${p.at}"><caption>Values at step ${p.at} (the last point at or before it)</caption>
      <thead><tr><th scope="col">Metric</th><th scope="col">Experiment</th><th scope="col" class="num">Step</th><th scope="col" class="num">Value</th></tr></thead>
      <tbody>${valuesAt(data.series, p.at).map((v, i) => html`<tr><td>${data.series[i]?.name}</td><td>${data.series[i]?.experiment}</td><td class="num">${v ? num(v.step) : ''}</td><td class="num">${v ? num(v.value) : 'no point yet'}</td></tr>`)}</tbody></table>`
      : ''
  }
  ${
    data.series.length === 0
      ? html`<p>No metric points for ${name}.</p>`
      : [...new Set(data.series.map((s) => s.name))].map(
          (
            metric,
          ) => html`<figure class="chart" data-src="${api}" data-name="${metric}" data-log="${p.log ? '1' : '0'}">
          <figcaption>${metric}: ${data.series
            .filter((s) => s.name === metric)
            .map((s) => `${s.experiment} (${s.steps.length} points)`)
            .join(', ')}${p.smooth > 0 ? ', smoothed beside raw' : ''}; checkpoints marked</figcaption>
          <div class="plot" role="img" aria-label="${metric} by step"></div>
          <p class="hover" aria-live="polite"></p></figure>`,
        )
  }`;
}
