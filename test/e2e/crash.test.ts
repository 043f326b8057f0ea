/**
 * Durability under kill -9: 32 concurrent writers put unique keys through raw gRPC and
 * record every acknowledged put (key, value, revision of the response header). The server
 * is SIGKILLed while writes are in flight and restarted on the same data dir; every
 * acknowledged write must then be readable with its value and with mod_revision equal to
 * the acknowledged revision. Three kill/restart rounds run on the same (already crashed)
 * data dir.
 *
 *   npx vitest run test/e2e/crash.test.ts       (needs `npm run build`)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startCairn, type ServerProc } from '../../bench/lib/procs';
import { etcdserverpb as pb } from '../../src/gen/proto';
import { b, bytes, num, prefixEnd, RawKV } from '../helpers/raw-grpc';

const WRITERS = 32;
const LOAD_MS = 3_000;
const ROUNDS = 3;

interface Ack {
  key: string;
  value: string;
  revision: number;
  round: number;
}

let srv: ServerProc | undefined;

afterAll(async () => {
  await srv?.stop();
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs WRITERS writers until `stop()` says so or their server goes away; returns the acks. */
function startLoad(endpoint: string, round: number): { done: Promise<{ acks: Ack[]; errors: number }>; stop: () => void } {
  const kv = new RawKV(endpoint);
  let stopped = false;
  const acks: Ack[] = [];
  let errors = 0;
  const writer = async (w: number): Promise<void> => {
    for (let seq = 0; !stopped; seq++) {
      const key = `crash/r${round}/w${String(w).padStart(2, '0')}/${String(seq).padStart(6, '0')}`;
      const value = `v-${round}-${w}-${seq}-${'x'.repeat((seq * 37 + w) % 200)}`;
      const r = await kv.tryCall('Put', { key: b(key), value: b(value) }, 5_000);
      if (r.ok) {
        acks.push({ key, value, revision: num(r.resp.header?.revision), round });
      } else {
        errors++;
        // After the kill, every call fails; stop this writer.
        if (stopped) return;
        await sleep(5);
        if (errors > 10_000) return;
      }
    }
  };
  const done = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w))).then(() => {
    kv.close();
    return { acks, errors };
  });
  return { done, stop: () => (stopped = true) };
}

describe('kill -9 under concurrent write load', () => {
  it(`keeps every acknowledged write across ${ROUNDS} kill/restart rounds`, { timeout: 180_000 }, async () => {
    srv = await startCairn();
    const all: Ack[] = [];
    const afterWrites: Ack[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const load = startLoad(srv.endpoint, round);
      // Let the load run, then kill while the writers are still issuing puts.
      await sleep(LOAD_MS);
      const inFlightBefore = all.length;
      await srv.kill9();
      load.stop();
      const { acks, errors } = await load.done;
      // Writes were in flight when the server died: they failed instead of being acked.
      expect(errors, `round ${round}: no put was in flight at the kill`).toBeGreaterThan(0);
      if (process.env.CAIRN_CRASH_VERBOSE === '1') console.log(`round ${round}: ${acks.length} acked, ${errors} failed`);
      expect(srv.exitStatus()?.signal).toBe('SIGKILL');
      expect(acks.length, `round ${round}: writers made progress`).toBeGreaterThan(WRITERS);
      all.push(...acks);
      expect(all.length).toBeGreaterThan(inFlightBefore);

      await srv.restart();
      const kv = new RawKV(srv.endpoint);
      try {
        // Revisions of acknowledged writes are unique (each put is its own revision).
        const revs = [...all, ...afterWrites].map((a) => a.revision);
        expect(revs.every((r) => r > 1)).toBe(true);
        expect(new Set(revs).size, 'duplicate revisions among acknowledged puts').toBe(revs.length);
        const maxAcked = Math.max(...revs);

        // Every acknowledged write is there, with its value and revision.
        const r = await kv.call('Range', { key: b('crash/'), rangeEnd: prefixEnd('crash/') }, 30_000);
        const store = new Map(r.kvs.map((kv) => [bytes(kv.key).toString(), kv]));
        const missing: string[] = [];
        const wrong: string[] = [];
        for (const a of all) {
          const got = store.get(a.key);
          if (!got) {
            missing.push(`${a.key}@${a.revision}`);
            continue;
          }
          const value = bytes(got.value).toString();
          if (value !== a.value || num(got.modRevision) !== a.revision || num(got.createRevision) !== a.revision || num(got.version) !== 1) {
            wrong.push(
              `${a.key}: acked rev ${a.revision}, got mod ${num(got.modRevision)} create ${num(got.createRevision)} version ${num(got.version)} value ${value === a.value ? 'ok' : 'DIFFERENT'}`,
            );
          }
        }
        expect(missing.slice(0, 20), `round ${round}: ${missing.length} of ${all.length} acknowledged writes lost`).toEqual([]);
        expect(wrong.slice(0, 20), `round ${round}: ${wrong.length} acknowledged writes changed`).toEqual([]);

        // Store revision covers every acknowledged write.
        const storeRev = num(r.header?.revision);
        expect(storeRev).toBeGreaterThanOrEqual(maxAcked);
        // No key in the store carries a revision above the store revision, and no two
        // keys written by single puts share one.
        const storeRevs = r.kvs.map((kv) => num(kv.modRevision));
        expect(Math.max(...storeRevs)).toBeLessThanOrEqual(storeRev);
        expect(new Set(storeRevs).size).toBe(storeRevs.length);

        // A write after the restart gets a revision above every earlier one.
        const p = await kv.call('Put', { key: b(`after/round${round}`), value: b('x') });
        const after = num(p.header?.revision);
        expect(after).toBeGreaterThan(maxAcked);
        expect(after).toBeGreaterThan(storeRev);
        afterWrites.push({ key: `after/round${round}`, value: 'x', revision: after, round });
        const g = await kv.call('Range', { key: b(`after/round${round}`) });
        expect(num(g.kvs[0]?.modRevision)).toBe(after);
      } finally {
        kv.close();
      }
    }
    // The post-restart writes of earlier rounds survived later crashes too.
    const kv = new RawKV(srv.endpoint);
    try {
      expect(afterWrites).toHaveLength(ROUNDS);
      for (const a of afterWrites) {
        const g = await kv.call('Range', { key: b(a.key) });
        expect(num(g.kvs[0]?.modRevision)).toBe(a.revision);
      }
    } finally {
      kv.close();
    }
  });

  it('keeps acknowledged txns, deletes and compactions across kill -9 (2 rounds)', { timeout: 120_000 }, async () => {
    const proc = await startCairn();
    interface Cycle {
      a: string;
      revA: number;
      bc: [string, string];
      revT: number;
      revD: number;
    }
    let compactedAt = 0;
    let pendingCompact = 0;
    const cycles: Cycle[] = [];
    try {
      for (let round = 1; round <= 2; round++) {
        const kv = new RawKV(proc.endpoint);
        let stopped = false;
        const writer = async (w: number): Promise<void> => {
          for (let seq = 0; !stopped; seq++) {
            const base = `mix/r${round}/w${String(w).padStart(2, '0')}/${String(seq).padStart(5, '0')}`;
            const a = `${base}/a`;
            const pa = await kv.tryCall('Put', { key: b(a), value: b(`A${seq}`) }, 5_000);
            if (!pa.ok) return;
            const t = await kv.tryCall(
              'Txn',
              {
                compare: [{ key: b(a), target: pb.Compare.CompareTarget.VERSION, result: pb.Compare.CompareResult.EQUAL, version: 1 }],
                success: [
                  { requestPut: { key: b(`${base}/b`), value: b(`B${seq}`) } },
                  { requestPut: { key: b(`${base}/c`), value: b(`C${seq}`) } },
                ],
              },
              5_000,
            );
            if (!t.ok) return;
            expect(t.resp.succeeded).toBe(true);
            const d = await kv.tryCall('DeleteRange', { key: b(a) }, 5_000);
            if (!d.ok) return;
            expect(num(d.resp.deleted)).toBe(1);
            cycles.push({
              a,
              revA: num(pa.resp.header?.revision),
              bc: [`${base}/b`, `${base}/c`],
              revT: num(t.resp.header?.revision),
              revD: num(d.resp.header?.revision),
            });
          }
        };
        const compactor = async (): Promise<void> => {
          while (!stopped) {
            await sleep(300);
            const r = await kv.tryCall('Range', { key: b('mix/none') }, 5_000);
            if (!r.ok) return;
            const target = num(r.resp.header?.revision) - 200;
            if (target <= compactedAt) continue;
            pendingCompact = target;
            const c = await kv.tryCall('Compact', { revision: target }, 5_000);
            if (!c.ok) return; // possibly applied, never acknowledged: pendingCompact stays set
            compactedAt = target;
            pendingCompact = 0;
          }
        };
        const load = Promise.all([...Array.from({ length: 16 }, (_, w) => writer(w)), compactor()]);
        await sleep(2_000);
        await proc.kill9();
        stopped = true;
        await load;
        kv.close();
        expect(cycles.length).toBeGreaterThan(16);
        expect(compactedAt).toBeGreaterThan(0);

        await proc.restart();
        const kv2 = new RawKV(proc.endpoint);
        try {
          const all = await kv2.call('Range', { key: b('mix/'), rangeEnd: prefixEnd('mix/') }, 30_000);
          const store = new Map(all.kvs.map((x) => [bytes(x.key).toString(), x]));
          const problems: string[] = [];
          for (const c of cycles) {
            if (store.has(c.a)) problems.push(`${c.a}: acked delete at ${c.revD} but the key is there`);
            for (const k of c.bc) {
              const got = store.get(k);
              if (!got) problems.push(`${k}: acked txn at ${c.revT} lost`);
              else if (num(got.modRevision) !== c.revT) problems.push(`${k}: acked txn at ${c.revT}, mod_revision ${num(got.modRevision)}`);
            }
            // History above the compaction point survives too.
            if (c.revA >= Math.max(compactedAt, pendingCompact)) {
              const h = await kv2.call('Range', { key: b(c.a), revision: c.revD - 1 });
              if (h.kvs.length !== 1 || num(h.kvs[0].modRevision) !== c.revA) problems.push(`${c.a}: history at ${c.revD - 1} lost`);
            }
          }
          expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
          const revs = cycles.flatMap((c) => [c.revA, c.revT, c.revD]);
          expect(new Set(revs).size).toBe(revs.length);
          expect(num(all.header?.revision)).toBeGreaterThanOrEqual(Math.max(...revs));
          // The acknowledged compaction survived: reads below it are refused.
          const below = await kv2.tryCall('Range', { key: b('mix/'), rangeEnd: prefixEnd('mix/'), revision: compactedAt - 1 });
          expect(below).toEqual({ ok: false, code: 11, details: 'etcdserver: mvcc: required revision has been compacted' });
          const again = await kv2.tryCall('Compact', { revision: compactedAt });
          expect(again).toEqual({ ok: false, code: 11, details: 'etcdserver: mvcc: required revision has been compacted' });
          // At the acknowledged compaction revision reads still work, unless a later compaction
          // was in flight at the kill (it may have been applied without an acknowledgement).
          const at = await kv2.tryCall('Range', { key: b('mix/'), rangeEnd: prefixEnd('mix/'), revision: compactedAt, countOnly: true });
          if (pendingCompact === 0) expect(at.ok).toBe(true);
          pendingCompact = 0;
        } finally {
          kv2.close();
        }
      }
    } finally {
      await proc.stop();
    }
  });
});
