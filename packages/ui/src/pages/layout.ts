/** The page frame: navigation, the live region, the scripts. */
import { type Html, html, seg } from '../html.js';

export interface Frame {
  title: string;
  /** The experiment the page is about, for the navigation and live updates. */
  experiment?: string;
  /** Which navigation entry is current. */
  current?: string;
  /** Extra scripts (uPlot on chart pages). */
  charts?: boolean;
  /** A message shown at the top (an action's result). */
  notice?: { kind: 'ok' | 'error'; text: string };
}

function nav(frame: Frame): Html {
  const e = frame.experiment;
  const link = (href: string, label: string, key: string) =>
    html`<a href="${href}" ${frame.current === key ? html`aria-current="page"` : ''}>${label}</a>`;
  return html`<nav aria-label="main">
    ${link('/experiments', 'Experiments', 'experiments')} ${link('/settings', 'Settings', 'settings')}
    ${
      e
        ? html`<span class="sep" aria-hidden="true">/</span><strong>${e}</strong>
          ${link(`/e/${seg(e)}`, 'Checkpoints', 'checkpoints')} ${link(`/e/${seg(e)}/metrics`, 'Metrics', 'metrics')}
          ${link(`/e/${seg(e)}/summary`, 'Summary', 'summary')} ${link(`/e/${seg(e)}/retention`, 'Retention', 'retention')}
          ${link(`/e/${seg(e)}/upload`, 'Upload', 'upload')}`
        : ''
    }
  </nav>`;
}

/** The `<main>` content alone (for live updates), or the whole page. */
export function page(frame: Frame, body: Html, partial: boolean): Html {
  const notice = frame.notice
    ? html`<p class="notice ${frame.notice.kind}" role="${frame.notice.kind === 'error' ? 'alert' : 'status'}">${frame.notice.text}</p>`
    : '';
  const main = html`${notice}${body}`;
  if (partial) return main;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · ckpt</title>
<link rel="stylesheet" href="/assets/app.css">
${frame.charts ? html`<link rel="stylesheet" href="/assets/uPlot.min.css"><script src="/assets/uPlot.iife.min.js" defer></script><script src="/assets/charts.js" defer></script>` : ''}
<script src="/assets/app.js" defer></script>
</head>
<body ${frame.experiment ? html`data-experiment="${frame.experiment}"` : ''}>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/">ckpt</a>${nav(frame)}</header>
<main id="main" tabindex="-1">${main}</main>
</body>
</html>`;
}
