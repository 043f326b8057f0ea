import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { freePort, startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { startCairnCluster, type Cluster, type ClusterMember } from '../helpers/cluster';
import { Rand, seedFromEnv } from '../support/rand';
import {
  Client,
  ConfigDecodeError,
  ConfigListenerError,
  ConfigWatcher,
  ConfigClosedError,
  decoders,
  EtcdError,
  op,
  type ConfigBatch,
  type ConfigChange,
  type ConfigSource,
  type GetQuery,
} from '../../src/client';

// The configuration watcher (src/client/config.ts) against real servers: cairn, and etcd 3.4
// for the basic flow; a 3-member cairn cluster for resumption across kill -9.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The prefix as a plain object of JSON values at one revision, read directly. */
async function rangeAt(c: Client, prefix: string, revision: number): Promise<Record<string, unknown>> {
  const r = await c.get({ key: prefix, prefix: true, revision });
  return Object.fromEntries(r.kvs.map((kv) => [kv.keyString().slice(prefix.length), JSON.parse(kv.valueString()) as unknown]));
}

/**
 * Follows the batches of a watcher and replays them on a model that starts from the view
 * at subscription: every change must continue from the model's state (its prevValue is
 * the model's value), and revisions must increase. Any departure is a gap or a duplicate.
 */
function follow<T>(cfg: ConfigWatcher<T>): { model: Map<string, T>; batches: Array<ConfigBatch<T>>; problems: string[] } {
  const model = new Map<string, T>(cfg.snapshot().entries());
  const batches: Array<ConfigBatch<T>> = [];
  const problems: string[] = [];
  let last = cfg.revision;
  cfg.on('batch', (b) => {
    if (b.revision <= last) problems.push(`batch revision ${b.revision} after ${last}`);
    last = b.revision;
    batches.push(b);
    for (const ch of b.changes) {
      if (ch.revision !== b.revision) problems.push(`change at ${ch.revision} in batch ${b.revision}`);
      if (JSON.stringify(ch.prevValue) !== JSON.stringify(model.get(ch.key))) {
        problems.push(`${ch.type} ${ch.key}@${ch.revision}: prevValue ${JSON.stringify(ch.prevValue)}, model has ${JSON.stringify(model.get(ch.key))}`);
      }
      if (ch.type === 'put') model.set(ch.key, ch.value);
      else model.delete(ch.key);
    }
  });
  return { model, batches, problems };
}

async function watcherCount(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  if (!m) throw new Error('no etcd_debugging_mvcc_watcher_total in /metrics');
  return Number(m[1]);
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A TCP proxy in front of one server, to cut a client off without stopping the server. */
class Proxy {
  private up = true;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((s) => this.accept(s));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(s: net.Socket): void {
    if (!this.up) return void s.destroy();
    const t = net.connect(this.targetPort, '127.0.0.1');
    for (const [a, b] of [
      [s, t],
      [t, s],
    ] as const) {
      this.sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }

  /** Drop every connection and refuse new ones. */
  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
  }

  close(): void {
    this.cut();
    this.server.close();
  }
}

describe.each(['cairn', 'etcd'] as const)('config watcher against %s', (kind) => {
  let srv: ServerProc;
  let c: Client;
  beforeAll(async () => {
    srv = kind === 'cairn' ? await startCairn() : await startEtcd();
    c = new Client({ endpoints: [srv.endpoint], dialTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    c?.close();
    await srv?.stop();
  });

  it('reads the prefix in pages at one revision, then applies every later change: typed values, events, batches', async () => {
    for (let i = 0; i < 10; i++) await c.put(`b/k${i}`, JSON.stringify({ n: i }));
    await c.put('bx', '"outside"'); // shares the bytes "b" but not the prefix "b/"
    const gets: GetQuery[] = [];
    const answered: number[] = [];
    const source: ConfigSource = {
      get: async (q, o) => {
        gets.push(q);
        const r = await c.get(q, o);
        answered.push(r.header.revision);
        return r;
      },
      watch: (o) => c.watch(o),
    };
    // Writes racing the paged read must not leak into it: it is read at one revision.
    let racing = true;
    const racer = (async () => {
      for (let i = 0; racing; i++) await c.put(`b/k${i % 10}`, JSON.stringify({ n: 1000 + i }));
    })();
    const cfg = await ConfigWatcher.open<{ n: number }>(source, 'b/', { pageSize: 3 });
    const initial = cfg.snapshot();
    racing = false;
    await racer;
    expect(gets.length).toBe(4); // 3 + 3 + 3 + 1 keys
    expect(gets[0].revision).toBeUndefined();
    const R = answered[0];
    expect(gets.slice(1).map((q) => q.revision)).toEqual([R, R, R]);
    // (Their headers carry the store's current revision, which the racer moves on.)
    expect(initial.revision).toBe(R);
    expect(initial.size).toBe(10);
    expect(initial.toObject()).toEqual(await rangeAt(c, 'b/', R));

    await cfg.waitFor((await c.get('b/k0')).header.revision);
    const start = cfg.snapshot();
    const changes: Array<ConfigChange<{ n: number }>> = [];
    cfg.on('change', (ch) => changes.push(ch));
    const iter = cfg[Symbol.asyncIterator]();

    const r1 = await c.put('b/k1', JSON.stringify({ n: -1 }));
    const r2 = await c.delete('b/k2');
    const r3 = await c.txn().then(op.put('b/k3', JSON.stringify({ n: -3 })), op.put('b/new', JSON.stringify({ n: 42 }))).commit();
    await cfg.waitFor(r3.revision);

    expect(cfg.get('b/k1')).toBeUndefined(); // keys are relative to the prefix
    expect(cfg.get('k1')?.n).toBe(-1);
    expect(cfg.has('k2')).toBe(false);
    expect(cfg.entry('new')).toMatchObject({ key: 'new', value: { n: 42 }, modRevision: r3.revision, createRevision: r3.revision, version: 1 });
    expect(cfg.revision).toBe(r3.revision);
    expect(changes).toEqual([
      { type: 'put', key: 'k1', value: { n: -1 }, prevValue: start.get('k1'), revision: r1.header.revision },
      { type: 'delete', key: 'k2', value: undefined, prevValue: start.get('k2'), revision: r2.header.revision },
      { type: 'put', key: 'k3', value: { n: -3 }, prevValue: start.get('k3'), revision: r3.revision },
      { type: 'put', key: 'new', value: { n: 42 }, prevValue: undefined, revision: r3.revision },
    ]);
    const batches: Array<ConfigBatch<{ n: number }>> = [];
    for (let i = 0; i < 3; i++) {
      const n = await iter.next();
      if (n.done !== true) batches.push(n.value);
    }
    expect(batches.map((b) => [b.revision, b.changes.map((ch) => ch.key), b.resync])).toEqual([
      [r1.header.revision, ['k1'], false],
      [r2.header.revision, ['k2'], false],
      [r3.revision, ['k3', 'new'], false],
    ]);
    // The snapshot taken before the changes did not move.
    expect(start.get('k1')).not.toEqual({ n: -1 });
    expect(start.has('k2')).toBe(true);
    expect(Object.fromEntries(cfg.entries())).toEqual(await rangeAt(c, 'b/', cfg.revision));
    cfg.close();
    expect(await iter.next()).toEqual({ value: undefined, done: true });
  });

  it('a value that fails to decode is reported with its key; the last good value stays until a good one arrives', async () => {
    await c.put('d/good', '{"x":1}');
    await c.put('d/bad-from-start', '{oops');
    const viaOption: Error[] = [];
    const cfg = await c.config<{ x: number }>('d/', { onError: (e) => viaOption.push(e) });
    const viaEvent: Error[] = [];
    cfg.on('error', (e) => viaEvent.push(e));
    const changes: string[] = [];
    cfg.on('change', (ch) => changes.push(`${ch.type} ${ch.key}`));

    expect(viaOption.length).toBe(1);
    expect(viaOption[0]).toBeInstanceOf(ConfigDecodeError);
    expect((viaOption[0] as ConfigDecodeError).key).toBe('bad-from-start');
    expect(cfg.has('bad-from-start')).toBe(false);
    expect([...cfg.rejectedValues.keys()]).toEqual(['bad-from-start']);

    const bad = await c.put('d/good', 'not json');
    await cfg.waitFor(bad.header.revision);
    expect(cfg.get('good')).toEqual({ x: 1 });
    expect(viaEvent.length).toBe(1);
    const e = viaEvent[0] as ConfigDecodeError;
    expect(e).toBeInstanceOf(ConfigDecodeError);
    expect([e.key, e.revision, e.value.toString()]).toEqual(['good', bad.header.revision, 'not json']);
    expect(e.message).toContain('"good"');
    expect(viaOption.slice(1)).toEqual([e]);
    expect(changes).toEqual([]);

    // A listener that throws is reported too, and the view goes on.
    cfg.on('change', () => {
      throw new Error('listener bug');
    });
    const fixed = await c.put('d/good', '{"x":2}');
    await cfg.waitFor(fixed.header.revision);
    expect(cfg.get('good')).toEqual({ x: 2 });
    expect(cfg.entry('good')?.modRevision).toBe(fixed.header.revision);
    expect(changes).toEqual(['put good']);
    expect(viaEvent[1]).toBeInstanceOf(ConfigListenerError);
    expect([...cfg.rejectedValues.keys()]).toEqual(['bad-from-start']);
    cfg.close();

    const asText = await c.config('d/', { decode: decoders.string });
    const text: string | undefined = asText.get('bad-from-start');
    expect(text).toBe('{oops');
    asText.close();
    const asBytes = await c.config('d/', { decode: decoders.raw });
    expect(asBytes.get('good')).toEqual(Buffer.from('{"x":2}'));
    asBytes.close();
  });

  it('waitFor resolves for a revision that changed nothing under the prefix', async () => {
    const cfg = await c.config('w/');
    const r = await c.put('elsewhere', '1');
    await cfg.waitFor(r.header.revision, { signal: AbortSignal.timeout(10_000) });
    expect(cfg.revision).toBeGreaterThanOrEqual(r.header.revision);
    // A change under the prefix after that still arrives.
    const p = await c.put('w/a', '"A"');
    await cfg.waitFor(p.header.revision);
    expect(cfg.get('a')).toBe('A');
    cfg.close();
    await expect(cfg.waitFor(p.header.revision + 100)).rejects.toBeInstanceOf(ConfigClosedError);
  });

  it('close releases the watch on the server and ends iterations; an aborted signal closes it too', async () => {
    const base = await watcherCount(srv.endpoint);
    const ac = new AbortController();
    const cfg = await c.config('x/', { signal: ac.signal });
    await until('the watch on the server', async () => (await watcherCount(srv.endpoint)) === base + 1);
    const iter = cfg[Symbol.asyncIterator]();
    const pendingNext = iter.next();
    const pendingWait = cfg.waitFor(cfg.revision + 1_000_000);
    ac.abort();
    expect(cfg.isClosed).toBe(true);
    expect(await pendingNext).toEqual({ value: undefined, done: true });
    await expect(pendingWait).rejects.toBeInstanceOf(ConfigClosedError);
    await until('the watch released', async () => (await watcherCount(srv.endpoint)) === base);
  });

  it('compaction past a disconnected watcher: it re-reads the prefix and emits the difference as one batch', async () => {
    const proxy = await new Proxy(srv.clientPort).listen();
    const viaProxy = new Client({ endpoints: [proxy.endpoint], dialTimeoutMs: 500 });
    try {
      await c.put('cmp/a', '1');
      await c.put('cmp/b', '2');
      await c.put('cmp/gone', '3');
      const cfg = await viaProxy.config<number>('cmp/');
      const seen = follow(cfg);
      const live = await c.put('cmp/b', '20');
      await cfg.waitFor(live.header.revision); // the watch is live
      const before = cfg.revision;

      proxy.cut();
      await c.put('cmp/a', '10');
      await c.put('cmp/a', '11');
      await c.delete('cmp/gone');
      await c.put('cmp/new', '5');
      await c.put('cmp/tmp', '1');
      const last = (await c.delete('cmp/tmp')).header.revision;
      await c.put('elsewhere', 'x');
      await c.compact(last, { physical: true });
      proxy.restore();

      await cfg.waitFor(last, { signal: AbortSignal.timeout(20_000) });
      const after = seen.batches.filter((b) => b.revision > before);
      expect(after.length).toBe(1);
      expect(after[0].resync).toBe(true);
      expect(after[0].revision).toBeGreaterThanOrEqual(last);
      expect(after[0].changes).toEqual([
        { type: 'put', key: 'a', value: 11, prevValue: 1, revision: after[0].revision },
        { type: 'delete', key: 'gone', value: undefined, prevValue: 3, revision: after[0].revision },
        { type: 'put', key: 'new', value: 5, prevValue: undefined, revision: after[0].revision },
      ]);
      expect(seen.problems).toEqual([]);
      expect(cfg.snapshot().toObject()).toEqual(await rangeAt(c, 'cmp/', cfg.revision));
      expect(Object.fromEntries(seen.model)).toEqual(cfg.snapshot().toObject());

      // And the watch goes on from the re-read's revision.
      const next = await c.put('cmp/a', '12');
      await cfg.waitFor(next.header.revision);
      expect(cfg.get('a')).toBe(12);
      expect(seen.batches[seen.batches.length - 1]).toMatchObject({ revision: next.header.revision, resync: false });
      cfg.close();
    } finally {
      viaProxy.close();
      proxy.close();
    }
  });
});

describe('config watcher without a server', () => {
  it('client.config rejects when the initial read fails, and the watcher it started is closed', async () => {
    const c = new Client({ endpoints: [`http://127.0.0.1:${await freePort()}`], dialTimeoutMs: 200, requestTimeoutMs: 1_000 });
    try {
      await expect(c.config('nothing/')).rejects.toBeInstanceOf(EtcdError);
      const cfg = new ConfigWatcher(c, 'nothing/');
      await expect(cfg.ready).rejects.toBeInstanceOf(EtcdError);
      expect(cfg.isClosed).toBe(true);
      const aborted = new ConfigWatcher(c, 'nothing/', { signal: AbortSignal.abort() });
      await expect(aborted.ready).rejects.toBeInstanceOf(ConfigClosedError);
    } finally {
      c.close();
    }
  });
});

describe('config watcher consistency under concurrent writers (cairn)', () => {
  let srv: ServerProc;
  let c: Client;
  beforeAll(async () => {
    srv = await startCairn();
    c = new Client({ endpoints: [srv.endpoint] });
  });
  afterAll(async () => {
    c?.close();
    await srv?.stop();
  });

  it('the view equals a fresh Range of the prefix at its revision, checked at several revisions while writers run', async () => {
    const seed = seedFromEnv('CONFIG_SEED');
    onTestFailed(() => console.error(`config watcher consistency: CONFIG_SEED=${seed}`));
    const P = 'rnd/';
    const keys = Array.from({ length: 16 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const value = (w: number, n: number): string => JSON.stringify({ w, n });
    for (const k of keys.slice(0, 8)) await c.put(P + k, value(-1, 0));
    const cfg = await c.config<{ w: number; n: number }>(P, { pageSize: 5 });
    const seen = follow(cfg);
    const errors: Error[] = [];
    cfg.on('error', (e) => errors.push(e));
    let lastRevision = cfg.revision;
    const note = (rev: number): void => void (lastRevision = Math.max(lastRevision, rev));

    const runForMs = 3_000;
    const stopAt = Date.now() + runForMs;
    const writer = async (w: number): Promise<number> => {
      const rand = new Rand(seed * 31 + w);
      let n = 0;
      for (; Date.now() < stopAt; n++) {
        const r = rand.next();
        if (r < 0.45) note((await c.put(P + rand.pick(keys), value(w, n))).header.revision);
        else if (r < 0.6) note((await c.delete(P + rand.pick(keys))).header.revision);
        else if (r < 0.68) note((await c.put(`${P}sub/${rand.int(4)}`, value(w, n))).header.revision);
        else if (r < 0.72) note((await c.delete({ key: `${P}sub/`, prefix: true })).header.revision);
        else {
          const picked = new Set<string>();
          const count = 2 + rand.int(3);
          while (picked.size < count) picked.add(rand.pick(keys));
          const ops = [...picked].map((k) => (rand.chance(0.75) ? op.put(P + k, value(w, n)) : op.delete(P + k)));
          note((await c.txn().then(...ops).commit()).revision);
        }
      }
      return n;
    };
    let checks = 0;
    const checker = async (): Promise<void> => {
      while (Date.now() < stopAt) {
        await sleep(250);
        await cfg.waitFor(lastRevision, { signal: AbortSignal.timeout(20_000) });
        const snap = cfg.snapshot();
        expect(snap.toObject(), `at revision ${snap.revision}`).toEqual(await rangeAt(c, P, snap.revision));
        checks++;
      }
    };
    const [writes] = await Promise.all([Promise.all([0, 1, 2].map(writer)), checker()]);
    // A last write of a fresh key: the view can only reach it through the watch.
    note((await c.put(`${P}final`, value(9, 0))).header.revision);
    await cfg.waitFor(lastRevision, { signal: AbortSignal.timeout(20_000) });
    const snap = cfg.snapshot();
    expect(snap.revision).toBe(lastRevision);
    expect(snap.toObject()).toEqual(await rangeAt(c, P, snap.revision));
    expect(Object.fromEntries(seen.model)).toEqual(snap.toObject());
    expect(seen.problems).toEqual([]);
    expect(errors).toEqual([]);
    expect(checks).toBeGreaterThanOrEqual(5);
    expect(writes.reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    cfg.close();
  });

  it('listeners and iterators never observe half a transaction', async () => {
    const P = 'atomic/';
    const group = ['g0', 'g1', 'g2', 'g3', 'g4'];
    const cfg = await c.config<number>(P);
    const problems: string[] = [];
    /** Every key of the group present with one value, or none present. */
    const check = (where: string): void => {
      const snap = cfg.snapshot();
      const vals = group.map((k) => snap.get(k));
      const consistent = vals.every((v) => v === undefined) || vals.every((v) => v !== undefined && v === vals[0]);
      if (!consistent) problems.push(`${where} at ${snap.revision}: ${JSON.stringify(vals)}`);
    };
    let changeCalls = 0;
    cfg.on('change', (ch) => {
      changeCalls++;
      check(`change ${ch.key}`);
    });
    cfg.on('batch', () => check('batch'));
    const iterated: Array<ConfigBatch<number>> = [];
    const iter = (async () => {
      for await (const b of cfg) {
        iterated.push(b);
        check('iterator');
      }
    })();

    let last = 0;
    for (let gen = 1; gen <= 60; gen++) {
      if (gen % 7 === 0) last = (await c.delete({ key: `${P}g`, prefix: true })).header.revision;
      else last = (await c.txn().then(...group.map((k) => op.put(P + k, String(gen)))).commit()).revision;
      if (gen % 5 === 0) last = (await c.put(`${P}other`, String(gen))).header.revision;
    }
    await cfg.waitFor(last, { signal: AbortSignal.timeout(20_000) });
    cfg.close();
    await iter;
    expect(problems).toEqual([]);
    expect(changeCalls).toBeGreaterThan(200);
    // Each group write is one batch holding all five keys.
    const groupBatches = iterated.filter((b) => b.changes.some((ch) => ch.key.startsWith('g')));
    expect(groupBatches.length).toBe(60);
    for (const b of groupBatches) expect(b.changes.map((ch) => ch.key)).toEqual(group);
  });
});

describe('config watcher across kill -9 of its member (3-member cairn cluster)', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCairnCluster(3, { snapshotDist: false });
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it.each([
    ['its only member is killed and restarted: it waits, then resumes on that member', 'only' as const],
    ['the member it uses is killed and restarted: it resumes on another member', 'failover' as const],
  ])('resumes from the last applied revision when %s; no gap, no duplicate', async (_, mode) => {
    const leader = await cluster.leader();
    const [victim, ...rest] = [...cluster.members.filter((m) => m !== leader), leader] as ClusterMember[];
    const endpoints = mode === 'only' ? [victim.endpoint] : [victim, ...rest].map((m) => m.endpoint);
    const watching = new Client({ endpoints, dialTimeoutMs: 1_000 });
    const writer = new Client({ endpoints: rest.map((m) => m.endpoint), requestTimeoutMs: 15_000 });
    try {
      const P = `seq-${mode}/`;
      const cfg = await watching.config<number>(P);
      const seen = follow(cfg);
      type Ev = [number, 'put' | 'delete', string, number | null];
      const got: Ev[] = [];
      cfg.on('change', (ch) => got.push([ch.revision, ch.type, ch.key, ch.type === 'put' ? ch.value : null]));

      const expected: Ev[] = [];
      const live = new Set<string>();
      let last = 0;
      let revAtKill = 0;
      for (let i = 0; i < 160; i++) {
        if (i === 50) {
          expect(watching.activeEndpoint).toBe(victim.endpoint);
          await victim.kill9();
          revAtKill = last;
        }
        if (i === 110) {
          // Cut off all this time: nothing written after the kill has reached the view.
          if (mode === 'only') expect(got.filter((e) => e[0] > revAtKill)).toEqual([]);
          await victim.restart();
        }
        const k = `k${i % 40}`;
        if (i % 10 === 9 && live.size > 0) {
          const d = [...live][i % live.size];
          const r = await writer.delete(P + d);
          last = r.header.revision;
          live.delete(d);
          expected.push([last, 'delete', d, null]);
        } else if (i % 13 === 0) {
          const k2 = `t${i}`;
          const r = await writer.txn().then(op.put(P + k, String(i)), op.put(P + k2, String(i))).commit();
          last = r.revision;
          live.add(k).add(k2);
          expected.push([last, 'put', k, i], [last, 'put', k2, i]);
        } else {
          last = (await writer.put(P + k, String(i))).header.revision;
          live.add(k);
          expected.push([last, 'put', k, i]);
        }
      }
      // Fresh key last: the view can only reach `last` through the watch.
      last = (await writer.put(`${P}final`, '-1')).header.revision;
      expected.push([last, 'put', 'final', -1]);
      await cfg.waitFor(last, { signal: AbortSignal.timeout(30_000) });

      const byRevKey = (a: Ev, b: Ev): number => a[0] - b[0] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
      expect(got.length).toBe(expected.length);
      expect([...got].sort(byRevKey)).toEqual([...expected].sort(byRevKey));
      expect(seen.problems).toEqual([]);
      expect(seen.batches.some((b) => b.resync)).toBe(false);
      expect(victim.running).toBe(true);
      if (mode === 'failover') expect(watching.activeEndpoint).not.toBe(victim.endpoint);
      else expect(watching.activeEndpoint).toBe(victim.endpoint);
      expect(cfg.snapshot().toObject()).toEqual(await rangeAt(writer, P, cfg.revision));
      cfg.close();
    } finally {
      watching.close();
      writer.close();
    }
  });
});
