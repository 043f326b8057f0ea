import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProc, startCairn } from '../../bench/lib/procs';
import { WatchStreamClient, grpcClient, leaseGrant, pool, put, range } from '../helpers/watch-client';
import type * as grpc from '@grpc/grpc-js';

// Watch at scale against a real cairn process: many watchers on one stream, many streams,
// a stream that stops reading while writes go on, and lease expiry under a write load.

let server: ServerProc;
let client: grpc.Client;

beforeAll(async () => {
  server = await startCairn({});
  client = grpcClient(server.endpoint);
});
afterAll(async () => {
  client?.close();
  await server?.stop();
});

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('watch at scale', () => {
  it('10,000 watchers on one stream each get their key\'s event, and the server stays responsive', async () => {
    const stream = new WatchStreamClient(client);
    const n = 10_000;
    for (let i = 0; i < n; i++) stream.create({ key: Buffer.from(`scale1/${i}`) });
    await stream.until((rs) => rs.filter((r) => r.created).length === n, 30_000, 'created responses');
    const ids = new Set(stream.responses.map((r) => Number(r.watchId)));
    expect(ids.size).toBe(n);
    const started = Date.now();
    const r = await range(client, 'unrelated');
    expect(r.count).toBeDefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    const keys = Array.from({ length: n }, (_, i) => i);
    await pool(keys, 64, (i) => put(client, `scale1/${i}`, `v${i}`));
    await stream.until((rs) => rs.reduce((s, x) => s + x.events.length, 0) >= n, 60_000, 'one event per watcher');
    const evs = stream.events();
    expect(evs.length).toBe(n);
    const byWatch = new Map(evs.map((e) => [e.watchId, e]));
    expect(byWatch.size).toBe(n);
    for (const e of evs) expect(e.value).toBe(`v${e.key.split('/')[1]}`);
    stream.end();
  });

  it('1,000 streams watching one prefix each see every write, in order', async () => {
    const conns = Array.from({ length: 8 }, () => grpcClient(server.endpoint));
    const streams = Array.from({ length: 1000 }, (_, i) => new WatchStreamClient(conns[i % conns.length]));
    for (const s of streams) s.create({ key: Buffer.from('scale2/'), rangeEnd: Buffer.from('scale20') });
    await Promise.all(streams.map((s) => s.until((rs) => rs.some((r) => r.created), 30_000, 'created')));
    for (let i = 0; i < 20; i++) await put(client, `scale2/${i}`, `v${i}`);
    await Promise.all(streams.map((s) => s.until((rs) => rs.reduce((n, r) => n + r.events.length, 0) >= 20, 60_000, '20 events')));
    for (const s of streams) {
      expect(s.events().map((e) => e.value)).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
      s.end();
    }
    for (const c of conns) c.close();
  });

  it('a progress request is answered only once the stream\'s watchers caught up: it never vouches for events still on their way', async () => {
    const value = Buffer.alloc(4096, 'p');
    const writes = 3000; // ~12 MiB of history to catch up from storage
    await pool(Array.from({ length: writes }, (_, i) => i), 32, (i) => put(client, `progress/${String(i).padStart(5, '0')}`, value));
    const stream = new WatchStreamClient(client);
    stream.create({ key: Buffer.from('progress/'), rangeEnd: Buffer.from('progress0'), startRevision: 1 });
    stream.call.write({ progressRequest: {} });
    await stream.until((rs) => rs.some((r) => !r.created && Number(r.watchId) === -1), 60_000, 'the progress notification');
    const at = stream.responses.findIndex((r) => !r.created && Number(r.watchId) === -1);
    const progressRevision = Number(stream.responses[at].header?.revision);
    const before = stream.responses.slice(0, at).flatMap((r) => r.events ?? []);
    // Every event up to the revision it names had been delivered before it.
    const lastPut = Number((await range(client, 'progress/02999')).kvs?.[0]?.modRevision);
    expect(progressRevision).toBeGreaterThanOrEqual(lastPut);
    expect(before.length).toBe(writes);
    stream.end();
  });

  it('a stream that stops reading does not hold up writes or other streams, and catches up without a gap', async () => {
    // Each stream on a connection of its own, as separate clients would be.
    const slowConn = grpcClient(server.endpoint);
    const fastConn = grpcClient(server.endpoint);
    const slow = new WatchStreamClient(slowConn);
    const fast = new WatchStreamClient(fastConn);
    slow.create({ key: Buffer.from('scale3/'), rangeEnd: Buffer.from('scale30') });
    fast.create({ key: Buffer.from('scale3/'), rangeEnd: Buffer.from('scale30') });
    // A new connection on a loaded machine (CI beside benchmarks) can take seconds.
    await slow.until((rs) => rs.some((r) => r.created), 30_000, 'created');
    await fast.until((rs) => rs.some((r) => r.created), 30_000, 'created');
    slow.call.pause(); // stop reading: the server's buffer for this stream fills up
    const value = Buffer.alloc(16 * 1024, 'x');
    const writes = 2000; // ~32 MiB of events
    const rssBefore = rssBytes(server.pid);
    const started = Date.now();
    await pool(Array.from({ length: writes }, (_, i) => i), 32, (i) => put(client, `scale3/${String(i).padStart(5, '0')}`, value));
    const writeSeconds = (Date.now() - started) / 1000;
    await fast.until((rs) => rs.reduce((n, r) => n + r.events.length, 0) >= writes, 60_000, 'fast stream events');
    expect(fast.events().length).toBe(writes);
    const rssGrowth = rssBytes(server.pid) - rssBefore;
    // Nothing is buffered for the stalled stream beyond its gRPC window: far less than the 32 MiB written.
    expect(rssGrowth).toBeLessThan(200 * 1024 * 1024);
    expect(writeSeconds).toBeLessThan(60);
    slow.call.resume();
    await slow.until((rs) => rs.reduce((n, r) => n + r.events.length, 0) >= writes, 60_000, 'slow stream catching up');
    const revs = slow.events().map((e) => e.rev);
    expect(revs.length).toBe(writes);
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]);
    expect(slow.events().map((e) => e.key)).toEqual(fast.events().map((e) => e.key));
    slow.end();
    fast.end();
    slowConn.close();
    fastConn.close();
  }, 180_000); // 32 MiB through a loaded CI machine: each wait above has its own bound and message
});

describe('lease expiry under load', () => {
  it('keys of expired leases are deleted and watchers see the deletes, while writes go on', async () => {
    const watcher = new WatchStreamClient(client);
    watcher.create({ key: Buffer.from('scale4/'), rangeEnd: Buffer.from('scale40') });
    await watcher.until((rs) => rs.some((r) => r.created), 10_000, 'created');
    const leases = await Promise.all(Array.from({ length: 20 }, () => leaseGrant(client, 2)));
    for (const l of leases) expect(Number(l.TTL)).toBe(2);
    const leased: string[] = [];
    await pool(
      leases.flatMap((l, i) => Array.from({ length: 10 }, (_, j) => ({ id: l.ID, key: `scale4/${i}/${j}` }))),
      32,
      async ({ id, key }) => {
        leased.push(key);
        await put(client, key, 'leased', id); // a Long: lease IDs use all 63 bits
      },
    );
    let stop = false;
    const load = (async () => {
      let i = 0;
      while (!stop) await put(client, `scale4-load/${i++ % 100}`, 'x');
      return i;
    })();
    await watcher.until((rs) => rs.flatMap((r) => r.events).filter((e) => e.type === 1).length >= leased.length, 20_000, 'deletes');
    stop = true;
    expect(await load).toBeGreaterThan(0);
    const left = await range(client, 'scale4/', 'scale40');
    expect(Number(left.count)).toBe(0);
    const deleted = new Set(watcher.events().filter((e) => e.type === 'DELETE').map((e) => e.key));
    expect([...deleted].sort()).toEqual([...leased].sort());
    watcher.end();
  });
});
