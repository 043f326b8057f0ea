import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { Client, CompactedError, type WatchBatch, type Watcher } from '../../src/client';

/** Read batches until `until` says stop (or the timeout passes). */
async function collect(w: Watcher, until: (events: Array<{ type: string; key: string; value: string; rev: number }>) => boolean, timeoutMs = 10_000) {
  const seen: Array<{ type: string; key: string; value: string; rev: number; prev?: string }> = [];
  const timer = setTimeout(() => void w.cancel(), timeoutMs);
  try {
    for await (const batch of w) {
      for (const e of batch.events) {
        seen.push({ type: e.type, key: e.kv.keyString(), value: e.kv.valueString(), rev: e.kv.modRevision, ...(e.prevKv ? { prev: e.prevKv.valueString() } : {}) });
      }
      if (until(seen)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

describe.each(['cairn', 'etcd'] as const)('watch as an async iterator against %s', (kind) => {
  let srv: ServerProc;
  let c: Client;
  beforeAll(async () => {
    srv = kind === 'cairn' ? await startCairn() : await startEtcd();
    c = new Client({ endpoints: [srv.endpoint] });
  });
  afterAll(async () => {
    c?.close();
    await srv?.stop();
  });

  it('delivers puts and deletes on a prefix in revision order, with prevKv', async () => {
    const w = c.watch({ key: 'w/', prefix: true, prevKv: true });
    await w.ready;
    const r1 = await c.put('w/a', '1');
    await c.put('other', 'x');
    await c.put('w/a', '2');
    const r4 = await c.delete('w/a');
    const seen = await collect(w, (s) => s.length >= 3);
    expect(seen).toEqual([
      { type: 'put', key: 'w/a', value: '1', rev: r1.header.revision },
      { type: 'put', key: 'w/a', value: '2', rev: r1.header.revision + 2, prev: '1' },
      { type: 'delete', key: 'w/a', value: '', rev: r4.header.revision, prev: '2' },
    ]);
    expect(w.closed).toBe(true); // break ended the watch
  });

  it('replays history from startRevision and honours filters', async () => {
    const base = (await c.put('h/k', 'a')).header.revision;
    await c.put('h/k', 'b');
    await c.delete('h/k');
    const all = await collect(c.watch({ key: 'h/k', startRevision: base }), (s) => s.length >= 3);
    expect(all.map((e) => [e.type, e.value, e.rev])).toEqual([
      ['put', 'a', base],
      ['put', 'b', base + 1],
      ['delete', '', base + 2],
    ]);
    const deletesOnly = await collect(c.watch({ key: 'h/k', startRevision: base, filters: ['noput'] }), (s) => s.length >= 1);
    expect(deletesOnly.map((e) => [e.type, e.rev])).toEqual([['delete', base + 2]]);
  });

  it('several watchers share the client and each sees only its keys; cancel ends one', async () => {
    const wa = c.watch({ key: 'm/a' });
    const wb = c.watch({ key: 'm/b' });
    const wc = c.watch({ key: 'm/c' });
    await Promise.all([wa.ready, wb.ready, wc.ready]);
    await wc.cancel();
    await c.put('m/a', '1');
    await c.put('m/b', '2');
    await c.put('m/c', '3');
    const [sa, sb] = await Promise.all([collect(wa, (s) => s.length >= 1), collect(wb, (s) => s.length >= 1)]);
    expect(sa.map((e) => e.key + '=' + e.value)).toEqual(['m/a=1']);
    expect(sb.map((e) => e.key + '=' + e.value)).toEqual(['m/b=2']);
    const rest: WatchBatch[] = [];
    for await (const b of wc) rest.push(b);
    expect(rest).toEqual([]);
  });

  it('a watch from a compacted revision fails with CompactedError carrying the compact revision', async () => {
    const first = (await c.put('cmp/k', '1')).header.revision;
    await c.put('cmp/k', '2');
    const last = (await c.put('cmp/k', '3')).header.revision;
    await c.compact(last, { physical: true });
    const w = c.watch({ key: 'cmp/k', startRevision: first });
    let err: unknown;
    try {
      for await (const b of w) void b;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CompactedError);
    expect((err as CompactedError).compactRevision).toBe(last);
  });
});
