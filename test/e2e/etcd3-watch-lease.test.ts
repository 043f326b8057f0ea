/**
 * The `etcd3` npm client's watch and lease APIs against the server under test, and
 * the same scenario against a real etcd: each scenario returns a record normalised
 * for what legitimately differs (revisions relative to the scenario's first write,
 * lease IDs, timing), asserts its invariants on both servers and compares the
 * records.
 *
 *   npx vitest run test/e2e/etcd3-watch-lease.test.ts                       # etcd vs cairn (needs `npm run build`)
 *   CAIRN_COMPAT_AGAINST=etcd npx vitest run test/e2e/etcd3-watch-lease.test.ts
 */
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type ServerProc } from '../../bench/lib/procs';
import { startAll, startUnderTest, targetUnderTest } from '../helpers/servers';

const target = targetUnderTest();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until pred() holds; throws with `what` after timeoutMs. */
async function waitFor(pred: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(20);
  }
}

interface Ev {
  type: string;
  key: string;
  value: string;
  mod: number;
  create: number;
  version: number;
  lease: string;
  prev: string | null;
}

/** Collect every event a watcher delivers, in order. */
function collect(w: Watcher): Ev[] {
  const evs: Ev[] = [];
  w.on('data', (res) => {
    for (const e of res.events) {
      const kv: IKeyValue = e.kv;
      evs.push({
        type: String(e.type),
        key: kv.key.toString(),
        value: kv.value?.toString() ?? '',
        mod: Number(kv.mod_revision),
        create: Number(kv.create_revision),
        version: Number(kv.version),
        lease: String(kv.lease ?? '0'),
        prev: e.prev_kv ? e.prev_kv.value.toString() : null,
      });
    }
  });
  return evs;
}

/** Event as a string with revisions relative to `base` (comparable across servers). */
function rel(e: Ev, base: number): string {
  const r = (n: number): string => (n === 0 ? '0' : `B${n - base >= 0 ? '+' : ''}${n - base}`);
  return `${e.type} ${e.key}=${JSON.stringify(e.value)} mod=${r(e.mod)} create=${r(e.create)} ver=${e.version}` +
    (e.lease !== '0' ? ' lease' : '') + (e.prev !== null ? ` prev=${JSON.stringify(e.prev)}` : '');
}

async function putRev(c: Etcd3, key: string, value: string): Promise<number> {
  const r = await c.put(key).value(value).exec();
  return Number(r.header.revision);
}

async function delRev(c: Etcd3, key: string): Promise<number> {
  const r = await c.delete().key(key).exec();
  return Number(r.header.revision);
}

describe(`etcd3 client watch/lease: etcd vs ${target}`, () => {
  let servers: ServerProc[] = [];
  let ref: Etcd3;
  let sut: Etcd3;
  const opened: Etcd3[] = [];

  const client = (s: ServerProc): Etcd3 => {
    const c = new Etcd3({ hosts: s.endpoint, dialTimeout: 10_000 });
    opened.push(c);
    return c;
  };

  /** Run `scenario` against both servers concurrently; both must satisfy it, and the records must match. */
  async function both<T>(scenario: (c: Etcd3, label: string) => Promise<T>): Promise<T> {
    const [e, a] = await Promise.allSettled([scenario(ref, 'etcd'), scenario(sut, target)]);
    if (e.status === 'rejected') throw new Error(`reference etcd failed the scenario (harness problem): ${String(e.reason?.stack ?? e.reason)}`);
    if (a.status === 'rejected') {
      const err = a.reason instanceof Error ? a.reason : new Error(String(a.reason));
      err.message = `${target}: ${err.message}\n${target} running: ${String(servers[1].running)}; last output:\n${servers[1].output().slice(-2000)}`;
      throw err;
    }
    expect(a.value, `${target} vs etcd`).toEqual(e.value);
    return e.value;
  }

  beforeAll(async () => {
    servers = await startAll([() => startEtcd({ name: 'etcd3-ref' }), () => startUnderTest({ name: 'etcd3-sut' })]);
    ref = client(servers[0]);
    sut = client(servers[1]);
  }, 60_000);

  afterAll(async () => {
    for (const c of opened) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('key watcher: put, put, delete in order with their revisions', async () => {
    await both(async (c) => {
      const w = await c.watch().key('w1/k').create();
      const evs = collect(w);
      const r1 = await putRev(c, 'w1/k', 'a');
      await putRev(c, 'w1/other', 'not watched');
      const r2 = await putRev(c, 'w1/k', 'b');
      const r3 = await delRev(c, 'w1/k');
      await waitFor(() => evs.length >= 3, 15_000, () => `3 events, got ${JSON.stringify(evs)}`);
      await sleep(200);
      await w.cancel();
      expect(evs.map((e) => [e.type, e.mod])).toEqual([
        ['Put', r1],
        ['Put', r2],
        ['Delete', r3],
      ]);
      expect(evs[1].create).toBe(r1);
      expect(evs[1].version).toBe(2);
      return evs.map((e) => rel(e, r1));
    });
  });

  it('prefix watcher sees only its prefix, a range delete as one event per key', async () => {
    await both(async (c) => {
      const w = await c.watch().prefix('w2/p/').create();
      const evs = collect(w);
      const base = await putRev(c, 'w2/p/a', '1');
      await putRev(c, 'w2/q', 'no');
      await putRev(c, 'w2/p/b', '2');
      await putRev(c, 'w2/p', 'no: not under the prefix');
      await c.put('w2/p/a').value('3').exec();
      const dr = await c.delete().prefix('w2/p/').exec();
      expect(dr.deleted).toBe('2');
      await waitFor(() => evs.length >= 5, 15_000, () => `5 events, got ${JSON.stringify(evs)}`);
      await sleep(200);
      await w.cancel();
      expect(evs.every((e) => e.key.startsWith('w2/p/'))).toBe(true);
      return evs.map((e) => rel(e, base));
    });
  });

  it('a watcher from a past revision gets history then live events, no gap, no duplicate', async () => {
    await both(async (c) => {
      const revs: number[] = [];
      for (let i = 1; i <= 5; i++) revs.push(await putRev(c, 'w3/k', `v${i}`));
      const start = revs[1];
      const wp = c.watch().key('w3/k').startRevision(String(start)).create();
      // Live writes race with the watcher's creation and history replay.
      const writer = (async () => {
        for (let i = 6; i <= 25; i++) revs.push(await putRev(c, 'w3/k', `v${i}`));
      })();
      const w = await wp;
      const evs = collect(w);
      await writer;
      const want = revs.filter((r) => r >= start);
      await waitFor(() => evs.length >= want.length, 15_000, () => `${want.length} events, got ${evs.length}`);
      await sleep(300);
      await w.cancel();
      expect(evs.map((e) => e.mod)).toEqual(want);
      expect(evs.map((e) => e.value)).toEqual(want.map((_, i) => `v${i + 2}`));
      return evs.map((e) => rel(e, revs[0]));
    });
  });

  it('withPreviousKV delivers the previous value on put and delete', async () => {
    await both(async (c) => {
      const w = await c.watch().key('w4/k').withPreviousKV().create();
      const evs = collect(w);
      const base = await putRev(c, 'w4/k', 'first');
      await putRev(c, 'w4/k', 'second');
      await delRev(c, 'w4/k');
      await waitFor(() => evs.length >= 3, 15_000, () => `3 events, got ${JSON.stringify(evs)}`);
      await w.cancel();
      expect(evs.map((e) => e.prev)).toEqual([null, 'first', 'second']);
      return evs.map((e) => rel(e, base));
    });
  });

  it('200 watchers on one client (one stream), one write each, all delivered once', async () => {
    await both(async (c, label) => {
      const n = 200;
      const watchers = await Promise.all(Array.from({ length: n }, (_, i) => c.watch().key(`w5/k${i}`).create()));
      const evs = watchers.map((w) => collect(w));
      const ids = new Set(watchers.map((w) => w.id));
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => c.put(`w5/k${i + j}`).value(`v${i + j}`).exec()));
      }
      await waitFor(
        () => evs.every((e) => e.length >= 1),
        30_000,
        () => `${label}: events on all ${n} watchers; missing on ${evs.filter((e) => e.length === 0).length}`,
      );
      await sleep(300);
      await Promise.all(watchers.map((w) => w.cancel()));
      const bad = evs.map((e, i) => (e.length === 1 && e[0].key === `w5/k${i}` && e[0].value === `v${i}` ? null : i)).filter((i) => i !== null);
      expect(bad, 'watchers with wrong / duplicate events').toEqual([]);
      return { watchers: n, distinctIds: ids.size, delivered: evs.reduce((s, e) => s + e.length, 0) };
    });
  }, 90_000);

  it('client.lease(ttl) with automatic keep-alive keeps its key past the TTL; revoke deletes it', async () => {
    await both(async (c) => {
      const lease = c.lease(3);
      let keepalives = 0;
      let lost: string | null = null;
      lease.on('keepaliveSucceeded', () => keepalives++);
      lease.on('lost', (e) => (lost = e.message));
      await lease.put('l1/ka').value('alive').exec();
      const id = await lease.grant();
      const kv = await c.get('l1/ka').exec();
      expect(kv.kvs[0].lease).toBe(id);
      await sleep(6_500);
      const still = await c.get('l1/ka').string();
      const ttl = await c.leaseClient.leaseTimeToLive({ ID: id, keys: true });
      await lease.revoke();
      const after = await c.get('l1/ka').string();
      const ttlAfter = await c.leaseClient.leaseTimeToLive({ ID: id });
      expect(lost).toBeNull();
      expect(keepalives).toBeGreaterThanOrEqual(2);
      expect(Number(ttl.TTL)).toBeGreaterThanOrEqual(0);
      expect(Number(ttl.TTL)).toBeLessThanOrEqual(3);
      return {
        still,
        grantedTTL: ttl.grantedTTL,
        keys: ttl.keys.map((k) => k.toString()),
        after,
        ttlAfter: ttlAfter.TTL,
        revoked: lease.revoked(),
      };
    });
  }, 40_000);

  it('lease.grant() and time-to-live / leases / keepaliveOnce', async () => {
    await both(async (c) => {
      const lease = c.lease(60, { autoKeepAlive: false });
      const id = await lease.grant();
      await lease.put('l2/a').value('1').exec();
      await lease.put('l2/b').value('2').exec();
      const ttl = await c.leaseClient.leaseTimeToLive({ ID: id, keys: true });
      const ttlNoKeys = await c.leaseClient.leaseTimeToLive({ ID: id });
      const ka = await lease.keepaliveOnce();
      const list = await c.leaseClient.leaseLeases();
      const small = c.lease(1, { autoKeepAlive: false });
      const smallTtl = await c.leaseClient.leaseTimeToLive({ ID: await small.grant() });
      await small.revoke();
      expect(Number(ttl.TTL)).toBeGreaterThanOrEqual(55);
      expect(Number(ttl.TTL)).toBeLessThanOrEqual(60);
      expect(ttl.ID).toBe(id);
      expect(list.leases.map((l) => l.ID)).toContain(id);
      await lease.revoke();
      const gone = await c.getAll().prefix('l2/').keys();
      const unknown = await c.leaseClient.leaseTimeToLive({ ID: id });
      let revokeErr = '';
      try {
        await c.leaseClient.leaseRevoke({ ID: id });
      } catch (e) {
        revokeErr = `${(e as Error).constructor.name}: ${(e as Error).message}`;
      }
      return {
        grantedTTL: ttl.grantedTTL,
        keys: ttl.keys.map((k) => k.toString()).sort(),
        keysWithoutFlag: ttlNoKeys.keys.length,
        keepaliveTTL: ka.TTL,
        keepaliveIdMatches: ka.ID === id,
        minimumGranted: smallTtl.grantedTTL,
        gone,
        ttlAfterRevoke: unknown.TTL,
        revokeErr,
      };
    });
  });

  it('a lease that is not kept alive expires: its key disappears, a watcher sees the delete', async () => {
    await both(async (c) => {
      const w = await c.watch().key('l3/exp').withPreviousKV().create();
      const evs = collect(w);
      const lease = c.lease(2, { autoKeepAlive: false });
      const t0 = Date.now();
      await lease.put('l3/exp').value('soon gone').exec();
      const base = evs.length > 0 ? evs[0].mod : Number((await c.get('l3/exp').exec()).header.revision);
      await waitFor(() => evs.length >= 2, 15_000, () => `put + delete events, got ${JSON.stringify(evs)}`);
      const elapsed = Date.now() - t0;
      await w.cancel();
      const after = await c.get('l3/exp').string();
      const ttl = await c.leaseClient.leaseTimeToLive({ ID: await lease.grant() });
      lease.release();
      expect(elapsed).toBeGreaterThanOrEqual(1_500);
      expect(elapsed).toBeLessThanOrEqual(12_000);
      return { events: evs.map((e) => rel(e, base)), after, ttl: ttl.TTL };
    });
  }, 40_000);
});
