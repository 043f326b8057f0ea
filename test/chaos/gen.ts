/**
 * Random histories that are linearizable by construction: each operation gets a random
 * interval per process (processes are sequential, intervals of different processes
 * overlap at random), a linearization point inside its interval, and its result from a
 * real sequential register executed in linearization-point order. Used by the checker's
 * randomized tests.
 */
import type { Expected, HistoryEvent, OpName } from './checker';
import { Rng } from './rng';

export interface GenOptions {
  processes: number;
  opsPerProcess: number;
  keys: string[];
  /** Record revisions on reads and writes (as the harness does). */
  revisions: boolean;
  /** Probability that a write/cas/delete ends with unknown outcome ('info'). */
  infoRate: number;
}

interface PlannedOp {
  process: number;
  op: OpName;
  key: string;
  value?: string;
  expected?: Expected;
  call: number;
  ret: number;
  at: number; // linearization point
  info: boolean;
  applies: boolean; // for info ops: did it take effect
  // results
  type?: 'ok' | 'fail' | 'info';
  result?: string | number | null;
  revision?: number;
}

export function generateHistory(rng: Rng, o: GenOptions): HistoryEvent[] {
  const planned: PlannedOp[] = [];
  let valueSeq = 0;
  let nextProcess = o.processes;
  for (let p = 0; p < o.processes; p++) {
    let t = rng.int(0, 50);
    let proc = p;
    for (let i = 0; i < o.opsPerProcess; i++) {
      const call = t + rng.int(0, 20);
      const ret = call + rng.int(1, 60);
      const r = rng.next();
      const op: OpName = r < 0.4 ? 'read' : r < 0.7 ? 'write' : r < 0.9 ? 'cas' : 'delete';
      const key = rng.pick(o.keys);
      const info = op !== 'read' && rng.chance(o.infoRate);
      const po: PlannedOp = {
        process: proc,
        op,
        key,
        call,
        ret,
        at: call + rng.next() * (ret - call),
        info,
        applies: !info || rng.chance(0.5),
      };
      if (op === 'write' || op === 'cas') po.value = `v${valueSeq++}`;
      planned.push(po);
      t = ret;
      if (info) proc = nextProcess++; // a crashed process never completes; continue as a new one
    }
  }
  // Execute in linearization order on a real register per key (with etcd-like revisions).
  const store = new Map<string, { v: string; rev: number }>();
  let revision = 1;
  const lastRead = new Map<string, { v: string; rev: number } | null>();
  for (const po of [...planned].sort((a, b) => a.at - b.at)) {
    const cur = store.get(po.key) ?? null;
    if (po.op === 'cas') {
      // Compare against something plausible: often the current state, sometimes stale.
      const seen = rng.chance(0.7) ? cur : (lastRead.get(po.key) ?? null);
      if (o.revisions && rng.chance(0.5)) po.expected = { modRevision: seen?.rev ?? 0 };
      else po.expected = { value: seen?.v ?? 'never-written' };
    }
    if (po.info && !po.applies) {
      po.type = 'info';
      continue;
    }
    switch (po.op) {
      case 'read':
        po.type = 'ok';
        po.result = cur?.v ?? null;
        if (cur && o.revisions) po.revision = cur.rev;
        lastRead.set(po.key, cur);
        break;
      case 'write':
        store.set(po.key, { v: po.value!, rev: ++revision });
        po.type = 'ok';
        po.revision = revision;
        break;
      case 'cas': {
        const e = po.expected!;
        const ok = 'value' in e ? cur !== null && cur.v === e.value : (cur?.rev ?? 0) === e.modRevision;
        if (ok) {
          store.set(po.key, { v: po.value!, rev: ++revision });
          po.revision = revision;
        }
        po.type = ok ? 'ok' : 'fail';
        break;
      }
      case 'delete':
        po.type = 'ok';
        po.result = cur ? 1 : 0;
        if (cur) {
          store.delete(po.key);
          revision++;
        }
        break;
    }
    if (po.info) po.type = 'info';
  }
  const events: Array<HistoryEvent & { seq: number }> = [];
  let seq = 0;
  for (const po of planned) {
    const inv: HistoryEvent & { seq: number } = { type: 'invoke', process: po.process, op: po.op, key: po.key, time: po.call, seq: seq++ };
    if (po.value !== undefined) inv.value = po.value;
    if (po.expected !== undefined) inv.expected = po.expected;
    events.push(inv);
    if (po.type === 'info') continue; // never completes
    const done: HistoryEvent & { seq: number } = { type: po.type!, process: po.process, op: po.op, key: po.key, time: po.ret, seq: seq++ };
    if (po.result !== undefined) done.value = po.result;
    if (po.revision !== undefined && o.revisions) done.revision = po.revision;
    events.push(done);
  }
  events.sort((a, b) => a.time - b.time || a.seq - b.seq);
  return events.map(({ seq: _seq, ...e }) => e);
}
