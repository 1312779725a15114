// ckpt ui: metric curves and size charts with uPlot. Checkpoints are drawn as
// markers on the curves; hovering a marker shows its checkpoint id.
(() => {
  const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];

  function hoverPlugin(figure, describe) {
    const out = figure.querySelector('.hover');
    return {
      hooks: {
        setCursor: (u) => {
          const i = u.cursor.idx;
          if (out) out.textContent = i == null ? '' : describe(u, i);
        },
      },
    };
  }

  function metricChart(figure, data) {
    const name = figure.dataset.name;
    const series = data.series.filter((s) => s.name === name);
    const steps = [...new Set(series.flatMap((s) => s.steps).concat(data.markers.map((m) => m.step)))].sort(
      (a, b) => a - b,
    );
    const at = new Map(steps.map((s, i) => [s, i]));
    const columns = [steps];
    const options = [{}];
    series.forEach((s, k) => {
      const color = palette[k % palette.length];
      const raw = new Array(steps.length).fill(null);
      s.steps.forEach((step, j) => {
        raw[at.get(step)] = s.values[j];
      });
      columns.push(raw);
      options.push({
        label: `${s.experiment}${s.smoothed ? ' (raw)' : ''}`,
        stroke: color,
        width: s.smoothed ? 1 : 2,
        alpha: s.smoothed ? 0.35 : 1,
        spanGaps: true,
      });
      if (s.smoothed) {
        const smooth = new Array(steps.length).fill(null);
        s.steps.forEach((step, j) => {
          smooth[at.get(step)] = s.smoothed[j];
        });
        columns.push(smooth);
        options.push({ label: `${s.experiment} (smoothed)`, stroke: color, width: 2, spanGaps: true });
      }
    });
    // Checkpoint markers: the checkpoint's own metric value, else nothing.
    const markerAt = new Map();
    const marks = new Array(steps.length).fill(null);
    for (const m of data.markers) {
      const value = m.metrics[name];
      if (typeof value !== 'number') continue;
      marks[at.get(m.step)] = value;
      markerAt.set(at.get(m.step), m);
    }
    columns.push(marks);
    options.push({ label: 'checkpoints', stroke: '#111', width: 0, points: { show: true, size: 9, fill: '#facc15' } });
    const describe = (_u, i) => {
      const m = markerAt.get(i);
      const values = series
        .map((s, k) => `${s.experiment}: ${columns[1 + k * (s.smoothed ? 2 : 1)][i] ?? '—'}`)
        .join(' · ');
      return `step ${steps[i]} · ${values}${m ? ` · checkpoint ${m.id}` : ''}`;
    };
    draw(figure, { series: options, scales: { y: { distr: figure.dataset.log === '1' ? 3 : 1 } } }, columns, describe);
    figure.dataset.markers = String(markerAt.size);
  }

  function sizeChart(figure, data) {
    const { time, bytes } = data.sizeOverTime;
    const describe = (_u, i) =>
      `${new Date(time[i] * 1000).toISOString().slice(0, 19)} · ${(bytes[i] / 1048576).toFixed(1)} MiB`;
    draw(figure, { series: [{}, { label: 'bytes kept', stroke: '#2563eb', width: 2 }] }, [time, bytes], describe);
  }

  function draw(figure, options, columns, describe) {
    const target = figure.querySelector('.plot');
    target.replaceChildren();
    const width = Math.max(320, Math.min(1100, figure.clientWidth || 800));
    new uPlot(
      {
        width,
        height: 300,
        ...options,
        scales: { x: { time: false }, ...(options.scales || {}) },
        plugins: [hoverPlugin(figure, describe)],
      },
      columns,
      target,
    );
    figure.dataset.drawn = '1';
  }

  async function drawAll() {
    const cache = new Map();
    for (const figure of document.querySelectorAll('figure.chart[data-src]')) {
      const src = figure.dataset.src;
      if (!cache.has(src))
        cache.set(
          src,
          fetch(src).then((r) => r.json()),
        );
      const data = await cache.get(src);
      if (data.error) {
        figure.querySelector('.plot').textContent = data.error.message;
        continue;
      }
      if (figure.dataset.kind === 'size') sizeChart(figure, data);
      else metricChart(figure, data);
    }
  }
  drawAll();
  document.addEventListener('ckpt:updated', drawAll);
})();
