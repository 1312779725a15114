import { describe, expect, it } from 'vitest';
import { RecordFacts } from '../src/manager/facts.js';
import { flagAppended, monitorScore, refreshFlags } from '../src/manager/ranking.js';
import type { StoredRecord } from '../src/manager/record.js';

function record(
  sequence: number,
  metrics: Record<string, number>,
  status: StoredRecord['status'] = 'ok',
): StoredRecord {
  return {
    id: `c${sequence}`,
    sequence,
    experiment: 'e',
    model: 'm',
    epoch: null,
    step: sequence,
    timestamp: new Date(0).toISOString(),
    file: `c${sequence}.safetensors`,
    format: 'safetensors',
    size: 1,
    sha256: '',
    metrics,
    tags: [],
    isBest: false,
    isLatest: false,
    protected: false,
    status,
  } as StoredRecord;
}

/** A deterministic stream of pseudo-random numbers. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('flags after a save', () => {
  it('flagAppended gives what refreshFlags gives, save after save (ties, NaN, missing files, saves committed out of order)', () => {
    for (const mode of ['min', 'max'] as const) {
      const score = monitorScore('loss', mode);
      const next = random(mode === 'min' ? 7 : 11);
      const incremental: StoredRecord[] = [];
      const reference: StoredRecord[] = [];
      const facts = new RecordFacts([]);
      for (let n = 1; n <= 400; n++) {
        const roll = next();
        const metrics: Record<string, number> =
          roll < 0.1 ? {} : roll < 0.2 ? { loss: Number.NaN } : { loss: Math.round(next() * 20) / 20 };
        // Now and then a save that took a lower sequence commits after a later one.
        const sequence = next() < 0.1 && n > 2 ? n - 1.5 : n;
        const added = record(sequence, metrics, next() < 0.05 ? 'missing' : 'ok');
        const previous = { best: facts.best, latest: facts.latest };
        incremental.push(added);
        const replaced = flagAppended(incremental, score, previous.best, previous.latest);
        // What the store does with the journal entries of a save: the appended record and the replaced ones.
        for (const r of [incremental[incremental.length - 1] as StoredRecord, ...replaced]) facts.put(r);
        reference.push({ ...added });
        refreshFlags(reference, score);
        expect(incremental.map((r) => [r.id, r.isBest, r.isLatest])).toEqual(
          reference.map((r) => [r.id, r.isBest, r.isLatest]),
        );
      }
    }
  });

  it('RecordFacts follows puts and deletions: file names, the flagged best and latest', () => {
    const a = { ...record(1, { loss: 1 }), isBest: true };
    const b = { ...record(2, { loss: 2 }), isLatest: true };
    const facts = new RecordFacts([a, b]);
    expect(facts.hasFile('c1.safetensors')).toBe(true);
    expect(facts.best).toBe(a);
    expect(facts.latest).toBe(b);
    facts.put({ ...b, file: 'renamed.safetensors', isLatest: false });
    expect(facts.hasFile('c2.safetensors')).toBe(false);
    expect(facts.hasFile('renamed.safetensors')).toBe(true);
    expect(facts.latest).toBeUndefined();
    facts.delete('c1');
    expect(facts.best).toBeUndefined();
    expect(facts.hasFile('c1.safetensors')).toBe(false);
  });
});
