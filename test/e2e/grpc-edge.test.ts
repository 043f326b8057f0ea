/**
 * Edge cases of etcd's KV service over raw gRPC (grpc-js with identity serializers, so
 * arbitrary bytes can be sent): malformed messages, request size limits, txn limits and
 * etcd's duplicate-key rule, nested txns, put options, range compares, and Range's sort /
 * revision-filter options. Wherever the request is well-formed, the identical request is
 * also sent to a real etcd (fed the same writes) and the decoded responses — or the gRPC
 * status code and message — must be equal, ignoring the header's cluster_id, member_id
 * and raft_term.
 *
 *   npx vitest run test/e2e/grpc-edge.test.ts         (needs `npm run build`)
 */
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { etcdserverpb } from '../../src/gen/proto';
import { b, bytes, normalize, num, prefixEnd, RawKV, type CallResult, type KvMethod, type ReqOf } from '../helpers/raw-grpc';
import { startAll } from '../helpers/servers';

const pb = etcdserverpb;
const { SortOrder, SortTarget } = pb.RangeRequest;
const CT = pb.Compare.CompareTarget;
const CR = pb.Compare.CompareResult;

const SMALL_LIMITS = ['--max-request-bytes', '10000', '--max-txn-ops', '4'];

let servers: ServerProc[] = [];
let cairn: RawKV; // default limits
let etcd: RawKV;
let cairnSmall: RawKV; // --max-request-bytes 10000 --max-txn-ops 4
let etcdSmall: RawKV;
let cairnProc: ServerProc;
let cairnSmallProc: ServerProc;

beforeAll(async () => {
  servers = await startAll([
    () => startCairn(),
    () => startEtcd(),
    () => startCairn({ extraArgs: SMALL_LIMITS }),
    () => startEtcd({ extraArgs: SMALL_LIMITS }),
  ]);
  [cairnProc, , cairnSmallProc] = servers;
  [cairn, etcd, cairnSmall, etcdSmall] = servers.map((s) => new RawKV(s.endpoint));
});

afterAll(async () => {
  for (const c of [cairn, etcd, cairnSmall, etcdSmall]) c?.close();
  await Promise.all(servers.map((s) => s.stop()));
});

type View = { ok: true; resp: unknown } | { ok: false; code: number; details: string };

function view<T>(r: CallResult<T>): View {
  return r.ok ? { ok: true, resp: normalize(r.resp) } : { ok: false, code: r.code, details: r.details };
}

/** Sends the same request to a cairn and an etcd; returns both views and cairn's result. */
async function both<M extends KvMethod>(method: M, req: ReqOf<M>, pair: 'default' | 'small' = 'default') {
  const [c, e] = pair === 'default' ? [cairn, etcd] : [cairnSmall, etcdSmall];
  const [rc, re] = await Promise.all([c.tryCall(method, req), e.tryCall(method, req)]);
  return { cairn: view(rc), etcd: view(re), raw: rc };
}

/** Same request on both; cairn's answer must equal etcd's. Returns cairn's view. */
async function same<M extends KvMethod>(method: M, req: ReqOf<M>, pair: 'default' | 'small' = 'default'): Promise<View> {
  const r = await both(method, req, pair);
  expect(r.cairn, `${method} ${JSON.stringify(normalize(req))}`).toEqual(r.etcd);
  return r.cairn;
}

function err(code: number, details: string): View {
  return { ok: false, code, details };
}

const put = (key: string, value = 'v'): etcdserverpb.IRequestOp => ({ requestPut: { key: b(key), value: b(value) } });
const del = (key: string, end?: Buffer): etcdserverpb.IRequestOp => ({ requestDeleteRange: { key: b(key), rangeEnd: end } });
const get = (key: string, end?: Buffer): etcdserverpb.IRequestOp => ({ requestRange: { key: b(key), rangeEnd: end } });
const txnOp = (t: etcdserverpb.ITxnRequest): etcdserverpb.IRequestOp => ({ requestTxn: t });

async function assertStillServing(kv: RawKV): Promise<void> {
  const r = await kv.tryCall('Range', { key: b('still-serving') });
  expect(r.ok, JSON.stringify(r)).toBe(true);
}

describe('malformed requests', () => {
  const garbage: Array<[string, Buffer]> = [
    ['invalid wire type', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07])],
    ['length beyond the end', Buffer.from([0x0a, 0x40, 0x61, 0x62])],
    ['truncated varint', Buffer.from([0x18, 0xff, 0xff])],
    ['random bytes', Buffer.from('4f2c9e71b0d3ff17a2c8e0115b6d7f90e2c4a6b8d0f1325476980abcdef0123', 'hex')],
  ];
  for (const method of ['Range', 'Put'] as const) {
    for (const [what, bytes] of garbage) {
      it(`${method} with garbage bytes (${what}) gets an error status and the server keeps serving`, async () => {
        const [rc, re] = await Promise.all([cairn.raw(method, bytes), etcd.raw(method, bytes)]);
        expect(re.ok).toBe(false); // sanity: etcd refuses it too
        expect(rc.ok, `cairn accepted ${what}`).toBe(false);
        if (!rc.ok) expect(rc.code).not.toBe(Status.OK);
        expect(cairnProc.running).toBe(true);
        await assertStillServing(cairn);
      });
    }
  }

  it('a Range with an empty key is refused like etcd', async () => {
    expect(await same('Range', { key: Buffer.alloc(0) })).toEqual(err(Status.INVALID_ARGUMENT, 'etcdserver: key is not provided'));
  });
});

describe('request size limits (--max-request-bytes 10000)', () => {
  it('a 20 KB Put is refused with "etcdserver: request is too large" (InvalidArgument)', async () => {
    const r = await same('Put', { key: b('big'), value: Buffer.alloc(20_000, 0x61) }, 'small');
    expect(r).toEqual(err(Status.INVALID_ARGUMENT, 'etcdserver: request is too large'));
    // Nothing was written.
    const g = await cairnSmall.call('Range', { key: b('big') });
    expect(num(g.count)).toBe(0);
  });

  it('a Put just under the limit succeeds', async () => {
    const r = await same('Put', { key: b('small'), value: Buffer.alloc(9_000, 0x62) }, 'small');
    expect(r.ok).toBe(true);
  });

  it('a message larger than max-request-bytes + 512 KiB gets RESOURCE_EXHAUSTED from gRPC', async () => {
    const value = Buffer.alloc(10_000 + 512 * 1024 + 4096, 0x63);
    const [rc, re] = await Promise.all([
      cairnSmall.tryCall('Put', { key: b('huge'), value }),
      etcdSmall.tryCall('Put', { key: b('huge'), value }),
    ]);
    expect(re.ok).toBe(false);
    if (!re.ok) expect(re.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(rc.ok).toBe(false);
    if (!rc.ok) expect(rc.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(cairnSmallProc.running).toBe(true);
    await assertStillServing(cairnSmall);
  });
});

describe('txn operation limits', () => {
  const manyPuts = (n: number, prefix: string): etcdserverpb.IRequestOp[] =>
    Array.from({ length: n }, (_, i) => put(`${prefix}/${String(i).padStart(3, '0')}`));

  it('129 ops in a branch get "etcdserver: too many operations in txn request"; 128 are fine', async () => {
    expect(await same('Txn', { success: manyPuts(129, 'ops129') })).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
    );
    expect(await same('Txn', { failure: manyPuts(129, 'ops129f') })).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
    );
    const compares = Array.from({ length: 129 }, (_, i) => ({ key: b(`c${i}`), target: CT.VERSION, result: CR.EQUAL, version: 0 }));
    expect(await same('Txn', { compare: compares })).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
    );
    const ok = await same('Txn', { success: manyPuts(128, 'ops128') });
    expect(ok.ok).toBe(true);
    const g = await cairn.call('Range', { key: b('ops128/'), rangeEnd: prefixEnd('ops128/'), countOnly: true });
    expect(num(g.count)).toBe(128);
  });

  it('--max-txn-ops 4 lowers the limit (5 refused, 4 accepted)', async () => {
    expect(await same('Txn', { success: manyPuts(5, 'lim5') }, 'small')).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
    );
    const ok = await same('Txn', { success: manyPuts(4, 'lim4') }, 'small');
    expect(ok.ok).toBe(true);
    // The limit applies per nested txn as well.
    expect(await same('Txn', { success: [txnOp({ success: manyPuts(5, 'lim5n') })] }, 'small')).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
    );
  });
});

describe("etcd's duplicate-key rule for txn branches", () => {
  const DUP = err(Status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request');
  const cases: Array<{ name: string; txn: etcdserverpb.ITxnRequest; dup: boolean }> = [
    { name: 'two puts of one key', txn: { success: [put('d/a', '1'), put('d/a', '2')] }, dup: true },
    { name: 'two puts of one key in the failure branch', txn: { failure: [put('d/a', '1'), put('d/a', '2')] }, dup: true },
    { name: 'a put inside a delete range', txn: { success: [del('d/a', b('d/c')), put('d/b')] }, dup: true },
    { name: 'a put of a single deleted key', txn: { success: [put('d/k'), del('d/k')] }, dup: true },
    { name: 'a put just outside a delete range', txn: { success: [del('d/a', b('d/c')), put('d/c')] }, dup: false },
    { name: 'the same key in success and failure', txn: { success: [put('d/a')], failure: [put('d/a')] }, dup: false },
    { name: 'a range and a put of one key', txn: { success: [get('d/a'), put('d/a')] }, dup: false },
    {
      name: 'then/else of a nested txn putting the same key',
      txn: { success: [txnOp({ success: [put('d/x', 't')], failure: [put('d/x', 'f')] })] },
      dup: false,
    },
    {
      name: 'a nested put of a key an outer put writes',
      txn: { success: [put('d/x'), txnOp({ success: [put('d/x')] })] },
      dup: true,
    },
    {
      name: 'a nested else-put of a key an outer put writes',
      txn: { success: [put('d/y'), txnOp({ success: [put('d/x')], failure: [put('d/y')] })] },
      dup: true,
    },
    {
      name: 'two nested txns putting the same key',
      txn: { success: [txnOp({ success: [put('d/x')] }), txnOp({ success: [put('d/x')] })] },
      dup: true,
    },
    {
      name: 'a nested put inside an outer delete range',
      txn: { success: [del('d/', prefixEnd('d/')), txnOp({ success: [put('d/q')] })] },
      dup: true,
    },
    {
      name: 'an outer put inside a nested delete range',
      txn: { success: [txnOp({ success: [del('d/', prefixEnd('d/'))] }), put('d/q')] },
      dup: true,
    },
    {
      name: 'deeply nested duplicate',
      txn: { success: [put('d/deep'), txnOp({ success: [txnOp({ success: [put('d/deep')] })] })] },
      dup: true,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.dup ? 'refused' : 'accepted'} as etcd does`, async () => {
      const r = await same('Txn', c.txn);
      if (c.dup) expect(r).toEqual(DUP);
      else expect(r.ok).toBe(true);
    });
  }

});

describe('nested txns', () => {
  it('execute with one revision for the whole txn and return the nested response structure', async () => {
    await same('Put', { key: b('n/a'), value: b('1') });
    const before = await cairn.call('Range', { key: b('n/a') });
    const rev0 = num(before.header?.revision);
    const txn: etcdserverpb.ITxnRequest = {
      compare: [{ key: b('n/a'), target: CT.VALUE, result: CR.EQUAL, value: b('1') }],
      success: [
        put('n/b', 'B'),
        txnOp({
          // Compares of a nested txn see the store as it was before this txn.
          compare: [{ key: b('n/b'), target: CT.VERSION, result: CR.EQUAL, version: 0 }],
          success: [get('n/b'), put('n/c', 'C'), txnOp({ success: [put('n/d', 'D')], failure: [put('n/e', 'E')] })],
          failure: [put('n/f', 'F')],
        }),
        get('n/', prefixEnd('n/')),
      ],
      failure: [put('n/g', 'G')],
    };
    const r = await same('Txn', txn);
    expect(r.ok).toBe(true);
    const raw = await cairn.call('Range', { key: b('n/'), rangeEnd: prefixEnd('n/') });
    const rev = num(raw.header?.revision);
    expect(rev).toBe(rev0 + 1);
    const byKey = new Map(raw.kvs.map((kv) => [bytes(kv.key).toString(), kv]));
    expect([...byKey.keys()].sort()).toEqual(['n/a', 'n/b', 'n/c', 'n/d']);
    for (const k of ['n/b', 'n/c', 'n/d']) expect(num(byKey.get(k)!.modRevision)).toBe(rev);
    // The response tree (checked against etcd above) has the expected shape.
    const resp = (r as { ok: true; resp: { succeeded?: boolean; responses: Array<Record<string, unknown>> } }).resp;
    expect(resp.succeeded).toBe(true);
    expect(resp.responses).toHaveLength(3);
    const nested = resp.responses[1].responseTxn as { succeeded?: boolean; responses: Array<Record<string, unknown>> };
    expect(nested.succeeded).toBe(true);
    expect(nested.responses).toHaveLength(3);
    expect(Object.keys(nested.responses[0])).toEqual(['responseRange']);
    expect(Object.keys(nested.responses[1])).toEqual(['responsePut']);
    const inner = nested.responses[2].responseTxn as { succeeded?: boolean; responses: unknown[] };
    expect(inner.succeeded).toBe(true);
    expect(inner.responses).toHaveLength(1);
  });
});

describe('put options', () => {
  it('ignore_value on a missing key gets "etcdserver: key not found"', async () => {
    expect(await same('Put', { key: b('po/missing'), ignoreValue: true })).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: key not found'),
    );
  });

  it('ignore_value with a value gets "etcdserver: value is provided"', async () => {
    expect(await same('Put', { key: b('po/x'), value: b('v'), ignoreValue: true })).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: value is provided'),
    );
  });

  it('ignore_value on an existing key keeps the value and bumps the version', async () => {
    await same('Put', { key: b('po/k'), value: b('keep') });
    expect((await same('Put', { key: b('po/k'), ignoreValue: true, prevKv: true })).ok).toBe(true);
    const g = await cairn.call('Range', { key: b('po/k') });
    expect(bytes(g.kvs[0].value).toString()).toBe('keep');
    expect(num(g.kvs[0].version)).toBe(2);
    await same('Range', { key: b('po/k') });
  });

  it('a put with a lease that does not exist gets "etcdserver: requested lease not found" (NotFound)', async () => {
    expect(await same('Put', { key: b('po/l'), value: b('v'), lease: 0x1234567 })).toEqual(
      err(Status.NOT_FOUND, 'etcdserver: requested lease not found'),
    );
    expect(await same('Txn', { success: [{ requestPut: { key: b('po/l'), value: b('v'), lease: 99 } }] })).toEqual(
      err(Status.NOT_FOUND, 'etcdserver: requested lease not found'),
    );
  });

  it('ignore_lease with a lease gets "etcdserver: lease is provided"', async () => {
    expect(await same('Put', { key: b('po/k'), value: b('v'), lease: 5, ignoreLease: true })).toEqual(
      err(Status.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
    );
  });

  it('an empty request op inside a txn answers like etcd', async () => {
    expect(await same('Txn', { success: [{}] })).toEqual(err(Status.INVALID_ARGUMENT, 'etcdserver: key not found'));
  });
});

describe('compare with range_end', () => {
  it('every key in the range must satisfy the compare', async () => {
    await same('Put', { key: b('cr/1'), value: b('x') });
    await same('Put', { key: b('cr/2'), value: b('x') });
    await same('Put', { key: b('cr/3'), value: b('y') });
    const cmp = (value: string, result = CR.EQUAL): etcdserverpb.ICompare => ({
      key: b('cr/'),
      rangeEnd: prefixEnd('cr/'),
      target: CT.VALUE,
      result,
      value: b(value),
    });
    const t1 = await same('Txn', { compare: [cmp('x')], success: [get('cr/1')], failure: [get('cr/3')] });
    expect((t1 as { resp: { succeeded?: boolean } }).resp.succeeded).toBeUndefined(); // false
    await same('Put', { key: b('cr/3'), value: b('x') });
    const t2 = await same('Txn', { compare: [cmp('x')], success: [get('cr/1')], failure: [get('cr/3')] });
    expect((t2 as { resp: { succeeded?: boolean } }).resp.succeeded).toBe(true);
    const t3 = await same('Txn', { compare: [cmp('x', CR.NOT_EQUAL)] });
    expect((t3 as { resp: { succeeded?: boolean } }).resp.succeeded).toBeUndefined();
    // Other targets over the range, and compares over an empty range.
    for (const [target, field, val] of [
      [CT.VERSION, 'version', 1],
      [CT.CREATE, 'createRevision', 1],
      [CT.MOD, 'modRevision', 1_000_000],
      [CT.LEASE, 'lease', 0],
    ] as const) {
      for (const result of [CR.EQUAL, CR.GREATER, CR.LESS, CR.NOT_EQUAL]) {
        for (const [key, end] of [
          ['cr/', prefixEnd('cr/')],
          ['cr/', Buffer.from([0])],
          ['nothing/', prefixEnd('nothing/')],
        ] as const) {
          await same('Txn', { compare: [{ key: b(key), rangeEnd: end, target, result, [field]: val }] });
        }
      }
    }
    await same('Txn', { compare: [{ key: b('nothing/'), rangeEnd: prefixEnd('nothing/'), target: CT.VALUE, result: CR.EQUAL, value: b('') }] });
  });
});

describe('Range sort and revision filters (against etcd)', () => {
  // Keys s/k0..s/k5: s/ki is written i+1 times (unique versions), with unique values,
  // interleaved so create and mod revision orders both differ from key order.
  beforeAll(async () => {
    const order = [3, 0, 5, 1, 4, 2];
    const writes: Array<[string, string]> = [];
    for (let round = 0; round < 6; round++) {
      for (const i of order) if (round <= i) writes.push([`s/k${i}`, `val-${(7 * writes.length + 3) % 97}-${i}-${round}`]);
    }
    for (const [k, v] of writes) await same('Put', { key: b(k), value: b(v) });
    await same('DeleteRange', { key: b('s/none') });
  });

  it('every sort_order x sort_target combination, with and without limit, keys_only and count_only', async () => {
    for (const sortOrder of [SortOrder.NONE, SortOrder.ASCEND, SortOrder.DESCEND]) {
      for (const sortTarget of [SortTarget.KEY, SortTarget.VERSION, SortTarget.CREATE, SortTarget.MOD, SortTarget.VALUE]) {
        for (const limit of [0, 1, 3, 6, 10]) {
          for (const extra of [{}, { keysOnly: true }, { countOnly: true }]) {
            const v = await same('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), sortOrder, sortTarget, limit, ...extra });
            expect(v.ok).toBe(true);
          }
        }
      }
    }
  });

  it('a sorted descending read by key returns the keys reversed', async () => {
    const r = await cairn.call('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.KEY });
    expect(r.kvs.map((kv) => bytes(kv.key).toString())).toEqual(['s/k5', 's/k4', 's/k3', 's/k2', 's/k1', 's/k0']);
  });

  it('min/max mod/create revision filters, alone, combined, with sort and limit', async () => {
    const r = await cairn.call('Range', { key: b('s/'), rangeEnd: prefixEnd('s/') });
    const creates = r.kvs.map((kv) => num(kv.createRevision)).sort((x, y) => x - y);
    const mods = r.kvs.map((kv) => num(kv.modRevision)).sort((x, y) => x - y);
    const points = [...new Set([0, 1, creates[0], creates[2], creates[5], mods[0], mods[3], mods[5], mods[5] + 100])];
    for (const p of points) {
      for (const field of ['minModRevision', 'maxModRevision', 'minCreateRevision', 'maxCreateRevision'] as const) {
        await same('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), [field]: p });
        await same('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), [field]: p, limit: 2 });
        await same('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), [field]: p, countOnly: true });
        await same('Range', {
          key: b('s/'),
          rangeEnd: prefixEnd('s/'),
          [field]: p,
          sortOrder: SortOrder.DESCEND,
          sortTarget: SortTarget.MOD,
          limit: 3,
        });
      }
    }
    await same('Range', {
      key: b('s/'),
      rangeEnd: prefixEnd('s/'),
      minModRevision: mods[1],
      maxModRevision: mods[4],
      minCreateRevision: creates[1],
      maxCreateRevision: creates[4],
    });
    // Filters at an older revision.
    await same('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), revision: mods[2], minModRevision: creates[1] });
    const f = await cairn.call('Range', { key: b('s/'), rangeEnd: prefixEnd('s/'), minModRevision: mods[3] });
    for (const kv of f.kvs) expect(num(kv.modRevision)).toBeGreaterThanOrEqual(mods[3]);
    expect(f.kvs).toHaveLength(3);
  });

  it('an unknown sort order or sort target gets InvalidArgument and the server keeps serving', async () => {
    for (const req of [
      { key: b('s/'), rangeEnd: prefixEnd('s/'), sortOrder: 7 },
      { key: b('s/'), rangeEnd: prefixEnd('s/'), sortOrder: SortOrder.ASCEND, sortTarget: 9 },
    ]) {
      const r = await cairn.tryCall('Range', req);
      expect(r.ok, JSON.stringify(normalize(req))).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe(Status.INVALID_ARGUMENT);
        // etcd 3.5+'s check in v3rpc (ErrGRPCInvalidSortOption).
        expect(r.details).toBe('etcdserver: invalid sort option');
      }
    }
    expect(cairnProc.running).toBe(true);
    await assertStillServing(cairn);
  });
});

describe('assorted requests answered exactly like etcd', () => {
  beforeAll(async () => {
    for (const [k, v] of [['m/a', '1'], ['m/b', '2'], ['m/c', '3'], ['m/a', '4'], ['m/d', '5']]) await same('Put', { key: b(k), value: b(v) });
    await same('DeleteRange', { key: b('m/c') });
  });

  it('reads: reversed and empty ranges, all keys, negative limit and revision, keys_only + count_only', async () => {
    const cur = num((await cairn.call('Range', { key: b('m/a') })).header?.revision);
    const reqs: etcdserverpb.IRangeRequest[] = [
      { key: b('m/d'), rangeEnd: b('m/a') },
      { key: b('m/a'), rangeEnd: b('m/a') },
      { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), countOnly: true },
      { key: b('m/'), rangeEnd: Buffer.from([0]), keysOnly: true, limit: 2 },
      { key: b('m/'), rangeEnd: prefixEnd('m/'), limit: -1 },
      { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: -1 },
      { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur - 1 },
      { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur + 1 },
      { key: b('m/'), rangeEnd: prefixEnd('m/'), keysOnly: true, countOnly: true },
      { key: b('m/'), rangeEnd: prefixEnd('m/'), serializable: true, limit: 1 },
      { key: b('m/c') },
      { key: b('m/c'), revision: cur - 1 },
    ];
    for (const r of reqs) await same('Range', r);
  });

  it('txns: empty compare key, missing-key compares, reads at old and future revisions inside a txn', async () => {
    const cur = num((await cairn.call('Range', { key: b('m/a') })).header?.revision);
    const txns: etcdserverpb.ITxnRequest[] = [
      { compare: [{ key: Buffer.alloc(0), target: CT.VERSION, result: CR.EQUAL, version: 0 }] },
      { compare: [{ key: b('m/zz'), target: CT.VALUE, result: CR.EQUAL, value: b('') }], success: [get('m/a')], failure: [get('m/b')] },
      { compare: [{ key: b('m/zz'), target: CT.VALUE, result: CR.NOT_EQUAL, value: b('x') }], success: [get('m/a')] },
      { compare: [{ key: b('m/zz'), target: CT.CREATE, result: CR.LESS, createRevision: 1 }], success: [get('m/a')] },
      { compare: [{ key: b('m/a'), target: CT.LEASE, result: CR.EQUAL, lease: 0 }], success: [get('m/a')] },
      { success: [{ requestRange: { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur - 2 } }] },
      { success: [{ requestRange: { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur + 5 } }] },
      { success: [{ requestRange: { key: Buffer.alloc(0) } }] },
      { success: [{ requestDeleteRange: { key: Buffer.alloc(0) } }] },
      { success: [{ requestPut: { key: b('m/x'), ignoreValue: true } }] },
      {},
    ];
    for (const t of txns) await same('Txn', t);
  });

  it('writes: prev_kv on put and delete, reversed delete range, delete-all-from-key with prev_kv', async () => {
    await same('Put', { key: b('m/a'), value: b('6'), prevKv: true });
    await same('Put', { key: b('m/new'), value: b('7'), prevKv: true });
    await same('DeleteRange', { key: b('m/d'), rangeEnd: b('m/a'), prevKv: true });
    await same('DeleteRange', { key: b('m/b'), rangeEnd: prefixEnd('m/'), prevKv: true });
    await same('DeleteRange', { key: b('m/b'), rangeEnd: prefixEnd('m/') });
    await same('Txn', { success: [put('m/t1', 'a'), { requestDeleteRange: { key: b('m/t1'), prevKv: true } }].reverse() });
    await same('Txn', { success: [{ requestDeleteRange: { key: b('m/t1'), prevKv: true } }, get('m/t1')] });
    await same('Range', { key: b('m/'), rangeEnd: prefixEnd('m/') });
  });

  it('compaction: revision 0, current revision, then reads and txns below it', async () => {
    const cur = num((await cairn.call('Range', { key: b('m/a') })).header?.revision);
    await same('Compact', { revision: 0 });
    await same('Compact', { revision: cur - 3 });
    await same('Range', { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur - 4 });
    await same('Txn', { success: [{ requestRange: { key: b('m/a'), revision: cur - 4 } }] });
    await same('Compact', { revision: cur, physical: true });
    await same('Range', { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur });
    await same('Range', { key: b('m/'), rangeEnd: prefixEnd('m/'), revision: cur - 1 });
  });
});

// Last in the file: when cairn and etcd disagree here, their stores (and revisions) diverge.
describe('duplicate-key rule: from-key delete ranges', () => {
  it('a put after a from-key delete (range_end "\\0") in one branch is accepted as etcd accepts it', async () => {
    // etcd's checkIntervals builds the delete as NewStringAffineInterval(key, "\x00"): only an
    // empty range_end means +infinity there, so a from-key delete never conflicts with a put
    // and etcd executes the txn (delete everything >= key, then the put).
    const r = await same('Txn', { success: [del('zz/m', Buffer.from([0])), put('zz/z')] });
    expect(r.ok).toBe(true);
  });
});
