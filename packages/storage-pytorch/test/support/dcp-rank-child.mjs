// One rank of a DCP save from several processes, as a training job's process would run it:
//   node dcp-rank-child.mjs <folder> <rank> <worldSize> <saveId> <timeoutMs>
// Writes its rows of model.w and its columns of model.table (see dcpState), prints the result as JSON.
import { saveDcp } from '../../dist/index.js';
import { dcpRankState } from './dcp-state.mjs';

const [folder, rank, worldSize, saveId, timeoutMs] = process.argv.slice(2);
try {
  const result = await saveDcp(folder, dcpRankState(Number(rank), Number(worldSize)), {
    rank: Number(rank),
    worldSize: Number(worldSize),
    saveId,
    timeoutMs: Number(timeoutMs),
    fsync: false,
  });
  process.stdout.write(`${JSON.stringify({ committed: result.committed, committer: result.committer })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.code, message: error.message })}\n`);
}
