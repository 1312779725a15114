/** The files the pages load, all from this package (no CDN): read once, served from memory. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const own = (name: string) => fileURLToPath(new URL(`../assets/${name}`, import.meta.url));

const SOURCES: Record<string, { path: string; type: string }> = {
  'app.js': { path: own('app.js'), type: 'text/javascript; charset=utf-8' },
  'charts.js': { path: own('charts.js'), type: 'text/javascript; charset=utf-8' },
  'app.css': { path: own('app.css'), type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': {
    path: require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'uPlot.min.css': { path: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export interface Asset {
  body: Buffer;
  type: string;
}

let loaded: Map<string, Asset> | undefined;

export function assets(): Map<string, Asset> {
  loaded ??= new Map(Object.entries(SOURCES).map(([name, s]) => [name, { body: readFileSync(s.path), type: s.type }]));
  return loaded;
}

/** What the browser is sent, by page kind: for the README and the closing note. */
export function assetSizes(): Record<string, number> {
  return Object.fromEntries([...assets()].map(([name, a]) => [name, a.body.length]));
}
