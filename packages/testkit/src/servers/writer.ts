/**
 * A training process in miniature, for the multi-process tests of
 * `describeTrackerServer`: opens the database with the tracker module named
 * on the command line and logs points in batches, printing `acked <n>` each
 * time a batch is stored.
 *
 *     node writer.js <module> <url> <json: { experiment, series, points, batch, stepOffset }>
 */
import type { ConnectTracking } from '@ckpt/core';

const [module, url, json] = process.argv.slice(2) as [string, string, string];
const job = JSON.parse(json) as {
  experiment: string;
  series: string;
  points: number;
  batch: number;
  stepOffset: number;
  /** false: end without close(), as a script that forgets it. */
  close?: boolean;
};
const { connect } = (await import(module)) as { connect: ConnectTracking };
const db = await connect(url, { maxBuffered: job.batch, flushIntervalMs: 0 });
const experiment = await db.startExperiment({ name: job.experiment });
let acked = 0;
for (let i = 0; i < job.points; i++) {
  db.logMetric(experiment.id, job.series, i / job.points, job.stepOffset + i);
  if ((i + 1) % job.batch === 0) {
    await db.flush();
    acked = i + 1;
    process.stdout.write(`acked ${acked}\n`);
  }
}
if (job.close !== false) await db.close();
process.stdout.write(`done ${job.points}\n`);
