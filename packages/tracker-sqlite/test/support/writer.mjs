/**
 * A process logging metrics, for the concurrency and crash tests.
 *   node writer.mjs <database> <experiment> <points> <batch>   logs <points> points (steps 0..), then ends
 *   node writer.mjs <database> <experiment> forever <batch>    logs until killed, continuing the steps
 * Prints `flushed <n>` after each batch. Values equal steps.
 */
import { ExperimentTracker } from '../../dist/index.js';

const [database, name, points, batch] = process.argv.slice(2);
const tracker = ExperimentTracker.open({
  database,
  name,
  store: { maxBuffered: Number(batch), flushIntervalMs: 0, busyTimeoutMs: 30_000 },
});
const start = (tracker.store.metrics(tracker.id).find((m) => m.name === 'x')?.lastStep ?? -1) + 1;
const total = points === 'forever' ? Number.POSITIVE_INFINITY : Number(points);
for (let i = 0; i < total; i++) {
  tracker.logMetric('x', start + i); // no step: the next one, decided when the batch is written
  if ((i + 1) % Number(batch) === 0) process.stdout.write(`flushed ${i + 1}\n`);
}
tracker.end();
