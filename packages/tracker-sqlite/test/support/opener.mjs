/**
 * A process that opens the database again and again, for the open-under-contention test.
 *   node opener.mjs <database> <times> <start>
 * It waits until the clock reads <start> (ms since the epoch), so that several openers start at one instant.
 * Each round opens a TrackingStore (default busy timeout), reads, starts an experiment of its own, closes.
 * Prints `ok <times>` at the end, or the first error (its code and message) on stderr with exit 1.
 */
import { TrackingStore } from '../../dist/index.js';

const [database, times, start] = process.argv.slice(2);
while (Date.now() < Number(start)) {
  // Spin: a timer would spread the openers over milliseconds.
}
for (let i = 0; i < Number(times); i++) {
  try {
    const store = TrackingStore.open(database);
    store.statistics();
    store.startExperiment({ name: `opener-${process.pid}` });
    store.close();
  } catch (error) {
    process.stderr.write(`round ${i}: ${error.code ?? ''} ${error.message}\n`);
    process.exit(1);
  }
}
process.stdout.write(`ok ${times}\n`);
