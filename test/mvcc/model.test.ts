import { afterAll, describe, expect, it } from 'vitest';
import { Backend } from '../../src/mvcc/backend';
import { MvccStore } from '../../src/mvcc/store';
import { KeyValue } from '../../src/mvcc/types';
import { Rand, seedFromEnv } from '../support/rand';
import { tempDir } from '../support/tmp';

// The store against a model of etcd's semantics: a full copy of the key space at every
// revision. Random puts, deletes, multi-op transactions, compactions, reads at random
// revisions and restarts; every read must equal the model's answer.
// Replay a failure with MVCC_SEED=<seed> npx vitest run test/mvcc/model.test.ts

type ModelKv = { value: string; create: number; mod: number; version: number };
type Snapshot = Map<string, ModelKv>;

const SEEDS = Number(process.env.MVCC_MODEL_SEEDS ?? 20);
const FIRST_SEED = seedFromEnv('MVCC_SEED');
const KEYS = ['a', 'b', 'c', 'd', 'e', 'aa', 'ab', 'b\u00ff', 'z'];
const dirs: Array<() => void> = [];
afterAll(() => dirs.forEach((d) => d()));

function modelRange(s: Snapshot, key: string, end: string | undefined): [string, ModelKv][] {
  const out = [...s.entries()].filter(([k]) => (end === undefined ? k === key : k >= key && (end === '\0' || k < end)));
  return out.sort(([x], [y]) => Buffer.compare(Buffer.from(x, 'latin1'), Buffer.from(y, 'latin1')));
}

const fmt = (kvs: KeyValue[]): string[] => kvs.map((kv) => `${kv.key.toString('latin1')}=${kv.value}@${kv.createRevision}/${kv.modRevision}/${kv.version}`);
const fmtModel = (kvs: [string, ModelKv][]): string[] => kvs.map(([k, v]) => `${k}=${v.value}@${v.create}/${v.mod}/${v.version}`);

async function runSeed(seed: number): Promise<void> {
  const rand = new Rand(seed);
  const t = tempDir('mvcc-model');
  dirs.push(t.cleanup);
  const fatal = (e: Error): never => {
    throw e;
  };
  let backend = await Backend.open(t.path, fatal);
  let store = await MvccStore.open(backend);
  const history: Snapshot[] = [new Map(), new Map()]; // index = revision; revision 1 is empty
  let compacted = -1;
  const key = (): string => rand.pick(KEYS);
  const range = (): [string, string | undefined] => {
    const r = rand.int(3);
    if (r === 0) return [key(), undefined];
    if (r === 1) return [key(), '\0'];
    return [key(), key()];
  };
  for (let step = 0; step < 300; step++) {
    const current = history[history.length - 1];
    const op = rand.int(10);
    if (op < 5) {
      // A transaction of 1-3 changes on distinct keys, as etcd requires.
      const next = new Map(current);
      const rev = history.length;
      const txn = store.write();
      const used = new Set<string>();
      const n = 1 + rand.int(3);
      for (let i = 0; i < n; i++) {
        const k = key();
        if (used.has(k)) continue;
        used.add(k);
        if (rand.chance(0.75)) {
          const value = `v${step}.${i}`;
          txn.put(Buffer.from(k, 'latin1'), Buffer.from(value), 0n);
          const prev = next.get(k);
          next.set(k, { value, create: prev ? prev.create : rev, mod: rev, version: prev ? prev.version + 1 : 1 });
        } else {
          txn.deleteRange(Buffer.from(k, 'latin1'), undefined);
          next.delete(k);
        }
      }
      const changed = txn.changed;
      const wrote = txn.end();
      if (changed) {
        history.push(next);
        expect(wrote).toBe(rev);
      } else {
        expect(wrote).toBe(rev - 1);
      }
    } else if (op < 8) {
      const [k, end] = range();
      const rev = 1 + rand.int(history.length + 1);
      const limit = rand.chance(0.3) ? 1 + rand.int(3) : 0;
      const args = [Buffer.from(k, 'latin1'), end === undefined ? undefined : Buffer.from(end, 'latin1')] as const;
      if (rev >= history.length) {
        await expect(store.range(...args, { revision: rev })).rejects.toThrow('future revision');
      } else if (rev < compacted) {
        await expect(store.range(...args, { revision: rev })).rejects.toThrow('compacted');
      } else {
        const got = await store.range(...args, { revision: rev, limit });
        const want = modelRange(history[rev], k, end);
        expect(got.count).toBe(want.length);
        expect(fmt(got.kvs)).toEqual(fmtModel(limit ? want.slice(0, limit) : want));
      }
    } else if (op === 8) {
      const rev = 1 + rand.int(history.length - 1);
      if (rev <= compacted) {
        expect(() => store.compact(rev)).toThrow('compacted');
      } else {
        const { physical } = store.compact(rev);
        compacted = rev;
        if (rand.chance(0.5)) await physical;
      }
    } else if (rand.chance(0.3)) {
      await store.settle();
      await backend.close();
      backend = await Backend.open(t.path, fatal);
      store = await MvccStore.open(backend);
      expect(store.currentRevision).toBe(history.length - 1);
      expect(store.compactRevision).toBe(compacted);
    }
  }
  await store.settle();
  await backend.close();
}

describe('mvcc store against a model', () => {
  it(`agrees with the model on ${SEEDS} random schedules`, async () => {
    for (let s = 0; s < SEEDS; s++) {
      const seed = FIRST_SEED + s;
      try {
        await runSeed(seed);
      } catch (e) {
        console.error(`mvcc model failed: replay with MVCC_SEED=${seed} MVCC_MODEL_SEEDS=1 npx vitest run test/mvcc/model.test.ts`);
        throw e;
      }
    }
  });
});
