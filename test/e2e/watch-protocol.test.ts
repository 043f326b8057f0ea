import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { ServerProc, startCairn, startEtcd } from '../../bench/lib/procs';
import { WatchStreamClient, grpcClient, put, unary } from '../helpers/watch-client';
import { etcdserverpb } from '../../src/gen/proto';

// The Watch protocol's less common requests, each against cairn and a real etcd 3.4:
// client-chosen IDs, duplicate IDs, filters, progress requests, progress_notify and
// fragmented responses.

let cairn: ServerProc;
let etcd: ServerProc;
const clients = new Map<string, grpc.Client>();

beforeAll(async () => {
  const args = ['--max-request-bytes', '20000', '--experimental-watch-progress-notify-interval', '1s'];
  [cairn, etcd] = await Promise.all([startCairn({ extraArgs: args }), startEtcd({ extraArgs: args })]);
  clients.set('cairn', grpcClient(cairn.endpoint));
  clients.set('etcd', grpcClient(etcd.endpoint));
});
afterAll(async () => {
  for (const c of clients.values()) c.close();
  await Promise.all([cairn?.stop(), etcd?.stop()]);
});

const both = async <T>(fn: (c: grpc.Client, name: string) => Promise<T>): Promise<{ cairn: T; etcd: T }> => {
  const [a, b] = await Promise.all([fn(clients.get('cairn')!, 'cairn'), fn(clients.get('etcd')!, 'etcd')]);
  return { cairn: a, etcd: b };
};

const shape = (r: etcdserverpb.WatchResponse) => ({
  watchId: Number(r.watchId),
  created: r.created,
  canceled: r.canceled,
  cancelReason: r.cancelReason,
  compactRevision: Number(r.compactRevision),
  fragment: r.fragment,
  events: r.events.map((e) => `${e.type === 1 ? 'DELETE' : 'PUT'} ${Buffer.from(e.kv!.key!).toString()}`),
});

describe('watch protocol, cairn against etcd', () => {
  it('client-chosen watch IDs are used; a duplicate ID is refused on the same stream', async () => {
    const out = await both(async (c) => {
      const s = new WatchStreamClient(c);
      s.create({ key: Buffer.from('ids/a'), watchId: 7 });
      s.create({ key: Buffer.from('ids/b'), watchId: 7 });
      s.create({ key: Buffer.from('ids/c') });
      await s.until((rs) => rs.length >= 3, 10_000, 'three create responses');
      s.end();
      return s.responses.slice(0, 3).map(shape);
    });
    expect(out.cairn).toEqual(out.etcd);
    expect(out.cairn[0]).toMatchObject({ watchId: 7, created: true, canceled: false });
    expect(out.cairn[1]).toMatchObject({ created: true, canceled: true });
  });

  it('NOPUT and NODELETE filters drop those events', async () => {
    const out = await both(async (c, name) => {
      const s = new WatchStreamClient(c);
      s.create({ key: Buffer.from(`flt/`), rangeEnd: Buffer.from('flt0'), filters: [etcdserverpb.WatchCreateRequest.FilterType.NOPUT] });
      s.create({ key: Buffer.from(`flt/`), rangeEnd: Buffer.from('flt0'), filters: [etcdserverpb.WatchCreateRequest.FilterType.NODELETE] });
      await s.until((rs) => rs.filter((r) => r.created).length === 2, 10_000, 'created');
      await put(c, 'flt/1', name);
      await unary(c, '/etcdserverpb.KV/DeleteRange', etcdserverpb.DeleteRangeRequest, etcdserverpb.DeleteRangeResponse, { key: Buffer.from('flt/1') });
      await s.until((rs) => rs.reduce((n, r) => n + r.events.length, 0) >= 2, 10_000, 'two events');
      s.end();
      return s.responses.filter((r) => r.events.length > 0).map(shape).sort((a, b) => a.watchId - b.watchId);
    });
    expect(out.cairn).toEqual(out.etcd);
    expect(out.cairn).toEqual([
      expect.objectContaining({ watchId: 0, events: ['DELETE flt/1'] }),
      expect.objectContaining({ watchId: 1, events: ['PUT flt/1'] }),
    ]);
  });

  it('a progress request is answered with the current revision and watch ID -1', async () => {
    const out = await both(async (c) => {
      const s = new WatchStreamClient(c);
      s.create({ key: Buffer.from('prog/a') });
      await s.until((rs) => rs.some((r) => r.created), 10_000, 'created');
      const rev = Number((await put(c, 'unrelated', 'x')).header!.revision);
      s.call.write({ progressRequest: {} });
      await s.until((rs) => rs.length >= 2, 10_000, 'progress response');
      s.end();
      return { ...shape(s.responses[1]), atRevision: Number(s.responses[1].header!.revision) === rev };
    });
    expect(out.cairn).toEqual(out.etcd);
    expect(out.cairn).toMatchObject({ watchId: -1, events: [], atRevision: true });
  });

  it('progress_notify sends empty responses for an idle watcher at the configured interval', async () => {
    const out = await both(async (c) => {
      const s = new WatchStreamClient(c);
      s.create({ key: Buffer.from('idle/a'), progressNotify: true });
      await s.until((rs) => rs.some((r) => r.created), 10_000, 'created');
      // etcd checks every interval and skips a watcher that got events; allow up to 3 intervals.
      await s.until((rs) => rs.some((r) => !r.created && r.events.length === 0), 6_000, 'progress notification');
      s.end();
      return shape(s.responses.find((r) => !r.created)!);
    });
    expect(out.cairn).toEqual(out.etcd);
    expect(out.cairn).toMatchObject({ watchId: 0, events: [], canceled: false });
  });

  it('with fragment set, a transaction larger than the request limit arrives in pieces, the last unflagged', async () => {
    const out = await both(async (c) => {
      const s = new WatchStreamClient(c);
      // The request fits the 20,000-byte limit; its events with their prev_kv do not.
      const value = Buffer.alloc(1500, 'f');
      for (let i = 0; i < 10; i++) await put(c, `frag/${i}`, value);
      s.create({ key: Buffer.from('frag/'), rangeEnd: Buffer.from('frag0'), fragment: true, prevKv: true });
      await s.until((rs) => rs.some((r) => r.created), 10_000, 'created');
      const success = Array.from({ length: 10 }, (_, i) => ({ requestPut: { key: Buffer.from(`frag/${i}`), value } }));
      await unary(c, '/etcdserverpb.KV/Txn', etcdserverpb.TxnRequest, etcdserverpb.TxnResponse, { success });
      await s.until((rs) => rs.reduce((n, r) => n + r.events.length, 0) >= 10, 10_000, 'ten events');
      s.end();
      const parts = s.responses.filter((r) => r.events.length > 0);
      return { pieces: parts.length, flags: parts.map((r) => r.fragment), events: parts.flatMap((r) => shape(r).events) };
    });
    expect(out.cairn.events).toEqual(out.etcd.events);
    expect(out.cairn.pieces).toBeGreaterThan(1);
    expect(out.cairn.flags[out.cairn.flags.length - 1]).toBe(false);
    expect(out.cairn.flags.slice(0, -1).every((f) => f)).toBe(true);
  });
});
